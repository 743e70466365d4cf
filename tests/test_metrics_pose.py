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


def test_adds_searches_from_each_ground_truth_point_to_the_nearest_estimated_point():
    # Ground truth: three points on the line y = -1; the estimate turns them a quarter turn and shifts them
    # onto the line x = 2. Ground truth -> nearest estimate: 0, 2, 4 (mean 2); the other direction would
    # give 2, 0, 2 (mean 4/3): the search is not symmetric, and BOP's ADD-S is the first.
    line = np.array([[2, -1, 0], [0, -1, 0], [-2, -1, 0]], float)
    R_gt, t_gt = np.eye(3), np.zeros(3)
    R_est, t_est = rz(90), np.array([1.0, -1.0, 0.0])
    assert np.allclose(line @ R_est.T + t_est, [[2, 1, 0], [2, -1, 0], [2, -3, 0]])
    assert P.adds(R_est, t_est, R_gt, t_gt, line) == pytest.approx(2.0)
    assert P.adds(R_gt, t_gt, R_est, t_est, line) == pytest.approx(4 / 3)  # roles swapped


def test_recalls_count_an_error_equal_to_the_threshold_as_a_miss():
    # BOP: a pose is correct when e < threshold, strictly
    assert P.recall_at([0.5, 1.0, 2.0], 1.0) == pytest.approx(1 / 3)
    assert P.recall_at([1.0], 1.0) == 0.0
    # thresholds 1, 2, 3; errors 1 and 2.5: hits 0, 1, 2 of 2 -> (0 + 1/2 + 1) / 3
    assert P.average_recall([1.0, 2.5], [1.0, 2.0, 3.0]) == pytest.approx(0.5)
    assert P.average_recall([2.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(1 / 3)
    assert P.average_recall([float("nan"), 0.0], [1.0]) == pytest.approx(0.5)  # undefined counts as a miss
    assert np.isnan(P.average_recall([], [1.0]))


def test_bop_threshold_ladders():
    assert P.mssd_thresholds(2.0) == pytest.approx([0.1 * k for k in range(1, 11)])
    assert P.mspd_thresholds(320) == pytest.approx([2.5 * k for k in range(1, 11)])  # 5..50 px at 640 wide
    assert P.mspd_thresholds(640)[1] == pytest.approx(10.0)


def test_quaternions_q_and_minus_q_are_the_same_rotation_and_written_with_w_positive():
    from scipy.spatial.transform import Rotation

    from igbench.rotations import from_matrix, to_matrix

    q = np.array([-0.065, 0.806, -0.422, 0.410])  # (w, x, y, z), w < 0, a rotation by about 187 degrees
    q /= np.linalg.norm(q)
    R = Rotation.from_quat([*q[1:], q[0]]).as_matrix()
    assert Rotation.from_matrix(R).as_quat()[3] < 0  # scipy alone would write this one with w < 0
    assert np.allclose(to_matrix(q, "quat"), R) and np.allclose(to_matrix(-q, "quat"), R)
    assert np.allclose(to_matrix(3 * q, "quat"), R)  # re-normalised
    assert from_matrix(R, "quat") == pytest.approx(tuple(-q))  # the canonical sign: w >= 0
    assert P.rotation_error_deg(to_matrix(-q, "quat"), R) == pytest.approx(0, abs=1e-6)


def test_a_prediction_written_as_minus_q_scores_as_the_same_rotation():
    from scipy.spatial.transform import Rotation

    from igbench.score import score_predictions

    rows, preds = [], []
    for i, (w, x, y, z) in enumerate([(0.5, 0.5, -0.5, 0.5), (0.2, 0.7, 0.1, -0.68)]):
        q = np.array([w, x, y, z]) / np.linalg.norm([w, x, y, z])
        R = Rotation.from_quat([*q[1:], q[0]]).as_matrix()
        sid = f"so3/test/{i:06d}"
        rows.append({"id": sid, "objects": [{"object": "mug", "material": "steel", "loc": [0.0, 0.0, 0.0],
                                              "rotation": [float(v) for v in q], "R_world": R.tolist()}]})
        flipped = ", ".join(f"{-v:+.4f}" for v in q)
        preds.append({"id": sid, "program": f"add(object='mug', material='steel', loc=(0, 0, 0), rotation=({flipped}))"})
    group = score_predictions(preds, rows, bootstrap=0)["results"]["so3/test"]
    assert group["parse_rate"] == 1 and group["rot_err_deg_mean"] < 0.02 and group["rot_recall@5"] == 1
