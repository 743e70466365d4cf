"""`igbench render` end to end, as a user runs it: a real HF dataset, determinism, resume, bad input."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import numpy as np
import pytest
from cli_support import igbench, one_line_error

from igbench.program import parse
from igbench.task import load_task

TASK = load_task("clevr")
TINY = ["--resolution", "64x48", "--samples", "2", "--quiet"]




def load(root, split="ood"):
    return datasets.load_dataset(str(Path(root) / "clevr" / split), split=split)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    out = tmp_path_factory.mktemp("w2")
    igbench("render", "--split", "ood", "--n", "6", "--out", str(out), "--workers", "2", "--shard-size", "4", *TINY)
    return out


@pytest.mark.blender
def test_writes_a_typed_huggingface_dataset(two_workers, conforms):
    root = two_workers / "clevr" / "ood"
    conforms(root / "render_config.json")
    assert sorted(p.name for p in (root / "data").iterdir()) == ["ood-00000-of-00002.parquet", "ood-00001-of-00002.parquet"]
    assert not (root / "staging").exists()
    ds = load(two_workers)
    assert ds.num_rows == 6
    assert ds["id"] == [f"clevr/ood/{i:06d}" for i in range(6)]
    assert isinstance(ds.features["image"], datasets.Image)
    assert isinstance(ds.features["segmentation"], datasets.Image)
    assert ds.features["objects"].feature["loc"].length == 3
    row = ds[0]
    assert row["image"].size == (64, 48) and row["image"].mode == "RGB"
    program = parse(row["program"], TASK)
    assert len(program) == len(row["objects"]) >= 3
    seg = np.asarray(row["segmentation"])
    assert seg.max() <= len(program)
    for k, obj in enumerate(row["objects"], start=1):
        assert obj["visible_pixels"] == int((seg == k).sum())
        assert obj["loc"] == pytest.approx(list(program.objects[k - 1].loc), abs=5e-4)
    K = np.array(row["camera"]["K"])
    assert K[0, 2] == pytest.approx(32) and row["camera"]["width"] == 64
    assert [light["name"] for light in row["lights"]] == ["key", "fill", "back"]


@pytest.mark.blender
def test_same_ids_and_programs_whatever_the_worker_count(two_workers, tmp_path):
    igbench("render", "--split", "ood", "--n", "6", "--out", str(tmp_path), "--workers", "1", *TINY)
    one, two = load(tmp_path), load(two_workers)
    assert one["id"] == two["id"]
    assert one["program"] == two["program"]
    assert one["seed"] == two["seed"]
    # Pixels agree too, up to OpenImageDenoise's dependence on the thread count (1 vs 2 threads per worker):
    for a, b in zip(one["image"], two["image"]):
        diff = np.abs(np.asarray(a, int) - np.asarray(b, int))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.005


@pytest.mark.blender
def test_rerunning_a_finished_split_renders_nothing(two_workers):
    before = {p.name: p.stat().st_mtime_ns for p in (two_workers / "clevr" / "ood" / "data").iterdir()}
    proc = igbench("render", "--split", "ood", "--n", "6", "--out", str(two_workers), "--workers", "2",
                   "--shard-size", "4", *TINY)
    assert "0 rendered now, 6 before" in proc.stdout
    after = {p.name: p.stat().st_mtime_ns for p in (two_workers / "clevr" / "ood" / "data").iterdir()}
    assert before == after


def _start_and_wait(args, root: Path, shard_size: int, finished: int, **popen) -> subprocess.Popen:
    """Start `igbench ARGS` and return once `finished` samples are done (or it exits, or 5 minutes pass)."""
    proc = subprocess.Popen([sys.executable, "-m", "igbench", *args], **popen)
    deadline = time.time() + 300
    while _finished(root, shard_size) < finished and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc


# Interrupted runs render LONG samples, so that plenty remain when the interruption lands (with 6, a run
# sometimes finished first); their first 6 must equal the reference run's.
LONG = 16


def assert_same_start(ds, reference):
    assert ds["id"] == [f"clevr/ood/{i:06d}" for i in range(LONG)]
    assert ds["program"][:reference.num_rows] == reference["program"]


def _finished(root: Path, shard_size: int) -> int:
    """Samples finished so far: staged ones plus those in (full) shards."""
    staged = len(list((root / "staging").glob("*.json")))
    return staged + shard_size * len(list((root / "data").glob("*.parquet")))


def _staged(root: Path) -> list[int]:
    return sorted(int(p.name.split(".")[0]) for p in (root / "staging").glob("*.json"))


def _mid_shard(root: Path, shard_size: int) -> bool:
    """One shard written and the next one part-way: staged samples, none of them a written shard's.

    A written shard's samples stay staged for a moment after its file takes its name, so "a shard and some
    staged samples" alone may be a shard being cleaned up, not one half-way."""
    written = {int(p.name.split("-")[1]) for p in (root / "data").glob("*.parquet")}
    staged = _staged(root)
    return bool(written and staged and len(staged) % shard_size
                and not any(i // shard_size in written for i in staged))


@pytest.mark.blender
def test_kill_9_mid_shard_then_rerun_renders_exactly_the_missing_samples(two_workers, tmp_path):
    args = ["render", "--split", "ood", "--n", str(LONG), "--out", str(tmp_path), "--shard-size", "4", *TINY]
    root = tmp_path / "clevr" / "ood"
    proc = subprocess.Popen([sys.executable, "-m", "igbench", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not _mid_shard(root, 4) and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its render workers
    proc.wait()
    shards = {p.name: p.stat().st_mtime_ns for p in (root / "data").glob("*.parquet")}
    staged = _staged(root)
    in_shards = [4 * int(name.split("-")[1]) + j for name in shards for j in range(4)]
    assert shards and staged and len(staged) % 4, "the run should have been cut off mid-shard"
    before = sorted(in_shards + staged)
    assert len(before) < LONG and not set(in_shards) & set(staged)
    # Mark the staged samples: if the rerun keeps them (as it must), the marks end up in the dataset.
    for i in staged:
        meta = root / "staging" / f"{i:06d}.json"
        row = json.loads(meta.read_text())
        meta.write_text(json.dumps({**row, "seed": -1 - i}))
    rerun = igbench(*args)
    assert f"({LONG - len(before)} rendered now, {len(before)} before)" in rerun.stdout, rerun.stdout
    assert {name: (root / "data" / name).stat().st_mtime_ns for name in shards} == shards  # not rewritten
    ds = load(tmp_path)
    assert_same_start(ds, load(two_workers))
    marked = [i for i, seed in enumerate(ds["seed"]) if seed == -1 - i]
    assert marked == staged  # exactly the staged samples were kept, everything else rendered once


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.blender
def test_a_killed_worker_costs_only_a_retry(two_workers, tmp_path):
    args = ["render", "--split", "ood", "--n", str(LONG), "--out", str(tmp_path), "--shard-size", "4", *TINY]
    root = tmp_path / "clevr" / "ood"
    proc = _start_and_wait(args, root, 4, 1, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = [pid for pid in _children(proc.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert workers, "no render worker found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert_same_start(load(tmp_path), load(two_workers))


@pytest.mark.blender
def test_changed_settings_refuse_to_mix_into_an_existing_split(two_workers):
    proc = igbench("render", "--split", "ood", "--n", "6", "--out", str(two_workers), "--shard-size", "4",
                   "--resolution", "64x48", "--samples", "3", "--quiet", check=False)
    one_line_error(proc, "samples: 2 -> 3")


@pytest.mark.parametrize("args,message", [
    (["--task", "clever"], "unknown task 'clever' (did you mean 'clevr'?)"),
    (["--split", "oods"], "has no split 'oods' (did you mean 'ood'?)"),
    (["--n", "0"], "--n must be positive"),
    (["--n", "-3"], "--n must be positive"),
    (["--resolution", "64by48"], "bad resolution '64by48'"),
    (["--resolution", "0x48"], "bad resolution"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--samples", "0"], "samples must be at least 1"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    one_line_error(igbench("render", "--out", str(out), *args, check=False), message)
    assert not out.exists()


def test_unwritable_output_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out, message in [(blocker / "out", "is a file"), (Path("/proc/igbench-out"), "cannot write")]:
        one_line_error(igbench("render", "--out", str(out), "--n", "2", check=False), message)


@pytest.mark.blender
def test_a_sample_that_keeps_failing_is_reported_by_id(tmp_path):
    import yaml

    spec = yaml.safe_load(TASK.path.read_text())
    spec["splits"]["impossible"] = {**spec["splits"]["val"], "min_visible_pixels": 10**9, "max_visibility_attempts": 2}
    task_file = tmp_path / "clevr_impossible.yaml"
    task_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    proc = igbench("render", "--task", str(task_file), "--split", "impossible", "--n", "2", "--out", str(out),
                   "--max-retries", "1", *TINY, check=False)
    assert proc.returncode == 1
    assert "2 of 2 samples failed" in proc.stderr
    assert "clevr/impossible/000000: VisibilityError" in proc.stderr
    assert "clevr/impossible/000001: VisibilityError" in proc.stderr
    assert not list((out / "clevr" / "impossible" / "data").glob("*.parquet"))


@pytest.mark.blender
def test_ctrl_c_stops_cleanly_and_the_rerun_resumes(two_workers, tmp_path):
    args = ["render", "--split", "ood", "--n", str(LONG), "--out", str(tmp_path), "--shard-size", "4", *TINY]
    root = tmp_path / "clevr" / "ood"
    # A Ctrl-C at a terminal reaches a process whose SIGINT is at its default; a suite started in the
    # background of a script inherits SIGINT ignored (POSIX shells do that to `&` jobs), so restore it.
    proc = _start_and_wait(args, root, 4, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.fail("the run finished before it could be interrupted")
    assert proc.returncode == 130
    assert "interrupted; finished work is kept" in err and "Traceback" not in err
    kept = _finished(root, 4)
    rerun = igbench(*args)
    assert f"({LONG - kept} rendered now, {kept} before)" in rerun.stdout, rerun.stdout
    assert_same_start(load(tmp_path), load(two_workers))
