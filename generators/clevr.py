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
from igbench.generators.common import (LIGHTS, jittered_camera, jittered_cameras, jittered_light_sets, jittered_lights,
                                       place_with_retries)
from igbench.generators.stream import LOW32, DrawStream, bounded, pcg64_states, try_layout, uniforms
from igbench.scene import Scene, ground_axes, object_scale
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

SLOTS = 1024  # scenes in flight; the slots of finished scenes take the next ones
SCENE_RAWS = 1024  # raw values held per scene, topped up from its bit generator as they are used
# Tries of an object screened in one pass, by the number of objects already placed (the last entry for more):
# a few times 1 / P(the try fits) on CLEVR's splits (0.72 with one object placed, 0.2 with four, 0.03 with
# seven), so most objects take one or two passes and few tries are screened in vain (5,000 scenes of ood/0:
# ~10% faster than half these counts, as fast as 4 for all up to four objects placed and 16 above)
TRIES_BY_PLACED = np.array([1, 4, 4, 8, 8, 16, 16, 32, 32, 50])
FEW_SCENES = 64  # below this many in flight a pass costs its fixed numpy overhead, not its arithmetic: the last
# scenes of a run (those redrawing many layouts) screen all their object's remaining tries at once
FAR = 1e6  # where an object not placed yet sits in the screen: no try is near it
BAND = 1e-9  # relative width, around the screen's thresholds, of the results that `sample` decides instead


def sample_many(task: Task, split: str, indices, seeds) -> Iterator[tuple[int, Scene]]:
    """(position, sample(task, split, i, s)) for the i, s at each position of zip(indices, seeds), the same scenes
    bit for bit, as each is done (generators.in_order puts them in order), computed in lockstep: every scene in
    flight screens its next object's next tries in one numpy pass over all of them (numpy's per-call cost, not
    the arithmetic, is what one-by-one sampling pays). Scenes stream through SLOTS slots, so only the last few
    of the whole run, not of every chunk, pass with a thin batch.

    Each scene's bit generator is seeded by state (the PCG64 states of SLOTS scenes are hashed at once); its
    first raw values give the camera, lights and object count, the rest replay CLEVR's draws
    (generators/stream.py explains how). A scene goes to `sample` whenever the replay could differ: a
    rejected Lemire word, a screened value within the BAND of a threshold, or no layout in max_scene_tries
    (where `sample` raises its error)."""
    rules = _split_rules(task, split)
    radii = [float(r) for r in task.spec["sizes"].values()]
    # sizes not a power of two: words may be rejected; a reach <= 0: squared distances don't decide like _fits
    if len(radii) & (len(radii) - 1) or 2 * min(radii) + rules["min_edge_gap"] <= 0:
        yield from enumerate(sample(task, split, i, s) for i, s in zip(indices, seeds))
        return
    for number, index, seed, found in _Lockstep(task, rules, zip(indices, seeds)).run():
        yield number, Scene(task.name, split, index, seed, *found) if found else sample(task, split, index, seed)


class _Ready(NamedTuple):
    """Prepared starts of scenes (see _Lockstep._prepare), row by row."""

    jobs: list  # (index, seed)
    raw: np.ndarray  # the raw values after the first draws
    cameras: list
    lights: list
    axes: np.ndarray  # the cameras' right and behind ground directions (x, y)
    count: np.ndarray  # objects to place
    has_half: np.ndarray  # the stream's cached 32-bit half after the count's draw
    half: np.ndarray
    rejected: np.ndarray  # the count's word was rejected: `sample` draws that scene


