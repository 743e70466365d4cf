"""The SO(3) sampler: one library object at the origin in a uniform random orientation.

A split keeps or holds out a band of tilt angles (the angle between the object's canonical +z and the
world's +z): `tilt_deg: {exclude: [a, b]}` or `{within: [a, b]}`; orientations are drawn uniformly from
SO(3) and rejected until they obey the split's rule.
"""
from __future__ import annotations

import numpy as np

from igbench.generators.common import jittered_camera, jittered_lights, object_pool, uniform_rotation
from igbench.program import Obj, Program
from igbench.rotations import from_matrix
from igbench.scene import Scene
from igbench.task import Task

MAX_DRAWS = 10_000


def tilt_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(rotation[2, 2], -1.0, 1.0))))


def obeys(rotation: np.ndarray, rule: dict | None) -> bool:
    if not rule:
        return True
    tilt = tilt_deg(rotation)
    if "within" in rule:
        low, high = rule["within"]
        return low <= tilt <= high
    low, high = rule["exclude"]
    return not low <= tilt <= high


def sample(task: Task, split: str, index: int, seed: int) -> Scene:
    rules = task.split_rules(split)
    rng = np.random.default_rng(seed)
    camera = jittered_camera(rules["camera"], rules["visibility_resolution"], rng)
    lights = jittered_lights(rules["lights"], rng)
    name = str(rng.choice(object_pool(task, rules)))
    material = str(rng.choice(rules["materials"]))
    for _ in range(MAX_DRAWS):
        rotation = uniform_rotation(rng)
        if obeys(rotation, rules.get("tilt_deg")):
            break
    else:
        raise RuntimeError(f"{task.name}/{split}: no orientation obeys {rules.get('tilt_deg')} in {MAX_DRAWS} draws")
    obj = Obj({"object": name, "material": material},
              {"loc": (0.0, 0.0, 0.0), "rotation": from_matrix(rotation, task.rotation_rep)})
    return Scene(task.name, split, index, seed, Program([obj]), camera, lights)
