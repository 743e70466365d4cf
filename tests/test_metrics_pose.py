"""Pose metrics (BOP formulas), hand-computed."""
import math

import numpy as np
import pytest

from igbench.metrics import pose as P


def rz(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


SQUARE = np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]], float)


def test_rotation_errors():
    assert P.rotation_error_deg(rz(30), np.eye(3)) == pytest.approx(30)
    assert P.rotation_error_deg(np.diag([1.0, -1, -1]), np.eye(3)) == pytest.approx(180)
    assert P.rotation_error_sym_deg(rz(95), np.eye(3), [rz(90 * k) for k in range(4)]) == pytest.approx(5)


def test_translation_error():
    assert P.translation_error([0, 0, 0], [3, 4, 0]) == pytest.approx(5)


def test_add_adds_mssd():
    t0, t1 = np.zeros(3), np.array([0.1, 0, 0])
    assert P.add(np.eye(3), t1, np.eye(3), t0, SQUARE) == pytest.approx(0.1)
    # a half turn maps the square onto itself: ADD sees each corner move by 2 sqrt(2), ADD-S sees nothing
    assert P.add(rz(180), t0, np.eye(3), t0, SQUARE) == pytest.approx(2 * math.sqrt(2))
    assert P.adds(rz(180), t0, np.eye(3), t0, SQUARE) == pytest.approx(0, abs=1e-12)
    syms = [np.eye(4), np.block([[rz(180), np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]])]
    assert P.mssd(rz(180), t0, np.eye(3), t0, SQUARE, [np.eye(4)]) == pytest.approx(2 * math.sqrt(2))
    assert P.mssd(rz(180), t0, np.eye(3), t0, SQUARE, syms) == pytest.approx(0, abs=1e-12)


def test_mspd_in_pixels():
    K = np.array([[100, 0, 50], [0, 100, 50], [0, 0, 1]], float)
    t = np.array([0, 0, 10.0])
    # a 0.1 shift at depth 10 with f = 100 px moves every projected point by 1 px
    assert P.mspd(np.eye(3), t + [0.1, 0, 0], np.eye(3), t, K, SQUARE, [np.eye(4)]) == pytest.approx(1.0)


def test_recall_and_diameter():
    assert P.recall_at([1, 5, 10], 5) == pytest.approx(1 / 3)
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    assert P.diameter(corners) == pytest.approx(math.sqrt(3))
