"""Correspondence renders (face index, barycentrics) and the flow between frames, against truth."""

import torchvision  # noqa: F401  (before any EGL render, or the process segfaults)

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shapepose.bodies import Body, sample_identity
from shapepose.bodies.coarse import load_coarse_template
from shapepose.lwgan.flow import (FrameGeometry, INVALID, condition_map, identity_grid,
                                  transformation_flow)
from shapepose.render.correspondence import (CorrespondenceRenderer, project_weak,
                                             surface_points, visible_faces)
from scipy.spatial.transform import Rotation

SIZE = 64


@pytest.fixture(scope="module")
def body():
    return Body(sample_identity(np.random.default_rng(3), "f"), load_coarse_template())


@pytest.fixture(scope="module")
def renderer():
    with CorrespondenceRenderer(SIZE) as r:
        yield r


def posed(body, yaw=0.0, elbow=0.0):
    n = len(body.rest_joints)
    rot = np.tile(np.eye(3), (1, n, 1, 1))
    rot[0, 0] = Rotation.from_euler("y", yaw).as_matrix()
    rot[0, 9] = Rotation.from_euler("x", elbow).as_matrix()  # l_elbow
    return body.pose_rotations(rot, np.zeros((1, 3)))[0][0]


def geometry(renderer, body, vertices, cam):
    face, bary = renderer.correspondence(vertices, body.faces, cam)
    return FrameGeometry(vertices, body.faces, np.asarray(cam, float), face, bary)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_barycentrics_reproject_to_the_pixel_centres(renderer, body):
    cam = [1.05, 0.02, -0.88]
    v = posed(body, 0.4)
    face, bary = renderer.correspondence(v, body.faces, cam)
    on = face >= 0
    assert on.sum() > 300 and np.all(face < len(body.faces))
    np.testing.assert_allclose(bary[on].sum(-1), 1, atol=1e-4)
    assert bary[on].min() > -1e-4
    rows, cols = np.nonzero(on)
    px = project_weak(surface_points(v, body.faces, face, bary)[on], cam, SIZE)
    np.testing.assert_allclose(px, np.stack([cols, rows], 1), atol=5e-3)
    # the covered pixels are the colour render's opaque ones (alpha > half coverage, up to edges)
    alpha = renderer.colour(v, body.faces, np.full((len(v), 3), 0.5), cam)[..., 3]
    assert np.mean(on == (alpha > 127)) > 0.98
    assert visible_faces(face, len(body.faces)).sum() < len(body.faces)  # the back is hidden


def test_identity_flow(renderer, body):
    g = geometry(renderer, body, posed(body, 0.3), [1.0, 0.0, -0.9])
    grid, valid = transformation_flow(g, g)
    assert np.array_equal(valid, g.body)
    np.testing.assert_allclose(grid[valid], identity_grid(SIZE)[valid], atol=1e-4)
    assert np.all(grid[~valid] == INVALID)


def test_in_plane_translation_is_exactly_that_translation(renderer, body):
    v = posed(body, 0.0)
    s, shift = 1.0, 6 / SIZE * 2  # six pixels to the right: du = s dtx = 12 / 64
    src = geometry(renderer, body, v, [s, 0.0, -0.9])
    ref = geometry(renderer, body, v, [s, shift / s, -0.9])
    grid, valid = transformation_flow(src, ref)
    assert valid.sum() > 0.95 * ref.body.sum()
    expected = identity_grid(SIZE) - [shift, 0.0]
    np.testing.assert_allclose(grid[valid], expected[valid], atol=1e-4)


def test_sampling_the_source_at_the_flow_reproduces_the_reference(renderer, body):
    """Flat (unlit) albedo: a surface point has one colour in every frame."""
    rng = np.random.default_rng(0)
    albedo = rng.uniform(0.2, 0.9, (1, 3)) + 0.1 * np.sin(body.rest_vertices * 9)[:, [0]]
    albedo = np.clip(np.hstack([albedo[:, :1], np.cos(body.rest_vertices[:, 1:2] * 7) * 0.3 + 0.5,
                                np.sin(body.rest_vertices[:, 2:3] * 11) * 0.3 + 0.5]), 0, 1)
    cams = ([1.0, 0.0, -0.9], [1.1, 0.05, -0.85])
    v_src, v_ref = posed(body, 0.0), posed(body, 0.5, elbow=-0.8)
    src, ref = geometry(renderer, body, v_src, cams[0]), geometry(renderer, body, v_ref, cams[1])
    img_src = renderer.colour(v_src, body.faces, albedo, cams[0], lit=False)[..., :3]
    img_ref = renderer.colour(v_ref, body.faces, albedo, cams[1], lit=False)[..., :3]
    grid, valid = transformation_flow(src, ref)
    source = torch.from_numpy(img_src).permute(2, 0, 1)[None].double()
    warped = F.grid_sample(source, torch.from_numpy(grid)[None].double(), mode="bilinear",
                           padding_mode="zeros", align_corners=False)[0].permute(1, 2, 0).numpy()
    # mutually visible pixels whose four bilinear taps all lie on the source body
    interior = valid
    rows, cols = np.nonzero(interior)
    g = grid[interior]
    pc = ((g[:, 0] + 1) * SIZE - 1) / 2
    pr = ((g[:, 1] + 1) * SIZE - 1) / 2
    taps_on_body = np.ones(len(rows), bool)
    for oc in (np.floor(pc), np.ceil(pc)):
        for orr in (np.floor(pr), np.ceil(pr)):
            c, r = np.clip(oc.astype(int), 0, SIZE - 1), np.clip(orr.astype(int), 0, SIZE - 1)
            taps_on_body &= src.body[r, c]
    rows, cols = rows[taps_on_body], cols[taps_on_body]
    assert len(rows) > 150
    assert psnr(warped[rows, cols], img_ref[rows, cols]) > 30
    # hidden points are not valid: the turned body shows parts the source never saw
    assert (ref.body & ~valid).sum() > 0


def test_condition_map(renderer, body):
    g = geometry(renderer, body, posed(body, 0.2), [1.0, 0.0, -0.9])
    rest = body.rest_vertices
    cond = condition_map(g, rest, (rest.min(0), rest.max(0)))
    assert cond.shape == (4, SIZE, SIZE)
    assert np.array_equal(cond[3] == 1, ~g.body)
    assert cond[:3, g.body].min() >= -1 - 1e-5 and cond[:3, g.body].max() <= 1 + 1e-5
    assert np.all(cond[:3, ~g.body] == 0)


def test_colour_render_rejects_bad_input(renderer, body):
    with pytest.raises(ValueError, match="weak-perspective"):
        renderer.colour(body.rest_vertices, body.faces, np.zeros((len(body.rest_vertices), 3)),
                        [0.0, 0, 0])
    with pytest.raises(ValueError, match="colors"):
        renderer.colour(body.rest_vertices, body.faces, np.zeros((3, 3)), [1.0, 0, 0])
