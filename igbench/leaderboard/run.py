"""The leaderboard: `make benchmark [scale=small|cpu|dot2d|paper]` = `python -m igbench.leaderboard.run --scale S`.

Runs every step as the igbench command a user would type (so each row of the table records the exact
commands that produced it), resumably: rendering, training and prediction skip what is already done.
Steps 2-4 run row by row, so a long benchmark writes each row's results as soon as that row is done;
`--jobs N` runs N rows at once, each subprocess with OMP_NUM_THREADS = cores / N (unless set), which on a
small CPU machine is faster than one row at a time on every core; rows with the scale's longest `minutes`
start first, and a refine entry starts as soon as its base row is done.

    1. render      igbench render --split S --n N ...                 DATA/<task>/<split>
    2. train       igbench train --model M --data DATA/<task> ...     RUNS/<model>
    3. predict     igbench predict --checkpoint RUNS/<model> ...      RUNS/<model>/predictions/<split>.jsonl
    4. score       igbench score ... --out RUNS/<model>/score          -> RESULTS/<model>/<task>/scores.json
    5. refine      igbench refine --model render-compare --base <base predictions> ...
                   scored on the refined samples only, next to its base on the same samples
    6. table       RESULTS/README.md (ID and OOD side by side, provenance per row) and RESULTS/benchmark.png

A scale is a YAML file (igbench/leaderboard/configs/<scale>.yaml, or a path); `--only table` rebuilds the
table from the results already there.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from igbench.dataset import split_fingerprint
from igbench.errors import UserError, did_you_mean
from igbench.files import write_json_atomic, write_text_atomic

STEPS = ("render", "train", "predict", "score", "refine", "table")
ROW_STEPS = ("train", "predict", "score")  # run per model row, in this order
SCALES_DIR = Path(__file__).parent / "configs"


@dataclass
class RenderSection:
    resolution: str = "96x64"
    samples: int = 4
    workers: int = 2
    seed: int = 0
    device: str = "cpu"


@dataclass
class ScoreSection:
    render: bool = True
    render_limit: Optional[int] = None  # image metrics on the first N samples of each split (default: all)
    workers: int = 2
    bootstrap: int = 1000
    render_device: str = "cpu"


@dataclass
class ModelEntry:
    name: str = ""
    label: Optional[str] = None  # the row's name and its run and results folders; default: name
    config: Optional[str] = None  # preset name or YAML path; null: the model's default
    overrides: list[str] = field(default_factory=list)
    launcher: list[str] = field(default_factory=list)  # e.g. [accelerate, launch, -m, igbench]; default: igbench
    predict_args: list[str] = field(default_factory=list)  # extra `igbench predict` arguments and predict.* overrides
    note: Optional[str] = None  # printed under the table, e.g. what a row's numbers do (not) mean
    minutes: Optional[float] = None  # about how long the row takes on the scale's machine (see run_at_once)
    # Train the row once per seed: rows `<row>-seed<k>` with train.seed=k, and the table adds their mean and
    # spread across seeds (a finding that holds on one seed only is not a finding).
    seeds: list[int] = field(default_factory=list)
    group: Optional[str] = None  # set for the rows made from `seeds`: the row they were made from
    # Train the row once per training-set size: rows `<row>-n<N>` with train.train_samples=N (the split's
    # first N samples), and the table plots the position error against N (the data-efficiency curve).
    # With `seeds` too, every size is trained once per seed.
    train_sizes: list[int] = field(default_factory=list)
    curve: Optional[str] = None  # set for the rows made from `train_sizes`: the row they were made from
    train_size: Optional[int] = None  # ... and the N of this one

    @property
    def row(self) -> str:
        return self.label or self.name


@dataclass
class RefineEntry:
    name: str = "render-compare"
    base: str = "cnn-set"  # a model of `models` whose predictions are refined
    limit: Optional[int] = 20  # refine the first N samples of each eval split; null: all
    config: Optional[str] = None
    overrides: list[str] = field(default_factory=list)
    minutes: Optional[float] = None  # about how long refining takes on the scale's machine (see run_at_once)


@dataclass
class TargetEntry:
    """A level the scale's best learned row should reach on the ID split, e.g. count accuracy >= 0.8; the
    table says whether it does, and whether its 95% interval is clear of `baseline`'s."""
    metric: str = ""  # a key of scores.json's results, dotted into dicts (attr_acc.color)
    at_least: Optional[float] = None
    at_most: Optional[float] = None
    baseline: str = "prior"


