"""Scene-parameter recovery metrics (CLEVR-style scenes: categorical attributes, a 3-D location, a yaw).

Conventions shared by every function here:
- A batch of B scenes is held as padded arrays: locations (B, M, 3), attribute codes (B, M, A) as small
  integers, yaws (B, M) in radians (NaN where absent) and a validity mask (B, M) (False = padding).
- Distances are Euclidean in scene units. A matched pair is "within t" when its distance d < t
  (strictly, as in the Slot Attention evaluation), so t = inf accepts every finite distance.
- Everything is vectorised over scenes except the Hungarian assignment, which scipy solves per scene.
"""
from __future__ import annotations

import math

import numpy as np

THRESHOLDS = (math.inf, 1.0, 0.5, 0.25, 0.125)
MAX_COST = 1e15  # finite stand-in for huge distances, so the assignment problem stays feasible


def threshold_key(t: float) -> str:
    """'inf', '1', '0.5', '0.25', '0.125': the suffix of metric names such as 'f1@0.5'."""
    return "inf" if math.isinf(t) else f"{t:g}"


# --------------------------------------------------------------------------------------------- matching


def pairwise_distances(pred_loc: np.ndarray, gt_loc: np.ndarray) -> np.ndarray:
    """D[b, i, j] = ||pred_loc[b, i] - gt_loc[b, j]||_2, for (B, P, 3) and (B, G, 3) inputs -> (B, P, G)."""
    diff = pred_loc[:, :, None, :] - gt_loc[:, None, :, :]
    return np.sqrt(np.einsum("bpgk,bpgk->bpg", diff, diff))


def hungarian_match(dist: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray):
    """Minimum-total-distance one-to-one matching within each scene (scipy `linear_sum_assignment`).

    For scene b the first n_pred[b] predictions and n_gt[b] ground-truth objects are matched so that
        sum over pairs (i, j) of D[b, i, j]
    is minimal over all injective assignments; min(n_pred[b], n_gt[b]) pairs result. Distances above
    MAX_COST are clipped to it (a prediction at 1e300 is simply far). Returns flat int arrays
    (scene, pred_index, gt_index), sorted by scene.
    """
    from scipy.optimize import linear_sum_assignment

    rows, cols = [], []
    cost = np.minimum(dist, MAX_COST)
    n_pred, n_gt = np.asarray(n_pred), np.asarray(n_gt)
    todo = np.flatnonzero((n_pred > 0) & (n_gt > 0))
    for b, p, g in zip(todo.tolist(), n_pred[todo].tolist(), n_gt[todo].tolist()):
        r, c = linear_sum_assignment(cost[b, :p, :g])
        rows.append(r)
        cols.append(c)
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    scenes = np.repeat(todo, np.minimum(n_pred, n_gt)[todo])
    return scenes, np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64)


# ------------------------------------------------------------------------------------- counts and pairs


def count_accuracy(n_pred: np.ndarray, n_gt: np.ndarray) -> float:
    """count_acc = (1/B) * sum_b [n_pred_b == n_gt_b]."""
    return float(np.mean(np.asarray(n_pred) == np.asarray(n_gt)))


def abs_count_error(n_pred: np.ndarray, n_gt: np.ndarray) -> float:
    """count_abs_err = (1/B) * sum_b |n_pred_b - n_gt_b|."""
    return float(np.mean(np.abs(np.asarray(n_pred, float) - np.asarray(n_gt, float))))


def attribute_accuracy(pred_attr: np.ndarray, gt_attr: np.ndarray) -> np.ndarray:
    """Per attribute a, over the K matched pairs: acc_a = (1/K) * sum_k [pred_attr[k, a] == gt_attr[k, a]].

    Inputs (K, A) codes; returns (A,) (NaN when K = 0)."""
    if len(pred_attr) == 0:
        return np.full(np.shape(pred_attr)[-1], np.nan)
    return np.mean(np.asarray(pred_attr) == np.asarray(gt_attr), axis=0)


def position_errors(pred_loc: np.ndarray, gt_loc: np.ndarray) -> np.ndarray:
    """e_k = ||pred_loc_k - gt_loc_k||_2 per matched pair, (K, 3) -> (K,). Report mean(e) and median(e)."""
    return np.linalg.norm(np.asarray(pred_loc, float) - np.asarray(gt_loc, float), axis=-1)


