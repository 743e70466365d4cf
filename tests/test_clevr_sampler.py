"""The CLEVR sampler's rules hold over 1,500 scenes; splits are data; sampling is deterministic."""
import itertools
import json
import math

import numpy as np
import pytest
import yaml

from igbench.cli.main import main
from igbench.generators import sample_scene, scene_seed
from igbench.program import format_program, parse
from igbench.scene import Scene
from igbench.task import load_task

TASK = load_task("clevr")
CONDITION_A = {"cube": {"gray", "blue", "brown", "yellow"}, "cylinder": {"red", "green", "purple", "cyan"}}
CONDITION_B = {"cube": CONDITION_A["cylinder"], "cylinder": CONDITION_A["cube"]}


def scenes(split, count, task=TASK, seed=0):
    return [sample_scene(task, split, i, seed) for i in range(count)]


@pytest.fixture(scope="module")
def many():
    return {split: scenes(split, 300 if split != "ood" else 600) for split in ("train", "val", "test", "ood")}


def test_counts_cover_three_to_ten(many):
    counts = [len(s.program) for split in many.values() for s in split]
    assert min(counts) == 3 and max(counts) == 10
    assert set(counts) == set(range(3, 11))


def test_edge_gaps_and_directional_margins_hold(many):
    rules = TASK.split_rules("train")
    sizes = TASK.spec["sizes"]
    for scene in itertools.chain.from_iterable(many.values()):
        directions = scene.camera.ground_directions()
        for a, b in itertools.combinations(scene.program, 2):
            dx, dy = a.loc[0] - b.loc[0], a.loc[1] - b.loc[1]
            gap = math.hypot(dx, dy) - sizes[a.attrs["size"]] - sizes[b.attrs["size"]]
            assert gap >= rules["min_edge_gap"] - 1e-9
            for name in ("right", "behind"):
                assert abs(dx * directions[name][0] + dy * directions[name][1]) >= rules["margin"] - 1e-9


def test_positions_rest_on_the_ground_inside_the_range(many):
    for scene in itertools.chain.from_iterable(many.values()):
        for obj in scene.program:
            x, y, z = obj.loc
            assert -3 <= x <= 3 and -3 <= y <= 3
            size = TASK.spec["sizes"][obj.attrs["size"]]
            assert z == pytest.approx(size / math.sqrt(2) if obj.attrs["shape"] == "cube" else size)


def test_cogent_colours_per_split(many):
    for split, rule in [("train", CONDITION_A), ("val", CONDITION_A), ("test", CONDITION_A), ("ood", CONDITION_B)]:
        seen = {"cube": set(), "cylinder": set(), "sphere": set()}
        for obj in (o for s in many[split] for o in s.program):
            seen[obj.attrs["shape"]].add(obj.attrs["color"])
        assert seen["cube"] == rule["cube"], split
        assert seen["cylinder"] == rule["cylinder"], split
        if split == "ood":
            assert len(seen["sphere"]) == 8


def test_only_cubes_carry_a_yaw_within_their_symmetry(many):
    for obj in (o for split in many.values() for s in split for o in s.program):
        if obj.attrs["shape"] == "cube":
            assert -math.pi / 4 <= obj.rotation[0] <= math.pi / 4
        else:
            assert obj.rotation is None


def test_camera_and_lights_are_jittered_within_bounds(many):
    spec = TASK.split_rules("train")
    base = np.array(spec["camera"]["location"])
    offsets = np.array([s.camera.location - base for s in many["train"]])
    assert np.abs(offsets).max() <= spec["camera"]["jitter"] + 1e-9
    assert offsets.std(axis=0).min() > 0.2  # really jittered, on every axis
    keys = np.array([s.lights[0].location for s in many["train"]]) - spec["lights"]["key"]["location"]
    assert np.abs(keys).max() <= spec["lights"]["jitter"] + 1e-9


def test_deterministic_and_independent_of_order():
    forward = [format_program(s.program, TASK) for s in scenes("val", 30)]
    backward = [format_program(sample_scene(TASK, "val", i, 0).program, TASK) for i in reversed(range(30))][::-1]
    assert forward == backward
    assert format_program(sample_scene(TASK, "val", 3, 1).program, TASK) != forward[3]


def test_splits_and_attempts_draw_different_scenes():
    seeds = {scene_seed("clevr", split, i, 0, a) for split in ("train", "val", "test") for i in range(50) for a in range(3)}
    assert len(seeds) == 3 * 50 * 3


def test_program_round_trips_through_text_and_rows(many):
    for scene in many["val"][:50]:
        text = format_program(scene.program, TASK)
        assert format_program(parse(text, TASK), TASK) == text
        again = Scene.from_dict(json.loads(json.dumps(scene.to_dict(TASK))), TASK)
        assert format_program(again.program, TASK) == text
        assert again.camera == scene.camera and again.lights == scene.lights


def test_a_user_adds_a_split_by_editing_yaml(tmp_path):
    spec = yaml.safe_load(TASK.path.read_text())
    spec["splits"]["many"] = {"num_objects": [11, 12], "xy_range": [-4.0, 4.0],
                              "colors_by_shape": spec["cogent"]["condition_a"]}
    path = tmp_path / "clevr_many.yaml"
    path.write_text(yaml.safe_dump(spec))
    task = load_task(str(path))
    counts = {len(s.program) for s in scenes("many", 40, task)}
    assert counts == {11, 12}


@pytest.mark.parametrize("kind, needle", [(None, "lacks kind (kind: one of canvas, pose, scene_set)"),
                                          ("scenes", "unknown kind 'scenes' (did you mean 'scene_set'?)")])
def test_a_task_file_without_a_known_kind_is_refused_in_one_line(tmp_path, capsys, kind, needle):
    spec = yaml.safe_load(TASK.path.read_text())
    spec.pop("kind")
    if kind is not None:
        spec["kind"] = kind
    path = tmp_path / f"clevr_{kind}.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["render", "--task", str(path), "--split", "ood", "--n", "1", "--out", str(tmp_path), "--programs-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err


def test_the_task_kind_is_declared_and_decides_the_dataset_columns():
    from igbench.dataset import features

    kinds = {name: load_task(name).kind for name in ("clevr", "so3", "6dof", "dot2d")}
    assert kinds == {"clevr": "scene_set", "so3": "pose", "6dof": "pose", "dot2d": "canvas"}
    assert "R_cam" in features(load_task("so3"))["objects"].feature and "R_cam" not in features(TASK)["objects"].feature


def test_programs_only_cli_writes_sampled_scenes(tmp_path, capsys):
    assert main(["render", "--split", "ood", "--n", "25", "--out", str(tmp_path), "--programs-only", "--quiet"]) == 0
    lines = (tmp_path / "clevr" / "ood" / "programs.jsonl").read_text().splitlines()
    assert len(lines) == 25
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [f"clevr/ood/{i:06d}" for i in range(25)]
    assert rows[7]["program"] == format_program(sample_scene(TASK, "ood", 7, 0).program, TASK)