@dataclass
class CurvePoint:
    """A data-efficiency point another scale has measured: the row in `results` (a results folder of that scale's
    row, holding <task>/scores.json), trained with the same commands on `train_size` samples, shown on `curve`
    (a model entry of this scale with `train_sizes`) instead of training it again."""
    curve: str = ""
    train_size: int = 0
    results: str = ""


@dataclass
class LeaderboardConfig:
    task: str = "clevr"
    data: str = "data/bench"
    runs: str = "runs/bench"
    results: str = "results"
    render: RenderSection = field(default_factory=RenderSection)
    splits: dict = field(default_factory=lambda: {"train": 500, "test": 100, "ood": 100})
    eval_splits: list[str] = field(default_factory=lambda: ["test", "ood"])
    splits_note: str = ""  # the table's words on what makes the ID and OOD splits differ
    preface: str = ""  # printed under the table's title, e.g. where the headline table of another scale is
    score: ScoreSection = field(default_factory=ScoreSection)
    models: list[ModelEntry] = field(default_factory=list)
    refine: list[RefineEntry] = field(default_factory=list)
    targets: list[TargetEntry] = field(default_factory=list)
    curve_points: list[CurvePoint] = field(default_factory=list)
    budget_hours: Optional[float] = None  # the wall-clock time the whole scale should take (the table checks it)


def load_leaderboard_config(scale: str, overrides=()) -> LeaderboardConfig:
    from igbench.config import load_config

    path = Path(scale) if scale.endswith((".yaml", ".yml")) else SCALES_DIR / f"{scale}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in SCALES_DIR.glob("*.yaml"))
        raise UserError(f"unknown benchmark scale '{scale}'; scales: {', '.join(known)} (or a YAML path)")
    config = load_config(LeaderboardConfig, str(path), list(overrides))
    config.models = [row for entry in config.models for sized in one_row_per_train_size(entry)
                     for row in one_row_per_seed(sized)]
    for entry in config.models:
        _check_model(entry)
    rows = [m.row for m in config.models]
    largest = max((m.train_size for m in config.models if m.train_size), default=0)
    if "train" in config.splits and largest > int(config.splits["train"]):
        raise UserError(f"train_sizes reach {largest} but the train split has {config.splits['train']} samples")
    if len(set(rows)) < len(rows):
        raise UserError("two benchmark models share a row name: give one a `label`")
    for target in config.targets:
        if (target.at_least is None) == (target.at_most is None):
            raise UserError(f"target '{target.metric}' needs exactly one of at_least and at_most")
        if target.baseline not in rows:
            raise UserError(f"target '{target.metric}': baseline '{target.baseline}' is not one of the rows ({', '.join(rows)})")
    curves = {m.curve for m in config.models if m.curve}
    for point in config.curve_points:
        if point.curve not in curves:
            known = ", ".join(sorted(curves)) or "none: no model entry has train_sizes"
            raise UserError(f"curve point of '{point.curve}': not a curve of this scale ({known})")
        if point.train_size < 1 or not point.results:
            raise UserError(f"curve point of '{point.curve}': needs a train_size >= 1 and a results folder")
    for entry in config.refine:
        _check_refiner(entry.name)
        if entry.base not in rows:
            raise UserError(f"refine base '{entry.base}' is not one of the benchmark's rows ({', '.join(rows)})")
    return config


def one_row_per_seed(entry: ModelEntry) -> list[ModelEntry]:
    """An entry with `seeds` as one row per seed, each trained with train.seed=k; others as they are."""
    import dataclasses

    if not entry.seeds:
        return [entry]
    if len(set(entry.seeds)) < len(entry.seeds):
        raise UserError(f"benchmark row '{entry.row}': a seed appears twice in seeds {entry.seeds}")
    return [dataclasses.replace(entry, label=f"{entry.row}-seed{k}", overrides=[*entry.overrides, f"train.seed={k}"],
                                seeds=[], group=entry.row) for k in entry.seeds]


