"""SceneLines writes the bytes json.dumps writes for a scene's row, on sampled scenes and on edge values."""
import dataclasses
import json
import math

import pytest

from igbench.generators import sample_scene, sample_scenes
from igbench.program import Obj, Program, format_program
from igbench.scene import Camera, Light, SceneLines
from igbench.task import load_task


def dumped(scene, task, program):
    return json.dumps({**scene.to_dict(task), "program": program})


@pytest.mark.parametrize("name, split", [("clevr", "train"), ("clevr", "ood"), ("dot2d", "test"), ("6dof", "val"),
                                         ("so3", "ood")])
def test_sampled_scenes_are_written_as_json_dumps_writes_them(name, split):
    task = load_task(name)
    lines = SceneLines(task)
    scenes = list(sample_scenes(task, split, range(60), 3)) if name == "clevr" else [
        sample_scene(task, split, i, 3) for i in range(20)]
    for scene in scenes:
        assert lines.line(scene) == dumped(scene, task, format_program(scene.program, task))


EDGES = [-0.0, 0.0, 5e-324, -1e-300, 1e-5, 1e-4, 0.1 + 0.2, 1e15 + 0.3, 1e16, -1e22, 1.7976931348623157e308, 3, -7,
         2**70]


def test_edge_values_strings_and_non_finite_numbers_are_written_as_json_dumps_writes_them():
    task = load_task("clevr")
    lines = SceneLines(task)
    scene = sample_scene(task, "val", 0, 0)
    cases = []
    for i, value in enumerate(EDGES + [math.nan, math.inf, -math.inf]):
        obj = Obj({"shape": "cube", "color": "r\u00e9d \"q\" \\ \n", "material": "metal", "size": "large"},
                  {"loc": (value, EDGES[5 * i % len(EDGES)], -0.0), **({"rotation": (value,)} if i % 2 else {})})
        camera = Camera(((value, 0.0, 240.0), (0.0, 525.0, 160.0), (0.0, 0.0, 1.0)), scene.camera.world_to_camera,
                        480, 320)
        light = Light("k\u00eby", "AREA", (value, -0.0, 1e-7), (0.0, 0.0, 0.0), [400.0, value][i % 2], 2.0)
        cases.append(dataclasses.replace(scene, program=Program([obj, *scene.program]), camera=camera,
                                         lights=[light, *scene.lights], index=i, seed=2**63 - i))
    cases.append(dataclasses.replace(scene, program=Program([])))
    odd_objects = [  # '%' in attributes, a zero shown as -0.000 by %+.3f, fields in another order or not the task's
        Obj({"shape": "cube", "color": "100% %s red", "material": "%%", "size": "-0.000"},
            {"loc": (-0.0004, 0.0004, -1e-9), "rotation": (-0.0,)}),
        Obj({"shape": "cube", "color": "red", "material": "metal", "size": "large"},
            {"rotation": (0.25,), "loc": (1.0, -0.0, 0.7)}),
        Obj({"shape": "cube", "color": "red", "material": "metal", "size": "large"},
            {"loc": (1.0, 2.0, 0.7), "speed": (3.0,)}),
    ]
    cases += [dataclasses.replace(scene, program=Program([obj, *scene.program])) for obj in odd_objects]
    for case in cases + cases:  # the second time from the texts SceneLines keeps for repeated parts
        assert lines.line(case) == dumped(case, task, format_program(case.program, task))
