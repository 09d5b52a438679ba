"""Headless OpenGL renders: the camera, the EGL context and framebuffers, the mesh renderer.

    from shapepose.render import Camera, Renderer
    with Renderer(224, Camera(azimuth=30)) as renderer:
        rgba = renderer.render(vertices, faces)

`camera` (Camera), `context` (create_context, multisample_framebuffers, release_framebuffer) and
`renderer` (Renderer, render_meshes and the helpers other renderers share: vertex_normals,
mesh_problem, unpremultiply).
"""

from shapepose.render.camera import Camera
from shapepose.render.context import (EGL_HELP, create_context, multisample_framebuffers,
                                      release_framebuffer)
from shapepose.render.renderer import (Renderer, mesh_problem, render_meshes, unpremultiply,
                                       vertex_normals)

__all__ = ["Camera", "Renderer", "render_meshes", "vertex_normals", "mesh_problem", "unpremultiply",
           "create_context", "multisample_framebuffers", "release_framebuffer", "EGL_HELP"]
