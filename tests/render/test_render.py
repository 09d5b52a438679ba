"""Renderer tests against hand-built pinhole geometry, analytic silhouettes and Lambert by hand."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

import shapepose.render.context as render_context
from shapepose.errors import InputError
from shapepose.io import write_ply
from shapepose.render import Camera, Renderer, render_meshes, vertex_normals

SIZE = 224
TARGET = np.array([0.0, 0.9, 0.0])  # the default camera target


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _rot_y(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _camera_axes(azimuth: float, elevation: float) -> np.ndarray:
    """Columns: the camera's right, up and backward axes in the world.

    Built from rotations, not a look-at: start with a camera on +z looking at the origin, tilt it
    up by `elevation` about x, then swing it toward +x by `azimuth` about y (the Camera docstring).
    """
    return _rot_y(azimuth) @ _rot_x(-elevation)


def _hand_pinhole(points, *, target, azimuth, elevation, distance, fov_y, width, height):
    """(N, 3) world points -> (N, 2) (column, row), pixel centres at integers, rows downward."""
    axes = _camera_axes(azimuth, elevation)
    eye = np.asarray(target, float) + axes @ [0.0, 0.0, distance]
    local = (np.asarray(points, float) - eye) @ axes  # coordinates along right, up, backward
    depth = -local[:, 2]
    f = (height / 2) / np.tan(np.radians(fov_y) / 2)
    column = (width - 1) / 2 + f * local[:, 0] / depth
    row = (height - 1) / 2 - f * local[:, 1] / depth
    return np.stack([column, row], axis=1)


def _default_pinhole(points):
    cam = Camera()
    return _hand_pinhole(
        points, target=cam.target, azimuth=cam.azimuth, elevation=cam.elevation,
        distance=cam.distance, fov_y=cam.fov_y, width=SIZE, height=SIZE,
    )


def _sphere(radius: float, centre, subdivisions: int = 4):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(mesh.vertices + centre, np.float32), np.asarray(mesh.faces)


def _coverage(image: np.ndarray) -> np.ndarray:
    """Alpha as a (H, W) float coverage in [0, 1]."""
    return image[..., 3].astype(np.float64) / 255


def _centroid(image: np.ndarray) -> np.ndarray:
    """Coverage-weighted (column, row) of the silhouette, pixel centres at integers."""
    cov = _coverage(image)
    rows, cols = np.indices(cov.shape)
    return np.array([(cov * cols).sum(), (cov * rows).sum()]) / cov.sum()


@pytest.fixture(scope="module")
def renderer():
    with Renderer(SIZE, Camera()) as r:
        yield r


# --- camera geometry -------------------------------------------------------------------------


def test_project_hand_numbers_front_view():
    # Eye at (0, 0, 2) looking down -z: no rotation, so pixels follow from the pinhole alone.
    cam = Camera(target=(0, 0, 0), azimuth=0, elevation=0, distance=2.0, fov_y=90.0)
    f = 50.0  # 100 px tall, 90 degree fov: tan(45) = 1
    got = cam.project(np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0.5, 0, 1.0]]), 100, 100)
    want = [[49.5, 49.5], [49.5 + f * 0.25, 49.5], [49.5, 49.5 - f * 0.25], [49.5 + f * 0.5, 49.5]]
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(cam.eye, [0, 0, 2], atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        {},
        dict(target=(0.3, 1.0, -0.2), azimuth=-60.0, elevation=15.0, distance=2.5, fov_y=50.0),
        dict(target=(0.0, 0.0, 0.0), azimuth=170.0, elevation=-20.0, distance=6.0, fov_y=30.0),
    ],
)
def test_project_matches_hand_pinhole(params):
    cam = Camera(**params)
    rng = np.random.default_rng(0)
    points = np.asarray(cam.target) + rng.uniform(-0.8, 0.8, size=(50, 3))
    points[0] = cam.target
    want = _hand_pinhole(
        points, target=cam.target, azimuth=cam.azimuth, elevation=cam.elevation,
        distance=cam.distance, fov_y=cam.fov_y, width=320, height=240,
    )
    got = cam.project(points, 320, 240)
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(got[0], [159.5, 119.5], atol=1e-9)  # the target is the centre


def test_camera_rejects_straight_down_view_and_accepts_list_target():
    with pytest.raises(ValueError, match="elevation"):
        Camera(elevation=90)
    assert Camera(target=[0, 1, 0]).target == (0.0, 1.0, 0.0)


# --- silhouettes -------------------------------------------------------------------------------


def test_sphere_at_target_is_disc_of_analytic_radius(renderer):
    radius = 0.4
    image = renderer.render(*_sphere(radius, TARGET))
    cam = renderer.camera
    f = (SIZE / 2) / np.tan(np.radians(cam.fov_y) / 2)
    # The cone of rays tangent to a sphere at distance d has half-angle asin(r / d).
    disc_radius = f * radius / np.sqrt(cam.distance**2 - radius**2)

    area = _coverage(image).sum()
    assert area == pytest.approx(np.pi * disc_radius**2, rel=0.01)
    np.testing.assert_allclose(_centroid(image), [(SIZE - 1) / 2] * 2, atol=0.1)

    rows, cols = np.indices((SIZE, SIZE))
    r_px = np.hypot(cols - (SIZE - 1) / 2, rows - (SIZE - 1) / 2)
    assert np.all(image[..., 3][r_px < disc_radius - 1.0] == 255)
    assert np.all(image[..., 3][r_px > disc_radius + 1.0] == 0)


@pytest.mark.parametrize(
    "offset, axis, sign",
    [((0.3, 0, 0), 0, +1), ((0, 0.3, 0), 1, -1)],
    ids=["plus_x_moves_right", "up_moves_up"],
)
def test_moving_in_world_moves_in_image(renderer, offset, axis, sign):
    centre = TARGET + offset
    image = renderer.render(*_sphere(0.05, centre, subdivisions=3))
    centroid = _centroid(image)
    # Default view: azimuth 45 puts +x to the right (column grows), +y up (row shrinks).
    assert sign * (centroid[axis] - (SIZE - 1) / 2) > 10
    # A small sphere's silhouette centre sits within a fraction of a pixel of its centre's image.
    np.testing.assert_allclose(centroid, _default_pinhole(centre[None])[0], atol=0.5)


def test_elevated_camera_sees_top_of_box(renderer):
    half = 0.3
    box = trimesh.creation.box(extents=(2 * half,) * 3)
    image = renderer.render(np.asarray(box.vertices + TARGET, np.float32), box.faces)
    # Near and far corners lie in the vertical plane through eye and target: image column 111.5.
    near_top, far_top, near_bottom = TARGET + np.array(
        [[half, half, half], [-half, half, -half], [half, -half, half]]
    )
    rows = _default_pinhole(np.stack([near_top, far_top, near_bottom]))[:, 1]
    # Columns 111 and 112 mirror each other; their coverage is the box's vertical extent there.
    extent = _coverage(image)[:, 111:113].sum(axis=0).mean()
    # Seen from above, the top face adds the span from the near to the far top corner.
    assert rows[0] - rows[1] > 10
    assert extent == pytest.approx(rows[2] - rows[1], abs=1.5)


# --- shading and pixels ------------------------------------------------------------------------


def _square(centre, u, v, half):
    """Two triangles spanning centre +- half*u +- half*v, counter-clockwise about u x v."""
    centre, u, v = (np.asarray(a, float) for a in (centre, u, v))
    corners = [centre + half * (su * u + sv * v) for su, sv in [(-1, -1), (1, -1), (1, 1), (-1, 1)]]
    return np.asarray(corners, np.float32), np.array([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("smooth", [True, False], ids=["smooth", "flat"])
@pytest.mark.parametrize("flip_winding", [False, True], ids=["ccw", "cw"])
def test_flat_patches_follow_lambert(smooth, flip_winding):
    cam = Camera()
    axes = _camera_axes(cam.azimuth, cam.elevation)
    # Documented defaults: albedo 0.8, ambient 0.3, diffuse 0.7, light (-0.3, 0.5, 1) in
    # camera coordinates (right, up, backward).
    light = axes @ (np.array([-0.3, 0.5, 1.0]) / np.linalg.norm([-0.3, 0.5, 1.0]))
    patches = {
        "facing_camera": (axes[:, 0], axes[:, 1], axes[:, 2]),
        "ground": ((1.0, 0, 0), (0, 0, -1.0), (0, 1.0, 0)),  # normal +y
    }
    with Renderer(SIZE, cam, smooth=smooth) as r:
        np.testing.assert_allclose(r.light_direction, light, atol=1e-12)
        for name, (u, v, normal) in patches.items():
            vertices, faces = _square(TARGET, u, v, 0.3)
            if flip_winding:
                faces = faces[:, ::-1]
            image = r.render(vertices, faces)
            want = 255 * 0.8 * (0.3 + 0.7 * max(np.dot(normal, light), 0.0))
            col, row = np.rint(_default_pinhole(TARGET[None])[0] + 0.5).astype(int)  # 112, 112
            inside = image[row - 5 : row + 5, col - 5 : col + 5]
            assert np.all(inside[..., 3] == 255), name
            np.testing.assert_allclose(inside[..., :3], want, atol=1.5, err_msg=name)
            # Edge pixels keep the patch colour: alpha carries coverage, colour is not darkened.
            edge = (image[..., 3] > 0) & (image[..., 3] < 255)
            assert edge.sum() > 20, name
            np.testing.assert_allclose(image[edge][:, :3], want, atol=4, err_msg=name)


def test_background_transparent_dtype_shape_and_repeatable(renderer):
    vertices, faces = _sphere(0.5, TARGET + (0.2, 0.1, -0.1))
    first = renderer.render(vertices, faces)
    second = renderer.render(vertices, faces)
    assert first.dtype == np.uint8 and first.shape == (SIZE, SIZE, 4)
    np.testing.assert_array_equal(first, second)
    alpha = first[..., 3]
    assert set(np.unique(alpha)) >= {0, 255}
    assert alpha[0, 0] == alpha[-1, -1] == alpha[0, -1] == alpha[-1, 0] == 0
    assert np.all(first[alpha == 0][:, :3] == 0)
    assert np.all(first[alpha == 255][:, :3] > 0)  # ambient light: no black body pixels


def test_render_rejects_bad_mesh(renderer):
    vertices, faces = _sphere(0.3, TARGET, subdivisions=1)
    with pytest.raises(ValueError, match="indices"):
        renderer.render(vertices[:5], faces)
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        renderer.render(vertices[:, :2], faces)
    vertices[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        renderer.render(vertices, faces)


def test_interleaved_renderers_keep_their_own_context():
    # GL state belongs to the current context; each Renderer must switch to its own.
    vertices, faces = _sphere(0.3, TARGET, subdivisions=2)
    with Renderer(48, Camera()) as near, Renderer(48, Camera(distance=7.0)) as far:
        alone = [near.render(vertices, faces), far.render(vertices, faces)]
        again = [near.render(vertices, faces), far.render(vertices, faces)]
    for a, b in zip(alone, again):
        np.testing.assert_array_equal(a, b)
    # Doubling the distance roughly quarters the silhouette area.
    ratio = _coverage(alone[0]).sum() / _coverage(alone[1]).sum()
    assert ratio == pytest.approx(4.0, rel=0.1)


def test_vertex_normals_of_sphere_are_radial():
    vertices, faces = _sphere(1.0, (0, 0, 0))
    radial = vertices / np.linalg.norm(vertices, axis=1, keepdims=True)
    np.testing.assert_allclose(vertex_normals(vertices, faces), radial, atol=0.01)


def test_close_releases_and_is_idempotent():
    r = Renderer(16)
    r.close()
    r.close()
    with pytest.raises(RuntimeError, match="closed"):
        r.render(*_sphere(0.3, TARGET, subdivisions=1))


def test_missing_egl_names_packages(monkeypatch):
    def no_egl(*args, **kwargs):
        raise Exception("eglGetDisplay failed")

    monkeypatch.setattr(render_context.moderngl, "create_standalone_context", no_egl)
    with pytest.raises(RuntimeError, match="libegl1 libegl-mesa0 libgl1"):
        Renderer(16)


# --- render_meshes ---------------------------------------------------------------------------


def test_render_meshes_writes_one_png_per_frame(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    write_ply(meshes / "frame_000000.ply", *_sphere(0.3, TARGET, subdivisions=2))
    write_ply(meshes / "frame_000001.ply", *_sphere(0.3, TARGET + (0, 0.4, 0), subdivisions=2))
    (meshes / "notes.txt").write_text("not a frame")
    out = tmp_path / "renders"

    render_meshes(str(meshes), str(out), size=64, camera={"azimuth": 30.0})

    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png"]
    tops = []
    for name in ["frame_000000.png", "frame_000001.png"]:
        with Image.open(out / name) as png:
            assert png.size == (64, 64) and png.mode == "RGBA"
            alpha = np.asarray(png)[..., 3]
        tops.append(np.argmax(alpha.any(axis=1)))
    assert tops[1] < tops[0]  # the raised sphere is higher in the picture


def test_render_meshes_empty_dir_raises_and_writes_nothing(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    out = tmp_path / "renders"
    with pytest.raises(InputError, match="meshes"):
        render_meshes(str(meshes), str(out), size=32, camera={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshes"]


def test_render_meshes_bad_frame_names_file_and_leaves_no_output(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    write_ply(meshes / "frame_000000.ply", *_sphere(0.3, TARGET, subdivisions=1))
    vertices, faces = _sphere(0.3, TARGET, subdivisions=1)
    vertices[0] = np.inf
    write_ply(meshes / "frame_000007.ply", vertices, faces)
    out = tmp_path / "renders"
    with pytest.raises(InputError, match=r"frame_000007\.ply.*frame 7"):
        render_meshes(str(meshes), str(out), size=32, camera={})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshes"]
