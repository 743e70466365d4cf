"""`igbench bench score`: parameter metrics over many synthetic CLEVR scenes; prints scenes/s (not a test)."""
from __future__ import annotations

import time

import numpy as np

from igbench.score.params import ObjectTable, aggregate_params, canonical_order, parameter_stats, yaw_periods
from igbench.task import load_task


def synthetic_tables(n_scenes: int, seed: int = 0) -> tuple[ObjectTable, ObjectTable]:
    """Ground truth with 3-10 objects per scene and predictions that perturb it: noisy positions and yaws,
    ~5% attributes wrong, ~5% objects dropped (all vectorised)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, 11, n_scenes)
    scene = np.repeat(np.arange(n_scenes), counts)
    n = scene.size
    index = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    loc = np.column_stack([rng.uniform(-3, 3, (n, 2)), rng.choice([0.35, 0.7], n)])
    attrs = np.column_stack([rng.integers(0, k, n) for k in (3, 8, 2, 2)]).astype(np.int16)
    yaw = np.where(attrs[:, 0] == 0, rng.uniform(-np.pi / 4, np.pi / 4, n), np.nan)
    gt = ObjectTable(scene, index, loc, attrs, yaw)
    keep = rng.uniform(size=n) > 0.05
    flip = rng.uniform(size=attrs.shape) < 0.05
    p_attrs = np.where(flip, (attrs + 1) % np.array([3, 8, 2, 2]), attrs).astype(np.int16)
    pred = ObjectTable(scene[keep], index[keep], (loc + rng.normal(0, 0.1, loc.shape))[keep], p_attrs[keep],
                       (yaw + rng.normal(0, 0.05, n))[keep])
    return pred, gt


def bench_score(n_scenes: int = 100_000, bootstrap: int = 1000) -> dict:
    task = load_task("clevr")
    pred, gt = synthetic_tables(n_scenes)
    tick = time.perf_counter()
    pred = canonical_order(pred)
    stats = parameter_stats(pred, gt, n_scenes, list(task.categorical), yaw_periods(task))
    metrics_s = time.perf_counter() - tick
    aggregate_params(stats, np.ones(n_scenes, bool), n_resamples=0)
    aggregate_s = time.perf_counter() - tick - metrics_s
    tick = time.perf_counter()
    aggregate_params(stats, np.ones(n_scenes, bool), n_resamples=bootstrap)
    bootstrap_s = time.perf_counter() - tick
    return {"scenes": n_scenes, "objects": int(gt.scene.size), "metrics_s": metrics_s, "aggregate_s": aggregate_s,
            "scenes_per_s": n_scenes / (metrics_s + aggregate_s), "bootstrap_s": bootstrap_s, "bootstrap": bootstrap}


def format_report(report: dict) -> str:
    return (f"igbench bench score: {report['scenes']} synthetic CLEVR scenes ({report['objects']} objects)\n"
            f"  parameter metrics: {report['metrics_s']:.2f} s + aggregate {report['aggregate_s']:.2f} s "
            f"= {report['scenes_per_s']:,.0f} scenes/s\n"
            f"  with a {report['bootstrap']}-resample bootstrap of every headline number: {report['bootstrap_s']:.2f} s")