def one_row_per_train_size(entry: ModelEntry) -> list[ModelEntry]:
    """An entry with `train_sizes` as one row per size N, each trained on the split's first N samples."""
    import dataclasses

    if not entry.train_sizes:
        return [entry]
    sizes = entry.train_sizes
    if len(set(sizes)) < len(sizes) or min(sizes) < 1:
        raise UserError(f"benchmark row '{entry.row}': train_sizes must be distinct positive numbers, got {sizes}")
    return [dataclasses.replace(entry, label=f"{entry.row}-n{n}", overrides=[*entry.overrides, f"train.train_samples={n}"],
                                train_sizes=[], curve=entry.row, train_size=n) for n in sizes]


def _check_model(entry: ModelEntry) -> None:
    """A one-line UserError for an unknown model, preset or config key now, not hours later at its turn."""
    from igbench.config import load_config
    from igbench.models import model_module

    module = model_module(entry.name)
    try:
        load_config(module.CONFIG_CLASS, entry.config or module.DEFAULT_CONFIG, list(entry.overrides))
    except UserError as err:
        raise UserError(f"benchmark row '{entry.row}': {err}") from None


def _check_refiner(name: str) -> None:
    from igbench.models import refiner_module

    refiner_module(name)


def refiner_config_text(entry: RefineEntry) -> str:
    """The resolved config a refine entry runs with, as YAML (what the table records)."""
    import yaml

    from igbench.config import load_config, to_dict
    from igbench.models import refiner_module

    module = refiner_module(entry.name)
    config = load_config(module.CONFIG_CLASS, entry.config or module.DEFAULT_CONFIG, list(entry.overrides))
    return yaml.safe_dump(to_dict(config), sort_keys=False)


