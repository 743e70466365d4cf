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

    (S applied first: the ground-truth pose composed with the symmetry, T_gt S.) Vectorised over S."""
    est = _transform(R_est, t_est, pts)
    diff = _transform_sym(R_gt, t_gt, pts, symmetries) - est[None]  # (S, N, 3)
    return float(np.sqrt(np.einsum("snk,snk->sn", diff, diff).max(axis=1).min()))


def mspd(R_est, t_est, R_gt, t_gt, K, pts, symmetries) -> float:
    """MSPD = min over symmetries S of max over model points x of ||proj(K, T_est x) - proj(K, T_gt S x)||_2,
    in pixels, with proj(K, X) = (K X)_xy / (K X)_z. NaN when a point lies on or behind the camera plane
    (z <= 0), where the projection means nothing."""
    est_3d = _transform(R_est, t_est, pts)
    gt_3d = _transform_sym(R_gt, t_gt, pts, symmetries)
    if not (est_3d[:, 2] > 0).all() or not (gt_3d[..., 2] > 0).all():
        return float("nan")
    est = _project(K, est_3d)
    gt = _project(K, gt_3d.reshape(-1, 3)).reshape(gt_3d.shape[0], -1, 2)
    diff = gt - est[None]
    return float(np.sqrt(np.einsum("snk,snk->sn", diff, diff).max(axis=1).min()))


def rotation_error_axial_deg(R_est, R_gt, axis, flips=None) -> float:
    """Rotation error up to a continuous symmetry about `axis` (object frame), exact (no sampling):

        re = min over flips F, angles a of re(R_est, R_gt F Rot(axis, a)).

    With A = (R_gt F)^T R_est, trace(R_est (R_gt F Rot(axis, a))^T) = trace(A Rot(axis, a)^T)
    = u + cos(a) (trace(A) - u) + sin(a) w, u = axis^T A axis, w = sum_ij A_ij [axis]x_ij (Rodrigues), whose
    maximum over a is u + sqrt((trace(A) - u)^2 + w^2). `flips` (3x3, default: identity only) are the
    discrete symmetries composed with the continuous one (e.g. a dumbbell's end-over-end half turn)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    skew = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    flips = [np.eye(3)] if flips is None else [np.asarray(F, float)[:3, :3] for F in flips]
    best = -np.inf
    for F in flips:
        A = (np.asarray(R_gt, float) @ F).T @ np.asarray(R_est, float)
        u = a @ A @ a
        best = max(best, u + np.hypot(np.trace(A) - u, np.sum(A * skew)))
    return float(np.degrees(np.arccos(np.clip((best - 1.0) / 2.0, -1.0, 1.0))))


def discretize_axial_symmetry(axis, pts, diameter: float, flips=None, max_step: float = 0.01) -> np.ndarray:
    """(S, 3, 3) rotations sampling a continuous symmetry about `axis` (through the origin) as bop_toolkit
    does: n = ceil(2 pi r_max / (max_step d)) steps, r_max the largest distance of a model point from the
    axis, so no point travels more than max_step d between neighbours; each composed after every flip F
    (F Rot(axis, 2 pi k / n)). Identity first."""
    from scipy.spatial.transform import Rotation

    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    pts = np.asarray(pts, float)
    r_max = float(np.linalg.norm(pts - np.outer(pts @ a, a), axis=1).max()) if len(pts) else 0.0
    n = max(1, int(np.ceil(2 * np.pi * r_max / (max_step * diameter)))) if diameter > 0 else 1
    steps = Rotation.from_rotvec(np.outer(np.arange(n) * 2 * np.pi / n, a)).as_matrix()
    flips = [np.eye(3)] if flips is None else [np.asarray(F, float)[:3, :3] for F in flips]
    return np.concatenate([np.einsum("ij,njk->nik", F, steps) for F in flips])


def average_recall(errors, thresholds) -> float:
    """BOP average recall: the mean over thresholds tau of recall_at(errors, tau) (NaN for no errors).
    A NaN error (undefined) counts as a miss."""
    errors = np.asarray(errors, float)
    if not errors.size:
        return float("nan")
    return float(np.mean([np.mean(errors < t) for t in thresholds]))


def mssd_thresholds(diameter: float) -> np.ndarray:
    """BOP's MSSD thresholds: 0.05, 0.10, ..., 0.50 times the object diameter."""
    return np.arange(1, 11) * 0.05 * diameter


def mspd_thresholds(image_width: int) -> np.ndarray:
    """BOP's MSPD thresholds: 5, 10, ..., 50 px times r = image width / 640."""
    return np.arange(1, 11) * 5.0 * (image_width / 640.0)


def recall_at(errors, threshold: float) -> float:
    """Fraction of errors below a threshold: (1/N) * sum_i [e_i < threshold] (NaN for no errors)."""
    errors = np.asarray(errors, float)
    return float(np.mean(errors < threshold)) if errors.size else float("nan")


def diameter(pts) -> float:
    """Largest distance between two model points (the d of 'ADD < 0.1 d')."""
    from scipy.spatial.distance import pdist

    pts = np.asarray(pts, float)
    return float(pdist(pts).max()) if len(pts) > 1 else 0.0


def _transform_sym(R, t, pts, symmetries) -> np.ndarray:
    """(S, N, 3): the model points under T S for every symmetry S (3x3 or 4x4), as one matrix product."""
    R, t = np.asarray(R, float), np.asarray(t, float).reshape(3)
    if isinstance(symmetries, np.ndarray) and symmetries.ndim == 3 and symmetries.shape[1:] == (3, 3):
        S_R, S_t = symmetries, np.zeros((len(symmetries), 3))
    else:
        S_R, S_t = [], []
        for S in symmetries:
            S = np.asarray(S, float)
            S_R.append(S[:3, :3])
            S_t.append(S[:3, 3] if S.shape == (4, 4) else np.zeros(3))
        S_R, S_t = np.stack(S_R), np.stack(S_t)
    R_s = np.matmul(R, S_R)  # (S, 3, 3): R S_R
    t_s = S_t @ R.T + t  # R S_t + t
    pts = np.asarray(pts, float)
    n_sym = len(R_s)
    out = (pts @ R_s.transpose(2, 0, 1).reshape(3, n_sym * 3)).reshape(len(pts), n_sym, 3).transpose(1, 0, 2)
    return out + t_s[:, None, :]


def _project(K, X):
    P = X @ np.asarray(K, float).T
    return P[:, :2] / P[:, 2:3]
