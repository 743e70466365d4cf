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
from collections import deque
from collections.abc import Iterator

import numpy as np

from igbench.program import Obj, Program
from igbench.generators.common import jittered_camera, jittered_lights, place_with_retries
from igbench.generators.stream import LOW32, UNIT, DrawStream, pcg64_states, try_layout
from igbench.scene import Scene, object_scale
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

SLOTS = 1024  # scenes in flight; a finished scene's slot takes the next one
SCENE_RAWS = 1024  # raw values held per scene, topped up from its bit generator as they are used
TRIES_AT_ONCE = 8  # tries of every scene's next object screened in one numpy pass (measured: 4 as fast, 16 slower)
FEW_SCENES, TRIES_WHEN_FEW = 64, 64  # below FEW_SCENES in flight a pass costs its fixed numpy overhead, not its
# arithmetic: the last scenes of the run (those redrawing many layouts) screen TRIES_WHEN_FEW tries at once


def sample_many(task: Task, split: str, indices, seeds) -> Iterator[Scene]:
    """sample(task, split, i, s) for i, s in zip(indices, seeds), in that order and the same scenes bit for bit,
    computed in lockstep: every scene in flight screens its next object's next tries in one numpy pass over
    all of them (numpy's per-call cost, not the arithmetic, is what one-by-one sampling pays). Scenes stream
    through SLOTS slots, so only the last few of the whole run, not of every chunk, pass with a thin batch.

    Each scene's bit generator is seeded by state (the PCG64 states of SLOTS scenes are hashed at once), a
    DrawStream draws its camera, lights and object count, then its raw values replay CLEVR's draws
    (generators/stream.py explains how). A scene goes to `sample` whenever the replay could differ: a
    rejected Lemire word, a squared distance within 1e-9 (relative) of the squared reach, or no layout in
    max_scene_tries (where `sample` raises its error)."""
    rules = _split_rules(task, split)
    size_names = list(task.spec["sizes"])
    # sizes not a power of two: words may be rejected; a negative gap: the screen's squared distances don't apply
    if len(size_names) & (len(size_names) - 1) or rules["min_edge_gap"] < 0:
        yield from (sample(task, split, i, s) for i, s in zip(indices, seeds))
        return
    finished: dict[int, Scene] = {}  # scenes done before one started earlier, held to keep the order
    emitted = 0
    for number, index, seed, found in _Lockstep(task, rules, zip(indices, seeds)).run():
        finished[number] = Scene(task.name, split, index, seed, *found) if found else sample(task, split, index, seed)
        while emitted in finished:
            yield finished.pop(emitted)
            emitted += 1


