"""The `--programs-only` lines of CLEVR scenes sampled in bulk, written by compiled code from the sampler's arrays:
the bytes `SceneLines.line` writes for the same scenes (igbench/scene.py; tests/test_clevr_programs_pinned.py
compares them on every pinned split), without building the scenes' Python objects.

The text is SceneLines': its templates of each kind of object (row and program text) and of the parts around
them, with one marker byte per number (`SceneLines.marked_templates`): REPR for repr, FIXED3 for the program's
%+.3f, INT and ID for an integer (ID zero-padded to 6 digits, as the sample id).
"""
from __future__ import annotations

import numba
import numpy as np

from igbench.generators.float_text import FIXED_LIMIT, write_fixed3, write_repr, write_uint
from igbench.scene import MARKERS

REPR, FIXED3, INT, ID = (ord(marker) for marker in MARKERS)
HEAD, CAMERA, PROGRAM, TAIL, FIRST_LIGHT = range(5)  # template numbers; the lights', then the objects' follow
FINITE = np.uint64(0x7FF0000000000000)  # the exponent bits: all set for inf and nan
MAGNITUDE = np.uint64(0x7FFFFFFFFFFFFFFF)
FIXED_LIMIT_BITS = np.array([FIXED_LIMIT]).view(np.uint64)[0]  # non-negative doubles order as their bits
WIDEST = 24  # bytes a marker may become: a repr ('-2.2250738585072014e-308') or a uint64's 20 digits


@numba.njit(cache=True)
def _fill(text, start, end, floats, ints, out, at):
    """Template text[start:end] into out[at:], its markers taking floats (as bits) and ints in order; returns where
    it ends, or -1 for a number the writers do not take (not finite, or beyond FIXED_LIMIT for FIXED3)."""
    f = i = 0
    for c in range(start, end):
        byte = text[c]
        if byte > ID:
            out[at] = byte
            at += 1
        elif byte == REPR or byte == FIXED3:
            bits = floats[f]
            f += 1
            if bits & FINITE == FINITE:
                return -1
            if byte == REPR:
                at = write_repr(bits, out, at)
            elif bits & MAGNITUDE < FIXED_LIMIT_BITS:
                at = write_fixed3(bits, out, at)
            else:
                return -1
        else:
            at = write_uint(ints[i], out, at, 6 if byte == ID else 1)
            i += 1
    return at


@numba.njit(cache=True)
def _line(text, starts, n_lights, ints, count, kind, values, world_to_camera, light_locations, out, at):
    """One scene's line (see write_lines) into out[at:]; returns where it ends, or -1 (see _fill)."""
    rows = FIRST_LIGHT + n_lights
    programs = rows + (starts.size - 1 - rows) // 2
    at = _fill(text, starts[HEAD], starts[HEAD + 1], values[0], ints, out, at)
    for j in range(count):
        if at < 0:
            return -1
        if j:
            out[at], out[at + 1] = 44, 32  # ", "
            at += 2
        at = _fill(text, starts[rows + kind[j]], starts[rows + kind[j] + 1], values[j], ints, out, at)
    if at < 0:
        return -1
    at = _fill(text, starts[CAMERA], starts[CAMERA + 1], world_to_camera, ints, out, at)
    for light in range(n_lights):
        if at < 0:
            return -1
        if light:
            out[at], out[at + 1] = 44, 32
            at += 2
        at = _fill(text, starts[FIRST_LIGHT + light], starts[FIRST_LIGHT + light + 1], light_locations[light], ints,
                   out, at)
    if at < 0:
        return -1
    at = _fill(text, starts[PROGRAM], starts[PROGRAM + 1], values[0], ints, out, at)
    for j in range(count):
        if at < 0:
            return -1
        if j:
            out[at], out[at + 1] = 92, 110  # the program's newline, escaped: \n
            at += 2
        at = _fill(text, starts[programs + kind[j]], starts[programs + kind[j] + 1], values[j], ints, out, at)
    if at < 0:
        return -1
    return _fill(text, starts[TAIL], starts[TAIL + 1], values[0], ints, out, at)


@numba.njit(cache=True)
def write_lines(text, starts, n_lights, index, seed, count, kind, values, world_to_camera, light_locations, out):
    """Each scene's line and a newline into out, one after the other; returns each line's end (-1: a number the
    writers do not take, the scene to write in Python). kind (n, most): each object's kind (its row template is
    FIRST_LIGHT + n_lights + kind, its program's the next n_kinds); values (n, most, 4) x, y, height, yaw (as
    bits; a kind without a yaw takes three); world_to_camera (n, 16) and light_locations (n, lights, 3) as bits."""
    ends = np.empty(index.size, np.int64)
    ints = np.empty(3, np.uint64)  # the id's digits, the index, the seed
    at = 0
    for s in range(index.size):
        ints[0], ints[1], ints[2] = index[s], index[s], seed[s]
        end = _line(text, starts, n_lights, ints, count[s], kind[s], values[s], world_to_camera[s], light_locations[s],
                    out, at)
        ends[s] = end
        if end >= 0:
            out[end] = 10
            at = end + 1
    return ends
