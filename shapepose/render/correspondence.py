"""Orthographic renders for person images: colour frames and per-pixel surface correspondences.

The Liquid Warping GAN (seed 004) works on a weak-perspective camera [s, tx, ty] (HMR's and
iPER's fits): a body point X (metres, y up, facing +z) lands at normalized image coordinates
    (u, v) = s * (X_x + tx, X_y + ty),   u, v in [-1, 1], v up,
so pixel (column, row) = ((u + 1) W / 2 - 1/2, (1 - v) H / 2 - 1/2) with (0, 0) the centre of the
top-left pixel. Depth is X_z: the camera looks down -z from +z, nearer points have larger z.

`CorrespondenceRenderer.correspondence` rasterizes, per pixel, the index of the visible face and
the barycentric coordinates of the pixel centre in it (an integer and a float attachment, no
multisampling, so every value is exact at the pixel centre: no blend of two faces). The colour
render (`colour`) uses its own multisampled buffers, so the correspondence pass changes nothing
the existing `Renderer` produces.
"""

from __future__ import annotations

import moderngl
import numpy as np

from shapepose.render.context import create_context, multisample_framebuffers, release_framebuffer
from shapepose.render.renderer import mesh_problem, unpremultiply, vertex_normals

DEPTH_SCALE = 0.1  # GL depth = -DEPTH_SCALE * z: bodies within +-10 m of z = 0 are not clipped

_COLOUR_VS = """
#version 330
uniform vec3 cam;  // s, tx, ty
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
void main() {
    v_position = in_position;
    v_normal = in_normal;
    v_color = in_color;
    gl_Position = vec4(cam.x * (in_position.x + cam.y), cam.x * (in_position.y + cam.z),
                       -%(depth)s * in_position.z, 1.0);
}
""" % {"depth": repr(DEPTH_SCALE)}

_COLOUR_FS = """
#version 330
uniform vec3 light_dir;
uniform float ambient;
uniform float diffuse;
uniform bool flat_shading;
uniform bool lit;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
out vec4 color;
void main() {
    if (!lit) { color = vec4(v_color, 1.0); return; }
    vec3 n;
    if (flat_shading || dot(v_normal, v_normal) < 1e-20) {
        n = normalize(cross(dFdx(v_position), dFdy(v_position)));
        if (n.z < 0.0) n = -n;
    } else {
        n = normalize(v_normal);
        if (!gl_FrontFacing) n = -n;
    }
    color = vec4(v_color * (ambient + diffuse * max(dot(n, light_dir), 0.0)), 1.0);
}
"""

_CORR_VS = """
#version 330
uniform vec3 cam;
in vec3 in_position;
in vec3 in_bary;
noperspective out vec3 v_bary;
void main() {
    v_bary = in_bary;
    gl_Position = vec4(cam.x * (in_position.x + cam.y), cam.x * (in_position.y + cam.z),
                       -%(depth)s * in_position.z, 1.0);
}
""" % {"depth": repr(DEPTH_SCALE)}

_CORR_FS = """
#version 330
noperspective in vec3 v_bary;
layout(location = 0) out int face;   // face index + 1; 0 is background
layout(location = 1) out vec4 bary;
void main() {
    face = gl_PrimitiveID + 1;
    bary = vec4(v_bary, 1.0);
}
"""


def check_cam(cam) -> np.ndarray:
    """[s, tx, ty] as (3,) float64, s > 0 and every entry finite; ValueError otherwise."""
    cam = np.asarray(cam, dtype=np.float64).reshape(-1)
    if cam.shape != (3,) or not np.all(np.isfinite(cam)) or not cam[0] > 0:
        raise ValueError(f"a weak-perspective camera is [s > 0, tx, ty], got {cam.tolist()}")
    return cam


def project_weak(points: np.ndarray, cam, size: int) -> np.ndarray:
    """Body points (N, 3) -> pixel (column, row) (N, 2) float64 under camera [s, tx, ty]."""
    s, tx, ty = check_cam(cam)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    u, v = s * (points[:, 0] + tx), s * (points[:, 1] + ty)
    return np.stack([(u + 1) * size / 2 - 0.5, (1 - v) * size / 2 - 0.5], axis=1)


def pixel_to_grid(pixels: np.ndarray, size: int) -> np.ndarray:
    """Pixel (column, row) -> torch grid_sample coordinates (x, y) in [-1, 1], align_corners=False."""
    return (2 * np.asarray(pixels, dtype=np.float64) + 1) / size - 1


