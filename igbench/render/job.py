"""`igbench render`: render a split of a task into a HuggingFace dataset, resumably.

Every finished sample is staged on disk by the worker that rendered it; whenever a shard's range of
indices is complete it becomes one parquet file and its staged files are removed. So a run stopped at
any point (Ctrl-C, `kill -9` of a worker or of this process) loses nothing it finished, and the same
command renders only what is missing.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import shutil
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from igbench import __version__
from igbench.render_settings import RenderSettings, parse_resolution
from igbench.dataset import finished_shards, num_shards, shard_path, split_dir, write_shard
from igbench.errors import UserError
from igbench.files import replaced_atomically
from igbench.shards import (DISK_FULL, FORMAT_VERSION, WriterLocks, check_format, damage, file_record, forget_shard,
                                   is_disk_full, read_config, record_shard, write_config)
from igbench.scene import sample_id
from igbench.task import Task, load_task

# Keys that change what a sample is; a resumed run must agree on all of them.
IDENTITY_KEYS = ("task", "split", "n", "seed", "resolution", "samples", "denoise", "depth", "shard_size", "rotation_rep",
                 "library", "from_clevr_scenes", "task_sha256")


@dataclass
class RenderConfig:
    task: str = "clevr"
    split: str = "train"
    n: int = 10
    out: str = "data"
    seed: int = 0
    workers: int = 1
    resolution: str | None = None  # WIDTHxHEIGHT; None: the task's default (CLEVR: 480x320)
    samples: int = RenderSettings.samples  # the tuned default (docs/performance.md)
    denoise: bool = True
    depth: bool = False  # also a depth map per sample (Blender tasks), the dataset's `depth` column
    device: str = "cpu"
    shard_size: int = 500
    shard: str = "0/1"  # "i/N": this job renders the parquet files k with k % N == i (cluster job arrays)
    max_retries: int = 2
    programs_only: bool = False
    rotation_rep: str | None = None  # pose tasks: euler | euler_int | aa | 6d | quat (default: the task's)
    assets: str | None = None  # pose tasks: a folder with manifest.yaml replacing the default objects
    from_clevr_scenes: str | None = None  # re-render scenes of an original CLEVR scene JSON instead of sampling


@dataclass
class RenderReport:
    root: Path
    n: int  # samples this job is responsible for (all of them unless --shard)
    rendered: int = 0
    already_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    timings: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failed


def validate(config: RenderConfig) -> tuple[Task, RenderSettings, Path]:
    """Check everything a user can get wrong before anything touches the disk."""
    task = load_task(config.task, config.rotation_rep, config.assets)
    config.assets = task.assets  # absolute, so readers elsewhere find the meshes
    if config.from_clevr_scenes:
        from igbench.compat.clevr_scenes import read_clevr_scenes

        if task.generator != "clevr":
            raise UserError(f"--from-clevr-scenes renders CLEVR scenes; --task is '{task.name}'")
        config.n = len(read_clevr_scenes(config.from_clevr_scenes, task, config.split))
        config.from_clevr_scenes = str(Path(config.from_clevr_scenes).resolve())
    else:
        task.check_split(config.split)
    if config.n <= 0:
        raise UserError(f"--n must be positive, got {config.n}")
    if config.workers < 1:
        raise UserError(f"--workers must be at least 1, got {config.workers}")
    if config.shard_size < 1:
        raise UserError(f"--shard-size must be at least 1, got {config.shard_size}")
    if config.seed < 0:
        raise UserError(f"--seed must be non-negative, got {config.seed}")
    if config.depth and task.renderer != "blender":
        raise UserError(f"--depth needs a task rendered in 3-D; '{task.name}' is drawn on a 2-D canvas")
    my_files(config)
    config.resolution = config.resolution or task.default_resolution
    width, height = parse_resolution(config.resolution)
    threads = 0 if config.workers == 1 else max(1, (os.cpu_count() or 1) // config.workers)
    settings = RenderSettings(width=width, height=height, samples=config.samples, denoise=config.denoise,
                              device=config.device, threads=threads, depth=config.depth)
    _check_writable(Path(config.out))
    return task, settings, split_dir(Path(config.out), task.name, config.split)


def run_render(config: RenderConfig, progress: bool = True) -> RenderReport:
    task, settings, root = validate(config)
    if config.programs_only:
        return write_programs(task, config, root, progress)
    saved = _saved_config(config, task, settings)
    _check_folder(root)
    with WriterLocks(root, my_files(config)):  # before anything is written: a second writer changes nothing
        _claim(root, saved)
        staging, data = root / "staging", root / "data"
        staging.mkdir(exist_ok=True)
        data.mkdir(exist_ok=True)
        total = num_shards(config.n, config.shard_size)
        shards = _ShardTracker(task, config, root, total)
        mine = [i for k in my_files(config) for i in shards.file_range(k)]
        report = RenderReport(root, len(mine), already_done=sum(i in shards.done for i in mine))
        todo = [i for i in mine if i not in shards.done]
        if todo:
            _render_indices(todo, task, config, settings, root, shards, report, progress)
        shards.flush()
        if len(finished_shards(root, config.split, total)) == total:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(root / "logs", ignore_errors=True)  # worker logs matter only while samples fail
    return report


def write_programs(task: Task, config: RenderConfig, root: Path, progress: bool) -> RenderReport:
    """`--programs-only`: the sampled scenes as JSON lines, without rendering (and so without the
    visibility check: these are each sample's first candidate)."""
    from igbench.generators import sample_lines
    from igbench.scene import SceneLines

    root.mkdir(parents=True, exist_ok=True)
    path = root / "programs.jsonl"
    lines = SceneLines(task)
    texts = sample_lines(task, config.split, range(config.n), config.seed, lines)
    with replaced_atomically(path) as tmp, open(tmp, "w") as f, garbage_collection_paused(), \
            (_progress(texts, config, config.n, progress, initial=0) if progress else nullcontext(texts)) as texts:
        for text in texts:
            f.write(text + "\n")
    return RenderReport(root, config.n, rendered=config.n)


@contextmanager
def garbage_collection_paused():
    """No cyclic garbage collection inside: the sampler makes no cycles, but its many short-lived containers
    trigger collections that rescan everything alive (measured: ~10% of `--programs-only`)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_part(text: str) -> tuple[int, int]:
    """'--shard i/N' -> (i, N) with 0 <= i < N."""
    try:
        i, count = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise UserError(f"--shard {text}: expected i/N, e.g. 0/4") from None
    if count < 1 or not 0 <= i < count:
        raise UserError(f"--shard {text}: expected i/N with 0 <= i < N")
    return i, count


def my_files(config: RenderConfig) -> list[int]:
    """The parquet files this job renders: every N-th, starting at i, so jobs never share a file."""
    i, count = parse_part(config.shard)
    total = num_shards(config.n, config.shard_size)
    if i >= total:
        raise UserError(
            f"--shard {config.shard}: the split has only {total} parquet file(s) of {config.shard_size} samples; "
            f"use at most {total} jobs or a smaller --shard-size"
        )
    return list(range(i, total, count))


def _render_indices(todo, task, config, settings, root, shards, report, progress) -> None:
    from igbench.render.workers import WorkerPool, WorkerSpec

    spec = WorkerSpec(str(task.path), config.split, config.seed, settings, str(root / "staging"), str(root / "logs"),
                      rotation_rep=task.rotation_rep, assets=task.assets, clevr_scenes=config.from_clevr_scenes)
    pool = WorkerPool(spec, min(config.workers, len(todo)))
    bar = _progress(None, config, report.n, progress, initial=report.already_done)

    def done(index: int, timings: dict) -> None:
        report.rendered += 1
        report.timings.append(timings)
        shards.add(index)
        bar.update(1)

    def failed(index: int, reason: str) -> None:
        if any(os.strerror(code) in reason for code in DISK_FULL):  # every other sample would fail alike
            raise UserError(f"disk full while staging {sample_id(task.name, config.split, index)} ({reason}); the "
                            f"finished shards are intact: free some space and rerun the same command")
        report.failed[sample_id(task.name, config.split, index)] = reason
        bar.write(f"failed {sample_id(task.name, config.split, index)}: {reason}")

    try:
        pool.run(todo, config.max_retries, done, failed)
    finally:
        bar.close()
        pool.close()


def _progress(iterable, config: RenderConfig, total: int, progress: bool, initial: int):
    from tqdm import tqdm

    return tqdm(iterable, total=total, initial=initial, unit="img", desc=f"{config.task}/{config.split}",
                disable=not progress, smoothing=0.1, dynamic_ncols=True)


class _ShardTracker:
    """Knows which samples are finished (in a shard or staged) and turns complete ranges into shards."""

    def __init__(self, task: Task, config: RenderConfig, root: Path, total: int):
        self.task, self.config, self.root, self.total = task, config, root, total
        self.staging = root / "staging"
        mine = set(my_files(config))  # other jobs may be writing the folder's other files
        for leftover in self.staging.glob("*.tmp"):
            if int(leftover.name.split(".")[0]) // config.shard_size in mine:
                leftover.unlink()
        for k in mine:
            for leftover in (root / "data").glob(self._path(k).name + ".*"):  # .partial, .partial.tmp
                leftover.unlink()
        self.finished = finished_shards(root, config.split, total) & mine
        records = read_config(root).get("shards", {})
        for k in sorted(self.finished):
            path = self._path(k)
            why = damage(path, records.get(path.name))
            if why:  # truncated, changed or never recorded: render it again (its staged samples are gone)
                print(f"re-rendering damaged shard {path} ({why})", file=sys.stderr)
                path.unlink()
                forget_shard(root, path.name)
                self.finished.discard(k)
        for k in self.finished:  # a crash between writing a shard and clearing its staged files
            for index in self.file_range(k):
                self._unstage(index)
        staged = (int(p.name.split(".")[0]) for p in self.staging.glob("*.json"))
        self.staged = {i for i in staged if i < config.n}
        self.done = self.staged | {i for k in self.finished for i in self.file_range(k)}

    def add(self, index: int) -> None:
        self.staged.add(index)
        self.done.add(index)
        k = index // self.config.shard_size
        if all(i in self.staged for i in self.file_range(k)):
            self._write(k)

    def flush(self) -> None:
        for k in range(self.total):
            if k not in self.finished and all(i in self.staged for i in self.file_range(k)):
                self._write(k)

    def _write(self, k: int) -> None:
        from igbench.render.staging import load_staged

        rows = [load_staged(self.staging, i) for i in self.file_range(k)]
        path = self._path(k)
        partial = path.with_name(path.name + ".partial")
        try:
            write_shard(rows, self.task, partial)
            # Recorded before it takes its name: a crash in between leaves a record without a file, and
            # the staged samples, from which a rerun writes the shard again.
            record_shard(self.root, path.name, file_record(partial))
            os.replace(partial, path)
        except OSError as err:
            for leftover in self.root.glob(f"data/{partial.name}*"):
                leftover.unlink()
            if is_disk_full(err):
                kept = len(finished_shards(self.root, self.config.split, self.total))
                raise UserError(f"disk full while writing {path} ({err.strerror or str(err).splitlines()[0]}); the "
                                f"{kept} shard(s) finished before are intact: free some space and "
                                "rerun the same command") from None
            raise
        self.finished.add(k)
        for index in self.file_range(k):
            self._unstage(index)
            self.staged.discard(index)

    def _path(self, k: int) -> Path:
        return shard_path(self.root, self.config.split, k, self.total)

    def _unstage(self, index: int) -> None:
        from igbench.render.staging import staged_paths

        for path in staged_paths(self.staging, index):
            path.unlink(missing_ok=True)

    def file_range(self, k: int) -> range:
        """The sample indices of parquet file k."""
        size = self.config.shard_size
        return range(k * size, min((k + 1) * size, self.config.n))


def _saved_config(config: RenderConfig, task: Task, settings: RenderSettings) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        blender = version("bpy")
    except PackageNotFoundError:
        blender = None
    return {
        "config": asdict(config),
        "task_sha256": hashlib.sha256(task.path.read_bytes()).hexdigest(),
        "rotation_rep": task.rotation_rep,
        "library": task.library.fingerprint if task.library is not None else None,
        "render_settings": settings.to_dict(),
        "format_version": FORMAT_VERSION,
        "versions": {"igbench": __version__, "bpy": blender, "python": platform.python_version()},
        "command": " ".join(["igbench", *sys.argv[1:]]) if sys.argv else "",
    }


def identity(saved: dict) -> dict:
    values = {"depth": False,  # splits rendered before --depth existed have none
              **saved["config"], "task_sha256": saved["task_sha256"], "rotation_rep": saved.get("rotation_rep"),
              "library": saved.get("library")}
    keys = {key: values.get(key) for key in IDENTITY_KEYS}
    # Every render setting that shapes the pixels (not where or on how many threads they were computed), so
    # that a resume never mixes images of two settings, e.g. of two igbench versions' defaults.
    settings = saved.get("render_settings") or {}
    keys.update({f"render_settings.{k}": v for k, v in sorted(settings.items()) if k not in ("device", "threads")})
    return keys


def _check_folder(root: Path) -> None:
    if (root.exists() and not (root / "render_config.json").exists()
            and any(p.name not in ("programs.jsonl", "locks") for p in root.iterdir())):
        raise UserError(f"{root} exists and is not an igbench render; choose another --out")


def _claim(root: Path, saved: dict) -> None:
    """Create the split folder, or check that the one there is a run of the same command to resume."""
    config_path = root / "render_config.json"
    if config_path.exists():
        try:
            before = json.loads(config_path.read_text())
            mine, theirs = identity(saved), identity(before)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{config_path} is damaged; move {root} away to render again") from None
        check_format(before, config_path)
        changed = [f"{k}: {theirs.get(k)!r} -> {mine.get(k)!r}" for k in {**theirs, **mine} if mine.get(k) != theirs.get(k)]
        if changed:
            raise UserError(
                f"{root} holds a render with other settings ({'; '.join(changed)}); "
                "rerun with the same settings to resume, or choose another --out"
            )
    root.mkdir(parents=True, exist_ok=True)
    write_config(root, saved)


def _check_writable(out: Path) -> None:
    """Probe with a real file: permission bits say little when running as root or on odd filesystems."""
    import tempfile

    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"--out {out}: {probe} is a file, not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".igbench-probe-", dir=probe)
        os.close(fd)
        os.remove(name)
    except OSError as err:
        raise UserError(f"--out {out}: cannot write in {probe} ({err.strerror})") from None
