"""Headless renders of scenes of several objects: shaded RGBA plus a per-pixel object-id image.

The shaded pass is multisampled Blinn-Phong (ambient + several directional lights, per-part colour
and specular strength). The id pass draws every object in a flat colour that encodes its id, with
the same depth test and no multisampling, so `ids[r, c]` is the object seen at that pixel: the
visible mask of object k is `ids == k`, already cut by whatever stands in front of it.
"""

from __future__ import annotations

import dataclasses

import moderngl
import numpy as np

from shapepose.cars.meshes import Part
from shapepose.render import (Camera, create_context, multisample_framebuffers,
                              release_framebuffer, unpremultiply, vertex_normals)

MAX_LIGHTS = 4

_VERTEX_SHADER = """
#version 330
uniform mat4 view;
uniform mat4 projection;
in vec3 in_position;
in vec3 in_normal;
out vec3 v_position;  // view space
out vec3 v_normal;    // view space
void main() {
    vec4 p = view * vec4(in_position, 1.0);
    v_position = p.xyz;
    v_normal = mat3(view) * in_normal;
    gl_Position = projection * p;
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform int n_lights;
uniform vec3 light_dir[4];    // view space, unit, toward the light
uniform vec3 light_color[4];
uniform vec3 ambient;
uniform vec3 albedo;
uniform float specular;
uniform float shininess;
uniform bool flat_shading;
uniform bool id_pass;
uniform vec4 id_color;
in vec3 v_position;
in vec3 v_normal;
out vec4 color;
void main() {
    if (id_pass) { color = id_color; return; }
    vec3 n;
    if (flat_shading || dot(v_normal, v_normal) < 1e-20) {
        n = normalize(cross(dFdx(v_position), dFdy(v_position)));
    } else {
        n = normalize(v_normal);
        if (!gl_FrontFacing) n = -n;
    }
    vec3 to_eye = normalize(-v_position);
    vec3 c = ambient * albedo;
    for (int i = 0; i < n_lights; ++i) {
        float lambert = max(dot(n, light_dir[i]), 0.0);
        vec3 halfway = normalize(light_dir[i] + to_eye);
        float highlight = lambert > 0.0 ? pow(max(dot(n, halfway), 0.0), shininess) : 0.0;
        c += light_color[i] * (albedo * lambert + specular * highlight);
    }
    color = vec4(min(c, vec3(1.0)), 1.0);
}
"""


@dataclasses.dataclass(frozen=True)
class Lighting:
    """Directional lights in world space (unit vectors toward the light) and their RGB intensity."""

    directions: tuple[tuple[float, float, float], ...]
    colors: tuple[tuple[float, float, float], ...]
    ambient: tuple[float, float, float] = (0.25, 0.25, 0.25)
    shininess: float = 40.0
    specular: bool = True  # False: plain diffuse shading whatever the parts say


def random_lighting(rng: np.random.Generator, n_lights: tuple[int, int], *, specular: bool,
                    ambient: float = 0.25) -> Lighting:
    """A random number of lights in [low, high] from random directions above the horizon."""
    n = int(rng.integers(n_lights[0], n_lights[1] + 1))
    directions, colors = [], []
    for _ in range(n):
        az, el = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(10), np.radians(80))
        directions.append((np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)))
        colors.append(tuple(np.full(3, rng.uniform(0.5, 1.0) / np.sqrt(n))))
    return Lighting(tuple(directions), tuple(colors), (ambient,) * 3, float(rng.uniform(20, 80)),
                    specular)