class Leaderboard:
    def __init__(self, config: LeaderboardConfig, scale: str, dry_run: bool = False, jobs: int = 1):
        self.c, self.scale, self.dry_run, self.jobs = config, scale, dry_run, jobs
        self.data = Path(config.data)
        self.task_dir = self.data / config.task
        self.runs = Path(config.runs)
        self.results = Path(config.results)
        self.log: list[dict] = []
        self.log_lock = threading.Lock()
        self.env = dict(os.environ)
        if jobs > 1:  # N rows at once share the cores: one thread pool each of cores / N
            self.env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))

    # --------------------------------------------------------------------------------------- running

    def sh(self, argv: list[str], what: str) -> None:
        text = shlex.join(argv)
        print(f"igbench leaderboard: {what}: {text}", flush=True)
        if self.dry_run:
            return
        started, tick = time.time(), time.perf_counter()
        proc = subprocess.run(self.executable(argv), env=self.env)
        seconds = time.perf_counter() - tick
        with self.log_lock:
            self.log.append({"what": what, "command": text, "seconds": round(seconds, 1), "rc": proc.returncode,
                             "started": round(started, 1), "jobs": self.jobs})
            self._save_log()
        if proc.returncode != 0:
            raise UserError(f"step '{what}' failed (exit {proc.returncode}): {text}")

    def _save_log(self) -> None:
        path = self.runs / "bench_log.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(self.log[-1]) + "\n")

    def igbench(self, *args: str, launcher=()) -> list[str]:
        """A command as recorded in the table (`igbench ...`, or the model's launcher)."""
        return (list(launcher) if launcher else ["igbench"]) + [str(a) for a in args]

    @staticmethod
    def executable(argv: list[str]) -> list[str]:
        """Run `igbench` from this Python's environment (the venv need not be on PATH)."""
        if argv and argv[0] == "igbench":
            script = Path(sys.executable).with_name("igbench")
            return ([str(script)] if script.exists() else [sys.executable, "-m", "igbench"]) + argv[1:]
        return argv

    # ------------------------------------------------------------------------------------------ steps

    def render_cmd(self, split: str, n: int) -> list[str]:
        r = self.c.render
        return self.igbench("render", "--task", self.c.task, "--split", split, "--n", n, "--out", self.data,
                            "--resolution", r.resolution, "--samples", r.samples, "--workers", r.workers,
                            "--seed", r.seed, "--device", r.device, "--quiet")

    def step_render(self) -> None:
        for split, n in self.c.splits.items():
            self.sh(self.render_cmd(split, int(n)), f"render {split}")

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def train_cmd(self, entry: ModelEntry) -> list[str]:
        args = ["train", "--model", entry.name, "--data", self.task_dir, "--output", self.run_dir(entry.row), "--quiet"]
        if entry.config:
            args += ["--config", entry.config]
        return self.igbench(*args, *entry.overrides, launcher=entry.launcher)

    def step_train(self, entry: ModelEntry) -> None:
        run = self.run_dir(entry.row)
        if (run / "bench_trained").exists():
            print(f"igbench leaderboard: {entry.row} already trained ({run})")
            return
        cmd = self.train_cmd(entry)
        if (run / "config.yaml").exists():
            cmd.append("--resume")
        self.sh(cmd, f"train {entry.row}")
        if not self.dry_run:
            write_text_atomic(run / "bench_trained", shlex.join(cmd) + "\n")

    def predictions(self, name: str, split: str) -> Path:
        return self.run_dir(name) / "predictions" / f"{split}.jsonl"

    def predict_cmd(self, name: str, split: str) -> list[str]:
        extra = next((m.predict_args for m in self.c.models if m.row == name), [])
        return self.igbench("predict", "--checkpoint", self.run_dir(name), "--data", self.task_dir, "--split", split,
                            "--out", self.predictions(name, split), "--quiet", *extra)

    def step_predict(self, entry: ModelEntry) -> None:
        for split in self.c.eval_splits:
            self.sh(self.predict_cmd(entry.row, split), f"predict {entry.row} {split}")

    def score_cmd(self, name: str) -> list[str]:
        s = self.c.score
        args = ["score", self.run_dir(name) / "predictions" / "all.jsonl", "--data", self.data,
                "--out", self.run_dir(name) / "score", "--bootstrap", s.bootstrap, "--quiet"]
        if s.render:
            args += ["--render", "--workers", s.workers, "--render-device", s.render_device]
            if s.render_limit is not None:
                args += ["--render-limit", s.render_limit]
        return self.igbench(*args)

    def step_score(self, entry: ModelEntry) -> None:
        merged = self.run_dir(entry.row) / "predictions" / "all.jsonl"
        if not self.dry_run:
            lines = []
            for split in self.c.eval_splits:
                lines += [l for l in self.predictions(entry.row, split).read_text().splitlines() if l.strip()]
            text = "\n".join(lines) + "\n"
            if self.already_scored(entry.row, text):
                print(f"igbench leaderboard: {entry.row} already scored on these predictions and data")
                return
            write_text_atomic(merged, text)
        self.sh(self.score_cmd(entry.row), f"score {entry.row}")
        if not self.dry_run:
            self.write_result(entry.row, entry)

    def already_scored(self, name: str, predictions_text: str) -> bool:
        """Whether the row's results hold scores of exactly these predictions against the splits as they
        are now, with the score settings of this scale (a resumed benchmark does not score a row twice)."""
        import hashlib

        path = self.results / name / self.c.task / "scores.json"
        if not path.exists():
            return False
        scores = json.loads(path.read_text())
        s = self.c.score
        config = scores.get("config", {})
        splits = scores.get("reference", {}).get("splits", {})
        return (scores.get("predictions_sha256") == hashlib.sha256(predictions_text.encode()).hexdigest()
                and (config.get("render"), config.get("render_limit"), config.get("bootstrap"))
                == (s.render, s.render_limit if s.render else None, s.bootstrap)
                and sorted(splits) == sorted(f"{self.c.task}/{split}" for split in self.c.eval_splits)
                and all(info.get("fingerprint") == split_fingerprint(self.task_dir / key.split("/", 1)[1])
                        for key, info in splits.items()))

    def write_result(self, name: str, entry: ModelEntry) -> None:
        import shutil

        out = self.results / name / self.c.task
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.run_dir(name) / "score" / "scores.json", out / "scores.json")
        run = self.run_dir(name)
        config_text = (run / "config.yaml").read_text() if (run / "config.yaml").exists() else ""
        row = {"row": name, "model": entry.name, "scale": self.scale,
               "commands": [shlex.join(self.train_cmd(entry))]
               + [shlex.join(self.predict_cmd(name, s)) for s in self.c.eval_splits] + [shlex.join(self.score_cmd(name))],
               "config": config_text, "data": self.fingerprints()}
        write_json_atomic(out / "row.json", row, sort_keys=False)

    def fingerprints(self) -> dict:
        out = {}
        for split in self.c.splits:
            folder = self.task_dir / split
            if any((folder / "data").glob("*.parquet")):
                out[split] = split_fingerprint(folder)
        return out

    def refine_name(self, entry: RefineEntry) -> str:
        return f"{entry.name}+{entry.base}"

    def step_refine(self, entry: RefineEntry) -> None:
        name = self.refine_name(entry)
        commands = []
        for split in self.c.eval_splits:
            out = self.run_dir(name) / "predictions" / f"{split}.jsonl"
            args = ["refine", "--model", entry.name, "--base", self.predictions(entry.base, split),
                    "--data", self.task_dir, "--split", split, "--out", out, "--quiet"]
            if entry.config:
                args += ["--config", entry.config]
            if entry.limit is not None:
                args += ["--limit", entry.limit]
            cmd = self.igbench(*args, *entry.overrides)
            commands.append(shlex.join(cmd))
            self.sh(cmd, f"refine {entry.base} {split}")
        if not self.dry_run:
            self.score_refined(entry, name, commands)

    def score_refined(self, entry: RefineEntry, name: str, commands: list[str]) -> None:
        """Scores of the refined samples and of the base's predictions for the same samples."""
        import dataclasses

        from igbench.score import score_predictions
        from igbench.score.reference import load_reference

        refined, base, stats = [], [], {}
        for split in self.c.eval_splits:
            lines = [json.loads(l) for l in (self.run_dir(name) / "predictions" / f"{split}.jsonl").read_text().splitlines() if l.strip()]
            by_id = {json.loads(l)["id"]: json.loads(l) for l in self.predictions(entry.base, split).read_text().splitlines() if l.strip()}
            refined += lines
            base += [by_id[r["id"]] for r in lines if r["id"] in by_id]
            done = [r for r in lines if r.get("renders")]
            stats[f"{self.c.task}/{split}"] = {
                "n": len(lines), "renders_mean": _mean([r["renders"] for r in lines]),
                "seconds_mean": _mean([r.get("seconds", 0.0) for r in lines]),
                "image_loss_before": _mean([r["loss_before"] for r in done if r.get("loss_before") is not None]),
                "image_loss_after": _mean([r["loss_after"] for r in done if r.get("loss_after") is not None]),
                "kept_base": sum(1 for r in lines if r.get("kept")),
            }
        ids = [r["id"] for r in refined]
        refs = load_reference(ids, self.data)
        subset = {k: dataclasses.replace(ref, rows={i: ref.rows[i] for i in ids if i in ref.rows}) for k, ref in refs.items()}
        opts = {"bootstrap": self.c.score.bootstrap, "progress": False}
        after = score_predictions(refined, subset, **opts)
        before = score_predictions(base, subset, **opts)
        out = self.results / name / self.c.task
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "scores.json", after, sort_keys=False)
        write_json_atomic(out / "base_scores.json", before, sort_keys=False)
        row = {"model": name, "scale": self.scale, "base": entry.base, "limit": entry.limit, "commands": commands,
               "config": refiner_config_text(entry), "data": self.fingerprints(), "refine": stats,
               "note": "scored on the refined samples only (the first `limit` of each split); base_scores.json "
                       "scores the base model's predictions of the same samples"}
        write_json_atomic(out / "row.json", row, sort_keys=False)

    # ------------------------------------------------------------------------------------------ table

    def step_table(self) -> None:
        from igbench.leaderboard.table import write_table

        if self.dry_run:
            return
        path = write_table(self.c, self.scale, self.results, self.fingerprints(),
                           [shlex.join(self.render_cmd(s, int(n))) for s, n in self.c.splits.items()],
                           log=self.runs / "bench_log.jsonl")
        print(f"igbench leaderboard: wrote {path}")

    def run(self, only: list[str], rows: list[str] = ()) -> None:
        """Render, then train, predict and score one row after another (so each row's result is written as
        soon as it is done; `rows`: only these), refine, and write the table. With `--jobs N`, N rows and
        refine entries at a time (run_at_once)."""
        def wanted(step):
            return not only or step in only

        def one_row(entry):
            for step in ROW_STEPS:
                if wanted(step):
                    getattr(self, f"step_{step}")(entry)

        if wanted("render"):
            self.step_render()
        todo = [entry for entry in self.c.models if not rows or entry.row in rows]
        refine = self.c.refine if wanted("refine") else []
        if self.jobs == 1:
            for entry in todo:
                one_row(entry)
            for entry in refine:
                self.step_refine(entry)
        else:
            self.run_at_once([Job(e.row, e.minutes, None, lambda e=e: one_row(e)) for e in todo]
                             + [Job(self.refine_name(e), e.minutes, e.base, lambda e=e: self.step_refine(e))
                                for e in refine])
        if wanted("table"):
            self.step_table()

    def run_at_once(self, jobs: list["Job"]) -> None:
        """`job.run()` for every job, `self.jobs` at a time. The longest start first, by their `minutes`
        (the scale's estimates; jobs without one after the rest, in the scale's order), so that no long
        job starts last and runs alone on an otherwise idle machine; a job with `after` starts once that
        job is done (a refine entry once its base row is), or at once when that job is not being run.
        After a failure nothing new starts; the running jobs finish (their results are kept) and the first
        failure is raised."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        names = {job.name for job in jobs}
        pending = sorted(jobs, key=lambda job: (job.minutes is None, -(job.minutes or 0)))
        done, failures, running = set(), [], {}
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while True:
                while len(running) < self.jobs and not failures:
                    ready = next((job for job in pending if job.after in done or job.after not in names), None)
                    if ready is None:
                        break
                    pending.remove(ready)
                    running[pool.submit(ready.run)] = ready
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = running.pop(future)
                    if future.exception() is None:
                        done.add(job.name)
                    else:
                        failures.append(future.exception())
        if failures:
            raise failures[0]


@dataclass(frozen=True)
class Job:
    """One unit of `Leaderboard.run_at_once`: a row's train, predict and score, or a refine entry."""
    name: str
    minutes: Optional[float]
    after: Optional[str]  # the name of the job this one needs done first
    run: Callable[[], None]


