"""Parameter recovery over many scenes: encode programs as flat arrays, then run the pure metrics of
`igbench.metrics.params` on padded blocks of scenes. No per-object Python in the hot path: the only loop
over scenes is scipy's Hungarian solver."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from igbench.metrics import params as M
from igbench.metrics.stats import bootstrap_ratios, percentile_interval
from igbench.program import Program
from igbench.task import Task

BLOCK = 4096  # scenes per padded block (bounds memory: block x P x G x 3 floats)


@dataclass
class ObjectTable:
    """All objects of B scenes, flat. `scene` is non-decreasing; `index` is the object's position in its
    program as written. Attribute codes index the task's `values` lists (-1 never occurs after parsing)."""

    scene: np.ndarray  # (N,) int64
    index: np.ndarray  # (N,) int64
    loc: np.ndarray  # (N, 3) float64
    attrs: np.ndarray  # (N, A) int16
    yaw: np.ndarray  # (N,) float64, NaN where the program gives none


def encode(programs: list[Program], task: Task) -> ObjectTable:
    """Programs -> ObjectTable (one Python step per object: this is the parsing side, not the hot path)."""
    names = list(task.categorical)
    codes = {name: {v: i for i, v in enumerate(task.categorical[name].values)} for name in names}
    scene, index, loc, attrs, yaw = [], [], [], [], []
    for b, program in enumerate(programs):
        for k, obj in enumerate(program.objects):
            scene.append(b)
            index.append(k)
            loc.append(obj.numbers["loc"])
            attrs.append([codes[n][obj.attrs[n]] for n in names])
            rot = obj.numbers.get("rotation")
            yaw.append(rot[0] if rot else math.nan)
    n_attr = len(names)
    return ObjectTable(
        np.asarray(scene, np.int64), np.asarray(index, np.int64),
        np.asarray(loc, float).reshape(-1, 3), np.asarray(attrs, np.int16).reshape(-1, n_attr),
        np.asarray(yaw, float),
    )


def canonical_order(table: ObjectTable) -> ObjectTable:
    """Objects sorted by (scene, x, y, z): the ranking used for AP, independent of the order a model wrote
    its objects in (LLM outputs carry no confidences)."""
    order = np.lexsort((table.loc[:, 2], table.loc[:, 1], table.loc[:, 0], table.scene))
    return ObjectTable(table.scene[order], table.index[order], table.loc[order], table.attrs[order], table.yaw[order])


@dataclass
class Padded:
    loc: np.ndarray  # (B, M, 3)
    attrs: np.ndarray  # (B, M, A)
    yaw: np.ndarray  # (B, M)
    index: np.ndarray  # (B, M) original index, -1 for padding
    valid: np.ndarray  # (B, M)
    count: np.ndarray  # (B,)


