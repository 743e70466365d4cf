"""Cameras computed many at once are bit for bit the cameras of a plain-Python look-at with the documented
arithmetic (igbench/scene.py: each 3-vector dot product summed as (x0 + x2) + x1, unfused), so they are the
same on every CPU; the pinned programs (test_clevr_programs_pinned.py) check that this is the arithmetic the
published datasets were sampled with."""
import math

import numpy as np

from igbench.scene import Camera, ground_axes, look_at_matrices


def dot(a, b):
    return (a[0] * b[0] + a[2] * b[2]) + a[1] * b[1]


def unit(v):
    norm = math.sqrt(dot(v, v))
    return [x / norm for x in v]


def cross(a, b):
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def one_at_a_time(location, target):
    forward = unit([t - l for t, l in zip(target, location)])
    right = unit(cross(forward, [0.0, 0.0, 1.0]))
    down = cross(forward, right)
    rotation = [right, down, forward]
    return [row + [dot([-x for x in row], location)] for row in rotation] + [[0.0, 0.0, 0.0, 1.0]]


def test_look_at_in_bulk_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    target = [0.0, 0.0, 0.0]
    locations = np.concatenate([np.array([7.3589, -6.9258, 4.9583]) + rng.uniform(-0.5, 0.5, (6000, 3)),
                                rng.normal(size=(2000, 3)) * 10])
    expected = np.array([one_at_a_time(location.tolist(), target) for location in locations])
    for rows in (slice(None), slice(1, None), slice(3, None, 2)):  # other alignments and strides of the rows
        assert np.array_equal(look_at_matrices(locations[rows], target), expected[rows])
    camera = Camera.look_at(locations[5], target, 35.0, 32.0, 480, 320)
    assert np.array_equal(camera.extrinsics, expected[5])


def test_ground_axes_in_bulk_equal_one_at_a_time():
    rng = np.random.default_rng(1)
    matrices = look_at_matrices(rng.normal(size=(3000, 3)) * 8, [0.0, 0.0, 0.0])
    for matrix, (right, behind) in zip(matrices, ground_axes(matrices)):
        assert np.array_equal(right, unit([matrix[0, 0], matrix[0, 1], 0.0]))
        assert np.array_equal(behind, unit([matrix[2, 0], matrix[2, 1], 0.0]))
