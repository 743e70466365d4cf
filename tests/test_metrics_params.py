"""Parameter-recovery metrics: hand-computed cases for every pure function, and scene-level properties."""
import itertools
import math

import numpy as np
import pytest

from igbench.metrics import params as M
from igbench.metrics.stats import bootstrap_ratios, percentile_interval
from igbench.program import Obj, Program
from igbench.score.params import aggregate_params, canonical_order, encode, parameter_stats, yaw_periods
from igbench.task import load_task

TASK = load_task("clevr")


def test_hungarian_is_the_minimum_total_distance_assignment():
    pred = np.array([[[0, 0, 0], [5, 0, 0]]], float)
    gt = np.array([[[4, 0, 0], [1, 0, 0]]], float)
    s, r, c = M.hungarian_match(M.pairwise_distances(pred, gt), np.array([2]), np.array([2]))
    assert sorted(zip(r.tolist(), c.tolist())) == [(0, 1), (1, 0)]


def test_hungarian_matches_brute_force_on_random_scenes():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n_p, n_g = (int(v) for v in rng.integers(1, 6, size=2))
        pred, gt = rng.uniform(-3, 3, (1, n_p, 3)), rng.uniform(-3, 3, (1, n_g, 3))
        D = M.pairwise_distances(pred, gt)
        s, r, c = M.hungarian_match(D, np.array([n_p]), np.array([n_g]))
        k = min(n_p, n_g)
        best = min(sum(D[0, i, j] for i, j in zip(rows, cols))
                   for rows in itertools.combinations(range(n_p), k) for cols in itertools.permutations(range(n_g), k))
        assert len(r) == k and D[0, r, c].sum() == pytest.approx(best)


def test_huge_coordinates_keep_the_assignment_feasible():
    pred = np.array([[[1e300, 0, 0], [0, 0, 0]]])
    gt = np.array([[[0.1, 0, 0]]])
    s, r, c = M.hungarian_match(M.pairwise_distances(pred, gt), np.array([2]), np.array([1]))
    assert r.tolist() == [1] and c.tolist() == [0]


def test_counts():
    assert M.count_accuracy([3, 4, 5], [3, 5, 3]) == pytest.approx(1 / 3)
    assert M.abs_count_error([3, 4, 5], [3, 5, 3]) == pytest.approx(1.0)


def test_attribute_accuracy_per_column():
    acc = M.attribute_accuracy(np.array([[0, 1], [1, 1], [2, 0]]), np.array([[0, 1], [1, 0], [0, 0]]))
    assert acc.tolist() == pytest.approx([2 / 3, 2 / 3])


def test_position_errors():
    assert M.position_errors([[0, 0, 0], [1, 1, 1]], [[3, 4, 0], [1, 1, 1]]).tolist() == [5.0, 0.0]


@pytest.mark.parametrize("pred_deg, gt_deg, expected", [(100, 10, 0), (50, 0, 40), (-44, 44, 2), (30, 0, 30), (45, 0, 45), (89, 0, 1)])
def test_yaw_error_modulo_90(pred_deg, gt_deg, expected):
    assert M.yaw_error_deg(math.radians(pred_deg), math.radians(gt_deg), 90.0) == pytest.approx(expected, abs=1e-9)


def test_precision_recall_f1():
    assert M.precision_recall_f1(2, 4, 3) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert M.precision_recall_f1(0, 0, 0) == (1.0, 1.0, 1.0)
    assert M.precision_recall_f1(0, 0, 3) == (0.0, 0.0, 0.0)


def test_true_positive_needs_distance_and_all_attributes():
    tp = M.true_positives(np.array([0.1, 0.1, 0.6]), np.array([True, False, True]), 0.5)
    assert tp.tolist() == [True, False, False]