class CorrespondenceRenderer:
    """size x size orthographic renders of one mesh topology under weak-perspective cameras."""

    def __init__(self, size: int, *, samples: int = 4, ambient: float = 0.45,
                 diffuse: float = 0.55):
        if size < 1:
            raise ValueError(f"image size must be positive, got {size}")
        self.size = size
        self._ctx = ctx = create_context()
        self._ms_fbo, self._fbo = multisample_framebuffers(ctx, (size, size), samples)
        self._corr_fbo = ctx.framebuffer(
            color_attachments=[ctx.renderbuffer((size, size), 1, dtype="i4"),
                               ctx.renderbuffer((size, size), 4, dtype="f4")],
            depth_attachment=ctx.depth_renderbuffer((size, size)))
        self._colour = ctx.program(vertex_shader=_COLOUR_VS, fragment_shader=_COLOUR_FS)
        light = np.array([-0.3, 0.5, 1.0])
        self._colour["light_dir"].value = tuple(light / np.linalg.norm(light))
        self._colour["ambient"].value = ambient
        self._colour["diffuse"].value = diffuse
        self._corr = ctx.program(vertex_shader=_CORR_VS, fragment_shader=_CORR_FS)
        self._objects: list = []

    def _check(self, vertices, faces) -> tuple[np.ndarray, np.ndarray]:
        if self._ctx is None:
            raise RuntimeError("CorrespondenceRenderer is closed")
        vertices, faces = np.asarray(vertices), np.asarray(faces)
        problem = mesh_problem(vertices, faces)
        if problem is not None:
            raise ValueError(problem)
        return vertices, faces

    def _release_objects(self) -> None:
        for obj in self._objects:
            obj.release()
        self._objects = []

    def colour(self, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, cam, *,
               lit: bool = True, smooth: bool = True) -> np.ndarray:
        """(size, size, 4) uint8 RGBA: per-vertex albedo `colors` (V, 3) in [0, 1], Lambert-lit
        (light fixed to the camera) or, with lit=False, the interpolated albedo itself."""
        vertices, faces = self._check(vertices, faces)
        colors = np.asarray(colors, dtype=np.float32)
        if colors.shape != (len(vertices), 3):
            raise ValueError(f"colors must have shape ({len(vertices)}, 3), got {colors.shape}")
        cam = check_cam(cam)
        normals = vertex_normals(vertices, faces)
        data = np.hstack([vertices.astype(np.float32), normals, colors]).tobytes()
        with self._ctx:
            self._release_objects()
            vbo = self._ctx.buffer(data)
            ibo = self._ctx.buffer(faces.astype(np.uint32).tobytes())
            vao = self._ctx.vertex_array(self._colour, [(vbo, "3f 3f 3f", "in_position",
                                                         "in_normal", "in_color")],
                                         index_buffer=ibo, index_element_size=4)
            self._objects = [vao, vbo, ibo]
            self._colour["cam"].value = tuple(cam)
            self._colour["lit"].value = bool(lit)
            self._colour["flat_shading"].value = not smooth
            self._ms_fbo.use()
            self._ms_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            self._ctx.enable(moderngl.DEPTH_TEST)
            self._ctx.disable(moderngl.CULL_FACE)
            vao.render(moderngl.TRIANGLES)
            self._ctx.copy_framebuffer(self._fbo, self._ms_fbo)
            raw = self._fbo.read(components=4, alignment=1)
        image = np.frombuffer(raw, dtype=np.uint8).reshape(self.size, self.size, 4)[::-1]
        return unpremultiply(image)

    def correspondence(self, vertices: np.ndarray, faces: np.ndarray, cam
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Per pixel the visible face and the pixel centre's barycentric coordinates in it.

        Returns face (size, size) int64, -1 on the background, and bary (size, size, 3) float32
        (zeros on the background), weights of the face's three vertices in `faces` order.
        """
        vertices, faces = self._check(vertices, faces)
        cam = check_cam(cam)
        corners = vertices.astype(np.float32)[faces.reshape(-1)]
        bary = np.tile(np.eye(3, dtype=np.float32), (len(faces), 1))
        with self._ctx:
            self._release_objects()
            vbo = self._ctx.buffer(np.hstack([corners, bary]).tobytes())
            vao = self._ctx.vertex_array(self._corr, [(vbo, "3f 3f", "in_position", "in_bary")])
            self._objects = [vao, vbo]
            self._corr["cam"].value = tuple(cam)
            fbo = self._corr_fbo
            fbo.use()
            fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            self._ctx.enable(moderngl.DEPTH_TEST)
            self._ctx.disable(moderngl.CULL_FACE)
            if len(faces):
                vao.render(moderngl.TRIANGLES)
            face_raw = fbo.read(attachment=0, components=1, dtype="i4", alignment=1)
            bary_raw = fbo.read(attachment=1, components=4, dtype="f4", alignment=1)
        n = self.size
        face = np.frombuffer(face_raw, dtype=np.int32).reshape(n, n)[::-1].astype(np.int64) - 1
        weights = np.frombuffer(bary_raw, dtype=np.float32).reshape(n, n, 4)[::-1, :, :3].copy()
        weights[face < 0] = 0
        return face, weights

    def close(self) -> None:
        if self._ctx is None:
            return
        with self._ctx:
            self._release_objects()
            for fbo in (self._ms_fbo, self._fbo, self._corr_fbo):
                release_framebuffer(fbo)
            self._colour.release()
            self._corr.release()
        self._ctx.release()
        self._ctx = None

    def __enter__(self) -> CorrespondenceRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def surface_points(vertices: np.ndarray, faces: np.ndarray, face: np.ndarray,
                   bary: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64: each pixel's surface point sum_k bary_k V[faces[face, k]] (0 off-body)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    tri = vertices[faces[np.clip(face, 0, None)]]  # (H, W, 3 corners, 3)
    points = np.einsum("hwk,hwkc->hwc", bary.astype(np.float64), tri)
    points[face < 0] = 0
    return points


def visible_faces(face: np.ndarray, n_faces: int) -> np.ndarray:
    """(n_faces,) bool: the faces that cover at least one pixel centre of a correspondence map."""
    seen = np.zeros(n_faces, dtype=bool)
    seen[face[face >= 0]] = True
    return seen
