"""The CLEVR sampler: objects on the ground with minimum gaps and directional margins (after CLEVR).

Placement follows the original generator's rules: for each object draw a size and an (x, y) position,
and accept it only if its bounding circle keeps `min_edge_gap` from every placed object and the offset to
every placed object is at least `margin` along each of the camera's ground directions (so left/right and
front/behind relations are unambiguous). If an object cannot be placed, the whole layout is redrawn.
Shape and colour come from the split's `colors_by_shape` (CoGenT). The visibility rule (every object at
least N visible pixels) needs a render, so the executor checks it and asks for another attempt.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from igbench.program import Obj, Program
from igbench.generators.common import (LIGHTS, jittered_camera, jittered_camera_matrices, jittered_light_locations,
                                       jittered_lights, light_sets, place_with_retries)
from igbench.generators.stream import LOW32, DrawStream, bounded, pcg64_states, uniforms
from igbench.scene import Camera, Scene, SceneLines, ground_axes, object_scale
from igbench.task import Task


def sample(task: Task, split: str, index: int, seed: int) -> Scene:
    rules = _split_rules(task, split)
    draws = DrawStream.seeded(seed)  # default_rng(seed)'s draws, without numpy's per-call cost
    camera = jittered_camera(rules["camera"], rules["visibility_resolution"], draws)
    lights = jittered_lights(rules["lights"], draws)
    low, high = rules["num_objects"]
    count = draws.integers(low, high + 1)
    directions = list(camera.ground_directions().values())
    program = place_with_retries(lambda: _place_objects(task, rules, count, directions, draws), rules["max_scene_tries"],
                                 f"{task.name}/{split} ({count} objects)",
                                 "the split's rules (num_objects, xy_range, min_edge_gap, margin) leave no room")
    return Scene(task.name, split, index, seed, program, camera, lights)


_RULES: dict[tuple[int, str], tuple[Task, dict]] = {}


def _split_rules(task: Task, split: str) -> dict:
    """task.split_rules(split), computed once per task and split (it deep-copies the YAML)."""
    key = (id(task), split)
    cached = _RULES.get(key)
    if cached is None or cached[0] is not task:
        cached = _RULES[key] = (task, task.split_rules(split))
    return cached[1]


def _place_objects(task: Task, rules: dict, count: int, directions, draws: DrawStream) -> Program | None:
    """One layout attempt, drawing exactly what CLEVR's loop draws: per object, tries of (size, x, y) until
    one fits, then shape, colour, material and (for shapes with a period) a yaw."""
    sizes = task.spec["sizes"]
    size_names = list(sizes)
    periods = task.spec.get("rotation_period_deg", {})
    colors_by_shape = rules["colors_by_shape"]
    shapes = [s for s in task.categorical["shape"].values if colors_by_shape.get(s)]
    materials = task.categorical["material"].values
    low, high = (float(v) for v in rules["xy_range"])
    placed: list[tuple[float, float, float]] = []
    objects = []
    for _ in range(count):
        for _ in range(rules["max_object_tries"]):
            size = draws.choice(size_names)
            radius = float(sizes[size])
            x, y = draws.uniform(low, high), draws.uniform(low, high)
            if _fits(x, y, radius, placed, directions, rules["min_edge_gap"], rules["margin"]):
                break
        else:
            return None
        shape = str(draws.choice(shapes))
        color = str(draws.choice(colors_by_shape[shape]))
        material = str(draws.choice(materials))
        numbers = {"loc": (x, y, object_scale(shape, radius))}
        if shape in periods:
            half = math.radians(periods[shape]) / 2
            numbers["rotation"] = (draws.uniform(-half, half),)
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


# ------------------------------------------------------------------------------------- many scenes at once

SCENES_AT_ONCE = 1024  # scenes started (seeded, their first draws made) and placed per call of the compiled loop
COMPILED_FROM = 400  # fewer scenes are drawn one by one: the compiled loops' start (numba's import and first calls,
# about 1.3 CPU s) costs more than they do (2-3 ms each)
BAND = 1e-9  # relative width, around the tests' thresholds, of the distances that `sample` decides instead


def sample_many(task: Task, split: str, indices, seeds) -> Iterator[Scene]:
    """sample(task, split, i, s) for each i, s of zip(indices, seeds), in order, the same scenes bit for bit,
    SCENES_AT_ONCE at a time (runs of fewer than COMPILED_FROM one by one): their bit generators seeded by state
    at once (numpy's SeedSequence, vectorised), their first raw values turned into cameras, lights and object
    counts in bulk, and their layout loops run compiled (generators/clevr_layouts.py). A scene goes to `sample`
    wherever the compiled loop could differ from it (clevr_layouts says when) and where it finds no layout
    (`sample` raises the error)."""
    if len(indices) < COMPILED_FROM:
        yield from (sample(task, split, index, seed) for index, seed in zip(indices, seeds))
        return
    scenes = _ManyScenes(task, split)
    for chunk in _chunks(indices, seeds):
        for (index, seed), found in zip(chunk, scenes.sample(chunk)):
            yield Scene(task.name, split, index, seed, *found) if found else sample(task, split, index, seed)


def sample_lines(task: Task, split: str, indices, seeds, lines: SceneLines) -> Iterator[str]:
    """lines.line(scene) for the scenes of sample_many(task, split, indices, seeds), the same text, written by
    compiled code from the sampler's arrays (generators/clevr_lines.py) without building the scenes; a scene that
    `sample` must draw, or with a number the compiled writers do not take, through lines.line."""
    if len(indices) < COMPILED_FROM:
        yield from (lines.line(sample(task, split, index, seed)) for index, seed in zip(indices, seeds))
        return
    scenes = _ManyScenes(task, split)
    for chunk in _chunks(indices, seeds):
        for (index, seed), text in zip(chunk, scenes.lines(chunk, lines)):
            yield text if text is not None else lines.line(sample(task, split, index, seed))


def _chunks(indices, seeds) -> Iterator[list[tuple[int, int]]]:
    jobs = zip(indices, seeds)
    while chunk := list(itertools.islice(jobs, SCENES_AT_ONCE)):
        yield chunk


class _Placed(NamedTuple):
    """Scenes sampled in bulk (_ManyScenes.place), as arrays, one row per scene."""

    world_to_camera: np.ndarray  # (n, 4, 4)
    light_locations: np.ndarray  # (n, lights, 3)
    count: np.ndarray  # objects
    kinds: np.ndarray  # (n, most, 4): each object's size, shape, colour and material indices
    xy: np.ndarray  # (n, most, 2)
    yaw: np.ndarray  # (n, most): nan for a shape without one
    ok: np.ndarray  # False: `sample` must draw the scene


class _ManyScenes:
    """A split's scenes in bulk: its sizes, shapes, colours and rules as the compiled loops take them; `sample`
    gives the scenes of (index, seed) pairs, `lines` their text."""

    def __init__(self, task: Task, split: str):
        from igbench.generators import clevr_layouts  # numba: only the bulk path pays its import

        self.compiled = clevr_layouts
        self.task, self.split = task, split
        self.rules = rules = _split_rules(task, split)
        sizes = task.spec["sizes"]
        self.size_names = list(sizes)
        self.radii = np.array([float(sizes[name]) for name in self.size_names])
        self.colors_by_shape = rules["colors_by_shape"]
        self.shapes = [s for s in task.categorical["shape"].values if self.colors_by_shape.get(s)]
        self.materials = list(task.categorical["material"].values)
        periods = task.spec.get("rotation_period_deg", {})
        self.half_period = np.array([math.radians(periods[s]) / 2 if s in periods else np.nan for s in self.shapes])
        self.n_colors = np.array([len(self.colors_by_shape[s]) for s in self.shapes], np.int64)
        self.heights = [[object_scale(shape, radius) for radius in self.radii.tolist()] for shape in self.shapes]
        self.low, self.high = (float(v) for v in rules["xy_range"])
        self.gap, self.margin = float(rules["min_edge_gap"]), float(rules["margin"])
        self.max_tries, self.max_layouts = int(rules["max_object_tries"]), int(rules["max_scene_tries"])
        # the largest distance a test compares (the compiled sqrt and CPython's hypot differ by an ulp or so)
        self.band = BAND * (2 * max(abs(self.low), abs(self.high)) + 2 * self.radii.max() + abs(self.gap) + self.margin)
        self.most = int(rules["num_objects"][1])
        self.templates: tuple | None = None  # the line templates (see lines), made for the first chunk

    def place(self, jobs: list[tuple[int, int]]) -> _Placed:
        """The scenes of (index, seed) pairs: cameras, lights and object counts from their first raw values, then
        their layouts from the compiled loop."""
        rules, camera, lights = self.rules, self.rules["camera"], self.rules["lights"]
        low, high = rules["num_objects"]
        choices = high + 1 - low
        first = 3 + 3 * len(LIGHTS) + (choices > 1)  # raw values before the layouts (numpy draws no word for one choice)
        gens = self.compiled.generators(pcg64_states(seed for _, seed in jobs))
        raw = self.compiled.raw_values(gens, first)
        world_to_camera = jittered_camera_matrices(camera, uniforms(raw[:, :3], -camera["jitter"], camera["jitter"]))
        light_offsets = uniforms(raw[:, 3:3 + 3 * len(LIGHTS)], -lights["jitter"], lights["jitter"])
        light_locations = jittered_light_locations(lights, light_offsets.reshape(len(jobs), len(LIGHTS), 3))
        axes = np.ascontiguousarray(ground_axes(world_to_camera)[:, :, :2])
        count, rejected = np.full(len(jobs), low, np.int64), np.zeros(len(jobs), bool)
        if choices > 1:  # integers(low, high + 1): Lemire's draw on the low half of the last value; the high half waits
            drawn, rejected = bounded(raw[:, -1] & np.uint64(LOW32), np.uint64(choices))
            count += drawn
            gens[:, self.compiled.HAS_HALF], gens[:, self.compiled.HALF] = 1, raw[:, -1] >> np.uint64(32)
        n = len(jobs)
        kinds, xy = np.zeros((n, self.most, 4), np.int64), np.zeros((n, self.most, 2))
        yaw, status = np.full((n, self.most), np.nan), np.zeros(n, np.int8)
        self.compiled.place_layouts(gens, count, axes, self.radii, self.low, self.high, self.gap, self.margin,
                                    self.max_tries, self.max_layouts, self.n_colors, len(self.materials),
                                    self.half_period, self.band, kinds, xy, yaw, status)
        return _Placed(world_to_camera, light_locations, count, kinds, xy, yaw,
                       (status == self.compiled.DONE) & ~rejected)

    def sample(self, jobs: list[tuple[int, int]]) -> list[tuple | None]:
        """(program, camera, lights) of each (index, seed), or None where `sample` must draw it."""
        placed = self.place(jobs)
        cameras, light_lists = self._cameras_and_lights(placed.world_to_camera, placed.light_locations)
        programs = self._programs(placed.count, placed.kinds, placed.xy, placed.yaw)
        return [(program, camera, lights) if ok else None
                for program, camera, lights, ok in zip(programs, cameras, light_lists, placed.ok.tolist())]

    def lines(self, jobs: list[tuple[int, int]], scene_lines: SceneLines) -> list[str | None]:
        """scene_lines.line of each (index, seed)'s scene, or None where it must be drawn by `sample` and written
        by scene_lines. The compiled writer fills scene_lines' own templates (SceneLines.marked_templates): one per
        kind of object (size, shape, colour and material), the rest from the first chunk's first scene."""
        from igbench.generators import clevr_lines

        placed = self.place(jobs)
        if self.templates is None:
            self.templates = self._line_templates(placed, scene_lines)
        text, starts, capacity = self.templates
        if text is None:  # the split's text has no such templates: every scene through scene_lines
            return [None] * len(jobs)
        size, shape, color, material = np.moveaxis(placed.kinds, 2, 0)
        kind = ((size * len(self.shapes) + shape) * int(self.n_colors.max()) + color) * len(self.materials) + material
        values = np.stack([placed.xy[:, :, 0], placed.xy[:, :, 1], np.array(self.heights)[shape, size], placed.yaw],
                          axis=2)
        index, seed = (np.array(column, np.uint64) for column in zip(*jobs))
        out = np.empty(capacity * len(jobs), np.uint8)
        ends = clevr_lines.write_lines(text, starts, len(LIGHTS), index, seed, placed.count, kind, values.view(np.uint64),
                                       placed.world_to_camera.reshape(-1, 16).view(np.uint64),
                                       np.ascontiguousarray(placed.light_locations).view(np.uint64), out)
        written = iter(out[:int(ends.max()) + 1].tobytes().decode("ascii").split("\n"))
        texts = [next(written) if end >= 0 else None for end in ends.tolist()]
        return [text if ok else None for text, ok in zip(texts, placed.ok.tolist())]

    def _line_templates(self, placed: _Placed, scene_lines: SceneLines) -> tuple:
        """(the templates' bytes, where each starts, the bytes a line may take) for clevr_lines.write_lines, or
        (None, None, 0) where scene_lines has none. Kind k = ((size * shapes + shape) * colours + colour) *
        materials + material, with as many colours for every shape as the one with most (the others repeat their
        last: never drawn)."""
        from igbench.generators.clevr_lines import WIDEST
        from igbench.scene import MARKERS

        (first_camera,), (first_lights,) = self._cameras_and_lights(placed.world_to_camera[:1],
                                                                    placed.light_locations[:1])
        scene = Scene(self.task.name, self.split, 0, 0, Program([]), first_camera, first_lights)
        kinds = []
        for size, size_name in enumerate(self.size_names):
            for shape, shape_name in enumerate(self.shapes):
                colors = self.colors_by_shape[shape_name]
                numbers = {"loc": (0.0, 0.0, self.heights[shape][size])}
                if not math.isnan(self.half_period[shape]):
                    numbers["rotation"] = (0.0,)
                for color in range(int(self.n_colors.max())):
                    for material in self.materials:
                        attrs = {"shape": shape_name, "color": colors[min(color, len(colors) - 1)], "material": material,
                                 "size": size_name}
                        kinds.append(Obj(attrs, numbers))
        templates = scene_lines.marked_templates(scene, kinds)
        if templates is None:
            return None, None, 0
        widths = [len(t) + (WIDEST - 1) * sum(t.count(marker.encode()) for marker in MARKERS) for t in templates]
        n_frame = 4 + len(LIGHTS)
        rows, programs = widths[n_frame:n_frame + len(kinds)], widths[n_frame + len(kinds):]
        capacity = sum(widths[:n_frame]) + 2 * len(LIGHTS) + self.most * (max(rows) + max(programs) + 4) + 1
        return (np.frombuffer(b"".join(templates), np.uint8), np.cumsum([0] + [len(t) for t in templates]), capacity)

    def _cameras_and_lights(self, world_to_camera, light_locations) -> tuple[list[Camera], list[list]]:
        """The split's cameras at these extrinsics (n, 4, 4) and its lights at these locations (n, lights, 3)."""
        camera = self.rules["camera"]
        width, height = self.rules["visibility_resolution"]
        return (Camera.many(world_to_camera, camera["focal_mm"], camera["sensor_width_mm"], width, height),
                light_sets(self.rules["lights"], light_locations))

    def _programs(self, count, kinds, xy, yaw) -> list[Program]:
        """The layouts as programs (arrays read once for all of them)."""
        programs = []
        for n, scene_kinds, scene_xy, yaws in zip(count.tolist(), kinds.tolist(), xy.tolist(), yaw.tolist()):
            objects = []
            for (size, shape, color, material), (x, y), turn in zip(scene_kinds[:n], scene_xy[:n], yaws[:n]):
                numbers = {"loc": (x, y, self.heights[shape][size])}
                if not math.isnan(turn):  # the shape has a yaw
                    numbers["rotation"] = (turn,)
                shape_name = self.shapes[shape]
                attrs = {"shape": shape_name, "color": self.colors_by_shape[shape_name][color],
                         "material": self.materials[material], "size": self.size_names[size]}
                objects.append(Obj(attrs, numbers))
            programs.append(Program(objects))
        return programs
