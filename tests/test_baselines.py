"""Baselines (issue 6): oracle, prior, cnn-set, render-compare, and the benchmark driver.

Real Blender, real datasets and real torch on the tiny CLEVR dataset the IG-LLM tests render (8 train and
4 val scenes with 1-2 objects at 64x48, rendered once per session)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from igllm_support import cli, read_jsonl, tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def scores_of(predictions, data, split, **options):
    from igbench.score import score_predictions

    return score_predictions(predictions, data.parent, bootstrap=0, **options)["results"][f"clevr/{split}"]


def rows_of(data, split):
    from igbench.dataset import load_rows

    return load_rows(data, split)[1]


# ------------------------------------------------------------------------------------------------ oracle


@pytest.mark.blender
def test_oracle_scores_perfectly_and_rerenders_to_the_noise_floor(data, tmp_path):
    run, out = tmp_path / "oracle", tmp_path / "oracle.jsonl"
    assert cli("train", "--model", "oracle", "--data", str(data), "--output", str(run), "--quiet") == 0
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "val", "--out", str(out), "--quiet") == 0
    result = scores_of(str(out), data, "val", render=True, cache_dir=str(tmp_path / "cache"), workers=1)
    assert result["parse_rate"] == 1.0 and result["count_acc"] == 1.0
    assert all(v == 1.0 for v in result["attr_acc"].values())
    assert result["f1@0.125"] == 1.0 and result["ap@0.125"] == 1.0
    assert result["loc_l2_mean"] < 1e-5
    assert result["mask_iou"] == 1.0 and result["psnr"] > 40  # same executor, camera, lights and seed


# ------------------------------------------------------------------------------------------------- prior


def obj(shape, color, x, y, z=0.35, pixel_x=None, material="rubber", size="small"):
    o = {"shape": shape, "color": color, "material": material, "size": size, "loc": [x, y, z],
         "rotation": [0.0], "has_rotation": False}
    if pixel_x is not None:
        o["pixel_coords"] = [pixel_x, 10.0, 5.0]
    return o


def test_prior_matches_a_hand_computation_on_a_toy_split():
    from igbench.baselines.prior import fit_prior, prior_program
    from igbench.program import format_program
    from igbench.task import load_task

    task = load_task("clevr")
    scenes = [
        # pixel x orders the objects left to right: (-1, 0) then (2, 1)
        [obj("cube", "red", 2.0, 1.0, pixel_x=50), obj("sphere", "red", -1.0, 0.0, pixel_x=10)],
        [obj("sphere", "blue", 0.0, 2.0, 0.7, pixel_x=5, size="large", material="metal"),
         obj("sphere", "red", 1.0, -1.0, pixel_x=20), obj("cylinder", "gray", 3.0, 3.0, pixel_x=40)],
        [obj("cube", "blue", -2.0, -2.0)],  # no pixel_coords: ordered by world x
    ]
    stats = fit_prior(scenes, task)
    assert stats["mean_count"] == pytest.approx(2.0)  # (2 + 3 + 1) / 3
    assert stats["count"] == 2
    # shape: sphere 3, cube 2, cylinder 1; color: red 3; material: rubber 5; size: small 5
    assert stats["attrs"] == {"shape": "sphere", "color": "red", "material": "rubber", "size": "small"}
    # slot 1: (-1, 0, .35), (0, 2, .7), (-2, -2, .35); slot 2: (2, 1, .35), (1, -1, .35); slot 3: (3, 3, .35)
    assert stats["slot_positions"][0] == pytest.approx([-1.0, 0.0, 1.4 / 3])
    assert stats["slot_positions"][1] == pytest.approx([1.5, 0.0, 0.35])
    assert stats["slot_positions"][2] == pytest.approx([3.0, 3.0, 0.35])
    assert stats["slot_support"] == [3, 2, 1]
    text = format_program(prior_program(stats, task), task)
    assert text == ("add(shape='sphere', color='red', material='rubber', size='small', loc=(-1.000, +0.000, +0.467))\n"
                    "add(shape='sphere', color='red', material='rubber', size='small', loc=(+1.500, +0.000, +0.350))")


def test_prior_of_a_pose_task_writes_the_mean_rotation_and_a_2d_task_its_2d_mean():
    import numpy as np
    from scipy.spatial.transform import Rotation

    from igbench.baselines.prior import fit_prior, prior_program
    from igbench.program import format_program, parse
    from igbench.task import load_task

    task = load_task("so3", rotation_rep="aa")
    about_z = [Rotation.from_euler("z", deg, degrees=True).as_matrix().tolist() for deg in (10, 50)]
    scenes = [[{"object": "mug", "material": "steel", "loc": [0.0, 0.0, 0.0], "R_world": m}] for m in about_z]
    program = parse(format_program(prior_program(fit_prior(scenes, task), task), task), task)
    assert np.allclose(program.objects[0].numbers["rotation"], [0.0, 0.0, np.radians(30)], atol=1e-3)

    dot = load_task("dot2d")
    stats = fit_prior([[{"loc": [0.2, 0.4]}], [{"loc": [0.6, 0.8]}]], dot)
    assert format_program(prior_program(stats, dot), dot) == "add(loc=(+0.400, +0.600))"


@pytest.mark.blender
def test_prior_run_predicts_its_training_statistics_for_every_image(data, tmp_path):
    from igbench.baselines.prior import fit_prior, prior_program
    from igbench.program import format_program
    from igbench.task import load_task

    run, out = tmp_path / "prior", tmp_path / "prior.jsonl"
    assert cli("train", "--model", "prior", "--data", str(data), "--output", str(run), "--quiet") == 0
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "val", "--out", str(out), "--quiet") == 0
    task = load_task("clevr")
    expected = format_program(prior_program(fit_prior([r["objects"] for r in rows_of(data, "train")], task), task), task)
    lines = read_jsonl(out)
    assert [line["id"] for line in lines] == [r["id"] for r in rows_of(data, "val")]
    assert {line["program"] for line in lines} == {expected}
    result = scores_of(str(out), data, "val")
    assert result["parse_rate"] == 1.0  # a valid program; how good it is is the table's business


# ----------------------------------------------------------------------------------------------- cnn-set


@pytest.mark.blender
@pytest.mark.train
def test_cnn_set_overfits_eight_scenes(data, tmp_path):
    run, out = tmp_path / "cnn", tmp_path / "cnn.jsonl"
    assert cli("train", "--model", "cnn-set", "--data", str(data), "--output", str(run), "--quiet",
               "model.width=64", "model.height=48", "model.slots=4", "train.steps=400", "train.batch_size=8",
               "train.lr=2e-3", "train.warmup_steps=20", "train.log_every=100") == 0
    assert (run / "model.safetensors").exists() and (run / "run.yaml").exists()
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--out", str(out), "--quiet") == 0
    result = scores_of(str(out), data, "train")
    assert result["parse_rate"] == 1.0 and result["count_acc"] == 1.0
    assert min(result["attr_acc"].values()) == 1.0
    assert result["loc_l2_mean"] < 0.25
    # resumable prediction: a second run writes nothing new
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--out", str(out), "--quiet") == 0
    assert len(read_jsonl(out)) == 8


def perfect_outputs(n_slots, slot_of_object, objects, target, layout):
    """(1, n_slots, D) network outputs that are certain of each object in its slot (loc_scale 3) and of
    nothing elsewhere."""
    import torch

    out = torch.full((1, n_slots, layout.size), -30.0)
    for k, (slot, o) in enumerate(zip(slot_of_object, objects)):
        out[0, slot, 0] = 30.0
        for name, values in layout.attrs.items():
            out[0, slot, layout.slices[name].start + values.index(o[name])] = 30.0
        out[0, slot, layout.slices["loc"]] = torch.tensor(o["loc"]) / 3.0
        out[0, slot, layout.slices["rot"]] = target["rot"][k]
    return out


def test_hungarian_loss_is_zero_for_a_perfect_set_and_ignores_slot_order():
    import torch

    from igbench.baselines.cnn_set import CnnSetConfig
    from igbench.baselines.cnn_set_model import Layout, encode_targets, set_loss
    from igbench.task import load_task

    task = load_task("clevr")
    layout = Layout(task)
    objects = [obj("cube", "blue", 1.0, -2.0), obj("sphere", "red", -1.5, 0.5)]
    objects[0].update(rotation=[0.3], has_rotation=True)
    targets = encode_targets([{"id": "clevr/train/000000", "objects": objects}], layout, 3.0, 3)
    out = perfect_outputs(3, (2, 0), objects, targets[0], layout)  # objects in slots 2 and 0, slot 1 empty
    loss, parts = set_loss(out, targets, layout, CnnSetConfig().loss)
    assert float(loss) < 1e-6, parts


def test_cells_take_the_cell_of_their_centre_and_a_free_neighbour_when_a_nearer_object_has_it():
    import numpy as np

    from igbench.baselines.cnn_set_model import assign_cells

    # a 4 x 6 grid over a 60 x 40 image: cells of 10 x 10 px
    pixels = np.array([[16.0, 27.0], [12.0, 22.0], [59.9, 0.0], [-3.0, 45.0]])
    depths = np.array([5.0, 4.0, 9.0, 9.0])  # object 1 is nearer than object 0 and takes cell (2, 1) first
    cells, closeness = assign_cells(pixels, depths, (60, 40), (4, 6), sigma=1.0)
    assert cells[1] == 2 * 6 + 1
    # object 0 (centre at x 1.6, y 2.7 in cells) falls in the same cell; the free neighbour whose centre is
    # closest is row 3, column 1 (centre 1.5, 3.5)
    assert cells[0] == 3 * 6 + 1
    assert cells[2] == 0 * 6 + 5 and cells[3] == 3 * 6 + 0  # clipped into the grid
    assert closeness.shape == (24,) and closeness.max() <= 1.0
    assert closeness[2 * 6 + 1] > closeness[0 * 6 + 3]


def test_cell_loss_is_small_for_a_perfect_map_and_decoding_reads_its_peaks():
    import torch

    from igbench.baselines.cnn_set import CnnSetConfig
    from igbench.baselines.cnn_set_model import Layout, cell_loss, decode, encode_targets
    from igbench.task import load_task

    task = load_task("clevr")
    layout = Layout(task)
    objects = [obj("cube", "blue", 1.0, -2.0), obj("sphere", "red", -1.5, 0.5)]
    objects[0].update(rotation=[0.3], has_rotation=True, pixel_coords=[35.0, 12.0, 9.0])
    objects[1].update(pixel_coords=[5.0, 33.0, 8.0])
    row = {"id": "clevr/train/000000", "objects": objects, "camera": {"width": 60, "height": 40}}
    grid = (4, 6)
    targets = encode_targets([row], layout, 3.0, 10, grid=grid, sigma=1.0)
    assert targets[0]["cells"].tolist() == [1 * 6 + 3, 3 * 6 + 0]
    out = perfect_outputs(24, targets[0]["cells"].tolist(), objects, targets[0], layout)
    loss, parts = cell_loss(out, targets, layout, CnnSetConfig().loss)
    assert float(loss) < 1e-6, parts
    wrong = out.clone()
    wrong[0, 5, 0] = 30.0  # an object where there is none
    assert float(cell_loss(wrong, targets, layout, CnnSetConfig().loss)[0]) > 1.0
    config = CnnSetConfig()
    config.model.head = "cells"
    near = out.clone()
    near[0, 1 * 6 + 2, 0] = 5.0  # likely, but beside a likelier cell: not a peak, not an object
    (program,) = decode(near, layout, config, task, grid)
    assert sorted(o.attrs["shape"] for o in program.objects) == ["cube", "sphere"]
    cube = next(o for o in program.objects if o.attrs["shape"] == "cube")
    assert cube.numbers["loc"][:2] == pytest.approx((1.0, -2.0))


# ---------------------------------------------------------------------------------------- render-compare


@pytest.mark.blender
@pytest.mark.train
def test_render_compare_reduces_the_position_error_of_perturbed_predictions(data, tmp_path):
    from igbench.program import format_program
    from igbench.scene import object_from_row
    from igbench.program import Obj, Program
    from igbench.task import load_task

    task = load_task("clevr")
    rows = rows_of(data, "val")[:2]
    base = tmp_path / "perturbed.jsonl"
    shifts = [(0.35, -0.25), (-0.3, 0.3)]
    with open(base, "w") as f:
        for row in rows:
            objects = []
            for k, o in enumerate(object_from_row(r, task) for r in row["objects"]):
                dx, dy = shifts[k % 2]
                x, y, z = o.loc
                objects.append(Obj(o.attrs, {**o.numbers, "loc": (x + dx, y + dy, z)}))
            f.write(json.dumps({"id": row["id"], "program": format_program(Program(objects), task)}) + "\n")
    out = tmp_path / "refined.jsonl"
    assert cli("refine", "--model", "render-compare", "--base", str(base), "--data", str(data), "--split", "val",
               "--out", str(out), "--limit", "2", "--quiet", "refine.budget=30", "refine.step=0.2") == 0
    refined = read_jsonl(out)
    assert [r["id"] for r in refined] == [r["id"] for r in rows]
    assert all(2 <= r["renders"] <= 30 for r in refined)
    assert all(r["loss_after"] < r["loss_before"] for r in refined)
    ids = {r["id"] for r in rows}
    from igbench.score.reference import load_reference
    import dataclasses

    ref = load_reference(sorted(ids), data.parent)
    subset = {k: dataclasses.replace(v, rows={i: v.rows[i] for i in sorted(ids)}) for k, v in ref.items()}
    from igbench.score import score_predictions

    before = score_predictions(str(base), subset, bootstrap=0)["results"]["clevr/val"]
    after = score_predictions(str(out), subset, bootstrap=0)["results"]["clevr/val"]
    assert after["loc_l2_mean"] < 0.7 * before["loc_l2_mean"], (before["loc_l2_mean"], after["loc_l2_mean"])
    assert after["count_acc"] == 1.0 and min(after["attr_acc"].values()) == 1.0  # only positions move


@pytest.mark.blender
def test_render_compare_refines_and_does_not_train(data, tmp_path, capsys):
    assert cli("refine", "--base", str(tmp_path / "nowhere.jsonl"), "--data", str(data), "--split", "val",
               "--out", str(tmp_path / "x.jsonl")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--base: no such predictions file" in err
    assert cli("train", "--model", "render-compare", "--data", str(data), "--output", str(tmp_path / "rc")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "learns nothing" in err and "igbench refine" in err
    assert not (tmp_path / "rc").exists() and not (tmp_path / "x.jsonl").exists()


# -------------------------------------------------------------------------------------- driver and imports


def test_benchmark_dry_run_lists_every_step_and_rejects_unknown_scales(tmp_path, capsys):
    import yaml

    from igbench.leaderboard.run import SCALES_DIR, main

    paths = [f"results={tmp_path / 'r'}", f"runs={tmp_path / 'runs'}", f"data={tmp_path / 'data'}"]
    assert main(["--dry-run", *paths]) == 0
    text = capsys.readouterr().out
    for needle in ("igbench render --task clevr --split ood --n 100", "igbench train --model cnn-set",
                   "igbench train --model vlm", "model.path=tiny-random:llava",
                   "igbench refine --model render-compare --base", "igbench score"):
        assert needle in text
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()  # a dry run writes nothing
    assert main(["--scale", "paper", "--dry-run", *paths]) == 0
    assert "--config igllm-7b" in capsys.readouterr().out
    assert main(["--scale", "huge", "--dry-run"]) == 2
    assert "unknown benchmark scale 'huge'" in capsys.readouterr().err
    assert main(["--scale", "cpu", "--dry-run", "--rows", "cnn-set-vgg16", "--only", "train", *paths]) == 0
    assert [line.split(":")[1].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith("igbench leaderboard: train")] == ["train cnn-set-vgg16"]
    assert main(["--scale", "cpu", "--dry-run", "--rows", "cnn-set-vgg", *paths]) == 2
    assert "unknown row 'cnn-set-vgg' (did you mean 'cnn-set-vgg16'?)" in capsys.readouterr().err
    for scale in SCALES_DIR.glob("*.yaml"):  # every shipped scale resolves every row's config
        assert main(["--scale", scale.stem, "--dry-run", *paths]) == 0, scale.stem
    capsys.readouterr()
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml.safe_dump({"task": "clevr", "models": [{"name": "cnn-set", "overrides": ["train.stpes=5"]}]}))
    assert main(["--scale", str(typo), "--dry-run", *paths]) == 2
    err = capsys.readouterr().err
    assert "benchmark row 'cnn-set': unknown config key 'train.stpes'" in err and "train.steps" in err


def test_cost_counts_every_run_and_the_wall_time_of_overlapping_steps(tmp_path):
    from igbench.leaderboard.cost import cost_summary, union_seconds

    assert union_seconds([(0, 10), (5, 12), (20, 21), (1, 2)]) == 13
    assert union_seconds([]) == 0
    log = [{"what": "render train", "seconds": 50, "rc": 0, "started": 0},
           {"what": "train a", "seconds": 20, "rc": -9, "started": 50},  # killed, then resumed
           {"what": "train b", "seconds": 40, "rc": 0, "started": 100, "jobs": 2},
           {"what": "train a", "seconds": 25, "rc": 0, "started": 125, "jobs": 2},
           {"what": "render train", "seconds": 2, "rc": 0, "started": 200}]  # a rerun that found it done
    cost = cost_summary(log)
    assert cost["seconds_by_kind"] == {"render": 52, "train": 85} and cost["sum_seconds"] == 137
    assert cost["wall_seconds"] == 50 + 20 + 50 + 2 and cost["jobs"] == 2  # b and a side by side from 100 to 150
    assert cost_summary([{k: v for k, v in e.items() if k != "started"} for e in log])["wall_seconds"] is None

    from igbench.leaderboard.run import LeaderboardConfig
    from igbench.leaderboard.table import _cost_section

    path = tmp_path / "bench_log.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in log))
    config = LeaderboardConfig(budget_hours=0.03)  # 108 s
    assert "| train | 1.4 |" in _cost_section(config, path, complete=True)
    assert "**over** the scale's budget of 0.03 h" in _cost_section(config, path, complete=True)[-2]
    assert "so far: rows are still to run" in _cost_section(config, path, complete=False)[-2]


def test_rows_at_once_start_longest_first_and_a_refine_entry_once_its_base_is_done():
    import threading
    import time as clock

    from igbench.leaderboard.run import Job, Leaderboard, LeaderboardConfig

    events, lock = [], threading.Lock()

    def job(name, minutes, after=None, fails=False):
        def run():
            with lock:
                events.append(("start", name))
            clock.sleep(minutes / 20 if minutes else 0.02)  # 1 "minute": 50 ms
            with lock:
                events.append(("end", name))
            if fails:
                raise RuntimeError(f"{name} failed")
        return Job(name, minutes, after, run)

    board = Leaderboard(LeaderboardConfig(), "test", jobs=2)
    board.run_at_once([job("oracle", None), job("prior", None), job("short", 2), job("long", 8), job("mid", 4),
                       job("refine", 5, after="short")])
    starts = [name for kind, name in events if kind == "start"]
    assert events.index(("start", "refine")) > events.index(("end", "short"))
    # refine, the second longest, waits for short (after mid: 4-6), and starts before the rows without an estimate
    assert starts == ["long", "mid", "short", "refine", "oracle", "prior"]

    events.clear()  # a base that is not run now (--rows): its refine entry starts at once
    board.run_at_once([job("refine", 1, after="elsewhere"), job("row", 1)])
    assert sorted(name for kind, name in events if kind == "start") == ["refine", "row"]

    events.clear()  # a failed base: its refine entry never starts, the row beside it finishes
    with pytest.raises(RuntimeError, match="base failed"):
        board.run_at_once([job("base", 1, fails=True), job("beside", 3), job("refine", 1, after="base")])
    assert ("end", "beside") in events and ("start", "refine") not in events


def test_baselines_import_neither_torch_nor_bpy():
    code = ("import igbench.models, igbench.baselines.oracle, igbench.baselines.prior, igbench.baselines.cnn_set, "
            "igbench.baselines.render_compare, igbench.leaderboard.run, igbench.leaderboard.table\n"
            "import sys; print(' '.join(m for m in ('torch', 'bpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


@pytest.mark.train
def test_a_dot2d_benchmark_runs_end_to_end_with_its_own_columns(tmp_path, capsys):
    """The driver on a task other than CLEVR: canvas renders, two rows of one model told apart by `label`,
    a zero-shot VLM row (a tiny random model) with its note under the table."""
    import yaml

    from igbench.leaderboard.run import main

    scale = tmp_path / "bench-toy.yaml"
    config = {"task": "dot2d", "data": str(tmp_path / "data"), "runs": str(tmp_path / "runs"),
              "results": str(tmp_path / "results"), "render": {"resolution": "32x32", "workers": 1},
              "splits": {"train": 16, "test": 6, "ood": 6}, "splits_note": "Toy splits.",
              "score": {"render": True, "workers": 1, "bootstrap": 0}, "budget_hours": 1,
              "models": [{"name": "oracle"}, {"name": "prior"}, {"name": "prior", "label": "prior-again"},
                         {"name": "cnn-set", "overrides": ["train.steps=20", "train.batch_size=8", "model.slots=1",
                                                           "model.loc_scale=1", "model.width=32", "model.height=32"]},
                         {"name": "vlm", "label": "vlm-tiny", "overrides": ["model.path=tiny-random:llava"],
                          "predict_args": ["--batch-size", "6", "predict.max_new_tokens=16"],
                          "note": "a tiny random model:\n  its numbers mean nothing"}]}
    scale.write_text(yaml.safe_dump(config))
    assert main(["--scale", str(scale), "--jobs", "2"]) == 0  # two rows at a time
    log = [json.loads(line) for line in (tmp_path / "runs" / "bench_log.jsonl").read_text().splitlines()]
    assert sorted(e["what"] for e in log if e["what"].startswith("train ")) == [
        "train cnn-set", "train oracle", "train prior", "train prior-again", "train vlm-tiny"]
    table = (tmp_path / "results" / "README.md").read_text()
    assert "| model | parse rate ↑ ID | parse rate ↑ OOD | pos err px ↓ ID |" in table
    assert "F1@0.5" not in table and "Toy splits." in table
    headline = table.split("## Models")[1].split("More metrics")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in headline.splitlines() if line.startswith("| ")}
    assert rows["oracle"].startswith("| oracle | 1.000 | 1.000 | 0.00 | 0.00 |")
    assert rows["prior"].replace("| prior |", "") == rows["prior-again"].replace("| prior-again |", "")
    assert rows["cnn-set"].startswith("| cnn-set | 1.000 | 1.000 |")  # 2-D positions, one slot: always parses
    assert "vlm-tiny" in rows and "- **vlm-tiny**: a tiny random model: its numbers mean nothing" in headline
    assert len((tmp_path / "runs" / "vlm-tiny" / "predictions" / "ood.jsonl").read_text().splitlines()) == 6
    from igbench.leaderboard.cost import cost_summary

    cost = cost_summary(log)
    assert cost["jobs"] == 2 and cost["steps"] == len(log) and 0 < cost["wall_seconds"] <= cost["sum_seconds"]
    section = table.split("## Cost")[1].split("\n## ")[0]
    assert f"| train | {cost['seconds_by_kind']['train'] / 60:.1f} |" in section
    assert f"with `jobs=2`: **{cost['wall_seconds'] / 3600:.2f} h**" in section and "within the scale's budget of 1 h" in section
    row = json.loads((tmp_path / "results" / "prior-again" / "dot2d" / "row.json").read_text())
    assert row["model"] == "prior" and row["row"] == "prior-again"
    capsys.readouterr()
    preds = tmp_path / "runs" / "prior" / "predictions" / "test.jsonl"
    preds.write_text("".join(preds.read_text().splitlines(keepends=True)[1:]))  # one prediction fewer
    assert main(["--scale", str(scale), "--only", "score"]) == 0  # a resumed run scores only what changed
    out = capsys.readouterr().out
    assert out.count("already scored on these predictions and data") == 4 and "score prior: igbench score" in out

    from igbench.baselines.cnn_set_model import Layout
    from igbench.errors import UserError
    from igbench.task import load_task

    with pytest.raises(UserError, match="needs 3-D rotations"):
        Layout(load_task("so3"))

    # A row that fails with --jobs 2: the row beside it finishes, no later row starts, the failure is one line.
    broken = dict(config, models=[{"name": "prior", "label": "broken", "launcher": ["false"]},
                                  {"name": "prior", "label": "beside"}, {"name": "prior", "label": "later"}])
    scale.write_text(yaml.safe_dump(broken))
    capsys.readouterr()
    assert main(["--scale", str(scale), "--jobs", "2", "--only", "train"]) == 2
    assert "step 'train broken' failed (exit 1)" in capsys.readouterr().err.splitlines()[0]
    assert (tmp_path / "runs" / "beside" / "bench_trained").exists() and not (tmp_path / "runs" / "later").exists()
    assert main(["--scale", str(scale), "--jobs", "0", "--dry-run"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err

    config["models"].append({"name": "oracle"})
    scale.write_text(yaml.safe_dump(config))
    assert main(["--scale", str(scale), "--dry-run"]) == 2
    assert "share a row name" in capsys.readouterr().err


def test_the_table_names_the_best_row_per_target_and_whether_its_interval_clears_the_baseline():
    import tempfile

    from igbench.files import write_json_atomic
    from igbench.leaderboard.run import LeaderboardConfig, ModelEntry, TargetEntry
    from igbench.leaderboard.table import read_eval_csv, write_table

    def scores(count, ci, loc, loc_ci):
        split = {"n": 500, "count_acc": count, "loc_l2_mean": loc, "ci95": {"count_acc": ci, "loc_l2_mean": loc_ci}}
        return {"results": {"clevr/test": split, "clevr/ood": dict(split, count_acc=count - 0.1)}}

    rows = {"oracle": scores(1.0, [1.0, 1.0], 0.0, [0.0, 0.0]), "prior": scores(0.15, [0.12, 0.18], 1.6, [1.5, 1.7]),
            "a": scores(0.85, [0.82, 0.88], 0.62, [0.58, 0.66]),   # count reached and clear; position not reached
            "b": scores(0.19, [0.14, 0.24], 0.45, [0.40, 1.55])}   # position reached, interval overlaps the prior's
    # hand-made results (outside the test's tmp folder, whose scores.json files must be the scorer's own)
    tmp_path = Path(tempfile.mkdtemp(prefix="igbench-table-"))
    for name, s in rows.items():
        (tmp_path / name / "clevr").mkdir(parents=True)
        write_json_atomic(tmp_path / name / "clevr" / "scores.json", s)
    (tmp_path / "runs" / "a").mkdir(parents=True)  # a validation curve, as IG-LLM's trainer writes it
    (tmp_path / "runs" / "a" / "eval.csv").write_text("step,parse_rate,count_acc,attr_acc_color,loc_l2_mean\n"
                                                      "500,0.5,,0.2,1.0\n1000,0.9,0.3,0.5,0.8\n")
    config = LeaderboardConfig(models=[ModelEntry(name=n) for n in [*rows, "c"]], runs=str(tmp_path / "runs"),
                               preface="The headline  table\n is elsewhere.",
                               targets=[TargetEntry(metric="count_acc", at_least=0.8),
                                        TargetEntry(metric="loc_l2_mean", at_most=0.5)])
    try:
        text = write_table(config, "toy", tmp_path, {}, []).read_text()
        assert (tmp_path / "learning_curves.png").stat().st_size > 1000
        assert read_eval_csv(tmp_path / "runs" / "a" / "eval.csv")["count_acc"] == [None, 0.3]
    finally:
        shutil.rmtree(tmp_path)
    assert "![learning curves](learning_curves.png)" in text
    assert text.splitlines()[2] == "The headline table is elsewhere."
    assert "**Not run yet**: c (the same `make benchmark scale=toy` resumes where it stopped)." in text
    section = text[text.index("## Targets"):]
    assert "| count_acc | ≥ 0.8 | a | 0.850 [0.820, 0.880] | 0.750 | prior: 0.150 [0.120, 0.180] | yes | yes |" in section
    assert "| loc_l2_mean | ≤ 0.5 | b | 0.450 [0.400, 1.550] | 0.450 | prior: 1.600 [1.500, 1.700] | yes | no |" in section
    assert "Rows reaching every target: none." in section


def test_seeds_make_one_row_per_seed_and_the_table_their_mean_and_spread(tmp_path, capsys):
    import tempfile

    import yaml

    from igbench.files import write_json_atomic
    from igbench.leaderboard.run import load_leaderboard_config, main
    from igbench.leaderboard.table import spread, write_table

    scale = tmp_path / "seeds.yaml"
    models = [{"name": "prior"}, {"name": "cnn-set", "label": "set", "seeds": [0, 3], "overrides": ["train.steps=5"],
               "note": "one note for both seeds"}]
    scale.write_text(yaml.safe_dump({"task": "dot2d", "results": str(tmp_path / "results"), "models": models}))
    config = load_leaderboard_config(str(scale))
    assert [(m.row, m.group, m.overrides) for m in config.models] == [
        ("prior", None, []), ("set-seed0", "set", ["train.steps=5", "train.seed=0"]),
        ("set-seed3", "set", ["train.steps=5", "train.seed=3"])]
    assert main(["--scale", str(scale), "--dry-run", "--only", "train", f"runs={tmp_path / 'runs'}"]) == 0
    assert "--output " + str(tmp_path / "runs" / "set-seed3") + " --quiet train.steps=5 train.seed=3" in capsys.readouterr().out
    for bad in ([0, 0], "prior"):  # a repeated seed; a model without train.seed
        entry = dict(models[1], seeds=[0, 0]) if bad == [0, 0] else {"name": "prior", "seeds": [1]}
        scale.write_text(yaml.safe_dump({"task": "dot2d", "models": [entry]}))
        assert main(["--scale", str(scale), "--dry-run"]) == 2
    assert "a seed appears twice" in capsys.readouterr().err.splitlines()[0]

    assert spread([1.0]) == (1.0, 0.0)
    mean, sd = spread([2.0, 4.0, 9.0])
    assert mean == 5.0 and abs(sd - 13 ** 0.5) < 1e-12
    results = Path(tempfile.mkdtemp(prefix="igbench-seeds-"))  # hand-made scores, outside the schema-checked tmp
    try:
        for row, px in (("prior", 24.0), ("set-seed0", 2.0), ("set-seed3", 4.0)):
            split = {"n": 10, "parse_rate": 1.0, "pos_err_px_mean": px}
            (results / row / "dot2d").mkdir(parents=True)
            write_json_atomic(results / row / "dot2d" / "scores.json",
                              {"results": {"dot2d/test": split, "dot2d/ood": dict(split, pos_err_px_mean=2 * px)}})
        text = write_table(config, "toy", results, {}, []).read_text()
    finally:
        shutil.rmtree(results)
    section = text[text.index("## Across seeds"):].split("\n## ")[0]
    line = next(l for l in section.splitlines() if l.startswith("| set |"))
    sd = spread([2.0, 4.0])[1]
    assert line.startswith(f"| set | 2 | 1.000 ± 0.000 [1.000, 1.000] | 1.000 ± 0.000 [1.000, 1.000] | "
                           f"3.00 ± {sd:.2f} [2.00, 4.00] | 6.00 ± {2 * sd:.2f} [4.00, 8.00] |")
    assert "| prior |" not in section
    assert "PSNR" not in text and "median px" not in text  # columns no row has are left out
    assert text.count("one note for both seeds") == 1 and "- **set**: one note for both seeds" in text


def test_train_sizes_make_one_row_per_size_and_the_table_a_data_efficiency_curve(tmp_path, capsys):
    import tempfile

    import yaml

    from igbench.files import write_json_atomic
    from igbench.leaderboard.run import load_leaderboard_config, main
    from igbench.leaderboard.table import write_table

    scale = tmp_path / "sizes.yaml"
    models = [{"name": "prior"}, {"name": "igllm", "label": "lm", "config": "tiny", "train_sizes": [50, 200],
                                  "seeds": [0, 1]}]
    scale.write_text(yaml.safe_dump({"task": "dot2d", "splits": {"train": 200, "test": 10, "ood": 10},
                                     "results": str(tmp_path / "results"), "models": models}))
    config = load_leaderboard_config(str(scale))
    assert [(m.row, m.group, m.curve, m.train_size, m.overrides) for m in config.models[1:]] == [
        ("lm-n50-seed0", "lm-n50", "lm", 50, ["train.train_samples=50", "train.seed=0"]),
        ("lm-n50-seed1", "lm-n50", "lm", 50, ["train.train_samples=50", "train.seed=1"]),
        ("lm-n200-seed0", "lm-n200", "lm", 200, ["train.train_samples=200", "train.seed=0"]),
        ("lm-n200-seed1", "lm-n200", "lm", 200, ["train.train_samples=200", "train.seed=1"])]
    assert main(["--scale", str(scale), "--dry-run", "--only", "train", f"runs={tmp_path / 'runs'}"]) == 0
    assert "train.train_samples=200 train.seed=1" in capsys.readouterr().out
    for bad, message in (({"train_sizes": [50, 50]}, "train_sizes must be distinct"),
                         ({"train_sizes": [400]}, "train_sizes reach 400 but the train split has 200"),
                         ({"name": "prior", "config": None, "train_sizes": [50]}, "train_samples")):
        scale.write_text(yaml.safe_dump({"task": "dot2d", "splits": {"train": 200}, "models": [dict(models[1], **bad)]}))
        assert main(["--scale", str(scale), "--dry-run"]) == 2
        assert message in capsys.readouterr().err.splitlines()[0]
    scale.write_text(yaml.safe_dump({"task": "dot2d", "splits": {"train": 200}, "models": models,
                                     "curve_points": [{"curve": "lm2", "train_size": 400, "results": "elsewhere"}]}))
    assert main(["--scale", str(scale), "--dry-run"]) == 2
    assert "curve point of 'lm2': not a curve of this scale (lm)" in capsys.readouterr().err.splitlines()[0]

    results = Path(tempfile.mkdtemp(prefix="igbench-sizes-"))  # hand-made scores, outside the schema-checked tmp
    try:
        # "elsewhere/lm": the N = 400 point, another scale's row (curve_points)
        for row, px in (("prior", 24.0), ("lm-n50-seed0", 8.0), ("lm-n50-seed1", 6.0), ("lm-n200-seed0", 2.0),
                        ("elsewhere/lm", 1.0)):
            split = {"n": 10, "parse_rate": 1.0, "pos_err_px_mean": px, "ci95": {"pos_err_px_mean": [px / 2, 2 * px]}}
            (results / row / "dot2d").mkdir(parents=True)
            write_json_atomic(results / row / "dot2d" / "scores.json",
                              {"results": {"dot2d/test": split, "dot2d/ood": dict(
                                  split, pos_err_px_mean=3 * px, ci95={"pos_err_px_mean": [1.5 * px, 6 * px]})}})
        from igbench.leaderboard.run import CurvePoint

        config.curve_points = [CurvePoint("lm", 400, str(results / "elsewhere" / "lm"))]
        text = write_table(config, "toy", results, {}, []).read_text()
        plotted = (results / "data_efficiency.png").exists()
    finally:
        shutil.rmtree(results)
    section = text[text.index("## Data efficiency"):].split("\n## ")[0]
    assert "| model | N = 50 | N = 200 | N = 400 |" in section
    sd = 2 ** 0.5  # of 8 and 6
    # one seed of 200 so far, shown with its interval; 400 from the other scale's row
    assert (f"| lm | 7.00 ± {sd:.2f} / 21.00 ± {3 * sd:.2f} | 2.00 [1.00, 4.00] / 6.00 [3.00, 12.00] | "
            "1.00 [0.50, 2.00] / 3.00 [1.50, 6.00] |" in section)
    assert f"- lm, N = 400: the row in `{results / 'elsewhere' / 'lm'}`" in section
    assert "| prior |" not in section
    assert plotted and "![data efficiency](data_efficiency.png)" in section


def test_a_data_efficiency_plot_point_has_the_error_bar_of_its_table_cell():
    from igbench.leaderboard.table import _error_bar

    assert _error_bar([(2.0, [1.0, 4.0])]) == (2.0, 1.0, 2.0)  # one seed: its 95% interval, asymmetric
    assert _error_bar([(2.0, None)]) == (2.0, 0.0, 0.0)
    mean, below, above = _error_bar([(8.0, [7.0, 9.0]), (6.0, [5.0, 7.0])])  # seeds: mean ± their deviation
    assert (mean, below, above) == (7.0, 2 ** 0.5, 2 ** 0.5)
