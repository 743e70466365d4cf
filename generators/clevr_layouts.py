"""CLEVR's layout loop (`clevr._place_objects` inside `place_with_retries`), compiled, for many scenes at once.

numpy's per-call cost, not the arithmetic, is what sampling scenes one by one in Python pays: a scene draws a
few hundred tries. Here each scene's loop runs in machine code, drawing from its own PCG64 (numpy's
XSL-RR 128/64 generator, written out on 64-bit halves) exactly what `DrawStream` replays
(generators/stream.py), in the same order, so the scenes are the ones `clevr.sample` draws, bit for bit.
Where the compiled arithmetic could decide a try differently from Python's (`math.hypot` is CPython's own
routine, not the C library's), it does not decide: a distance within `band` of a threshold ends the scene
with FALLBACK, and `clevr.sample` draws it instead.

Compiled once per machine on first use and cached beside this file (numba's `cache=True`).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from igbench.generators.float_text import high_product

DONE, FALLBACK = 0, 1  # a scene's status: placed; `sample` must draw it
MASK64 = (1 << 64) - 1
LOW32 = np.uint64(0xFFFFFFFF)
UNIT = 2.0**-53
MULT_HIGH, MULT_LOW = np.uint64(0x2360ED051FC65DA4), np.uint64(0x4385DF649FCCF645)  # PCG64's 128-bit multiplier
# A generator is 6 uint64: its state's high and low halves, its increment's, whether a 32-bit half is cached
# (numpy's has_uint32) and that half (uinteger).
STATE_HIGH, STATE_LOW, INC_HIGH, INC_LOW, HAS_HALF, HALF = range(6)


def generators(states: list[dict]) -> np.ndarray:
    """(n, 6) uint64 generators from PCG64 `.state` dicts."""
    return np.array([[(g := s["state"])["state"] >> 64, g["state"] & MASK64, g["inc"] >> 64, g["inc"] & MASK64,
                      s["has_uint32"], s["uinteger"]] for s in states], np.uint64).reshape(len(states), 6)


@numba.njit(cache=True)
def _raw(gen):
    """numpy's pcg64_next64: step the 128-bit state (state * multiplier + increment), then XSL-RR of the new one."""
    high, low = gen[STATE_HIGH], gen[STATE_LOW]
    new_high = high_product(low, MULT_LOW) + low * MULT_HIGH + high * MULT_LOW
    new_low = low * MULT_LOW
    added = new_low + gen[INC_LOW]
    new_high += gen[INC_HIGH] + np.uint64(added < new_low)
    gen[STATE_HIGH], gen[STATE_LOW] = new_high, added
    mixed = new_high ^ added
    turn = new_high >> np.uint64(58)
    return (mixed >> turn) | (mixed << ((np.uint64(64) - turn) & np.uint64(63)))


@numba.njit(cache=True)
def raw_values(gens, n):
    """The next n raw values of each generator (rows of gens, advanced), as `random_raw(n)` gives them."""
    out = np.empty((gens.shape[0], n), np.uint64)
    for i in range(gens.shape[0]):
        for j in range(n):
            out[i, j] = _raw(gens[i])
    return out


@numba.njit(cache=True)
def _word(gen):
    """The next 32-bit word: the cached high half of the last raw value, or the low half of a fresh one."""
    if gen[HAS_HALF]:
        gen[HAS_HALF] = 0
        return gen[HALF]
    value = _raw(gen)
    gen[HAS_HALF] = 1
    gen[HALF] = value >> np.uint64(32)
    return value & LOW32


@numba.njit(cache=True)
def _double(gen):
    """numpy's next_double: a fresh raw value's top 53 bits."""
    return np.float64(_raw(gen) >> np.uint64(11)) * UNIT


@numba.njit(cache=True)
def _below(gen, n):
    """`integers(0, n)`: Lemire's method on 32-bit words, rejecting those numpy rejects (DrawStream.below)."""
    if n == 1:
        return 0  # numpy draws nothing for a range of one value
    bound = np.uint64(n)
    m = _word(gen) * bound
    if (m & LOW32) < bound:
        threshold = (LOW32 - (bound - np.uint64(1))) % bound
        while (m & LOW32) < threshold:
            m = _word(gen) * bound
    return np.int64(m >> np.uint64(32))


@numba.njit(cache=True)
def _layout(gen, count, axes, radii, low, high, gap, margin, max_tries, max_layouts, n_colors,
            n_materials, half_period, band, kinds, xy, yaw):
    """One scene: draw layouts until all `count` objects fit (each object: tries of size, x, y until one keeps
    `gap` from every placed object's circle and no offset along the camera's right or behind direction lies
    in (0, margin); then its shape, colour, material and, for shapes with a period, its yaw). Writes each
    object's (size, shape, colour, material) to kinds, (x, y) to xy and the yaw (nan: none) to yaw."""
    right_x, right_y, behind_x, behind_y = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    span = high - low
    n_sizes, n_shapes = radii.size, n_colors.size
    for _ in range(max_layouts):
        k = 0
        while k < count:
            fitted = False
            for _ in range(max_tries):
                size = _below(gen, n_sizes)
                x = low + span * _double(gen)
                y = low + span * _double(gen)
                radius = radii[size]
                fits = True
                for j in range(k):  # clevr._fits, test by test
                    dx, dy = x - xy[j, 0], y - xy[j, 1]
                    edge = math.sqrt(dx * dx + dy * dy) - radius - radii[kinds[j, 0]]
                    if abs(edge - gap) <= band:
                        return FALLBACK
                    if edge < gap:
                        fits = False
                        break
                    # right and left (behind and front): 0 < d < margin for d or -d, i.e. 0 < |d| < margin
                    along_right = abs(dx * right_x + dy * right_y)
                    along_behind = abs(dx * behind_x + dy * behind_y)
                    if min(along_right, along_behind, abs(along_right - margin), abs(along_behind - margin)) <= band:
                        return FALLBACK
                    if 0 < along_right < margin or 0 < along_behind < margin:
                        fits = False
                        break
                if fits:
                    fitted = True
                    break
            if not fitted:
                break  # a new layout
            shape = _below(gen, n_shapes)
            color = _below(gen, n_colors[shape])
            material = _below(gen, n_materials)
            half = half_period[shape]
            yaw[k] = np.nan if np.isnan(half) else -half + (half + half) * _double(gen)
            kinds[k, 0], kinds[k, 1], kinds[k, 2], kinds[k, 3] = size, shape, color, material
            xy[k, 0], xy[k, 1] = x, y
            k += 1
        if k == count:
            return DONE
    return FALLBACK  # no layout in max_layouts: `sample` raises its error


@numba.njit(cache=True)
def place_layouts(gens, count, axes, radii, low, high, gap, margin, max_tries, max_layouts, n_colors, n_materials,
                  half_period, band, kinds, xy, yaw, status):
    """_layout for each row (scene): gens (n, 6) its generator where its layouts' draws start, count its
    objects, axes (n, 2, 2) its camera's right and behind ground directions (x, y); the results in kinds
    (n, most, 4), xy (n, most, 2), yaw (n, most) and status (n)."""
    for i in range(gens.shape[0]):
        status[i] = _layout(gens[i], count[i], axes[i], radii, low, high, gap, margin, max_tries, max_layouts,
                            n_colors, n_materials, half_period, band, kinds[i], xy[i], yaw[i])