class SceneRenderer:
    """Renders lists of objects (each a list of `Part`s) into images up to `max_size` pixels wide/high."""

    def __init__(self, max_width: int, max_height: int, samples: int = 4):
        self.max_width, self.max_height = int(max_width), int(max_height)
        self._ctx = create_context()
        ctx = self._ctx
        size = (self.max_width, self.max_height)
        self._ms_fbo, self._fbo = multisample_framebuffers(ctx, size, samples)
        self._id_fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)],
                                       depth_attachment=ctx.depth_renderbuffer(size))
        self._program = ctx.program(vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER)

    def render(self, objects: list[list[Part]], camera: Camera, width: int, height: int,
               lighting: Lighting) -> tuple[np.ndarray, np.ndarray]:
        """-> (rgba (H, W, 4) uint8 straight alpha, ids (H, W) int32: 1 + index into objects, 0 = none)."""
        if not (0 < width <= self.max_width and 0 < height <= self.max_height):
            raise ValueError(f"image {width} x {height} exceeds {self.max_width} x {self.max_height}")
        view = camera.view_matrix()
        prog = self._program
        with self._ctx:
            prog["view"].write(view.T.astype("f4").tobytes())
            prog["projection"].write(camera.projection_matrix(width / height).T.astype("f4").tobytes())
            n = len(lighting.directions)
            dirs = np.zeros((MAX_LIGHTS, 3), np.float32)
            cols = np.zeros((MAX_LIGHTS, 3), np.float32)
            dirs[:n] = np.asarray(lighting.directions) @ view[:3, :3].T
            cols[:n] = lighting.colors
            prog["n_lights"].value = n
            prog["light_dir"].write(dirs.tobytes())
            prog["light_color"].write(cols.tobytes())
            prog["ambient"].value = tuple(lighting.ambient)
            prog["shininess"].value = lighting.shininess
            buffers = [self._buffers(part) for parts in objects for part in parts]
            owners = [k for k, parts in enumerate(objects) for _ in parts]
            parts = [part for parts in objects for part in parts]
            self._ctx.enable(moderngl.DEPTH_TEST)

            prog["id_pass"].value = False
            self._ms_fbo.use()
            self._ctx.viewport = (0, 0, width, height)
            self._ms_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            for part, (vao, _, _) in zip(parts, buffers):
                prog["albedo"].value = tuple(part.color)
                prog["specular"].value = part.specular if lighting.specular else 0.0
                prog["flat_shading"].value = not part.smooth
                vao.render(moderngl.TRIANGLES)
            self._ctx.copy_framebuffer(self._fbo, self._ms_fbo)
            raw = self._fbo.read(viewport=(0, 0, width, height), components=4, alignment=1)

            prog["id_pass"].value = True
            self._id_fbo.use()
            self._ctx.viewport = (0, 0, width, height)
            self._id_fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            for owner, (vao, _, _) in zip(owners, buffers):
                ident = owner + 1
                prog["id_color"].value = ((ident % 256) / 255.0, (ident // 256) / 255.0, 0.0, 1.0)
                vao.render(moderngl.TRIANGLES)
            raw_ids = self._id_fbo.read(viewport=(0, 0, width, height), components=4, alignment=1)
            for gl_objects in buffers:
                for obj in gl_objects:
                    obj.release()
        premultiplied = np.frombuffer(raw, np.uint8).reshape(height, width, 4)[::-1]
        id_rgba = np.frombuffer(raw_ids, np.uint8).reshape(height, width, 4)[::-1].astype(np.int32)
        return unpremultiply(premultiplied), id_rgba[..., 0] + 256 * id_rgba[..., 1]

    def _buffers(self, part: Part) -> tuple[moderngl.VertexArray, moderngl.Buffer, moderngl.Buffer]:
        """A vertex array of one part and the two buffers it reads (released after the frame)."""
        vertices = np.asarray(part.vertices, np.float32)
        normals = vertex_normals(vertices, part.faces)
        vbo = self._ctx.buffer(np.hstack([vertices, normals]).astype("f4").tobytes())
        ibo = self._ctx.buffer(np.asarray(part.faces, np.uint32).tobytes())
        vao = self._ctx.vertex_array(self._program, [(vbo, "3f 3f", "in_position", "in_normal")],
                                     index_buffer=ibo, index_element_size=4)
        return vao, vbo, ibo

    def close(self) -> None:
        if self._ctx is None:
            return
        with self._ctx:
            for fbo in (self._ms_fbo, self._fbo, self._id_fbo):
                release_framebuffer(fbo)
            self._program.release()
        self._ctx.release()
        self._ctx = None

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
