"""IG-LLM training on two CPU processes (Accelerate, gloo) against one process with the same global batch:
the same losses and learning rates step by step, an evaluation that scores every sample once, and
checkpoints that resume with the other process count."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from igllm_support import cli, read_jsonl, tiny_dataset

pytestmark = [pytest.mark.blender, pytest.mark.train]

GLOBAL_BATCH = 4
EVAL_SAMPLES = 3  # odd: two processes must pad the last evaluation batch, and drop the padding again


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def common(data) -> list[str]:
    # the numeric head too, so that both the CE and the MSE are normalised across processes
    return ["--data", str(data), "--config", "tiny", "--quiet", "model.numeric=float", "train.max_steps=4",
            "train.log_every=1", "train.save_every=2", "train.keep_checkpoints=0", "train.trackers=[]",
            "train.eval_every=4", f"train.eval_samples={EVAL_SAMPLES}", "predict.batch_size=1",
            "predict.max_new_tokens=40"]


def train_two_processes(*args: str) -> None:
    """`accelerate launch` with two processes on the CPU (torchrun underneath, gloo between them)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "igbench", "train", *args, f"train.batch_size={GLOBAL_BATCH // 2}"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def train_one_process(*args: str) -> None:
    assert cli("train", *args, f"train.batch_size={GLOBAL_BATCH}") == 0


def losses(run) -> list[dict]:
    return [r for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]


def assert_same_steps(a, b):
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4]
    for x, y in zip(a, b):
        for key in ("loss", "ce", "mse"):
            assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), (key, x, y)
        assert x["lr"] == pytest.approx(y["lr"], rel=1e-9)
    assert len({round(r["loss"], 5) for r in a}) == 4 and all(r["mse"] > 0 for r in a)


def assert_every_sample_scored_once(run, data):
    from igbench.dataset import load_task_split as load_rows

    ids = [p["id"] for p in read_jsonl(run / "eval" / "step_000004.jsonl")]
    assert sorted(ids) == list(load_rows(data, "val")[1]["id"])[:EVAL_SAMPLES]


def test_two_processes_train_as_one_and_resume_in_either_mode(data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train_one_process("--output", str(one), *common(data))
    # two processes up to step 2, then one process resumes to the end ...
    train_two_processes("--output", str(two), *common(data), "train.stop_after=2")
    assert [r["step"] for r in losses(two)] == [1, 2] and not (two / "model").exists()
    train_one_process("--resume", "--output", str(two), *common(data))
    assert_same_steps(losses(one), losses(two))
    # ... and a one-process checkpoint (step 2 of the first run) resumed by two processes
    other = tmp_path / "other"
    shutil.copytree(one, other, ignore=shutil.ignore_patterns("step_000004", "model", "eval"))
    train_two_processes("--resume", "--output", str(other), *common(data))
    assert_same_steps(losses(one), losses(other))
    for run in (one, two, other):
        assert_every_sample_scored_once(run, data)
    evals = [[r["eval"] for r in read_jsonl(run / "metrics.jsonl") if "eval" in r] for run in (one, other)]
    assert len(evals[0]) == len(evals[1]) == 1
    # a global batch that differs from the run's is refused in one line
    assert cli("train", "--resume", "--output", str(two), *common(data), "train.batch_size=2") == 2