def pad(table: ObjectTable, lo: int, hi: int) -> Padded:
    """The objects of scenes lo..hi-1 as padded arrays (vectorised scatter)."""
    a, b = np.searchsorted(table.scene, [lo, hi])
    scene = table.scene[a:b] - lo
    n = hi - lo
    count = np.bincount(scene, minlength=n)
    width = max(int(count.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    slot = np.arange(b - a) - starts[scene]
    n_attr = table.attrs.shape[1]
    out = Padded(np.zeros((n, width, 3)), np.full((n, width, n_attr), -1, np.int16), np.full((n, width), np.nan),
                 np.full((n, width), -1, np.int64), np.zeros((n, width), bool), count)
    out.loc[scene, slot] = table.loc[a:b]
    out.attrs[scene, slot] = table.attrs[a:b]
    out.yaw[scene, slot] = table.yaw[a:b]
    out.index[scene, slot] = table.index[a:b]
    out.valid[scene, slot] = True
    return out


@dataclass
class ParamStats:
    """Everything the aggregate needs: per-scene sums (columns), matched pairs, AP detection flags."""

    n_scenes: int
    attr_names: list[str]
    thresholds: tuple[float, ...]
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (B,)
    pairs: dict[str, np.ndarray] = field(default_factory=dict)  # scene, pred, gt, dist, pred_attr, gt_attr, yaw_err
    ap_flags: dict[float, np.ndarray] = field(default_factory=dict)  # t -> ranked TP flags of all predictions


def yaw_periods(task: Task) -> np.ndarray:
    """Symmetry period in degrees per shape code (NaN: yaw not scored for that shape)."""
    periods = task.spec.get("rotation_period_deg") or {}
    shapes = task.categorical["shape"].values if "shape" in task.categorical else ()
    return np.array([float(periods.get(s, math.nan)) for s in shapes] or [math.nan])


def parameter_stats(pred: ObjectTable, gt: ObjectTable, n_scenes: int, attr_names: list[str],
                    periods: np.ndarray, thresholds=M.THRESHOLDS, block: int = BLOCK) -> ParamStats:
    """Match and measure every scene. `pred` should be in canonical order (see canonical_order)."""
    stats = ParamStats(n_scenes, list(attr_names), tuple(thresholds))
    cols: dict[str, list] = {}
    pairs: dict[str, list] = {}
    flags: dict[float, list] = {t: [] for t in thresholds}
    shape_col = attr_names.index("shape") if "shape" in attr_names else None
    for lo in range(0, n_scenes, block):
        hi = min(lo + block, n_scenes)
        P, G = pad(pred, lo, hi), pad(gt, lo, hi)
        dist = M.pairwise_distances(P.loc, G.loc)
        s, r, c = M.hungarian_match(dist, P.count, G.count)
        d = dist[s, r, c]
        pa, ga = P.attrs[s, r], G.attrs[s, c]
        eq = pa == ga
        yaw_err = np.full(len(s), np.nan)
        if shape_col is not None and len(s):
            gshape = ga[:, shape_col].astype(np.int64)
            period = periods[np.clip(gshape, 0, len(periods) - 1)]
            scored = np.isfinite(period) & (pa[:, shape_col] == ga[:, shape_col])
            pyaw = np.nan_to_num(P.yaw[s, r], nan=0.0)  # absent predicted yaw means 0
            gyaw = np.nan_to_num(G.yaw[s, c], nan=0.0)
            yaw_err[scored] = M.yaw_error_deg(pyaw[scored], gyaw[scored], period[scored])
        n = hi - lo
        block_cols = {
            "n_pred": P.count.astype(float), "n_gt": G.count.astype(float),
            "count_ok": (P.count == G.count).astype(float),
            "count_abs_err": np.abs(P.count - G.count).astype(float),
            "n_pairs": np.bincount(s, minlength=n).astype(float),
            "loc_err_sum": np.bincount(s, weights=d, minlength=n),
            "rot_pairs": np.bincount(s, weights=np.isfinite(yaw_err), minlength=n),
            "rot_err_sum": np.bincount(s, weights=np.nan_to_num(yaw_err), minlength=n),
        }
        for a, name in enumerate(attr_names):
            block_cols[f"attr_ok:{name}"] = np.bincount(s, weights=eq[:, a], minlength=n)
        all_eq = eq.all(axis=1)
        best, best_d = M.nearest_attribute_match(dist, P.attrs, G.attrs, G.valid)
        for t in thresholds:
            block_cols[f"tp@{M.threshold_key(t)}"] = np.bincount(s, weights=M.true_positives(d, all_eq, t), minlength=n)
            flags[t].append(M.slot_attention_claims(best, best_d, P.valid, t)[P.valid])
        for key, value in block_cols.items():
            cols.setdefault(key, []).append(value)
        for key, value in {"scene": s + lo, "pred": P.index[s, r], "gt": G.index[s, c], "dist": d,
                           "pred_attr": pa, "gt_attr": ga, "yaw_err": yaw_err}.items():
            pairs.setdefault(key, []).append(value)
    stats.columns = {k: np.concatenate(v) for k, v in cols.items()}
    stats.pairs = {k: np.concatenate(v) for k, v in pairs.items()} if pairs else {}
    stats.ap_flags = {t: np.concatenate(v) if v else np.zeros(0, bool) for t, v in flags.items()}
    return stats


def none_if_nan(x):
    return None if x is None or not np.isfinite(x) else float(x)


def aggregate_params(stats: ParamStats, parsed_ok: np.ndarray, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Headline numbers (via the pure metric functions) and their bootstrap 95% intervals (over scenes)."""
    c, p = stats.columns, stats.pairs
    out: dict = {"n": stats.n_scenes}
    ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ones = np.ones(stats.n_scenes)
    out["parse_rate"] = M.parse_rate(parsed_ok) if stats.n_scenes else None
    ratios["parse_rate"] = (np.asarray(parsed_ok, float), ones)
    if stats.n_scenes:
        out["count_acc"] = M.count_accuracy(c["n_pred"], c["n_gt"])
        out["count_abs_err"] = M.abs_count_error(c["n_pred"], c["n_gt"])
    ratios["count_acc"] = (c.get("count_ok", ones * 0), ones)
    ratios["count_abs_err"] = (c.get("count_abs_err", ones * 0), ones)
    has_pairs = bool(len(p.get("dist", ())))
    acc = M.attribute_accuracy(p["pred_attr"], p["gt_attr"]) if has_pairs else np.full(len(stats.attr_names), np.nan)
    out["attr_acc"] = {name: none_if_nan(acc[a]) for a, name in enumerate(stats.attr_names)}
    for name in stats.attr_names:
        ratios[f"attr_acc.{name}"] = (c[f"attr_ok:{name}"], c["n_pairs"])
    errors = p["dist"] if has_pairs else np.zeros(0)  # = position_errors(pred_loc, gt_loc) of the pairs
    out["loc_l2_mean"] = none_if_nan(np.mean(errors)) if len(errors) else None
    out["loc_l2_median"] = none_if_nan(np.median(errors)) if len(errors) else None
    ratios["loc_l2_mean"] = (c["loc_err_sum"], c["n_pairs"])
    yaw = p["yaw_err"][np.isfinite(p["yaw_err"])] if has_pairs else np.zeros(0)
    out["rot_err_deg_mean"] = float(np.mean(yaw)) if len(yaw) else None
    out["rot_err_deg_median"] = float(np.median(yaw)) if len(yaw) else None
    out["rot_pairs"] = int(len(yaw))
    ratios["rot_err_deg_mean"] = (c["rot_err_sum"], c["rot_pairs"])
    n_pred, n_gt = float(c["n_pred"].sum()), float(c["n_gt"].sum())
    out["objects"] = {"predicted": int(n_pred), "reference": int(n_gt), "matched": int(c["n_pairs"].sum())}
    for t in stats.thresholds:
        key = M.threshold_key(t)
        prec, rec, f1 = M.precision_recall_f1(float(c[f"tp@{key}"].sum()), n_pred, n_gt)
        out[f"precision@{key}"], out[f"recall@{key}"], out[f"f1@{key}"] = prec, rec, f1
        out[f"ap@{key}"] = none_if_nan(M.average_precision(stats.ap_flags[t], int(n_gt)))
        ratios[f"precision@{key}"] = (c[f"tp@{key}"], c["n_pred"])
        ratios[f"recall@{key}"] = (c[f"tp@{key}"], c["n_gt"])
    out["ci95"] = bootstrap_intervals(ratios, stats.thresholds, n_resamples, seed)
    return out


def bootstrap_intervals(ratios: dict, thresholds, n_resamples: int, seed: int) -> dict:
    """One bootstrap for all ratio statistics at once (same resamples for every column); F1 from P and R."""
    if not ratios or n_resamples <= 0:
        return {}
    names = list(ratios)
    num = np.column_stack([ratios[n][0] for n in names])
    den = np.column_stack([ratios[n][1] for n in names])
    if len(num) == 0:
        return {}
    draws = bootstrap_ratios(num, den, n_resamples, seed)
    columns = dict(zip(names, draws.T))
    for t in thresholds:
        key = M.threshold_key(t)
        if f"precision@{key}" in columns:
            P, R = columns[f"precision@{key}"], columns[f"recall@{key}"]
            with np.errstate(invalid="ignore", divide="ignore"):
                columns[f"f1@{key}"] = np.where(P + R > 0, 2 * P * R / np.where(P + R > 0, P + R, 1), 0.0)
    out = {}
    for name, values in columns.items():
        lo, hi = percentile_interval(values[:, None])
        out[name] = [none_if_nan(lo[0]), none_if_nan(hi[0])]
    return out
