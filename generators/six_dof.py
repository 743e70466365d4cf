"""The 6-DoF sampler: 1 to 4 library objects with full position and orientation on or above the ground.

Each object gets a uniform random orientation, a position in the ground square, and a height that puts its
lowest point on the ground (probability `rest_probability`) or up to `max_hover` above it. Bounding spheres
keep `min_gap` apart. The camera sits on a shell around the scene. Splits choose the object pool
(`objects: id | heldout | all`) and the materials.
"""
from __future__ import annotations

import numpy as np

from igbench.generators.common import (distance, jittered_lights, object_pool, place_with_retries, shell_camera,
                                       uniform_rotation)
from igbench.program import Obj, Program
from igbench.rotations import from_matrix
from igbench.scene import Scene
from igbench.task import Task


def bounding_radius(spec) -> float:
    return float(np.linalg.norm(spec.vertices, axis=1).max())


def lowest_height(vertices: np.ndarray, rotation: np.ndarray) -> float:
    """The lowest z of the rotated vertices, each z summed in one fixed order (elementwise: `vertices @
    rotation.T` goes through BLAS, whose last bits may differ between CPUs)."""
    x, y, z = vertices.T
    return float(((x * rotation[2, 0] + y * rotation[2, 1]) + z * rotation[2, 2]).min())


def sample(task: Task, split: str, index: int, seed: int) -> Scene:
    rules = task.split_rules(split)
    rng = np.random.default_rng(seed)
    camera = shell_camera(rules["camera"], rules["visibility_resolution"], rng)
    lights = jittered_lights(rules["lights"], rng)
    low, high = rules["num_objects"]
    count = int(rng.integers(low, high + 1))
    pool = object_pool(task, rules)
    program = place_with_retries(lambda: _place(task, rules, count, pool, rng), rules["max_scene_tries"],
                                 f"{task.name}/{split} ({count} objects)", "widen xy_range or lower num_objects")
    return Scene(task.name, split, index, seed, program, camera, lights)


def _place(task: Task, rules: dict, count: int, pool: list[str], rng) -> Program | None:
    placed: list[tuple[np.ndarray, float]] = []
    objects = []
    lo, hi = rules["xy_range"]
    for _ in range(count):
        for _ in range(rules["max_object_tries"]):
            name = str(rng.choice(pool))
            spec = task.library[name]
            rotation = uniform_rotation(rng)
            lowest = lowest_height(spec.vertices, rotation)
            hover = 0.0 if rng.random() < rules["rest_probability"] else float(rng.uniform(0, rules["max_hover"]))
            centre = np.array([*rng.uniform(lo, hi, 2), hover - lowest])
            radius = bounding_radius(spec)
            if all(distance(centre, c) >= radius + r + rules["min_gap"] for c, r in placed):
                break
        else:
            return None
        placed.append((centre, radius))
        material = str(rng.choice(rules["materials"]))
        objects.append(Obj({"object": name, "material": material},
                           {"loc": tuple(float(v) for v in centre), "rotation": from_matrix(rotation, task.rotation_rep)}))
    return Program(objects)
