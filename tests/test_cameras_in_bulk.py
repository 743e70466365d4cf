"""Cameras computed many at once are bit for bit the cameras computed one at a time with numpy's own
np.linalg.norm, np.cross and `@` (which reach BLAS, whose kernels round by the data's alignment)."""
import numpy as np

from igbench.scene import Camera, ground_axes, look_at_matrices


def one_at_a_time(location, target):
    forward = (target - location) / np.linalg.norm(target - location)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    world_to_camera = np.eye(4)
    world_to_camera[:3, :3] = rotation
    world_to_camera[:3, 3] = -rotation @ location
    return world_to_camera


def test_look_at_in_bulk_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    target = np.array([0.0, 0.0, 0.0])
    locations = np.concatenate([np.array([7.3589, -6.9258, 4.9583]) + rng.uniform(-0.5, 0.5, (6000, 3)),
                                rng.normal(size=(2000, 3)) * 10])
    expected = np.array([one_at_a_time(location.copy(), target) for location in locations])
    for rows in (slice(None), slice(1, None), slice(3, None, 2)):  # other alignments of the rows
        assert np.array_equal(look_at_matrices(locations[rows], target), expected[rows])
    camera = Camera.look_at(locations[5], target, 35.0, 32.0, 480, 320)
    assert np.array_equal(camera.extrinsics, expected[5])


def test_ground_axes_in_bulk_equal_one_at_a_time():
    rng = np.random.default_rng(1)
    matrices = look_at_matrices(rng.normal(size=(3000, 3)) * 8, [0.0, 0.0, 0.0])
    flat = np.array([1.0, 1.0, 0.0])
    for matrix, (right, behind) in zip(matrices, ground_axes(matrices)):
        rotation = matrix[:3, :3].copy()
        assert np.array_equal(right, rotation[0] * flat / np.linalg.norm(rotation[0] * flat))
        assert np.array_equal(behind, rotation[2] * flat / np.linalg.norm(rotation[2] * flat))
