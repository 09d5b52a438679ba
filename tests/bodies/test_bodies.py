"""The procedural body model and the DFAUST-format demo writer, each against an independent oracle.
"""

import time

import h5py
import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from shapepose.bodies.demo import (
    MODEL_VERSION,
    MOTIONS,
    demo_sequence,
    example_mesh,
    make_demo_bodies,
    make_demo_sequence,
    subject_identity,
    write_demo_bodies,
    write_demo_sequence,
)
from shapepose.bodies.model import Body, Identity, sample_identity
from shapepose.bodies.motions import Variation, sample_variation, trajectory
from shapepose.bodies.skeleton import JOINT_NAMES, LIMITS, PARENTS, euler_to_matrix
from shapepose.bodies.template import RoundCone, load_template, round_cone_distance

DFAUST_SEQUENCES = {
    "chicken_wings", "hips", "jiggle_on_toes", "jumping_jacks", "knees", "light_hopping_loose",
    "light_hopping_stiff", "one_leg_jump", "one_leg_loose", "punching", "running_on_spot",
    "shake_arms", "shake_hips", "shake_shoulders",
}
CUBOID = np.array([1.0, 2.0, 1.0])  # the volume sampler's 1 x 2 x 1 m box
J = {name: j for j, name in enumerate(JOINT_NAMES)}


