"""`igbench predict --model vlm`: tiny random VLMs of two real architectures (LLaVA: CLIP + Llama; Idefics3:
the SmolVLM architecture), saved with save_pretrained and loaded back through AutoModelForImageTextToText
and AutoProcessor, on a tiny dataset rendered with the real Blender executor."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from igllm_support import cli, read_jsonl, tiny_dataset
from vlm_support import split_with_broken_image, tiny_vlm

SHORT = ["predict.max_new_tokens=16"]


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="session", params=["llava", "idefics3"])
def any_model(request, tmp_path_factory):
    return tiny_vlm(tmp_path_factory, request.param)


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    return tiny_vlm(tmp_path_factory, "llava")


def val_ids(data):
    from igbench.dataset import load_rows

    return [r["id"] for r in load_rows(data, "val", columns=["id", "task"])[1]]


@pytest.mark.blender
@pytest.mark.train
def test_one_line_per_sample_deterministic_and_scored(any_model, data, tmp_path):
    from igbench.score import score_predictions
    from igbench.score.reference import load_reference

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        assert cli("predict", "--model", "vlm", "--checkpoint", str(any_model), "--data", str(data), "--split", "val",
                   "--out", str(out), "--batch-size", "2", "--quiet", *SHORT) == 0
    a, b = read_jsonl(first), read_jsonl(second)
    ids = val_ids(data)
    assert [r["id"] for r in a] == ids
    assert [r["program"] for r in a] == [r["program"] for r in b]
    assert len({r["program"] for r in a}) > 1  # the answer depends on the image
    assert all(r["tokens_in"] > 0 and 0 < r["tokens_out"] <= 16 and r["seconds"] > 0 for r in a)
    prompt = json.loads(first.with_suffix(".prompt.json").read_text())
    assert prompt["sha256"] == a[0]["prompt_sha256"] and "add(" in first.with_suffix(".prompt.txt").read_text()
    scores = score_predictions(a, load_reference(ids, data.parent), bootstrap=0)
    group = scores["results"]["clevr/val"]
    assert group["n"] == len(ids) and scores["missing"]["count"] == 0


@pytest.mark.blender
@pytest.mark.train
def test_resume_writes_only_missing_ids(model, data, tmp_path):
    out = tmp_path / "p.jsonl"
    args = ["predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
            "--out", str(out), "--quiet", *SHORT]
    assert cli(*args, "--limit", "2") == 0
    assert len(read_jsonl(out)) == 2
    assert cli(*args) == 0
    assert [r["id"] for r in read_jsonl(out)] == val_ids(data)
    assert cli(*args, "predict.k_shot=1") == 2  # another prompt into the same file is refused


@pytest.mark.blender
@pytest.mark.train
def test_prompt_from_task_and_kshot(data, tmp_path):
    from igbench.models.vlm_run import Prompt, load_config
    from igbench.task import load_task

    task = load_task("clevr")
    config = load_config(["predict.k_shot=2", "predict.shot_seed=3"])
    prompt = Prompt(config, task, data)
    for word in ("shape='cube'", "material='rubber'", "purple", "loc=(", "radians", "[-3.0, 3.0]"):
        assert word in prompt.text
    assert len(prompt.shots) == 2 and all(p.startswith("add(") for _, p in prompt.shots)
    again = Prompt(load_config(["predict.k_shot=2", "predict.shot_seed=3"]), task, data)
    other = Prompt(load_config(["predict.k_shot=2", "predict.shot_seed=4"]), task, data)
    assert again.sha256 == prompt.sha256 and other.identity["shots"] != prompt.identity["shots"]
    from igbench.dataset import load_rows

    row = load_rows(data, "val", columns=["id", "task", "camera"])[1][0]
    assert "K = " not in prompt.instructions(row)
    with_camera = Prompt(load_config(["predict.camera=true"]), task, data)
    assert f"{row['camera']['width']}x{row['camera']['height']} pixels" in with_camera.instructions(row)
    assert with_camera.sha256 != Prompt(load_config([]), task, data).sha256
    template = tmp_path / "mine.txt"
    template.write_text("Only: {grammar}")
    mine = Prompt(load_config([f"predict.prompt={template}"]), task, data)
    assert mine.text.startswith("Only: add(shape='cube'") and mine.sha256 != prompt.sha256
    template.write_text("{nonsense}")
    with pytest.raises(Exception, match="nonsense"):
        Prompt(load_config([f"predict.prompt={template}"]), task, data)


def test_prompt_frame_follows_the_task_kind():
    from igbench.models.vlm_prompt import task_facts
    from igbench.task import load_task

    assert "ground plane" in task_facts(load_task("clevr"))["frame"]
    canvas = task_facts(load_task("dot2d"))
    assert "canvas coordinates" in canvas["frame"] and "ground" not in canvas["frame"]
    assert "- loc: 2 numbers" in canvas["numbers"]
    pose = load_task("so3")
    assert f"'{pose.rotation_rep}' representation" in task_facts(pose)["frame"]


@pytest.mark.blender
@pytest.mark.train
def test_kshot_run_sends_examples(model, data, tmp_path):
    out = tmp_path / "k.jsonl"
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
               "--out", str(out), "--limit", "1", "--quiet", "predict.k_shot=2", *SHORT) == 0
    zero = tmp_path / "z.jsonl"
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
               "--out", str(zero), "--limit", "1", "--quiet", *SHORT) == 0
    assert read_jsonl(out)[0]["tokens_in"] > read_jsonl(zero)[0]["tokens_in"]  # two images and programs more


@pytest.mark.blender
@pytest.mark.train
def test_refinement_renders_records_and_keeps_the_best(model, data, tmp_path):
    out = tmp_path / "r.jsonl"
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
               "--out", str(out), "--limit", "2", "--quiet", "predict.refine_rounds=2", *SHORT) == 0
    records = read_jsonl(out)
    assert len(records) == 2
    for record in records:
        rounds = record["rounds"]
        assert [r["round"] for r in rounds] == [0, 1, 2] and record["renders"] == 3
        assert all(r["loss"] is not None and r["loss"] > 0 and r["renders"] == 1 for r in rounds)
        assert all("parse_errors" in r and r["tokens_out"] > 0 for r in rounds)
        best = min(range(3), key=lambda k: (rounds[k]["loss"], k))
        assert record["kept_round"] == best and record["program"] == rounds[best]["program"]
        assert record["tokens_in"] == sum(r["tokens_in"] for r in rounds)


@pytest.mark.blender
@pytest.mark.train
def test_refinement_loss_is_the_image_loss_of_the_render(data, tmp_path):
    """The true program rendered under the sample's settings reproduces the image: its loss is ~0, far below
    that of an empty scene; so refinement ranks rounds by how well they redraw the target."""
    import io

    import numpy as np
    from PIL import Image

    from igbench.baselines.common import reference_program
    from igbench.metrics.image import blur_rgb, image_loss_map
    from igbench.dataset import load_rows
    from igbench.models.vlm_run import Refiner, load_config
    from igbench.program import Program

    task, rows, folder = load_rows(data, "val")
    refiner = Refiner(task, folder, "val", load_config(["predict.refine_rounds=1"]))
    try:
        row = rows[0]
        target = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB"))
        losses = []
        for program in (reference_program(row, task), Program()):
            rgb, error = refiner.render(row, program)
            assert error is None
            losses.append(float(image_loss_map(rgb, blur_rgb(target, 1.0), 1.0).mean()))
    finally:
        refiner.close()
    assert losses[0] < 0.2 * losses[1]


@pytest.mark.blender
@pytest.mark.train
def test_train_records_a_run_that_predicts_like_any_model(model, data, tmp_path, capsys):
    """What the leaderboard's zero-shot rows run: `train --model vlm` writes a run folder that names model
    and task and holds the tiny model it built; `predict --checkpoint RUN` needs no --model."""
    import yaml

    run = tmp_path / "run"
    train = ["train", "--model", "vlm", "--data", str(data), "--output", str(run), "--quiet"]
    assert cli(*train, "model.path=tiny-random:llava") == 0
    info = yaml.safe_load((run / "run.yaml").read_text())
    assert (info["model"], info["task"]) == ("vlm", "clevr") and (run / "model" / "config.json").exists()
    from_run, direct = tmp_path / "run.jsonl", tmp_path / "direct.jsonl"
    predict = ["--data", str(data), "--split", "val", "--limit", "2", "--quiet", *SHORT]
    assert cli("predict", "--checkpoint", str(run), "--out", str(from_run), *predict) == 0
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--out", str(direct), *predict) == 0
    assert read_jsonl(from_run) and [r["program"] for r in read_jsonl(from_run)] == [r["program"] for r in read_jsonl(direct)]
    capsys.readouterr()
    assert cli(*train, "model.path=tiny-random:llava") == 2  # the folder holds a run
    assert "--resume" in one_line_error(capsys)
    assert cli(*train, "--resume", "model.path=tiny-random:idefics3") == 2  # another model
    assert "model" in one_line_error(capsys)
    (run / "run.yaml").write_text(yaml.safe_dump({**info, "task": "dot2d"}))
    assert cli("predict", "--checkpoint", str(run), "--out", str(tmp_path / "x.jsonl"), *predict) == 2
    assert "dot2d" in one_line_error(capsys)
    assert cli("train", "--model", "api", "--data", str(data), "--output", str(tmp_path / "api"), "--quiet") == 2
    assert "igbench predict --model api" in one_line_error(capsys)


# ------------------------------------------------------------------------------------------- bad input


def run_cli(*argv, env=None):
    proc = subprocess.run([sys.executable, "-m", "igbench", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})
    return proc.returncode, proc.stderr.strip()


@pytest.mark.blender
@pytest.mark.train
def test_unknown_model_id_offline(data, tmp_path):
    rc, err = run_cli("predict", "--model", "vlm", "--checkpoint", "nobody/no-such-vlm", "--data", str(data),
                      "--split", "val", "--out", str(tmp_path / "x.jsonl"), "--quiet")
    assert rc == 2 and len(err.splitlines()) == 1 and "nobody/no-such-vlm" in err and "Traceback" not in err


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.blender
@pytest.mark.train
def test_folder_that_is_not_a_vlm(data, tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    from igbench.models.tiny_vlm import byte_tokenizer

    folder = tmp_path / "text-only"
    tokenizer = byte_tokenizer([])
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    for checkpoint in (folder, empty):
        assert cli("predict", "--model", "vlm", "--checkpoint", str(checkpoint), "--data", str(data),
                   "--split", "val", "--out", str(tmp_path / "x.jsonl"), "--quiet") == 2
        assert str(checkpoint) in one_line_error(capsys)


@pytest.mark.blender
@pytest.mark.train
def test_image_the_processor_rejects_keeps_what_was_answered(model, data, tmp_path, capsys):
    broken, bad_id = split_with_broken_image(data, tmp_path, 2)
    out = tmp_path / "p.jsonl"
    assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(broken), "--split", "val",
               "--out", str(out), "--batch-size", "1", "--quiet", *SHORT) == 2
    assert bad_id in one_line_error(capsys)
    assert [r["id"] for r in read_jsonl(out)] == val_ids(data)[:2]


@pytest.mark.blender
@pytest.mark.train
def test_sampling_with_a_seed_is_reproducible(model, data, tmp_path):
    outs = {}
    for name, extra in (("a", ["predict.seed=1"]), ("b", ["predict.seed=1"]), ("c", ["predict.seed=2"])):
        outs[name] = tmp_path / f"{name}.jsonl"
        assert cli("predict", "--model", "vlm", "--checkpoint", str(model), "--data", str(data), "--split", "val",
                   "--out", str(outs[name]), "--quiet", "predict.do_sample=true", *extra, *SHORT) == 0
    a, b, c = ([r["program"] for r in read_jsonl(outs[k])] for k in "abc")
    assert a == b and a != c


def test_json_answers_go_to_the_scorer_as_objects():
    from igbench.models.vlm_run import answer_fields, parsed_answer
    from igbench.task import load_task

    task = load_task("clevr")
    item = '{"shape": "cube", "color": "red", "material": "metal", "size": "large", "loc": [1, 2, 0.7]}'
    for text in (f"[{item}]", f'```json\n{{"objects": [{item}]}}\n```', item):
        fields = answer_fields(text)
        assert fields["answer"] == text and parsed_answer("x", text, task).program.objects[0].loc == (1.0, 2.0, 0.7)
    program = "add(shape='cube', color='red', material='metal', size='large', loc=(1, 2, 0.7))"
    assert answer_fields(program) == {"program": program} and parsed_answer("x", program, task).ok
    assert answer_fields("42") == {"program": "42"} and not parsed_answer("x", "42", task).ok