def test_average_precision_by_hand():
    # cum TP 1,1,2; precision 1, 1/2, 2/3; recall 1/3, 1/3, 2/3 -> AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
    assert M.average_precision(np.array([True, False, True]), 3) == pytest.approx(5 / 9)
    assert M.average_precision(np.array([True, True]), 2) == pytest.approx(1.0)
    assert M.average_precision(np.zeros(0, bool), 2) == 0.0


def test_slot_attention_detection_rule():
    gt_loc = np.array([[[0, 0, 0], [1, 0, 0]]], float)
    gt_attr = np.zeros((1, 2, 2), int)
    pred_loc = np.array([[[0.1, 0, 0], [0.2, 0, 0], [1, 0, 0]]], float)
    pred_attr = np.array([[[0, 0], [0, 0], [1, 0]]])
    valid = np.ones((1, 3), bool)
    best, best_d = M.nearest_attribute_match(M.pairwise_distances(pred_loc, gt_loc), pred_attr, gt_attr, np.ones((1, 2), bool))
    tp = M.slot_attention_claims(best, best_d, valid, math.inf)
    # p0 claims object 0; p1's nearest attribute match is object 0 again (taken) -> FP; p2's colour is wrong -> FP
    assert tp.tolist() == [[True, False, False]]
    tp = M.slot_attention_claims(best, best_d, valid, 0.05)
    assert tp.tolist() == [[False, False, False]]


def _random_programs(n, seed):
    rng = np.random.default_rng(seed)
    programs = []
    for _ in range(n):
        objects = []
        for _ in range(rng.integers(3, 8)):
            shape = str(rng.choice(["cube", "sphere", "cylinder"]))
            numbers = {"loc": tuple(rng.uniform(-3, 3, 3).round(3))}
            if shape == "cube":
                numbers["rotation"] = (float(rng.uniform(-0.7, 0.7)),)
            objects.append(Obj({"shape": shape, "color": str(rng.choice(["red", "blue", "gray"])),
                                "material": str(rng.choice(["rubber", "metal"])), "size": str(rng.choice(["large", "small"]))}, numbers))
        programs.append(Program(objects))
    return programs


def _aggregate(pred, gt):
    stats = parameter_stats(canonical_order(encode(pred, TASK)), encode(gt, TASK), len(gt), list(TASK.categorical), yaw_periods(TASK))
    return aggregate_params(stats, np.ones(len(gt), bool), n_resamples=200)


def test_ground_truth_as_prediction_is_perfect():
    gt = _random_programs(40, 0)
    out = _aggregate(gt, gt)
    assert out["count_acc"] == 1 and out["count_abs_err"] == 0
    assert all(v == 1 for v in out["attr_acc"].values())
    assert out["loc_l2_mean"] == 0 and out["rot_err_deg_mean"] == 0 and out["rot_pairs"] > 0
    for t in M.THRESHOLDS:
        k = M.threshold_key(t)
        assert out[f"precision@{k}"] == out[f"recall@{k}"] == out[f"f1@{k}"] == out[f"ap@{k}"] == 1


def test_scores_do_not_depend_on_the_order_objects_are_written_in():
    gt = _random_programs(30, 1)
    noisy = _random_programs(30, 2)
    rng = np.random.default_rng(3)
    shuffled = [Program([p.objects[i] for i in rng.permutation(len(p.objects))]) for p in noisy]
    a, b = _aggregate(noisy, gt), _aggregate(shuffled, gt)
    assert a == b
    assert a["f1@inf"] < 1  # the comparison is between imperfect predictions