def _mean(values) -> Optional[float]:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igbench.leaderboard.run", description=__doc__.splitlines()[0])
    scales = " | ".join(sorted(p.stem for p in SCALES_DIR.glob("*.yaml")))
    parser.add_argument("--scale", default="small", help=f"{scales} | a YAML path (default: small)")
    parser.add_argument("--only", default="", help=f"comma-separated steps to run: {', '.join(STEPS)} (default: all)")
    parser.add_argument("--rows", default="", help="comma-separated rows to train, predict and score (default: all)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="rows to train, predict and score at once (default: 1); each gets cores / N threads")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. splits.train=200 results=results/try")
    args = parser.parse_args(argv)
    try:
        only = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in only if s not in STEPS]
        if bad:
            raise UserError(f"unknown step '{bad[0]}'; steps: {', '.join(STEPS)}")
        config = load_leaderboard_config(args.scale, args.overrides)
        rows = [r.strip() for r in args.rows.split(",") if r.strip()]
        known = [m.row for m in config.models]
        for row in rows:
            if row not in known:
                raise UserError(f"unknown row '{row}'{did_you_mean(row, known)}; rows: {', '.join(known)}")
        if args.jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {args.jobs}")
        tick = time.perf_counter()
        Leaderboard(config, args.scale, args.dry_run, args.jobs).run(only, rows)
        print(f"igbench leaderboard: done in {(time.perf_counter() - tick) / 60:.1f} min")
    except UserError as err:
        print(f"igbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("igbench leaderboard: interrupted; what finished is kept, and the same command resumes", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
