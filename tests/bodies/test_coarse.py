"""The coarse template: decimated once, deterministically, weights carried from the fine surface."""

import igl
import numpy as np

from shapepose.bodies.coarse import COARSE_FACES, build_coarse_template, carry_weights, load_coarse_template
from shapepose.bodies.model import Body, sample_identity
from shapepose.bodies.motions import sample_variation, trajectory
from shapepose.bodies.template import closed_manifold_problem, load_template
from shapepose.meshes import signed_volume
from shapepose.seeding import derive_rng


def test_coarse_template_is_small_closed_outward_and_deterministic():
    coarse = load_coarse_template()
    assert 500 <= len(coarse.vertices) <= 1000 and len(coarse.faces) == COARSE_FACES
    assert closed_manifold_problem(len(coarse.vertices), coarse.faces) is None
    assert signed_volume(coarse.vertices, coarse.faces) > 0
    assert coarse.vertices[:, 1].min() == 0.0
    np.testing.assert_allclose(coarse.skin_weights.sum(axis=1), 1.0, atol=1e-12)
    again = build_coarse_template()
    for name in ("vertices", "faces", "bone_weights", "skin_weights", "joints"):
        assert np.array_equal(getattr(coarse, name), getattr(again, name)), name


def test_carried_weights_interpolate_exactly_at_fine_vertices_and_face_centres():
    fine = load_template()
    rng = np.random.default_rng(0)
    weights = rng.random((len(fine.vertices), 3))
    weights /= weights.sum(axis=1, keepdims=True)
    picks = rng.choice(len(fine.vertices), 5, replace=False)
    np.testing.assert_allclose(carry_weights(fine.vertices, fine.faces, weights, fine.vertices[picks]),
                               weights[picks], atol=1e-9)
    face = fine.faces[123]
    centre = fine.vertices[face].mean(axis=0, keepdims=True)
    np.testing.assert_allclose(carry_weights(fine.vertices, fine.faces, weights, centre)[0],
                               weights[face].mean(axis=0), atol=1e-6)


def test_posed_coarse_body_stays_on_the_posed_fine_surface():
    """Same identity and pose on both templates: every coarse vertex lies within a few mm of the
    fine body (decimation error ~1 mm on average at rest, and skinning carried over adds little)."""
    fine, coarse = load_template(), load_coarse_template()
    identity = sample_identity(derive_rng(3, "coarse test"), "f")
    euler, _ = trajectory("punching", np.array([0.4]), sample_variation(derive_rng(3, "motion")))
    translation = np.zeros((1, 3))
    v_coarse, j_coarse = Body(identity, coarse).pose(euler, translation)
    v_fine, j_fine = Body(identity, fine).pose(euler, translation)
    distance = np.sqrt(igl.point_mesh_squared_distance(v_coarse[0], v_fine[0], fine.faces)[0])
    assert distance.mean() < 0.003 and distance.max() < 0.01
    # the joints differ only by where each template's soles put the ground
    offset = j_coarse[0] - j_fine[0]
    np.testing.assert_allclose(offset, offset[:1].repeat(len(offset), axis=0), atol=1e-9)
