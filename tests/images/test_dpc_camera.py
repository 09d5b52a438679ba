"""The DPC camera frame, checked against DPC's own conventions rather than our reader's constants.

Fixtures here are built the way DPC's data was: a camera placed by its Blender render script
(azimuth/elevation -> location with x and y swapped, a TRACK_TO constraint, written here as the
Euler angles Blender ends up with, through scipy), the model imported with Blender's default OBJ
axes, and the ground-truth pose computed with DPC's `quaternion_from_campos` formula written out
by hand (yaw and pitch of the camera position, yaw + pi, q = q_pitch(z) q_yaw(y)). DPC orders
camera axes as (depth, up, right); ours are (right, down, depth).
"""

import math

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy.spatial.transform import Rotation

from shapepose.errors import InputError
from shapepose.geometry import matrix_from_quaternion
from shapepose.images.dpc import check_camera, pose_from_position, project_points, read_dpc
from shapepose.shape_pose.data import ViewSet

from helpers.data import DIAGONAL, ELEVATION

# DPC camera axes (depth, up, right) -> ours (right, down, depth)
DPC_TO_CV = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
FOCAL = 1.875


def blender_obj_import(s):
    """Blender's OBJ importer with its default axes (forward -Z, up Y): file (x, y, z) -> (x, -z, y)."""
    s = np.atleast_2d(s)
    return np.stack([s[:, 0], -s[:, 2], s[:, 1]], axis=1)


def render_script_location(azimuth, elevation, distance=2.0):
    """DPC's render script: obj_centened_camera_pos, then location.x = y and location.y = x."""
    az, el = math.radians(azimuth), math.radians(elevation)
    x = distance * math.cos(az) * math.cos(el)
    y = distance * math.sin(az) * math.cos(el)
    return np.array([y, x, distance * math.sin(el)])


def track_to_extrinsic(location):
    """World -> CV camera of a Blender camera at `location` under TRACK_TO(-Z, up Y) towards 0.

    TRACK_TO leaves the camera with Euler XYZ angles (90 - elevation, 0, heading + 90) degrees,
    heading the location's angle in the ground plane; Blender's camera looks down its -Z with +Y up,
    and CV's camera is Blender's with y and z flipped.
    """
    distance = np.linalg.norm(location)
    elevation = math.degrees(math.asin(location[2] / distance))
    heading = math.degrees(math.atan2(location[1], location[0]))
    camera_to_world = Rotation.from_euler("xyz", [90 - elevation, 0, heading + 90], degrees=True).as_matrix()
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = np.diag([1.0, -1.0, -1.0]) @ camera_to_world.T
    extrinsic[:3, 3] = -extrinsic[:3, :3] @ location
    return extrinsic


def dpc_quaternion_from_campos(pos):
    """DPC's util/camera.py quaternion_from_campos, (w, x, y, z), written out by hand."""
    cx, cy, cz = np.asarray(pos, dtype=np.float64) / np.linalg.norm(pos)
    t = math.hypot(cx, cy)
    yaw = math.acos(cx / t)
    if cy / t > 0:
        yaw = 2 * math.pi - yaw
    yaw += math.pi  # ypr_from_campos_blender
    pitch = math.asin(cz)

    def axis_angle(angle, axis):
        return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * np.asarray(axis, float)])

    def product(a, b):
        aw, av = a[0], a[1:]
        bw, bv = b[0], b[1:]
        return np.concatenate([[aw * bw - av @ bv], aw * bv + bw * av + np.cross(av, bv)])

    q_roll = axis_angle(0.0, [1, 0, 0])
    return product(q_roll, product(axis_angle(pitch, [0, 0, 1]), axis_angle(yaw, [0, 1, 0])))


def quaternion_matrix(q):
    """R(q) with q p q* = R(q) p (scipy takes (x, y, z, w))."""
    return Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix()


CAMERAS = [(az, el) for az in (0.0, 37.0, 90.0, 145.0, 200.0, 333.0) for el in (-20.0, 0.0, 15.0, 40.0)]


@pytest.mark.parametrize("azimuth, elevation", CAMERAS)
def test_dpc_ground_truth_pose_is_the_blender_camera_on_the_raw_shapenet_frame(azimuth, elevation):
    """DPC's own conventions agree with each other: its quaternion_from_campos pose, applied to raw
    ShapeNet points in DPC's projection (depth, up, right), is the Blender render's camera."""
    location = render_script_location(azimuth, elevation)
    extrinsic = track_to_extrinsic(location)
    points = np.random.default_rng(0).uniform(-0.5, 0.5, size=(20, 3))
    camera = (np.c_[blender_obj_import(points), np.ones(20)] @ extrinsic.T)[:, :3]  # (right, down, depth)
    dpc = points @ quaternion_matrix(dpc_quaternion_from_campos(location)).T
    dpc[:, 0] += 2.0  # DPC adds the camera distance to its depth axis
    np.testing.assert_allclose(dpc, np.stack([camera[:, 2], -camera[:, 1], camera[:, 0]], 1), atol=1e-9)


