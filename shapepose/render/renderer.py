"""Headless OpenGL (moderngl + EGL) renders of meshes from one fixed, elevated camera.

Seed 003 ("Hidden details"): DFAUST people step sideways, jump and dance, so a network must read
the x, y and z position of the body from a single picture. The camera therefore stays fixed in the
world (it is never re-centred on the body) and looks down from above and to the side, with
Lambert shading that keeps limbs in front of the torso distinguishable.
"""

from __future__ import annotations

import sys

import moderngl
import numpy as np
from PIL import Image
from tqdm import tqdm

from shapepose.io import atomic_dir
from shapepose.meshes import list_frames, load_frame
from shapepose.render.camera import Camera
from shapepose.render.context import create_context, multisample_framebuffers, release_framebuffer

_VERTEX_SHADER = """
#version 330
uniform mat4 view;
uniform mat4 projection;
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
out vec3 v_position;  // view space
out vec3 v_normal;    // view space
out vec3 v_color;
void main() {
    vec4 p = view * vec4(in_position, 1.0);
    v_position = p.xyz;
    v_color = in_color;
    v_normal = mat3(view) * in_normal;  // view has no scale, so its rotation maps normals
    gl_Position = projection * p;
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 light_dir;  // view space, unit, from the surface toward the light
uniform float ambient;
uniform float diffuse;
uniform bool flat_shading;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;  // albedo
out vec4 color;
void main() {
    vec3 n;
    if (flat_shading || dot(v_normal, v_normal) < 1e-20) {
        // Screen-space derivatives span the triangle's plane; their cross product faces the eye.
        n = normalize(cross(dFdx(v_position), dFdy(v_position)));
    } else {
        n = normalize(v_normal);
        // Normals follow the winding; a back face seen through an open or inside-out mesh is lit
        // from the side we look at.
        if (!gl_FrontFacing) n = -n;
    }
    float lambert = max(dot(n, light_dir), 0.0);
    color = vec4(v_color * (ambient + diffuse * lambert), 1.0);
}
"""

