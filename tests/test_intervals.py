"""Bootstrap confidence intervals: checked against a direct computation (the same seeded resamples drawn
here with numpy, and the normal-theory width), and every interval a scores.json group reports brackets
its point estimate, for CLEVR, the pose tasks and dot2d."""
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from igbench.metrics.stats import bootstrap_ratios, percentile_interval
from igbench.program import Obj, Program, format_program
from igbench.rotations import from_matrix
from igbench.score import score_predictions
from igbench.task import load_task

CLEVR = load_task("clevr")
SO3 = load_task("so3")
Z_95 = 1.959964  # the standard normal's 0.975 quantile
Z_80 = 1.281552  # its 0.9 quantile


def direct_mean_interval(x, n_resamples, seed, level):
    """The percentile bootstrap of a mean, written out: n draws with replacement per resample (numpy PCG64,
    the documented seeding), the ((1 - level)/2, (1 + level)/2) quantiles of the resampled means."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(x), size=(n_resamples, len(x)))
    return np.quantile(np.asarray(x, float)[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_interval_equals_the_direct_computation(level):
    x = np.random.default_rng(4).exponential(size=150)
    lo, hi = percentile_interval(bootstrap_ratios(x[:, None], np.ones((150, 1)), n_resamples=400, seed=11), level)
    want = direct_mean_interval(x, 400, 11, level)
    assert [lo[0], hi[0]] == pytest.approx(want.tolist(), rel=1e-12)


@pytest.mark.parametrize("level, z", [(0.95, Z_95), (0.8, Z_80)])
def test_width_and_level_match_normal_theory(level, z):
    # For a mean of n = 2,000 draws the bootstrap distribution is close to normal with the standard error
    # s / sqrt(n): the interval is about 2 z s / sqrt(n) wide and centred on the mean.
    x = np.random.default_rng(5).uniform(size=2000)
    lo, hi = percentile_interval(bootstrap_ratios(x[:, None], np.ones((2000, 1)), n_resamples=2000, seed=0), level)
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert hi[0] - lo[0] == pytest.approx(2 * z * se, rel=0.08)
    assert (lo[0] + hi[0]) / 2 == pytest.approx(x.mean(), abs=0.2 * se)
    assert lo[0] < x.mean() < hi[0]


def test_ratio_of_sums_resamples_scenes_not_objects():
    # Scene b holds y_b objects of which x_b are right: the statistic is sum x / sum y over the resampled scenes.
    rng = np.random.default_rng(6)
    y = rng.integers(1, 8, size=120).astype(float)
    x = rng.binomial(y.astype(int), 0.7).astype(float)
    lo, hi = percentile_interval(bootstrap_ratios(x[:, None], y[:, None], n_resamples=300, seed=3), 0.95)
    draws = np.random.default_rng(3).integers(0, 120, size=(300, 120))
    want = np.quantile(x[draws].sum(axis=1) / y[draws].sum(axis=1), [0.025, 0.975])
    assert [lo[0], hi[0]] == pytest.approx(want.tolist(), rel=1e-12)


def test_percentile_interval_leaves_out_undefined_resamples():
    stats = np.array([[np.nan], [1.0], [2.0], [3.0], [np.inf], [4.0], [5.0]])
    lo, hi = percentile_interval(stats, level=0.5)
    assert (lo[0], hi[0]) == (2.0, 4.0)  # the quartiles of 1..5
    assert np.isnan(percentile_interval(np.full((4, 1), np.nan))[0][0])


def point_estimate(group, key):
    if key.startswith("attr_acc."):
        return group["attr_acc"][key.split(".", 1)[1]]
    return group[key]


def assert_intervals_bracket(group):
    assert group["ci95"], "no intervals reported"
    for key, (lo, hi) in group["ci95"].items():
        estimate = point_estimate(group, key)
        if estimate is None:
            assert lo is None and hi is None, key
            continue
        assert lo <= estimate + 1e-12 and estimate <= hi + 1e-12, (key, lo, estimate, hi)


def clevr_scenes(n, seed):
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(n):
        objects = []
        for _ in range(rng.integers(3, 7)):
            shape = str(rng.choice(["cube", "sphere", "cylinder"]))
            numbers = {"loc": tuple(rng.uniform(-3, 3, 3).round(3))}
            if shape == "cube":
                numbers["rotation"] = (round(float(rng.uniform(-0.7, 0.7)), 3),)
            objects.append(Obj({"shape": shape, "color": str(rng.choice(["red", "blue", "gray", "cyan"])),
                                "material": str(rng.choice(["rubber", "metal"])),
                                "size": str(rng.choice(["large", "small"]))}, numbers))
        scenes.append(Program(objects))
    return scenes


def perturbed(program, rng):
    """Drop an object now and then, jitter positions, recolour one object in three."""
    objects = []
    for obj in program.objects:
        if rng.uniform() < 0.15:
            continue
        attrs = dict(obj.attrs)
        if rng.uniform() < 0.33:
            attrs["color"] = "green"
        numbers = {**obj.numbers, "loc": tuple(np.round(np.asarray(obj.loc) + rng.normal(0, 0.3, 3), 3))}
        objects.append(Obj(attrs, numbers))
    return Program(objects)


def object_row(obj):
    """The dataset's `objects` struct of a CLEVR object (object_from_row reads it back)."""
    rotation = obj.numbers.get("rotation")
    return {**obj.attrs, "loc": [float(v) for v in obj.loc], "rotation": [float(v) for v in rotation or (0.0,)],
            "has_rotation": rotation is not None}