def yaw_error_deg(pred_yaw: np.ndarray, gt_yaw: np.ndarray, period_deg: float = 90.0) -> np.ndarray:
    """Yaw error modulo the shape's symmetry period (90 degrees for a cube), in degrees, in [0, period/2]:

        delta = degrees(pred_yaw - gt_yaw)
        err   = | ((delta + period/2) mod period) - period/2 |

    Yaws in radians. A missing predicted yaw means 0 (the program's convention); pass 0 for it."""
    delta = np.degrees(np.asarray(pred_yaw, float) - np.asarray(gt_yaw, float))
    return np.abs(np.mod(delta + period_deg / 2, period_deg) - period_deg / 2)


def true_positives(dist: np.ndarray, all_attrs_equal: np.ndarray, threshold: float) -> np.ndarray:
    """A matched pair k is a true positive at threshold t iff d_k < t and every attribute is right."""
    return np.asarray(all_attrs_equal, bool) & (np.asarray(dist, float) < threshold)


def precision_recall_f1(tp: float, n_pred: float, n_gt: float) -> tuple[float, float, float]:
    """precision = TP / #predicted objects, recall = TP / #ground-truth objects, F1 = 2PR / (P + R).

    With Hungarian matching each object is in at most one pair, so TP <= min(#pred, #gt). Conventions:
    P = 1 when nothing is predicted and nothing exists, 0 when nothing is predicted but objects exist
    (likewise R); F1 = 0 when P + R = 0."""
    p = tp / n_pred if n_pred > 0 else (1.0 if n_gt == 0 else 0.0)
    r = tp / n_gt if n_gt > 0 else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return float(p), float(r), float(f1)


def parse_rate(parsed_ok: np.ndarray) -> float:
    """parse_rate = (1/B) * sum_b [prediction b was present and parsed without any rejection]."""
    return float(np.mean(np.asarray(parsed_ok, bool)))


# ------------------------------------------------------------------------------ Slot Attention style AP


def nearest_attribute_match(dist, pred_attr, gt_attr, gt_valid):
    """j*[b, p] = argmin_j D[b, p, j] over valid j with all attributes equal to p's; its distance (inf: none)."""
    pred_attr, gt_attr = np.asarray(pred_attr), np.asarray(gt_attr)
    same = np.all(pred_attr[:, :, None, :] == gt_attr[:, None, :, :], axis=-1) & np.asarray(gt_valid, bool)[:, None, :]
    masked = np.where(same, dist, np.inf)
    if masked.shape[2] == 0:
        return np.zeros(masked.shape[:2], np.int64), np.full(masked.shape[:2], np.inf)
    best = np.argmin(masked, axis=2)
    return best, np.take_along_axis(masked, best[:, :, None], axis=2)[:, :, 0]


def slot_attention_claims(best, best_d, pred_valid, threshold: float):
    """TP[b, p] = within[b, p] and no q < p with within[b, q] and j*[b, q] = j*[b, p];
    within = valid and D[b, p, j*] < t (finite)."""
    within = np.asarray(pred_valid, bool) & np.isfinite(best_d) & (best_d < threshold)
    P = within.shape[1]
    earlier = np.tril(np.ones((P, P), dtype=bool), k=-1)  # earlier[p, q]: q comes before p
    clash = (best[:, :, None] == best[:, None, :]) & within[:, None, :] & earlier[None]
    return within & ~clash.any(axis=2)


def average_precision(tp_flags: np.ndarray, n_gt_total: int) -> float:
    """VOC all-point average precision of a ranked list of detections.

    With TP_i, FP_i the cumulative counts after the i-th detection:
        recall_i = TP_i / n_gt_total,  precision_i = TP_i / (TP_i + FP_i)
        p_interp(r) = max over i with recall_i >= r of precision_i
        AP = sum over the points where recall changes of (r_i - r_{i-1}) * p_interp(r_i)
    `tp_flags` is the ranked list (True = true positive). NaN when n_gt_total = 0.
    """
    if n_gt_total <= 0:
        return float("nan")
    tp = np.asarray(tp_flags, bool)
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / n_gt_total
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))