def _edge_counts(faces):
    """(undirected edge -> count, directed edge -> count) by plain numpy counting."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, directed_counts = np.unique(directed, axis=0, return_counts=True)
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    return undirected, counts, directed_counts


def _triangle_areas(v, f):
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)


def _largest_identity(sex):
    """Every factor at the largest value 200 draws produce: a body at least as big as any demo."""
    draws = [sample_identity(np.random.default_rng(s), sex) for s in range(200)]
    return Identity(sex, np.max([d.length for d in draws], axis=0),
                    np.max([d.thickness for d in draws], axis=0))


def test_skeleton_is_a_tree_with_enough_joints():
    assert len(JOINT_NAMES) >= 15 and len(set(JOINT_NAMES)) == len(JOINT_NAMES)
    assert len(PARENTS) == len(JOINT_NAMES)
    assert np.sum(PARENTS == -1) == 1 and PARENTS[0] == -1
    for j in range(len(PARENTS)):  # every joint reaches the root without a cycle
        seen, k = set(), j
        while k != -1:
            assert k not in seen
            seen.add(k)
            k = PARENTS[k]
    assert LIMITS.shape == (len(JOINT_NAMES), 3, 2)
    assert np.all(LIMITS[..., 0] <= 0) and np.all(LIMITS[..., 1] >= 0)  # rest pose is allowed


def test_round_cone_distance_matches_a_union_of_spheres():
    """A round cone is the union of spheres swept along its axis with linearly varying radius."""
    cone = RoundCone("spine", (0.1, 0.2, -0.1), (0.3, 0.5, 0.05), 0.09, 0.03)
    rng = np.random.default_rng(0)
    along = rng.uniform(-0.3, 1.3, size=(400, 1))  # around the axis, past both ends
    points = (1 - along) * cone.a + along * np.array(cone.b) + rng.normal(0, 0.08, (400, 3))
    lam = np.linspace(0.0, 1.0, 20001)
    centres = np.outer(1 - lam, cone.a) + np.outer(lam, cone.b)
    radii = (1 - lam) * cone.ra + lam * cone.rb
    brute = np.array([np.min(np.linalg.norm(centres - p, axis=1) - radii) for p in points])
    ours = round_cone_distance(points, cone)
    outside = brute > 0
    assert outside.sum() > 100 and (~outside).sum() > 5
    np.testing.assert_allclose(ours[outside], brute[outside], atol=1e-5)
    assert np.all(ours[~outside] <= 1e-9)


def test_template_is_smpl_sized_and_watertight():
    template = load_template()
    v, f = template.vertices, template.faces
    assert 6000 <= len(v) <= 8000
    undirected, counts, directed_counts = _edge_counts(f)
    assert np.all(counts == 2), "every edge is shared by exactly two faces"
    assert np.all(directed_counts == 1), "each directed edge once: consistent winding"
    assert len(v) - len(undirected) + len(f) == 2, "Euler characteristic of a sphere"
    mesh = trimesh.Trimesh(v, f, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.body_count == 1
    assert mesh.volume > 0.04  # outward faces; an adult body is 0.05-0.1 m^3
    assert v[:, 1].min() == 0.0 and 1.6 < v[:, 1].max() < 1.8  # feet on the floor, adult height
    weights = template.skin_weights
    assert np.all(weights >= 0) and np.allclose(weights.sum(axis=1), 1)


def test_template_is_deterministic():
    from shapepose.bodies.template import build_template

    a, b = build_template(), load_template()
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
    assert np.array_equal(a.skin_weights, b.skin_weights)


@pytest.mark.parametrize("sex", ["m", "f"])
def test_identity_scales_every_bone_by_its_length_factor(sex):
    template = load_template()
    for seed in range(3):
        identity = sample_identity(np.random.default_rng(seed), sex)
        body = Body(identity)
        for j in range(1, len(JOINT_NAMES)):
            p = PARENTS[j]
            expected = identity.length[j] * np.linalg.norm(template.joints[j] - template.joints[p])
            distance = np.linalg.norm(body.rest_joints[j] - body.rest_joints[p])
            assert distance == pytest.approx(expected)
        for name in JOINT_NAMES:  # left and right share their factors
            if name.startswith("l_"):
                other = J["r_" + name[2:]]
                assert identity.length[J[name]] == identity.length[other]
                assert identity.thickness[J[name]] == identity.thickness[other]
        assert body.rest_vertices[:, 1].min() == pytest.approx(0.0, abs=1e-12)
        assert 1.5 < np.ptp(body.rest_vertices[:, 1]) < 1.95


def test_women_have_narrower_shoulders_and_wider_hips():
    def widths(sex):
        bodies = [Body(sample_identity(np.random.default_rng(s), sex)) for s in range(20)]
        shoulders = [np.linalg.norm(b.rest_joints[J["l_shoulder"]] - b.rest_joints[J["r_shoulder"]])
                     for b in bodies]
        hips = [np.linalg.norm(b.rest_joints[J["l_hip"]] - b.rest_joints[J["r_hip"]])
                for b in bodies]
        heights = [np.ptp(b.rest_vertices[:, 1]) for b in bodies]
        return np.mean(shoulders), np.mean(hips), np.mean(heights)

    (ms, mh, mt), (fs, fh, ft) = widths("m"), widths("f")
    assert fs < ms and fh > mh and ft < mt


def test_zero_pose_reproduces_the_rest_shape():
    body = Body(subject_identity(3, "50004", "f"))
    vertices, joints = body.pose(np.zeros((1, len(JOINT_NAMES), 3)), np.zeros((1, 3)))
    np.testing.assert_allclose(vertices[0], body.rest_vertices, atol=1e-12)
    np.testing.assert_allclose(joints[0], body.rest_joints, atol=1e-12)


def test_root_rotation_and_translation_move_the_body_rigidly():
    body = Body(subject_identity(1, "50002", "m"))
    rotation = Rotation.from_rotvec([0.3, -1.1, 0.5]).as_matrix()
    t = np.array([0.2, -0.05, 0.7])
    local = np.tile(np.eye(3), (1, len(JOINT_NAMES), 1, 1))
    local[0, 0] = rotation
    vertices, joints = body.pose_rotations(local, t[None])
    root = body.rest_joints[0]  # the root turns about its own rest position, then translates
    np.testing.assert_allclose(vertices[0], (body.rest_vertices - root) @ rotation.T + root + t,
                               atol=1e-12)
    np.testing.assert_allclose(joints[0], (body.rest_joints - root) @ rotation.T + root + t,
                               atol=1e-12)


def test_elbow_rotation_moves_only_the_forearm_and_hand():
    body = Body(subject_identity(2, "50002", "m"))
    weights = body.template.skin_weights
    below_elbow = [J["l_elbow"], J["l_wrist"], J["l_hand_tip"]]
    moving_weight = weights[:, below_elbow].sum(axis=1)
    euler = np.zeros((1, len(JOINT_NAMES), 3))
    euler[0, J["l_elbow"], 0] = -1.5
    vertices, _ = body.pose(euler, np.zeros((1, 3)))
    moved = np.linalg.norm(vertices[0] - body.rest_vertices, axis=1)
    assert np.all(moved[moving_weight == 0] < 1e-12)
    assert np.all(moved[moving_weight > 0.01] > 0)
    # a vertex wholly on the forearm turns rigidly about the elbow: by hand, R (v - e) + e
    rigid = weights[:, J["l_elbow"]] == 1.0
    assert rigid.sum() >= 20
    elbow = body.rest_joints[J["l_elbow"]]
    rotation = Rotation.from_rotvec([-1.5, 0, 0]).as_matrix()
    expected = (body.rest_vertices[rigid] - elbow) @ rotation.T + elbow
    np.testing.assert_allclose(vertices[0][rigid], expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(vertices[0][rigid] - elbow, axis=1),
                               np.linalg.norm(body.rest_vertices[rigid] - elbow, axis=1))


def test_euler_convention_is_z_after_y_after_x():
    a, b, c = 0.3, -0.4, 0.5
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    np.testing.assert_allclose(euler_to_matrix(np.array([a, b, c])), rz @ ry @ rx, atol=1e-12)


def test_knee_bends_backward_and_elbow_forward():
    body = Body(subject_identity(0, "50002", "m"))
    euler = np.zeros((1, len(JOINT_NAMES), 3))
    euler[0, J["l_knee"], 0] = LIMITS[J["l_knee"], 0, 1]
    euler[0, J["l_elbow"], 0] = LIMITS[J["l_elbow"], 0, 0]
    _, joints = body.pose(euler, np.zeros((1, 3)))
    assert joints[0, J["l_ankle"], 2] < body.rest_joints[J["l_ankle"], 2] - 0.2  # heel to the back
    assert joints[0, J["l_wrist"], 2] > body.rest_joints[J["l_wrist"], 2] + 0.1  # hand to the front


def test_dfaust_motion_names():
    assert len(set(MOTIONS) & DFAUST_SEQUENCES) >= 6
    assert set(MOTIONS) <= DFAUST_SEQUENCES


@pytest.mark.parametrize("name", sorted(MOTIONS))
def test_motion_stays_in_limits_and_is_smooth(name):
    fastest = Variation(speed=1.1, amplitude=1.0, phase=0.3)
    cycles = 2.0 / MOTIONS[name].frequency
    coarse_t = np.arange(0, cycles, 1 / 60)
    euler, translation = trajectory(name, coarse_t, fastest)
    assert np.all(euler >= LIMITS[..., 0]) and np.all(euler <= LIMITS[..., 1])
    channels = np.concatenate([euler.reshape(len(coarse_t), -1), translation], axis=1)
    span = np.ptp(channels, axis=0)
    live = span > 1e-9
    assert live.any()
    second = np.abs(np.diff(channels[:, live], n=2, axis=0)).max(axis=0)
    assert np.all(second <= 0.15 * span[live]), "a frame-to-frame acceleration spike at 60 fps"
    # C1 check: for a trajectory with bounded second derivative, second differences shrink as
    # dt^2 (x 1/100 for 10x the frame rate); a kink shrinks only as dt and a jump not at all.
    fine_t = np.arange(0, cycles, 1 / 600)
    fine = np.concatenate([a.reshape(len(fine_t), -1) for a in trajectory(name, fine_t, fastest)],
                          axis=1)[:, live]
    fine_second = np.abs(np.diff(fine, n=2, axis=0)).max(axis=0)
    assert np.all(fine_second <= 0.03 * second)


def test_variation_keeps_amplitude_at_most_one():
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = sample_variation(rng)
        assert 0 < v.amplitude <= 1 and 0.8 < v.speed < 1.2


@pytest.mark.parametrize("sex", ["m", "f"])
def test_motions_and_extreme_poses_fit_the_cuboid(sex):
    """The biggest body, through every motion cycle and with each joint alone at each limit."""
    body = Body(_largest_identity(sex))
    for name, motion in MOTIONS.items():
        t = np.linspace(0, 1 / motion.frequency, 40, endpoint=False)
        vertices, _ = body.pose(*trajectory(name, t))
        assert np.isfinite(vertices).all()
        extent = np.ptp(vertices, axis=1).max(axis=0)
        assert np.all(extent < CUBOID), f"{name}: extent {extent}"
    poses = []
    for j in range(len(JOINT_NAMES)):
        for axis in range(3):
            for bound in LIMITS[j, axis]:
                if bound != 0:
                    euler = np.zeros((len(JOINT_NAMES), 3))
                    euler[j, axis] = bound
                    poses.append(euler)
    vertices, _ = body.pose(np.array(poses), np.zeros((len(poses), 3)))
    assert np.isfinite(vertices).all()
    faces = body.faces  # shared by every pose, so closedness carries over; no triangle collapses
    assert min(_triangle_areas(v, faces).min() for v in vertices) > 0
    extent = np.ptp(vertices, axis=1)
    worst = np.argmax((extent / CUBOID).max(axis=1))
    assert np.all(extent < CUBOID), f"pose {worst}: extent {extent[worst]}"


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    args = dict(subjects={"50002": "m", "50004": "f", "50007": "m"},
                sequences=["jumping_jacks", "punching"], n_frames=6, fps=60.0, seed=5)
    paths = [out / "registrations_m.hdf5", out / "registrations_f.hdf5", out / "joints.hdf5"]
    write_demo_bodies(*map(str, paths), **args)
    return paths, args


def test_files_follow_the_dfaust_layout(demo_files):
    (path_m, path_f, path_joints), args = demo_files
    n_vertices = len(load_template().vertices)
    for path, sex in ((path_m, "m"), (path_f, "f")):
        with h5py.File(path, "r") as fh:
            mine = [s for s, x in args["subjects"].items() if x == sex]
            expected = {f"{s}_{q}" for s in mine for q in args["sequences"]} | {"faces"}
            assert set(fh.keys()) == expected
            faces = fh["faces"][()]
            assert fh["faces"].dtype == np.int32 and faces.shape[1] == 3
            assert faces.min() == 0 and faces.max() == n_vertices - 1
            for key in expected - {"faces"}:
                ds = fh[key]
                assert isinstance(ds, h5py.Dataset) and ds.dtype == np.float32
                assert ds.shape == (n_vertices, 3, args["n_frames"])
                subject, motion = key.split("_", 1)
                ours = demo_sequence(seed=args["seed"], subject=subject, sex=sex, motion=motion,
                                     n_frames=args["n_frames"], fps=args["fps"])
                assert np.array_equal(ds[()], ours["vertices"])
                for t in range(args["n_frames"]):  # every frame: finite, closed, no flat triangles
                    v = ds[:, :, t]
                    assert np.isfinite(v).all()
                    assert np.all(np.ptp(v, axis=0) < CUBOID)
                    assert _triangle_areas(v.astype(np.float64), faces).min() > 0
                    assert trimesh.Trimesh(v, faces, process=False).is_watertight


def test_joints_file(demo_files):
    (path_m, _, path_joints), args = demo_files
    n_frames = args["n_frames"]
    with h5py.File(path_joints, "r") as fh:
        names = [n.decode() if isinstance(n, bytes) else n for n in fh.attrs["joint_names"]]
        assert names == list(JOINT_NAMES)
        assert np.array_equal(fh.attrs["parents"], PARENTS) and fh.attrs["fps"] == args["fps"]
        for subject, sex in args["subjects"].items():
            rest = fh[f"rest_joints/{subject}"][()]
            assert rest.shape == (len(JOINT_NAMES), 3)
            assert fh[f"identity/{subject}"].attrs["sex"] == sex
            length = fh[f"identity/{subject}/length"][()]
            assert np.allclose(length, subject_identity(args["seed"], subject, sex).length)
            for motion in args["sequences"]:
                key = f"{subject}_{motion}"
                joints = fh[f"joints/{key}"][()]
                pose = fh[f"pose/{key}"][()]
                translation = fh[f"translation/{key}"][()]
                assert joints.shape == pose.shape == (len(JOINT_NAMES), 3, n_frames)
                assert translation.shape == (3, n_frames)
                assert joints.dtype == pose.dtype == translation.dtype == np.float32
                # the root sits at its rest position plus the translation
                np.testing.assert_allclose(joints[0], rest[0][:, None] + translation, atol=1e-5)
                assert np.all(np.linalg.norm(pose, axis=1) <= np.pi + 1e-6)
                # rotating and translating the rest skeleton by hand gives the stored joints
                local = Rotation.from_rotvec(pose[:, :, 0]).as_matrix()
                world = [local[0]]
                pos = [rest[0] + translation[:, 0]]
                for j in range(1, len(JOINT_NAMES)):
                    p = PARENTS[j]
                    pos.append(pos[p] + world[p] @ (rest[j] - rest[p]))
                    world.append(world[p] @ local[j])
                np.testing.assert_allclose(np.array(pos), joints[:, :, 0], atol=1e-4)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, demo_files):
    (path_m, path_f, path_joints), args = demo_files
    time.sleep(1.1)  # any timestamp stored in the files would now differ
    again = [tmp_path / "a_m.hdf5", tmp_path / "a_f.hdf5", tmp_path / "a_j.hdf5"]
    write_demo_bodies(*map(str, again), **args)
    for old, new in zip((path_m, path_f, path_joints), again):
        assert old.read_bytes() == new.read_bytes()
    other = [tmp_path / "b_m.hdf5", tmp_path / "b_f.hdf5", tmp_path / "b_j.hdf5"]
    write_demo_bodies(*map(str, other), **{**args, "seed": args["seed"] + 1})
    with h5py.File(path_m, "r") as a, h5py.File(other[0], "r") as b:
        assert not np.array_equal(a["50002_punching"][()], b["50002_punching"][()])
        assert np.array_equal(a["faces"][()], b["faces"][()])


def test_adding_a_subject_leaves_the_others_unchanged(tmp_path, demo_files):
    (path_m, _, _), args = demo_files
    fewer = [tmp_path / "m.hdf5", tmp_path / "f.hdf5", tmp_path / "j.hdf5"]
    write_demo_bodies(*map(str, fewer), **{**args, "subjects": {"50002": "m"},
                                          "sequences": ["punching"]})
    with h5py.File(path_m, "r") as a, h5py.File(fewer[0], "r") as b:
        assert set(b.keys()) == {"faces", "50002_punching"}
        assert np.array_equal(a["50002_punching"][()], b["50002_punching"][()])


@pytest.mark.parametrize("change, message", [
    ({"sequences": ["moonwalk"]}, "moonwalk"),
    ({"subjects": {"50002": "x"}}, "sex"),
    ({"n_frames": 0}, "n_frames"),
])
def test_bad_arguments_are_rejected_and_nothing_is_written(tmp_path, change, message):
    args = dict(subjects={"50002": "m"}, sequences=["knees"], n_frames=2, fps=60.0, seed=0)
    paths = [tmp_path / "m.hdf5", tmp_path / "f.hdf5", tmp_path / "j.hdf5"]
    with pytest.raises(ValueError, match=message):
        write_demo_bodies(*map(str, paths), **{**args, **change})
    assert list(tmp_path.iterdir()) == []


def test_example_mesh():
    v, f = example_mesh(seed=4)
    assert v.dtype == np.float32 and v.shape == (len(load_template().vertices), 3)
    assert f.dtype == np.int64 and f.shape[1] == 3
    assert trimesh.Trimesh(v, f, process=False).is_watertight
    assert np.array_equal(example_mesh(seed=4)[0], v)
    assert not np.array_equal(example_mesh(seed=5)[0], v)


def test_one_sequence_file_is_dfaust_layout_and_assembly_is_order_free(tmp_path, demo_files):
    """The per-sequence files the workflow tracks hold exactly what the assembled files hold."""
    (path_m, path_f, path_joints), args = demo_files
    parts = []
    for subject, sex in args["subjects"].items():
        for motion in args["sequences"]:
            part = (tmp_path / f"{subject}_{motion}.hdf5", tmp_path / f"{subject}_{motion}.j.hdf5")
            write_demo_sequence(*part, subject=subject, sex=sex, motion=motion,
                                n_frames=args["n_frames"], fps=args["fps"], seed=args["seed"])
            with h5py.File(part[0], "r") as fh:
                assert set(fh.keys()) == {"faces", f"{subject}_{motion}"}
                assert fh[f"{subject}_{motion}"].shape == (len(load_template().vertices), 3,
                                                           args["n_frames"])
            parts.append(part)
    again = [tmp_path / "m.hdf5", tmp_path / "f.hdf5", tmp_path / "joints.hdf5"]
    reversed_parts = parts[::-1]  # the bytes must not depend on the order
    make_demo_bodies(registrations=[reg for reg, _ in reversed_parts],
                     joints=[j for _, j in reversed_parts], out_m=again[0], out_f=again[1],
                     out_joints=again[2])
    for ours, theirs in zip(again, (path_m, path_f, path_joints)):
        assert ours.read_bytes() == theirs.read_bytes()


def test_make_demo_sequence_writes_the_named_sequence_and_checks_the_model_version(tmp_path):
    """The rule's entry: subject from the sequence key, the same bytes as write_demo_sequence."""
    args = dict(sex="f", motion="punching", n_frames=4, fps=60.0, seed=3)
    ours = (tmp_path / "reg.hdf5", tmp_path / "joints.hdf5")
    make_demo_sequence(registrations=ours[0], joints=ours[1], sequence="50004_punching",
                       model_version=MODEL_VERSION, **args)
    theirs = (tmp_path / "reg2.hdf5", tmp_path / "joints2.hdf5")
    write_demo_sequence(*theirs, subject="50004", **args)
    for a, b in zip(ours, theirs):
        assert a.read_bytes() == b.read_bytes()
    with h5py.File(ours[0], "r") as fh:
        assert set(fh.keys()) == {"faces", "50004_punching"}
    stale = (tmp_path / "stale.hdf5", tmp_path / "stale_joints.hdf5")
    with pytest.raises(RuntimeError, match="another shapepose.bodies version"):
        make_demo_sequence(registrations=stale[0], joints=stale[1], sequence="50004_punching",
                           model_version=MODEL_VERSION + "-old", **args)
    assert not stale[0].exists() and not stale[1].exists()
    with pytest.raises(ValueError, match="does not name motion"):
        make_demo_sequence(registrations=stale[0], joints=stale[1], sequence="50004_knees",
                           model_version=MODEL_VERSION, **args)
