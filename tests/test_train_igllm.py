"""`igbench train --model igllm` and `igbench predict` end to end on a CPU with the tiny preset and a
tiny rendered dataset: overfitting reproduces the programs (both numeric modes), resume is exact,
predictions parse, score and resume."""
from __future__ import annotations

import json

import numpy as np
import pytest

from igbench.models.prompting import ordered_objects
from igbench.program import parse
from igbench.task import load_task
from igllm_support import TRAIN_N, VAL_N, cli, read_jsonl, tiny_dataset

pytestmark = [pytest.mark.blender, pytest.mark.train]  # trains on a tiny rendered dataset

TASK = load_task("clevr")
EXACT = ["augment.shuffle_attributes=false", "augment.synonyms=false", "train.trackers=[]"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def train_rows(data):
    from igbench.dataset import load_task_split

    return {row["id"]: row for row in load_task_split(data, "train")[1]}


@pytest.mark.parametrize("numeric, extra, tolerance", [
    ("char", ["train.eval_every=150"], 0.002),  # numbers as text: the digits come back exactly
    ("float", ["model.value_embedding=true"], 0.05),  # the numeric head regresses them
])
def test_overfitting_eight_scenes_reproduces_their_programs(data, tmp_path, numeric, extra, tolerance):
    run = tmp_path / "run"
    assert cli("train", "--model", "igllm", "--data", str(data), "--config", "tiny", "--output", str(run), "--quiet",
               "train.max_steps=150", "train.log_every=25", f"model.numeric={numeric}", *EXACT, *extra) == 0
    losses = [r["loss"] for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]
    assert losses[-1] < 0.02 < losses[0], losses
    out = tmp_path / "pred.jsonl"
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--out", str(out), "--quiet") == 0
    predictions = read_jsonl(out)
    rows = train_rows(data)
    assert sorted(p["id"] for p in predictions) == sorted(rows) and len(rows) == TRAIN_N
    for p in predictions:
        assert "<num>" not in p["program"]
        got = parse(p["program"], TASK)  # strict: every line must parse
        want = ordered_objects(rows[p["id"]], TASK)
        assert [o.attrs for o in got] == [o.attrs for o in want], p["program"]
        for a, b in zip(got, want):
            assert set(a.numbers) == set(b.numbers)
            for name in a.numbers:
                assert np.allclose(a.numbers[name], b.numbers[name], atol=tolerance), (p["program"], b.numbers)
    if numeric == "char":  # the in-loop evaluation went through the scorer and wrote its predictions
        evals = [r["eval"] for r in read_jsonl(run / "metrics.jsonl") if "eval" in r]
        written = read_jsonl(run / "eval" / "step_000150.jsonl")
        assert len(evals) == 1 and "ap@0.5" in evals[0]  # the scorer's numbers, not a simplified count
        assert sorted(p["id"] for p in written) == [f"clevr/val/{i:06d}" for i in range(VAL_N)]
        assert_scores_match(evals[0], written, val_rows(data))


def test_resume_mid_epoch_runs_exactly_the_remaining_steps_with_the_same_losses(data, tmp_path):
    # LoRA with dropout, both augmentations, gradient accumulation and TensorBoard: everything that
    # draws random numbers or keeps state must come back from the checkpoint. Batches of 2 accumulated
    # twice: 4 micro-batches (2 steps) per epoch of 8 scenes, so the run stops after step 3, half-way
    # through epoch 2, and the resumed run must skip exactly the 2 micro-batches of epoch 2 it has seen.
    common = ["--data", str(data), "--config", "tiny", "--quiet", "model.finetune=lora", "model.numeric=float",
              "train.max_steps=6", "train.batch_size=2", "train.grad_accum=2", "train.log_every=1",
              "train.save_every=3", "train.keep_checkpoints=0"]
    assert (3 * 2) % (TRAIN_N // 2) == 2  # the stop lands mid-epoch
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert cli("train", "--output", str(whole), *common) == 0
    assert cli("train", "--output", str(parts), *common, "train.stop_after=3") == 0
    assert not (parts / "model").exists() and (parts / "checkpoints" / "step_000003" / "state.json").exists()
    first = [r for r in read_jsonl(parts / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in first] == [1, 2, 3]
    assert cli("train", "--output", str(parts), *common) == 2  # an existing run needs --resume
    assert cli("train", "--output", str(parts), *common, "--resume") == 0
    a = [r for r in read_jsonl(whole / "metrics.jsonl") if "loss" in r]
    b = [r for r in read_jsonl(parts / "metrics.jsonl") if "loss" in r]
    assert b[:3] == first  # steps 1-3 are not run again ...
    assert [r["step"] for r in a] == [r["step"] for r in b] == [1, 2, 3, 4, 5, 6]  # ... and 4-6 once each
    for x, y in zip(a, b):  # each step's loss is its batches' loss: the same samples, the same weights
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5, abs=1e-6), (x, y)
        assert x["lr"] == pytest.approx(y["lr"], rel=1e-9)
    assert len({round(r["loss"], 6) for r in a}) == 6  # the losses are not all alike
    from safetensors.torch import load_file

    wa, wb = load_file(str(whole / "model" / "trainable.safetensors")), load_file(str(parts / "model" / "trainable.safetensors"))
    assert wa.keys() == wb.keys() and any("lora_" in k for k in wa)
    for key in wa:
        assert np.allclose(wa[key].numpy(), wb[key].numpy(), atol=1e-5), key
    assert list((whole / "logs").rglob("events.out.tfevents.*"))  # TensorBoard by default
    saved = (whole / "checkpoints" / "step_000003" / "model.safetensors").stat().st_size
    assert saved < (whole / "model" / "trainable.safetensors").stat().st_size * 1.5  # no frozen weights in checkpoints


def val_rows(data):
    from igbench.dataset import load_task_split as load_rows

    return {row["id"]: row for row in load_rows(data, "val")[1]}


def assert_scores_match(metrics, predictions, rows):
    """Parse rate and count accuracy recomputed here: a prediction parses when the strict parser takes all
    of it and it holds an object; its count is that of the objects the lenient parser keeps."""
    from igbench.program import ProgramError, parse_lenient

    parsed = counted = 0
    for p in predictions:
        try:
            parsed += len(parse(p["program"], TASK)) > 0
        except ProgramError:
            pass
        counted += len(parse_lenient(p["program"], TASK).program) == len(rows[p["id"]]["objects"])
    assert metrics["parse_rate"] == pytest.approx(parsed / len(predictions))
    assert metrics["count_acc"] == pytest.approx(counted / len(predictions))


def test_predictions_parse_score_and_resume(data, tmp_path):
    run = tmp_path / "run"
    assert cli("train", "--data", str(data), "--config", "tiny", "--output", str(run), "--quiet",
               "train.max_steps=4", "train.trackers=[]", "predict.max_new_tokens=200") == 0
    out = tmp_path / "pred.jsonl"
    assert cli("predict", "--checkpoint", str(run / "checkpoints" / "step_000004"), "--data", str(data), "--split", "val",
               "--out", str(out), "--limit", "2", "--batch-size", "2", "--quiet") == 0
    assert len(read_jsonl(out)) == 2
    with open(out, "a") as f:
        f.write('{"id": "clevr/val/0000')  # a crash mid-line
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "val", "--out", str(out), "--quiet") == 0
    predictions = read_jsonl(out)
    assert sorted(p["id"] for p in predictions) == [f"clevr/val/{i:06d}" for i in range(VAL_N)]
    for p in predictions:  # an untrained model's text still goes through the lenient parser
        assert isinstance(p["program"], str) and p["program"]
    from igbench.models.igllm_train import score_programs
    from igbench.dataset import load_task_split

    rows = load_task_split(data, "val")[1]
    references = [{"id": r["id"], "objects": r["objects"]} for r in rows]
    metrics = score_programs(predictions, references, TASK)
    assert_scores_match(metrics, predictions, val_rows(data))
    json.dumps(metrics)