@pytest.fixture(scope="module")
def clevr_group():
    truth = clevr_scenes(60, 0)
    rng = np.random.default_rng(1)
    rows = [{"id": f"clevr/val/{i:06d}", "objects": [object_row(o) for o in p.objects]} for i, p in enumerate(truth)]
    preds = [{"id": r["id"], "program": format_program(perturbed(p, rng), CLEVR)} for r, p in zip(rows, truth)]
    preds[3]["program"] = "add(shape='cube', color="  # one unparseable prediction
    return score_predictions(preds, rows, bootstrap=500, seed=2)["results"]["clevr/val"], truth, preds


def test_every_clevr_interval_brackets_its_estimate(clevr_group):
    group, _, _ = clevr_group
    assert {"parse_rate", "count_acc", "loc_l2_mean", "f1@0.5", "recall@0.25", "attr_acc.color"} <= set(group["ci95"])
    assert 0 < group["f1@0.5"] < 1 and group["parse_rate"] == pytest.approx(59 / 60)
    assert_intervals_bracket(group)


def test_clevr_intervals_are_the_bootstrap_of_the_per_scene_values(clevr_group):
    # The count accuracy's interval, recomputed from per-scene counts taken from the programs themselves
    group, truth, preds = clevr_group
    from igbench.program import parse_lenient

    n_pred = np.array([len(parse_lenient(p["program"], CLEVR).program) for p in preds])
    n_gt = np.array([len(p) for p in truth])
    assert group["count_acc"] == pytest.approx(np.mean(n_pred == n_gt))
    assert group["ci95"]["count_acc"] == pytest.approx(direct_mean_interval(n_pred == n_gt, 500, 2, 0.95).tolist(), rel=1e-12)
    assert group["ci95"]["count_abs_err"] == pytest.approx(
        direct_mean_interval(np.abs(n_pred - n_gt), 500, 2, 0.95).tolist(), rel=1e-12)


def pose_rows_and_predictions(n, seed):
    rng = np.random.default_rng(seed)
    names = ["mug", "bowl", "table", "box", "chair"]
    rows, preds = [], []
    for i in range(n):
        R = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        name, loc = names[i % len(names)], rng.uniform(-0.2, 0.2, 3)
        sid = f"so3/test/{i:06d}"
        rows.append({"id": sid, "objects": [{"object": name, "material": "steel", "loc": loc.tolist(),
                                              "rotation": list(from_matrix(R, "euler")), "R_world": R.tolist()}]})
        off = Rotation.from_rotvec(rng.normal(0, 0.15, 3)).as_matrix() @ R  # a few degrees to ~20 off
        material = "steel" if rng.uniform() < 0.7 else "wood"
        preds.append({"id": sid, "objects": [{"object": name, "material": material,
                                              "loc": (loc + rng.normal(0, 0.01, 3)).tolist(),
                                              "rotation": list(from_matrix(off, "euler"))}]})
    return rows, preds


def test_every_pose_interval_brackets_its_estimate():
    rows, preds = pose_rows_and_predictions(40, 0)
    group = score_predictions(preds, rows, bootstrap=400)["results"]["so3/test"]
    assert {"rot_recall@10", "mssd_ar", "add_rel_mean", "attr_acc.material"} <= set(group["ci95"])
    assert 0 < group["rot_recall@10"] < 1 and 0 < group["attr_acc"]["material"] < 1
    assert group["mspd_px_mean"] is None and group["ci95"].get("mspd_ar") is None  # rows without a camera
    assert_intervals_bracket(group)
    # one object per scene: rotation recall is a plain mean over scenes
    hits = np.array([r < 10 for r in _rotation_errors(rows, preds)])
    assert group["rot_recall@10"] == pytest.approx(hits.mean())
    assert group["ci95"]["rot_recall@10"] == pytest.approx(direct_mean_interval(hits, 400, 0, 0.95).tolist(), rel=1e-12)


def _rotation_errors(rows, preds):
    from igbench.score.pose import object_model, pose_pair_errors

    out = []
    for row, pred in zip(rows, preds):
        truth, guess = row["objects"][0], pred["objects"][0]
        R_est = Rotation.from_euler("xyz", guess["rotation"]).as_matrix()
        model = object_model(SO3.library[truth["object"]])
        out.append(pose_pair_errors(R_est, np.array(guess["loc"]), np.array(truth["R_world"]), np.array(truth["loc"]), model)["rot_err_deg"])
    return out


def test_every_dot2d_interval_brackets_its_estimate():
    rng = np.random.default_rng(7)
    truth = rng.uniform(0.1, 0.9, (50, 2))
    rows = [{"id": f"dot2d/test/{i:06d}", "objects": [{"loc": xy.round(3).tolist()}]} for i, xy in enumerate(truth)]
    guesses = np.clip(truth + rng.normal(0, 0.05, truth.shape), 0, 1).round(3)
    preds = [{"id": r["id"], "program": f"add(loc=({x:.3f}, {y:.3f}))"} for r, (x, y) in zip(rows, guesses)]
    group = score_predictions(preds, rows, bootstrap=300)["results"]["dot2d/test"]
    errors = np.linalg.norm(guesses - truth.round(3), axis=1)
    assert group["pos_err_mean"] == pytest.approx(errors.mean())
    assert group["ci95"]["pos_err_mean"] == pytest.approx(direct_mean_interval(errors, 300, 0, 0.95).tolist(), rel=1e-9)
    assert_intervals_bracket(group)
