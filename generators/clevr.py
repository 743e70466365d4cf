"""The CLEVR sampler: objects on the ground with minimum gaps and directional margins (after CLEVR).

Placement follows the original generator's rules: for each object draw a size and an (x, y) position,
and accept it only if its bounding circle keeps `min_edge_gap` from every placed object and the offset to
every placed object is at least `margin` along each of the camera's ground directions (so left/right and
front/behind relations are unambiguous). If an object cannot be placed, the whole layout is redrawn.
Shape and colour come from the split's `colors_by_shape` (CoGenT). The visibility rule (every object at
least N visible pixels) needs a render, so the executor checks it and asks for another attempt.
"""
from __future__ import annotations

import math

import numpy as np

from igbench.program import Obj, Program
from igbench.generators.common import jittered_camera, jittered_lights, place_with_retries
from igbench.scene import Scene, object_scale
from igbench.task import Task


def sample(task: Task, split: str, index: int, seed: int) -> Scene:
    rules = task.split_rules(split)
    rng = np.random.default_rng(seed)
    camera = jittered_camera(rules["camera"], rules["visibility_resolution"], rng)
    lights = jittered_lights(rules["lights"], rng)
    low, high = rules["num_objects"]
    count = int(rng.integers(low, high + 1))
    directions = list(camera.ground_directions().values())
    program = place_with_retries(lambda: _place_objects(task, rules, count, directions, rng), rules["max_scene_tries"],
                                 f"{task.name}/{split} ({count} objects)",
                                 "the split's rules (num_objects, xy_range, min_edge_gap, margin) leave no room")
    return Scene(task.name, split, index, seed, program, camera, lights)


def _place_objects(task: Task, rules: dict, count: int, directions, rng) -> Program | None:
    sizes = task.spec["sizes"]
    periods = task.spec.get("rotation_period_deg", {})
    colors_by_shape = rules["colors_by_shape"]
    shapes = [s for s in task.categorical["shape"].values if colors_by_shape.get(s)]
    materials = task.categorical["material"].values
    low, high = rules["xy_range"]
    placed: list[tuple[float, float, float]] = []
    objects = []
    for _ in range(count):
        for _ in range(rules["max_object_tries"]):
            size = str(rng.choice(list(sizes)))
            radius = float(sizes[size])
            x, y = (float(v) for v in rng.uniform(low, high, 2))
            if _fits(x, y, radius, placed, directions, rules["min_edge_gap"], rules["margin"]):
                break
        else:
            return None
        shape = str(rng.choice(shapes))
        color = str(rng.choice(colors_by_shape[shape]))
        material = str(rng.choice(materials))
        numbers = {"loc": (x, y, object_scale(shape, radius))}
        if shape in periods:
            half = math.radians(periods[shape]) / 2
            numbers["rotation"] = (float(rng.uniform(-half, half)),)
        objects.append(Obj({"shape": shape, "color": color, "material": material, "size": size}, numbers))
        placed.append((x, y, radius))
    return Program(objects)


def _fits(x, y, radius, placed, directions, min_gap, margin) -> bool:
    for ox, oy, oradius in placed:
        dx, dy = x - ox, y - oy
        if math.hypot(dx, dy) - radius - oradius < min_gap:
            return False
        for direction in directions:
            if 0 < dx * direction[0] + dy * direction[1] < margin:
                return False
    return True
