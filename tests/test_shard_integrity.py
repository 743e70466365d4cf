"""Shards are recorded and verified, one writer per parquet file, and a full disk loses nothing (real renders)."""
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from cli_support import igbench, one_line_error

from igbench.shards import FORMAT_VERSION, file_record

pytestmark = pytest.mark.blender  # every test here renders with Blender

TINY = ["--resolution", "32x24", "--samples", "1", "--quiet"]


def render_args(out, n=4, *extra):
    return ["render", "--split", "ood", "--n", str(n), "--out", str(out), "--shard-size", "2", *TINY, *extra]


def shard(root, k, total=2):
    return root / "data" / f"ood-{k:05d}-of-{total:05d}.parquet"


def config(root):
    return json.loads((root / "render_config.json").read_text())


def test_every_shard_is_recorded_and_a_truncated_one_is_rendered_again(tmp_path):
    root = tmp_path / "clevr" / "ood"
    igbench(*render_args(tmp_path))
    saved = config(root)
    assert saved["format_version"] == FORMAT_VERSION
    assert saved["shards"] == {shard(root, k).name: file_record(shard(root, k)) for k in (0, 1)}
    digests = {shard(root, k).name: hashlib.sha256(shard(root, k).read_bytes()).hexdigest() for k in (0, 1)}
    assert {name: r["sha256"] for name, r in saved["shards"].items()} == digests
    # The scorer takes the reference's fingerprint from the verified records: the same as hashing the files.
    from igbench.score.reference import load_split_dir
    from igbench.task import load_task

    expected = hashlib.sha256("".join(f"{name}\0{digests[name]}\n" for name in sorted(digests)).encode()).hexdigest()
    assert load_split_dir(root, load_task("clevr"), "ood").fingerprint == expected
    first = shard(root, 0).read_bytes()
    data = shard(root, 1).read_bytes()
    shard(root, 1).write_bytes(data[: len(data) // 2])
    rerun = igbench(*render_args(tmp_path))
    assert f"re-rendering damaged shard {shard(root, 1)}" in rerun.stderr
    assert "2 rendered now, 2 before" in rerun.stdout
    assert shard(root, 0).read_bytes() == first
    assert config(root)["shards"][shard(root, 1).name] == file_record(shard(root, 1))
    assert datasets.load_dataset(str(root), split="ood").num_rows == 4


def test_readers_name_a_damaged_shard_in_one_line(tmp_path):
    root = tmp_path / "clevr" / "ood"
    igbench(*render_args(tmp_path))
    data = bytearray(shard(root, 0).read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    shard(root, 0).write_bytes(bytes(data))
    message = f"damaged shard {shard(root, 0)}: its SHA-256 differs"
    one_line_error(igbench("merge", str(root), "--out", str(tmp_path / "merged"), check=False), message)
    one_line_error(igbench("push", str(root), "--repo", "someone/clevr", "--dry-run", str(tmp_path / "hub"),
                           check=False), message)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(json.dumps({"id": "clevr/ood/000000", "program": ""}) + "\n")
    one_line_error(igbench("score", str(predictions), "--data", str(root), "--out", str(tmp_path / "scores"),
                           "--bootstrap", "0", "--quiet", check=False), message)
    assert not (tmp_path / "merged").exists() and not (tmp_path / "hub").exists()


def test_another_format_version_is_refused_in_one_line(tmp_path):
    root = tmp_path / "clevr" / "ood"
    igbench(*render_args(tmp_path, 2))
    saved = config(root)
    saved["format_version"] = 1
    (root / "render_config.json").write_text(json.dumps(saved))
    for args in (render_args(tmp_path, 2), ["merge", str(root), "--out", str(tmp_path / "merged")]):
        one_line_error(igbench(*args, check=False), f"has format_version 1; this igbench reads format_version {FORMAT_VERSION}")


def wait_for_lock(proc, root, timeout=300):
    lock = root / "locks" / "00000.lock"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if lock.exists() and lock.read_text().strip() and list((root / "staging").glob("*.json")):
            return lock.read_text().strip()
        time.sleep(0.05)
    raise AssertionError("the first run never started rendering")


def test_a_second_writer_refuses_and_the_first_finishes_untouched(tmp_path):
    root = tmp_path / "clevr" / "ood"
    first = subprocess.Popen([sys.executable, "-m", "igbench", *render_args(tmp_path, 16)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder = wait_for_lock(first, root)
    assert holder.startswith(f"pid {first.pid} on ")
    second = igbench(*render_args(tmp_path, 16), check=False)
    one_line_error(second, f"is being rendered by another igbench render ({holder}")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert "16 rendered now, 0 before" in out
    saved = config(root)
    assert len(saved["shards"]) == 8
    ds = datasets.load_dataset(str(root), split="ood")
    assert ds["id"] == [f"clevr/ood/{i:06d}" for i in range(16)]


def test_the_lock_of_a_killed_run_does_not_block_the_next(tmp_path):
    root = tmp_path / "clevr" / "ood"
    first = subprocess.Popen([sys.executable, "-m", "igbench", *render_args(tmp_path, 16)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    holder = wait_for_lock(first, root)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert (root / "locks" / "00000.lock").read_text().strip() == holder  # left behind, but no longer held
    rerun = igbench(*render_args(tmp_path, 16))
    assert "before" in rerun.stdout
    assert datasets.load_dataset(str(root), split="ood").num_rows == 16


def limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_is_one_line_keeps_finished_shards_and_the_rerun_completes(tmp_path):
    root = tmp_path / "clevr" / "ood"
    igbench(*render_args(tmp_path, 4, "--shard", "0/2"))
    finished = shard(root, 0).read_bytes()
    # Room for staged PNGs and render_config.json, none for a whole shard.
    limit = len(finished) // 2
    full = subprocess.run([sys.executable, "-m", "igbench", *render_args(tmp_path, 4, "--shard", "1/2")],
                          capture_output=True, text=True, timeout=600, preexec_fn=limit_file_size(limit))
    one_line_error(full, f"disk full while writing {shard(root, 1)}")
    assert "1 shard(s) finished before are intact" in full.stderr
    assert shard(root, 0).read_bytes() == finished and not shard(root, 1).exists()
    assert not list((root / "data").glob("*.partial*"))
    rerun = igbench(*render_args(tmp_path, 4, "--shard", "1/2"))
    assert "job 1/2 done" in rerun.stdout
    igbench("merge", str(root), "--out", str(tmp_path))
    assert datasets.load_dataset(str(root), split="ood").num_rows == 4


def test_a_resume_refuses_pixels_of_other_render_settings(tmp_path):
    """A split begun with another igbench's defaults (here: the OIDN guides of the earlier default) is not continued."""
    root = tmp_path / "clevr" / "ood"
    igbench(*render_args(tmp_path, 2))
    saved = config(root)
    saved["render_settings"]["denoise_passes"] = "RGB_ALBEDO_NORMAL"
    (root / "render_config.json").write_text(json.dumps(saved))
    one_line_error(igbench(*render_args(tmp_path, 2), check=False),
                   "render_settings.denoise_passes: 'RGB_ALBEDO_NORMAL' -> 'RGB_ALBEDO'")


def test_readers_refuse_an_unfinished_split_in_one_line(tmp_path):
    """Half a render (one job of an array, or a run stopped early) is never read as a whole split."""
    root = tmp_path / "clevr" / "train"
    job = lambda i: ["render", "--split", "train", "--n", "4", "--out", str(tmp_path), "--shard-size", "2", *TINY,  # noqa: E731
                     "--shard", f"{i}/2"]
    igbench(*job(0))
    half = root / "data" / "train-00001-of-00002.parquet"
    assert (root / "data" / "train-00000-of-00002.parquet").exists() and not half.exists()
    message = f"{root} is unfinished: 1 of its 2 shards are missing (the first: {half.name})"
    train = ["train", "--model", "prior", "--data", str(tmp_path / "clevr"), "--output", str(tmp_path / "prior"), "--quiet"]
    one_line_error(igbench(*train, check=False), message)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(json.dumps({"id": "clevr/train/000000", "program": ""}) + "\n")
    one_line_error(igbench("score", str(predictions), "--data", str(root), "--out", str(tmp_path / "scores"),
                           "--bootstrap", "0", "--quiet", check=False), message)
    igbench(*job(1))  # the other job finishes the folder
    assert igbench(*train).returncode == 0