def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3) float32 from counter-clockwise faces (F, 3).

    Vertices used by no face, or whose faces cancel, get a zero normal; the shader then falls
    back to the face normal.
    """
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[faces]
    # The cross product's length is twice the triangle area, which is the weighting we want.
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # Each face adds its normal to its three corners; bincount sums far faster than np.add.at.
    corners = faces.reshape(-1)
    normals = np.stack(
        [np.bincount(corners, np.repeat(face_normals[:, k], 3), len(v)) for k in range(3)], axis=1
    ).astype(np.float64)  # bincount of nothing is int64
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    np.divide(normals, length, out=normals, where=length > 0)
    return normals.astype(np.float32)


def mesh_problem(vertices: np.ndarray, faces: np.ndarray) -> str | None:
    """Why (vertices, faces) cannot be rendered, or None when they can."""
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        return f"vertices must have shape (V, 3), got {vertices.shape}"
    if faces.ndim != 2 or faces.shape[1] != 3:
        return f"faces must have shape (F, 3), got {faces.shape}"
    if not np.issubdtype(faces.dtype, np.integer):
        return f"faces must be integer indices, got dtype {faces.dtype}"
    if not np.all(np.isfinite(vertices)):
        return "vertices contain NaN or infinite coordinates"
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        return f"face indices must lie in [0, {len(vertices)}), got [{faces.min()}, {faces.max()}]"
    return None


class Renderer:
    """Renders triangle meshes to `size` x `size` RGBA images from one fixed `Camera`.

    The GL context, framebuffers and shaders are made once and reused for every frame. The body
    is a light grey Lambert surface, colour = 255 * albedo * (ambient + diffuse * max(0, n . l)),
    with a directional key light l along (-0.3, 0.5, 1) in camera coordinates (right, up, toward
    the viewer): just above and left of the camera. Surfaces are lit on the side that faces the
    camera whatever the winding. The background is transparent (alpha 0). Edges are smoothed by
    multisampling, so silhouette pixels carry fractional alpha and straight (not premultiplied)
    colour. Use as a context manager, or call `close()`, to release the GL objects.

    `smooth` interpolates area-weighted vertex normals; False shades each triangle flat.
    `samples` is the multisample count, capped by the driver (llvmpipe: 4); 0 turns it off.
    """

    def __init__(
        self,
        size: int = 224,
        camera: Camera | None = None,
        *,
        smooth: bool = True,
        albedo: float = 0.8,
        ambient: float = 0.3,
        diffuse: float = 0.7,
        samples: int = 4,
    ):
        if size < 1:
            raise ValueError(f"image size must be positive, got {size}")
        self.size = size
        self.camera = camera if camera is not None else Camera()
        self.smooth = smooth
        # Above and left of the camera: tops and the lit side of limbs differ from their shadowed
        # side, while surfaces facing the camera stay bright. Expressed in view space (fixed to
        # the camera), so the light direction in the world follows from the camera alone.
        light = np.array([-0.3, 0.5, 1.0])
        self.light_dir_view = light / np.linalg.norm(light)

        self._ctx = create_context()
        ctx = self._ctx
        # the multisampled frame is resolved into _fbo, which is read
        self._ms_fbo, self._fbo = multisample_framebuffers(ctx, (size, size), samples)
        self._program = ctx.program(
            vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER
        )
        self._program["view"].write(self.camera.view_matrix().T.astype("f4").tobytes())
        self._program["projection"].write(
            self.camera.projection_matrix(1.0).T.astype("f4").tobytes()
        )
        self._program["light_dir"].value = tuple(self.light_dir_view)
        self.albedo = float(albedo)
        self._program["ambient"].value = ambient
        self._program["diffuse"].value = diffuse
        self._program["flat_shading"].value = not smooth
        self._vbo: moderngl.Buffer | None = None
        self._ibo: moderngl.Buffer | None = None
        self._vao: moderngl.VertexArray | None = None

    @property
    def light_direction(self) -> np.ndarray:
        """The key light as a world-space unit vector from the surface toward the light: (3,)."""
        return self.camera.view_matrix()[:3, :3].T @ self.light_dir_view

    def render(self, vertices: np.ndarray, faces: np.ndarray,
               colors: np.ndarray | None = None) -> np.ndarray:
        """Render one mesh: vertices (V, 3) in metres, faces (F, 3) -> (size, size, 4) uint8 RGBA.

        `colors` (V, 3) float in [0, 1] gives each vertex its own albedo (interpolated across
        faces); None paints the whole mesh the renderer's grey `albedo`. Row 0 is the top of the
        image. Raises ValueError for malformed or non-finite input.
        """
        if self._ctx is None:
            raise RuntimeError("Renderer is closed")
        vertices = np.asarray(vertices)
        faces = np.asarray(faces)
        problem = mesh_problem(vertices, faces)
        if problem is not None:
            raise ValueError(problem)
        colors = self._vertex_colors(colors, len(vertices))
        # GL calls go to whichever context is current; another Renderer may have made its own so.
        with self._ctx:
            self._upload(vertices, faces, colors)
            self._ms_fbo.use()
            self._ms_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            self._ctx.enable(moderngl.DEPTH_TEST)
            self._vao.render(moderngl.TRIANGLES, vertices=3 * len(faces))
            self._ctx.copy_framebuffer(self._fbo, self._ms_fbo)
            raw = self._fbo.read(components=4, alignment=1)
        # GL rows run bottom-up.
        premultiplied = np.frombuffer(raw, dtype=np.uint8).reshape(self.size, self.size, 4)[::-1]
        return unpremultiply(premultiplied)

    def _vertex_colors(self, colors: np.ndarray | None, n_vertices: int) -> np.ndarray:
        """Per-vertex albedo (V, 3) float32: the given colours, checked, or the uniform grey."""
        if colors is None:
            return np.full((n_vertices, 3), self.albedo, dtype=np.float32)
        colors = np.asarray(colors, dtype=np.float32)
        if colors.shape != (n_vertices, 3):
            raise ValueError(f"colors must have shape ({n_vertices}, 3), got {colors.shape}")
        if not np.all(np.isfinite(colors)) or colors.min() < 0 or colors.max() > 1:
            raise ValueError("colors must be finite and lie in [0, 1]")
        return colors

    def _upload(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
        """Copy positions, normals, colours and indices to the GPU, growing buffers when needed."""
        normals = vertex_normals(vertices, faces)
        interleaved = np.hstack([vertices.astype(np.float32), normals, colors]).tobytes()
        indices = faces.astype(np.uint32).tobytes()
        if self._vbo is None or self._vbo.size < len(interleaved) or self._ibo.size < len(indices):
            self._release_mesh_buffers()
            # Never allocate zero bytes: an empty mesh still renders (to an empty image).
            self._vbo = self._ctx.buffer(reserve=max(len(interleaved), 4))
            self._ibo = self._ctx.buffer(reserve=max(len(indices), 4))
            self._vao = self._ctx.vertex_array(
                self._program,
                [(self._vbo, "3f 3f 3f", "in_position", "in_normal", "in_color")],
                index_buffer=self._ibo,
                index_element_size=4,
            )
        self._vbo.write(interleaved)
        self._ibo.write(indices)

    def _release_mesh_buffers(self) -> None:
        for obj in (self._vao, self._vbo, self._ibo):
            if obj is not None:
                obj.release()
        self._vao = self._vbo = self._ibo = None

    def close(self) -> None:
        """Release every GL object and the context; safe to call twice."""
        if self._ctx is None:
            return
        with self._ctx:
            self._release_mesh_buffers()
            for fbo in (self._ms_fbo, self._fbo):
                release_framebuffer(fbo)
            self._program.release()
        self._ctx.release()
        self._ctx = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 with colour premultiplied by coverage -> straight-alpha uint8 copy.

    The multisample resolve averages the body colour with the transparent black background, which
    darkens edge pixels; PNG stores straight alpha, so the colour is divided back out.
    """
    out = rgba.copy()
    alpha = rgba[..., 3:4].astype(np.float32)
    partial = (alpha > 0) & (alpha < 255)
    straight = np.minimum(np.rint(rgba[..., :3] * (255.0 / np.maximum(alpha, 1.0))), 255)
    out[..., :3] = np.where(partial, straight, rgba[..., :3]).astype(np.uint8)
    return out


def render_meshes(mesh_dir: str, out_dir: str, *, size: int, camera: dict) -> None:
    """Render every `frame_{i:06d}.ply` in `mesh_dir` to `frame_{i:06d}.png` (RGBA) in `out_dir`.

    `camera` holds `Camera` fields (missing ones take the defaults). `out_dir` appears only once
    every frame is written. Raises InputError when `mesh_dir` holds no frames or a mesh is bad.
    """
    frames = list_frames(mesh_dir)
    cam = Camera(**camera)
    with Renderer(size, cam) as renderer, atomic_dir(out_dir) as tmp:
        for frame, path in tqdm(frames, desc="render", unit="frame", file=sys.stderr):
            vertices, faces = load_frame(path, frame)
            image = renderer.render(vertices, faces)
            Image.fromarray(image).save(tmp / path.with_suffix(".png").name)