class _Lockstep:
    """The layout loops of the scenes in flight, one row (slot) per scene (see sample_many).

    The screen works in each camera's ground frame: a try's and an object's coordinates along the right and
    behind directions (u, v) are computed once, so a pair costs differences, not dot products. _fits' tests
    become the sign of one score per pair, min(du² + dv² - reach², q (q - margin)) with q = min(|du|, |dv|):
    negative exactly when the objects are too close or 0 < q < margin. The frame and the squares round
    differently from _fits' own arithmetic, by far less than BAND, so a try whose closest score is within
    the BAND of 0 sends its scene to `sample`."""

    def __init__(self, task: Task, rules: dict, jobs):
        sizes = task.spec["sizes"]
        self.rules = rules
        self.size_names = list(sizes)
        self.radii = np.array([float(sizes[name]) for name in self.size_names])
        self.colors_by_shape = rules["colors_by_shape"]
        self.shapes = [s for s in task.categorical["shape"].values if self.colors_by_shape.get(s)]
        self.materials = list(task.categorical["material"].values)
        periods = task.spec.get("rotation_period_deg", {})
        self.half_period = np.array([math.radians(periods[s]) / 2 if s in periods else np.nan for s in self.shapes])
        self.n_colors = np.array([len(self.colors_by_shape[s]) for s in self.shapes])
        self.heights = [[object_scale(shape, radius) for radius in self.radii.tolist()] for shape in self.shapes]
        self.low, self.high = (float(v) for v in rules["xy_range"])
        self.gap, self.margin = rules["min_edge_gap"], rules["margin"]
        self.max_tries, self.max_layouts = rules["max_object_tries"], rules["max_scene_tries"]
        # the screen's rounding is below 1e-13 of this (coordinates, reaches and margin all squared)
        scale = 2 * max(abs(self.low), abs(self.high)) + 2 * self.radii.max() + abs(self.gap) + self.margin
        self.band = BAND * scale * scale
        self.jobs = jobs  # (index, seed) pairs still to start
        n = SLOTS
        most = int(rules["num_objects"][1])
        self.raw = np.zeros((n, SCENE_RAWS), np.uint64)
        self.bitgens = [np.random.PCG64(0) for _ in range(n)]  # each slot's scene's bit generator
        self.spare = [np.random.PCG64(0) for _ in range(n)]  # reseeded by state for the prepared starts
        self.ready: _Ready | None = None  # the prepared starts, and how many of them have started
        self.ready_at = 0
        self.job: list[tuple[int, int, int] | None] = [None] * n  # (number, index, seed) of each slot's scene
        self.busy = np.zeros(n, bool)
        self.pos = np.zeros(n, np.int64)
        self.has_half = np.zeros(n, bool)
        self.half = np.zeros(n, np.uint64)
        self.count = np.zeros(n, np.int64)
        self.axes = np.zeros((n, 2, 2))  # the camera's right and behind ground directions (x, y)
        self.cameras, self.lights = [None] * n, [None] * n
        self.placed = np.zeros((n, most, 3))  # x, y, radius of the current layout's objects
        self.frame = np.full((3, most, n), FAR)  # their u, v and radius (object-major: the screen reduces over objects)
        self.kind = np.zeros((n, most, 4), np.int64)  # size, shape, colour, material indices
        self.yaw = np.full((n, most), np.nan)
        self.k = np.zeros(n, np.int64)  # objects placed in the current layout
        self.tries = np.zeros(n, np.int64)  # tries spent on the current object
        self.layouts = np.zeros(n, np.int64)  # failed layouts so far
        self.done = np.zeros(n, bool)
        self.fallback = np.zeros(n, bool)
        self.started = 0
        self.columns: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # _try_columns by count

    def _prepare(self) -> None:
        """The starts of the next SLOTS scenes, all at once (starting a few per pass would pay numpy's per-call
        cost each time): seed each one's bit generator, then its first raw values are the draws `sample` makes
        first (camera offsets, light offsets, object count), the rest its layouts' draws."""
        jobs = list(itertools.islice(self.jobs, SLOTS))
        self.ready, self.ready_at = None, 0
        if not jobs:
            return
        rules, camera, lights = self.rules, self.rules["camera"], self.rules["lights"]
        low, high = rules["num_objects"]
        choices = high + 1 - low
        first = 3 + 3 * len(LIGHTS) + (choices > 1)  # raw values before the layouts (numpy draws no word for one choice)
        raws = []
        for bitgen, state in zip(self.spare, pcg64_states(seed for _, seed in jobs)):
            bitgen.state = state
            raws.append(bitgen.random_raw(first + SCENE_RAWS))
        raw = np.stack(raws)
        cameras = jittered_cameras(camera, rules["visibility_resolution"],
                                   uniforms(raw[:, :3], -camera["jitter"], camera["jitter"]))
        light_offsets = uniforms(raw[:, 3:3 + 3 * len(LIGHTS)], -lights["jitter"], lights["jitter"])
        count, rejected = np.full(len(jobs), low), np.zeros(len(jobs), bool)
        if choices > 1:  # integers(low, high + 1): Lemire's draw on the low half of the last value; the high half waits
            drawn, rejected = bounded(raw[:, first - 1] & np.uint64(LOW32), np.uint64(choices))
            count += drawn
        self.ready = _Ready(jobs, raw[:, first:], cameras,
                            jittered_light_sets(lights, light_offsets.reshape(len(jobs), len(LIGHTS), 3)),
                            ground_axes(np.array([c.world_to_camera for c in cameras]))[:, :, :2], count,
                            np.full(len(jobs), choices > 1), raw[:, first - 1] >> np.uint64(32), rejected)

    def _load(self, slots: np.ndarray) -> None:
        """Start the next scenes in `slots` (from the prepared starts); slots left without one go idle."""
        taken = 0
        while taken < len(slots):
            if self.ready is None or self.ready_at == len(self.ready.jobs):
                self._prepare()
                if self.ready is None:
                    break
            ready, at = self.ready, self.ready_at
            part = slots[taken:taken + len(ready.jobs) - at]
            rows = np.arange(at, at + len(part))
            for slot, row in zip(part.tolist(), rows.tolist()):
                index, seed = ready.jobs[row]
                self.job[slot] = (self.started, index, seed)
                self.started += 1
                self.cameras[slot], self.lights[slot] = ready.cameras[row], ready.lights[row]
                self.bitgens[slot], self.spare[row] = self.spare[row], self.bitgens[slot]  # the scene's own, drawn on
            self.raw[part], self.axes[part] = ready.raw[rows], ready.axes[rows]
            self.count[part], self.has_half[part], self.half[part] = ready.count[rows], ready.has_half[rows], ready.half[rows]
            self.fallback[part] = ready.rejected[rows]
            taken += len(part)
            self.ready_at += len(part)
        started = slots[:taken]
        self.pos[started] = self.k[started] = self.tries[started] = self.layouts[started] = 0
        self.frame[:, :, started] = FAR
        self.done[started] = False
        self.busy[started] = True
        self.busy[slots[taken:]] = False

    def _top_up(self, slot: int) -> None:
        pos = int(self.pos[slot])
        self.raw[slot] = np.concatenate([self.raw[slot, pos:], self.bitgens[slot].random_raw(pos)])
        self.pos[slot] = 0

    def run(self) -> Iterator[tuple[int, int, int, tuple | None]]:
        """(number, index, seed, (program, camera, lights) or None: use `sample`) of every scene, as each finishes."""
        headroom = 3 * self.max_tries + 8  # raw values one pass and one object's draws may take
        self._load(np.arange(SLOTS))
        while True:
            active = np.flatnonzero(self.busy)
            if not active.size:
                return
            for slot in active[self.pos[active] + headroom > SCENE_RAWS]:
                self._top_up(slot)
            self._screen(active)
            ended = np.flatnonzero(self.busy & (self.done | self.fallback))
            slots = ended.tolist()
            for slot, fallback, program in zip(slots, self.fallback[ended].tolist(), self.programs(slots)):
                yield *self.job[slot], None if fallback else (program, self.cameras[slot], self.lights[slot])
            self._load(ended)

    def _screen(self, ids: np.ndarray) -> None:
        """Screen the next tries of each scene's current object; place it where one fits."""
        if ids.size < FEW_SCENES:
            counts = np.full(ids.size, self.max_tries)
        else:
            counts = TRIES_BY_PLACED[np.minimum(self.k[ids], len(TRIES_BY_PLACED) - 1)]
        screened = [self._screen_tries(ids[counts == count], int(count)) for count in np.unique(counts)]
        ids, found, used, size, x, y = (np.concatenate(column) for column in zip(*screened))
        self._skip_tries(ids, used)
        self.tries[ids] += used
        out = ids[~found & (self.tries[ids] >= self.max_tries)]  # an object did not fit: a new layout
        self.k[out] = 0
        self.tries[out] = 0
        self.frame[:, :, out] = FAR
        self.layouts[out] += 1
        self.fallback[out[self.layouts[out] >= self.max_layouts]] = True  # `sample` raises the error
        hit = np.flatnonzero(found)
        if hit.size:
            self._place(ids[hit], size[hit], x[hit], y[hit])

    def _screen_tries(self, ids: np.ndarray, count: int):
        """(ids, found, tries used, and the size, x, y of the try that fits) for `count` tries of each scene.

        The arrays are (tries, scenes) and the pairs' (objects, tries, scenes): the scenes, the long axis, are
        innermost, where numpy's loops run over contiguous data (with few tries innermost, numpy copies the
        broadcast operands through buffers: up to twice the time)."""
        has_half = self.has_half[ids]
        columns, shifts = self._try_columns(count)
        pick = has_half.view(np.uint8)
        raw = self.raw.ravel().take(((ids * SCENE_RAWS + self.pos[ids])[:, None] + columns[pick]).T)  # (3 count, scenes)
        words = np.bitwise_and(raw[:count] >> shifts[pick].T, np.uint64(LOW32), order="C")
        words[0] = np.where(has_half, self.half[ids], words[0])
        size = ((words * np.uint64(len(self.size_names))) >> np.uint64(32)).astype(np.int64)
        x, y = uniforms(raw[count:], self.low, self.high).reshape(2, count, ids.size)
        left = self.max_tries - self.tries[ids]
        fits = np.arange(count)[:, None] < left
        most = int(self.k[ids].max())
        if most:
            axes = self.axes[ids]
            u = x * axes[:, 0, 0] + y * axes[:, 0, 1]  # (tries, scenes)
            v = x * axes[:, 1, 0] + y * axes[:, 1, 1]
            other_u, other_v, other_radius = self.frame[:, :most].take(ids, axis=2)[:, :, None]  # each (objects, 1, scenes)
            reach = (self.radii[size] + self.gap) + other_radius
            du, dv = u - other_u, v - other_v
            score = du * du
            score += dv * dv
            score -= reach * reach
            np.abs(du, out=du)
            np.abs(dv, out=dv)
            q = np.minimum(du, dv, out=du)
            crowd = q - self.margin
            crowd *= q
            closest = np.minimum(score, crowd, out=score).min(axis=0)  # (tries, scenes)
            fits &= closest > 0
            near = np.abs(closest) < self.band
            if near.any():  # rare: `sample` decides these scenes
                self.fallback[ids[near.any(axis=0)]] = True
        found = fits.any(axis=0)
        first = fits.argmax(axis=0)
        used = np.where(found, first + 1, np.minimum(count, left))
        pick = first, np.arange(ids.size)
        return ids, found, used, size[pick], x[pick], y[pick]

    def _try_columns(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Where `count` tries take their bits (try_layout), from a position without (row 0) or with (row 1) a
        cached half: the raw offsets of their words, x and y (2, 3 count), and each word's shift (2, count)."""
        layout = self.columns.get(count)
        if layout is None:
            tables = [try_layout(has_half, count) for has_half in (False, True)]
            layout = self.columns[count] = (np.array([np.concatenate([offsets, xs, ys]) for offsets, _, xs, ys in tables]),
                                            np.array([np.where(halves, 32, 0) for _, halves, _, _ in tables], np.uint64))
        return layout

    def _place(self, ids, size, x, y) -> None:
        """The object fits: draw its shape, colour, material and yaw, as `_place_objects` does."""
        shape = self._below(ids, np.full(ids.size, len(self.shapes)))
        color = self._below(ids, self.n_colors[shape])
        material = self._below(ids, np.full(ids.size, len(self.materials)))
        half = self.half_period[shape]
        turns = np.flatnonzero(~np.isnan(half))
        k = self.k[ids]
        self.yaw[ids, k] = np.nan  # a failed layout may have left a yaw here
        if turns.size:
            t = ids[turns]
            self.yaw[t, k[turns]] = uniforms(self.raw[t, self.pos[t]], -half[turns], half[turns])
            self.pos[t] += 1
        radius = self.radii[size]
        self.placed[ids, k] = np.stack([x, y, radius], axis=1)
        axes = self.axes[ids]
        self.frame[:2, k, ids] = x * axes[:, :, 0].T + y * axes[:, :, 1].T  # as the screen's u, v
        self.frame[2, k, ids] = radius
        self.kind[ids, k] = np.stack([size, shape, color, material], axis=1)
        self.tries[ids] = 0
        self.k[ids] += 1
        self.done[ids] |= self.k[ids] == self.count[ids]

    def _skip_tries(self, ids, used) -> None:
        """Consume `used` tries (32-bit word + two doubles each) of every scene in `ids`."""
        has_half, pos, used = self.has_half[ids], self.pos[ids].copy(), used.copy()
        cached = has_half & (used > 0)  # the first try's word is the cached half
        pos += 2 * cached
        used -= cached
        has_half &= ~cached
        pos += 5 * (used // 2)  # two tries: one raw value gives both words, four give the doubles
        odd = used % 2 == 1
        self.half[ids[odd]] = self.raw[ids[odd], pos[odd]] >> np.uint64(32)
        has_half |= odd
        pos += 3 * odd
        self.has_half[ids], self.pos[ids] = has_half, pos

    def _word(self, ids) -> np.ndarray:
        """The next 32-bit word of every scene in `ids` (PCG64: a cached high half, or a fresh value's low half)."""
        has_half, pos = self.has_half[ids], self.pos[ids]
        raw = self.raw[ids, pos]
        self.pos[ids] = pos + ~has_half
        words = np.where(has_half, self.half[ids], raw & np.uint64(LOW32))
        fresh = ids[~has_half]
        self.half[fresh] = raw[~has_half] >> np.uint64(32)
        self.has_half[ids] = ~has_half
        return words

    def _below(self, ids, n) -> np.ndarray:
        """`integers(0, n)` per scene (n drawn per scene); a rejected word sends the scene to `sample`."""
        value = np.zeros(ids.size, np.int64)
        draw = n > 1  # numpy draws nothing for a single choice
        if draw.any():
            value[draw], rejected = bounded(self._word(ids[draw]), n[draw].astype(np.uint64))
            self.fallback[ids[draw][rejected]] = True
        return value

    def programs(self, slots: list[int]) -> list[Program]:
        """The finished layouts of `slots` as programs (arrays read once for all of them)."""
        objects = []
        for count, placed, kinds, yaws in zip(self.count[slots].tolist(), self.placed[slots].tolist(),
                                              self.kind[slots].tolist(), self.yaw[slots].tolist()):
            scene = []
            for (x, y, _), (size, shape, color, material), yaw in zip(placed[:count], kinds[:count], yaws[:count]):
                numbers = {"loc": (x, y, self.heights[shape][size])}
                if not math.isnan(yaw):  # the shape has a yaw
                    numbers["rotation"] = (yaw,)
                shape_name = self.shapes[shape]
                attrs = {"shape": shape_name, "color": self.colors_by_shape[shape_name][color],
                         "material": self.materials[material], "size": self.size_names[size]}
                scene.append(Obj(attrs, numbers))
            objects.append(Program(scene))
        return objects