@pytest.mark.parametrize("azimuth, elevation", CAMERAS)
def test_our_pose_from_pos_is_dpcs_and_projects_like_the_render(azimuth, elevation):
    location = render_script_location(azimuth, elevation)
    extrinsic = track_to_extrinsic(location)
    assert check_camera(extrinsic, location) is None
    ours = matrix_from_quaternion(pose_from_position(location))
    expected = DPC_TO_CV @ quaternion_matrix(dpc_quaternion_from_campos(location))
    np.testing.assert_allclose(ours, expected, atol=1e-9)
    # our pinhole (R s + (0, 0, 2), f = 1.875 image widths) lands where the Blender camera does
    points = np.random.default_rng(1).uniform(-0.5, 0.5, size=(20, 3))
    cam = points @ ours.T + [0.0, 0.0, 2.0]
    pixels = 31.5 + 64 * FOCAL * cam[:, :2] / cam[:, 2:]
    np.testing.assert_allclose(pixels, project_points(points, extrinsic, 64), atol=1e-9)
    blender = (np.c_[blender_obj_import(points), np.ones(20)] @ extrinsic.T)[:, :3]
    np.testing.assert_allclose(pixels, 31.5 + 64 * FOCAL * blender[:, :2] / blender[:, 2:], atol=1e-9)


def write_one_model(root, extrinsic, pos):
    folder = root / "renders/02958343/m0"
    folder.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(folder / "render_0.png")
    scipy.io.savemat(folder / "camera_0.mat", {"extrinsic": extrinsic, "pos": pos.reshape(1, 3)})
    (root / "gt/downsampled/02958343").mkdir(parents=True)
    scipy.io.savemat(root / "gt/downsampled/02958343/m0.mat", {"points": np.zeros((4, 3))})
    (root / "splits").mkdir()
    for name in ("train", "val", "test"):
        (root / f"splits/02958343_{name}.txt").write_text("m0\n")
    return folder / "camera_0.mat"


def test_reader_takes_the_pose_from_pos_of_a_dpc_camera_file(tmp_path):
    location = render_script_location(145.0, 15.0)
    write_one_model(tmp_path, track_to_extrinsic(location).astype(np.float32), location.astype(np.float32))
    _, _, poses = ViewSet(tmp_path, "train", 8, 8).model(0)
    expected = DPC_TO_CV @ quaternion_matrix(dpc_quaternion_from_campos(location))
    np.testing.assert_allclose(matrix_from_quaternion(poses[0]), expected, atol=1e-5)  # float32 files


@pytest.mark.parametrize("fault, words", [
    ("opposite", "puts the camera at"),  # the extrinsic of the camera on the other side
    ("upside_down", "180.00 degrees"),  # right centre, rolled 180 degrees about the optical axis
    ("tilted", "degrees from the camera at pos"),
])
def test_reader_names_a_file_whose_extrinsic_and_pos_disagree(tmp_path, fault, words):
    location = render_script_location(37.0, 20.0)
    extrinsic = track_to_extrinsic(location)
    if fault == "opposite":
        extrinsic = track_to_extrinsic(location * [-1.0, -1.0, 1.0])
    elif fault == "upside_down":
        extrinsic[:3] = np.diag([-1.0, -1.0, 1.0]) @ extrinsic[:3]
    else:
        tilt = Rotation.from_euler("x", 3.0, degrees=True).as_matrix()
        extrinsic[:3, :3] = tilt @ extrinsic[:3, :3]
        extrinsic[:3, 3] = -extrinsic[:3, :3] @ location
    path = write_one_model(tmp_path, extrinsic, location)
    with pytest.raises(InputError, match=words) as caught:
        read_dpc(tmp_path).load_camera("m0", 0)
    assert str(path) in str(caught.value)


def test_demo_writer_writes_cameras_as_dpcs_blender_script(tiny_dpc):
    """tests/conftest.py's tiny_dpc, written with diagonal 1 and elevations in [-20, 40]."""
    assert (DIAGONAL, ELEVATION) == (1.0, (-20, 40))
    data = read_dpc(tiny_dpc)
    assert len(data.models) > 0 and data.n_views > 0
    for m in data.models:
        for k in range(data.n_views):
            mat = scipy.io.loadmat(data.render_dir / m / f"camera_{k}.mat")
            pos = mat["pos"].reshape(3)
            assert np.linalg.norm(pos) == pytest.approx(2.0)
            elevation = math.degrees(math.asin(pos[2] / 2.0))
            assert -20 - 1e-9 <= elevation <= 40 + 1e-9
            # the script's azimuth is measured from Blender's y axis (x and y swapped)
            azimuth = math.degrees(math.atan2(pos[0], pos[1]))
            np.testing.assert_allclose(render_script_location(azimuth, elevation), pos, atol=1e-12)
            np.testing.assert_allclose(mat["extrinsic"], track_to_extrinsic(pos), atol=1e-12)