def test_a_wrong_colour_and_a_shifted_object_by_hand():
    cube = Obj({"shape": "cube", "color": "red", "material": "metal", "size": "large"}, {"loc": (0.0, 0.0, 0.7), "rotation": (0.0,)})
    ball = Obj({"shape": "sphere", "color": "blue", "material": "rubber", "size": "small"}, {"loc": (2.0, 0.0, 0.35)})
    pred_cube = Obj(dict(cube.attrs), {"loc": (0.3, 0.4, 0.7), "rotation": (math.radians(100),)})  # 0.5 away, yaw 10 deg off mod 90
    pred_ball = Obj({**ball.attrs, "color": "red"}, {"loc": (2.0, 0.0, 0.35)})
    out = _aggregate([Program([pred_ball, pred_cube])], [Program([cube, ball])])
    assert out["attr_acc"]["color"] == 0.5 and out["attr_acc"]["shape"] == 1
    assert out["loc_l2_mean"] == pytest.approx(0.25) and out["loc_l2_median"] == pytest.approx(0.25)
    assert out["rot_err_deg_mean"] == pytest.approx(10.0) and out["rot_pairs"] == 1
    assert out["precision@inf"] == 0.5 and out["recall@inf"] == 0.5  # the ball's colour is wrong
    assert out["precision@0.5"] == 0.0  # the cube is exactly 0.5 away: not < 0.5
    assert out["f1@1"] == 0.5


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=200)
    lo, hi = percentile_interval(bootstrap_ratios(x[:, None], np.ones((200, 1)), n_resamples=500, seed=7), 0.95)
    lo2, hi2 = percentile_interval(bootstrap_ratios(x[:, None], np.ones((200, 1)), n_resamples=500, seed=7), 0.95)
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)
    assert lo[0] < x.mean() < hi[0] and hi[0] - lo[0] < 0.2
    const_lo, const_hi = percentile_interval(bootstrap_ratios(np.full((50, 1), 3.0), np.ones((50, 1)), n_resamples=100), 0.95)
    assert const_lo[0] == const_hi[0] == 3.0
    assert bootstrap_ratios(np.ones((5, 2)), np.ones((5, 2)), n_resamples=10).shape == (10, 2)


def test_matching_is_on_3d_position_not_on_the_ground_plane():
    # A large cube at height 0.7 and a small sphere at 0.35 stand 0.3 apart on the ground plane; each
    # prediction sits 0.05 from the other object in (x, y) but 0.25 from its own in 3-D. Matching in (x, y)
    # would swap them (total 0.1 < 0.5) and see two wrong colours; in 3-D the swap costs 2 x 0.354 > 0.5.
    cube = Obj({"shape": "cube", "color": "red", "material": "metal", "size": "large"}, {"loc": (0.0, 0.0, 0.7), "rotation": (0.0,)})
    ball = Obj({"shape": "sphere", "color": "blue", "material": "rubber", "size": "small"}, {"loc": (0.3, 0.0, 0.35)})
    pred_cube = Obj(dict(cube.attrs), {"loc": (0.25, 0.0, 0.7), "rotation": (0.0,)})
    pred_ball = Obj(dict(ball.attrs), {"loc": (0.05, 0.0, 0.35)})
    out = _aggregate([Program([pred_cube, pred_ball])], [Program([cube, ball])])
    assert out["attr_acc"] == {"shape": 1.0, "color": 1.0, "material": 1.0, "size": 1.0}
    assert out["loc_l2_mean"] == pytest.approx(0.25)
    assert out["precision@0.5"] == 1.0 and out["precision@0.25"] == 0.0  # 0.25 is not < 0.25


@pytest.mark.parametrize("flags, n_gt, interpolated, raw", [
    # precision 0, 1/2, 2/3 at recall 0, 1/2, 1: the interpolated precision at recall 1/2 is 2/3
    ([False, True, True], 2, 2 / 3, 7 / 12),
    # precision 1, 1/2, 1/3, 1/2, 3/5 at recall 1/4, 1/4, 1/4, 1/2, 3/4
    ([True, False, False, True, True], 4, 0.25 * 1 + 0.25 * 0.6 + 0.25 * 0.6, 0.25 * 1 + 0.25 * 0.5 + 0.25 * 0.6),
])
def test_average_precision_interpolates_precision(flags, n_gt, interpolated, raw):
    assert interpolated != pytest.approx(raw)  # the case tells the two apart
    assert M.average_precision(np.array(flags), n_gt) == pytest.approx(interpolated)
