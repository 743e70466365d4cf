"""Rotation representations used in programs, converted exactly with scipy's Rotation.

| name        | values | meaning |
|-------------|--------|---------|
| `euler`     | 3      | extrinsic x, y, z Euler angles in radians (scipy `'xyz'`) |
| `euler_int` | 3      | intrinsic X, Y, Z Euler angles in radians (scipy `'XYZ'`) |
| `aa`        | 3      | axis-angle vector: unit axis times angle in radians |
| `6d`        | 6      | the first two rows of the rotation matrix, row-major |
| `quat`      | 4      | unit quaternion, scalar first (w, x, y, z), with w >= 0 |

A dataset records its representation (the `rotation_rep` column and render_config.json); every reader
converts through `to_matrix(values, rep)`.
"""
from __future__ import annotations

import numpy as np

from igbench.errors import UserError, choices, did_you_mean

ARITY = {"euler": 3, "euler_int": 3, "aa": 3, "6d": 6, "quat": 4}


def check_rep(rep: str) -> str:
    if rep not in ARITY:
        raise UserError(f"unknown rotation representation '{rep}'{did_you_mean(rep, ARITY)}; expected one of {choices(ARITY)}")
    return rep


def from_matrix(matrix, rep: str) -> tuple[float, ...]:
    """A 3x3 rotation matrix in representation `rep`."""
    from scipy.spatial.transform import Rotation

    check_rep(rep)
    matrix = np.asarray(matrix, float)
    if rep == "6d":
        return tuple(float(v) for v in matrix[:2].ravel())
    rotation = Rotation.from_matrix(matrix)
    if rep == "euler":
        values = rotation.as_euler("xyz")
    elif rep == "euler_int":
        values = rotation.as_euler("XYZ")
    elif rep == "aa":
        values = rotation.as_rotvec()
    else:
        x, y, z, w = rotation.as_quat()
        values = np.array([w, x, y, z]) * (1.0 if w >= 0 else -1.0)
    return tuple(float(v) for v in values)


def to_matrix(values, rep: str) -> np.ndarray:
    """The 3x3 rotation matrix of `values` in representation `rep` (6-D and quaternions are
    re-orthonormalised, so slightly-off model outputs still give a rotation)."""
    from scipy.spatial.transform import Rotation

    check_rep(rep)
    values = np.asarray(values, float)
    if values.shape != (ARITY[rep],):
        raise UserError(f"a '{rep}' rotation has {ARITY[rep]} values, got {values.size}")
    if rep == "6d":
        return _gram_schmidt(values[:3], values[3:])
    if rep == "euler":
        return Rotation.from_euler("xyz", values).as_matrix()
    if rep == "euler_int":
        return Rotation.from_euler("XYZ", values).as_matrix()
    if rep == "aa":
        return Rotation.from_rotvec(values).as_matrix()
    if not np.linalg.norm(values) > 1e-12:
        raise UserError("a quaternion of length 0 is not a rotation")
    w, x, y, z = values
    return Rotation.from_quat([x, y, z, w]).as_matrix()


def _gram_schmidt(a, b) -> np.ndarray:
    if np.linalg.norm(a) < 1e-12 or np.linalg.norm(np.cross(a, b)) < 1e-12:
        raise UserError("a 6-D rotation needs two independent rows")
    r1 = a / np.linalg.norm(a)
    b = b - r1 * (r1 @ b)
    r2 = b / np.linalg.norm(b)
    return np.stack([r1, r2, np.cross(r1, r2)])

