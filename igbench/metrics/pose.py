"""Pose metrics (BOP conventions, bop_toolkit formulas), for the so3 / 6dof / dot2d tasks.

Rotations are 3x3 matrices R (object to camera or to world, the same frame for estimate and truth),
translations 3-vectors t, model points (N, 3) in the object frame. Symmetries are a list of 4x4 (or 3x3)
transforms S of the object onto itself; the identity should be among them.
"""
from __future__ import annotations

import numpy as np


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations, degrees:  re = arccos((trace(R_est R_gt^T) - 1) / 2).

    Batched over leading axes; the cosine is clipped to [-1, 1] against rounding."""
    R_est, R_gt = np.asarray(R_est, float), np.asarray(R_gt, float)
    trace = np.einsum("...ij,...ij->...", R_est, R_gt)  # trace(A B^T) = sum_ij A_ij B_ij
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


def rotation_error_sym_deg(R_est: np.ndarray, R_gt: np.ndarray, symmetries) -> float:
    """re_sym = min over symmetries S of re(R_est, R_gt S_R): the error up to the object's symmetries."""
    Rs = np.stack([np.asarray(R_gt, float) @ np.asarray(S, float)[:3, :3] for S in symmetries])
    return float(rotation_error_deg(np.asarray(R_est, float)[None], Rs).min())


def translation_error(t_est: np.ndarray, t_gt: np.ndarray) -> np.ndarray:
    """te = ||t_gt - t_est||_2 (batched over leading axes)."""
    return np.linalg.norm(np.asarray(t_gt, float) - np.asarray(t_est, float), axis=-1)


def _transform(R, t, pts):
    return np.asarray(pts, float) @ np.asarray(R, float).T + np.asarray(t, float).reshape(1, 3)


def add(R_est, t_est, R_gt, t_gt, pts) -> float:
    """ADD = mean over model points x of ||(R_est x + t_est) - (R_gt x + t_gt)||_2."""
    return float(np.mean(np.linalg.norm(_transform(R_est, t_est, pts) - _transform(R_gt, t_gt, pts), axis=1)))


def adds(R_est, t_est, R_gt, t_gt, pts) -> float:
    """ADD-S = mean over ground-truth points y = R_gt x + t_gt of min over estimated points z of ||y - z||_2."""
    from scipy.spatial import cKDTree

    est = _transform(R_est, t_est, pts)
    gt = _transform(R_gt, t_gt, pts)
    distances, _ = cKDTree(est).query(gt, k=1)
    return float(np.mean(distances))


def mssd(R_est, t_est, R_gt, t_gt, pts, symmetries) -> float:
    """MSSD = min over symmetries S of max over model points x of ||(R_est x + t_est) - (R_gt S x + t_gt S)||.

    (S applied first: the ground-truth pose composed with the symmetry, T_gt S.)"""
    est = _transform(R_est, t_est, pts)
    errors = []
    for S in symmetries:
        R_s, t_s = _compose(R_gt, t_gt, S)
        errors.append(np.max(np.linalg.norm(est - _transform(R_s, t_s, pts), axis=1)))
    return float(min(errors))


def mspd(R_est, t_est, R_gt, t_gt, K, pts, symmetries) -> float:
    """MSPD = min over symmetries S of max over model points x of ||proj(K, T_est x) - proj(K, T_gt S x)||_2,
    in pixels, with proj(K, X) = (K X)_xy / (K X)_z."""
    est = _project(K, _transform(R_est, t_est, pts))
    errors = []
    for S in symmetries:
        R_s, t_s = _compose(R_gt, t_gt, S)
        errors.append(np.max(np.linalg.norm(est - _project(K, _transform(R_s, t_s, pts)), axis=1)))
    return float(min(errors))


def recall_at(errors, threshold: float) -> float:
    """Fraction of errors below a threshold: (1/N) * sum_i [e_i < threshold] (NaN for no errors)."""
    errors = np.asarray(errors, float)
    return float(np.mean(errors < threshold)) if errors.size else float("nan")


def diameter(pts) -> float:
    """Largest distance between two model points (the d of 'ADD < 0.1 d')."""
    from scipy.spatial.distance import pdist

    pts = np.asarray(pts, float)
    return float(pdist(pts).max()) if len(pts) > 1 else 0.0


def _compose(R, t, S):
    S = np.asarray(S, float)
    R_s = np.asarray(R, float) @ S[:3, :3]
    t_s = np.asarray(R, float) @ (S[:3, 3] if S.shape == (4, 4) else np.zeros(3)) + np.asarray(t, float).reshape(3)
    return R_s, t_s


def _project(K, X):
    P = X @ np.asarray(K, float).T
    return P[:, :2] / P[:, 2:3]