class _Lockstep:
    """The layout loops of the scenes in flight, one row (slot) per scene (see sample_many)."""

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
        self.low, self.high = (float(v) for v in rules["xy_range"])
        self.gap, self.margin = rules["min_edge_gap"], rules["margin"]
        self.max_tries, self.max_layouts = rules["max_object_tries"], rules["max_scene_tries"]
        self.jobs = jobs  # (index, seed) pairs still to start
        n = SLOTS
        most = int(rules["num_objects"][1])
        self.raw = np.zeros((n, SCENE_RAWS), np.uint64)
        self.coord = np.zeros((n, SCENE_RAWS))  # every raw value as uniform(low, high)
        self.bitgens = [np.random.PCG64(0) for _ in range(n)]  # reseeded by state for each scene a slot takes
        self.pending: deque = deque()  # (index, seed) of the next scenes, with their bit generators' states
        self.job: list[tuple[int, int, int] | None] = [None] * n  # (number, index, seed) of each slot's scene
        self.busy = np.zeros(n, bool)
        self.pos = np.zeros(n, np.int64)
        self.has_half = np.zeros(n, bool)
        self.half = np.zeros(n, np.uint64)
        self.count = np.zeros(n, np.int64)
        self.axes = np.zeros((n, 2, 2))  # the camera's right and behind ground directions
        self.cameras, self.lights = [None] * n, [None] * n
        self.placed = np.zeros((n, most, 3))  # x, y, radius of the current layout's objects
        self.kind = np.zeros((n, most, 4), np.int64)  # size, shape, colour, material indices
        self.yaw = np.full((n, most), np.nan)
        self.k = np.zeros(n, np.int64)  # objects placed in the current layout
        self.tries = np.zeros(n, np.int64)  # tries spent on the current object
        self.layouts = np.zeros(n, np.int64)  # failed layouts so far
        self.done = np.zeros(n, bool)
        self.fallback = np.zeros(n, bool)
        self.started = 0

    def _load(self, slot: int) -> None:
        """Start the next scene in `slot`: its own stream draws camera, lights and count, as `sample` does."""
        if not self.pending:
            jobs = list(itertools.islice(self.jobs, SLOTS))
            self.pending.extend(zip(jobs, pcg64_states(seed for _, seed in jobs)))
        self.busy[slot] = bool(self.pending)
        if not self.pending:
            return
        (index, seed), state = self.pending.popleft()
        self.job[slot] = (self.started, index, seed)
        self.started += 1
        rules = self.rules
        bitgen = self.bitgens[slot]
        bitgen.state = state
        draws = DrawStream(bitgen, False, 0)
        camera = jittered_camera(rules["camera"], rules["visibility_resolution"], draws)
        self.cameras[slot], self.lights[slot] = camera, jittered_lights(rules["lights"], draws)
        low, high = rules["num_objects"]
        self.count[slot] = draws.integers(low, high + 1)
        directions = camera.ground_directions()
        self.axes[slot] = directions["right"][:2], directions["behind"][:2]
        self.has_half[slot], self.half[slot] = draws.has_half, draws.half
        self.raw[slot] = draws.hand_over(SCENE_RAWS)
        self.coord[slot] = self.low + (self.high - self.low) * ((self.raw[slot] >> np.uint64(11)) * UNIT)
        self.pos[slot] = self.k[slot] = self.tries[slot] = self.layouts[slot] = 0
        self.done[slot] = self.fallback[slot] = False

    def _top_up(self, slot: int) -> None:
        pos = int(self.pos[slot])
        self.raw[slot] = np.concatenate([self.raw[slot, pos:], self.bitgens[slot].random_raw(pos)])
        self.coord[slot] = self.low + (self.high - self.low) * ((self.raw[slot] >> np.uint64(11)) * UNIT)
        self.pos[slot] = 0

    def run(self) -> Iterator[tuple[int, int, int, tuple | None]]:
        """(number, index, seed, (program, camera, lights) or None: use `sample`) of every scene, as each finishes."""
        headroom = 3 * max(TRIES_AT_ONCE, TRIES_WHEN_FEW) + 8  # raw values one pass and one object's draws may take
        for slot in range(SLOTS):
            self._load(slot)
        while True:
            active = np.flatnonzero(self.busy)
            if not active.size:
                return
            for slot in active[self.pos[active] + headroom > SCENE_RAWS]:
                self._top_up(slot)
            self._screen(active)
            for slot in np.flatnonzero(self.busy & (self.done | self.fallback)):
                found = None if self.fallback[slot] else (self.program(slot), self.cameras[slot], self.lights[slot])
                yield *self.job[slot], found
                self._load(slot)

    def _screen(self, ids: np.ndarray) -> None:
        """Screen the next tries of each scene's current object; place it where one fits."""
        count = TRIES_AT_ONCE if ids.size >= FEW_SCENES else TRIES_WHEN_FEW
        has_half, pos = self.has_half[ids], self.pos[ids]
        layouts = [try_layout(False, count), try_layout(True, count)]
        offsets, halves, xs, ys = (np.where(has_half[:, None], with_half, without)
                                   for without, with_half in zip(*layouts))
        rows = ids[:, None]
        raw = self.raw[rows, pos[:, None] + offsets]
        words = np.where(halves, raw >> np.uint64(32), raw & np.uint64(LOW32))
        words[:, 0] = np.where(has_half, self.half[ids], words[:, 0])
        size = ((words * np.uint64(len(self.size_names))) >> np.uint64(32)).astype(np.int64)
        x, y = self.coord[rows, pos[:, None] + xs], self.coord[rows, pos[:, None] + ys]
        radius = self.radii[size]
        k = self.k[ids]
        most = int(k.max())
        fits = np.ones((ids.size, count), bool)
        if most:
            # (objects, scenes, tries): reductions over the leading axis are plain elementwise passes
            others = self.placed[ids, :most].transpose(1, 0, 2)[:, :, None, :]
            dx, dy = x - others[..., 0], y - others[..., 1]
            # _fits' `hypot(dx, dy) - radius - other < gap` as `dx² + dy² < (gap + radius + other)²` (hypot is
            # most of a pass's time otherwise): the two decide alike outside a 1e-9 relative band (gap >= 0)
            reach = (radius + self.gap) + others[..., 2]
            reach *= reach
            short = dx * dx + dy * dy - reach  # < 0: too close (a - b < 0 exactly when a < b)
            axes = self.axes[ids]
            along = [dx * axes[:, a, 0, None] + dy * axes[:, a, 1, None] for a in range(2)]
            # _fits' four directions are right, left = -right, behind, front = -behind: 0 < +-p < margin
            crowded = np.logical_or.reduce([(p != 0) & (np.abs(p) < self.margin) for p in along])
            real = np.arange(most)[:, None, None] < k[:, None]
            fits = ~(((short < 0) | crowded) & real).any(axis=0)
            near = np.abs(short) < 1e-9 * reach
            if near.any():  # rare: only then the full test of which scenes it concerns
                self.fallback[ids[(near & ~crowded & real).any(axis=(0, 2))]] = True
        left = self.max_tries - self.tries[ids]
        fits &= np.arange(count) < left[:, None]
        found = fits.any(axis=1)
        first = fits.argmax(axis=1)
        used = np.where(found, first + 1, np.minimum(count, left))
        self._skip_tries(ids, used)
        self.tries[ids] += used
        out = ids[~found & (self.tries[ids] >= self.max_tries)]  # an object did not fit: a new layout
        self.k[out] = 0
        self.tries[out] = 0
        self.layouts[out] += 1
        self.fallback[out[self.layouts[out] >= self.max_layouts]] = True  # `sample` raises the error
        hit = np.flatnonzero(found)
        if hit.size:
            self._place(ids[hit], size[hit, first[hit]], x[hit, first[hit]], y[hit, first[hit]], radius[hit, first[hit]])

    def _place(self, ids, size, x, y, radius) -> None:
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
            unit = (self.raw[t, self.pos[t]] >> np.uint64(11)) * UNIT
            self.pos[t] += 1
            self.yaw[t, k[turns]] = -half[turns] + (half[turns] - -half[turns]) * unit
        self.placed[ids, k] = np.stack([x, y, radius], axis=1)
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
        words = np.where(has_half, self.half[ids], raw & np.uint64(LOW32))
        fresh = ids[~has_half]
        self.half[fresh] = raw[~has_half] >> np.uint64(32)
        self.pos[ids] = pos + ~has_half
        self.has_half[ids] = ~has_half
        return words

    def _below(self, ids, n) -> np.ndarray:
        """`integers(0, n)` per scene (n drawn per scene); a rejected word sends the scene to `sample`."""
        value = np.zeros(ids.size, np.int64)
        draw = n > 1  # numpy draws nothing for a single choice
        if draw.any():
            bound = n[draw].astype(np.uint64)
            m = self._word(ids[draw]) * bound
            rejected = (m & np.uint64(LOW32)) < (np.uint64(2**32) - bound) % bound
            self.fallback[ids[draw][rejected]] = True
            value[draw] = (m >> np.uint64(32)).astype(np.int64)
        return value

    def program(self, b: int) -> Program:
        count = int(self.count[b])
        objects = []
        for (x, y, radius), (size, shape, color, material), yaw in zip(
                self.placed[b, :count].tolist(), self.kind[b, :count].tolist(), self.yaw[b, :count].tolist()):
            shape_name = self.shapes[shape]
            numbers = {"loc": (x, y, object_scale(shape_name, radius))}
            if not math.isnan(yaw):
                numbers["rotation"] = (yaw,)
            attrs = {"shape": shape_name, "color": self.colors_by_shape[shape_name][color],
                     "material": self.materials[material], "size": self.size_names[size]}
            objects.append(Obj(attrs, numbers))
        return Program(objects)
