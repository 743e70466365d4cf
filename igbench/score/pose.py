"""Parameter recovery for the pose tasks (so3, 6dof) and the 2-D point task (dot2d).

The per-pair numbers come from the pure functions of `igbench.metrics.pose`; this module parses, matches,
collects per-scene sums (so that every headline ratio gets the same scene bootstrap as CLEVR) and builds
the scores.json group. Scenes hold a handful of objects; the per-pair work (model points, symmetries) is a
few vectorised numpy calls per pair.

Frames: rotation, translation, ADD, ADD-S and MSSD compare poses in the world frame (the program's frame:
`loc` and `rotation`; the same numbers as in the camera frame, since a rigid change of frame preserves
them); MSPD projects camera-frame poses with the sample's K.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from igbench.errors import UserError
from igbench.metrics import params as M
from igbench.metrics import pose as P
from igbench.score.params import none_if_nan, bootstrap_intervals

ROT_THRESHOLDS_DEG = (5, 10, 15)
ADD_THRESHOLD = 0.1  # x diameter
SYMMETRY_MAX_STEP = 0.01  # continuous symmetries sampled so no point moves more than 0.01 d per step (BOP)
INVALID_ROTATION = "invalid_rotation"


# --------------------------------------------------------------------------------------------- helpers


@dataclass
class ObjectModel:
    points: np.ndarray  # (N, 3) model points, object frame
    diameter: float
    symmetric: bool
    discrete: list  # 3x3 symmetries incl. identity (none / discrete); the flips of a continuous symmetry
    axis: np.ndarray | None  # continuous symmetry axis, or None
    sampled: np.ndarray  # (S, 3, 3) all symmetries for MSSD / MSPD (continuous ones finely sampled)


def object_model(spec) -> ObjectModel:
    """Model points, diameter and symmetries of a library object (ObjectSpec)."""
    from scipy.spatial.transform import Rotation

    pts = np.asarray(spec.vertices, float)
    d = float(spec.diameter)
    sym = spec.symmetry or {"type": "none"}
    extra = [Rotation.from_euler("xyz", e, degrees=True).as_matrix() for e in sym.get("rotations", [])]
    if sym["type"] == "continuous":
        flips = [np.eye(3), *extra]
        axis = np.asarray(sym["axis"], float)
        sampled = P.discretize_axial_symmetry(axis, pts, d, flips, SYMMETRY_MAX_STEP)
        return ObjectModel(pts, d, True, flips, axis, sampled)
    rotations = [np.asarray(R, float) for R in spec.symmetry_rotations()]
    return ObjectModel(pts, d, len(rotations) > 1, rotations, None, np.stack(rotations))


def pose_pair_errors(R_est, t_est, R_gt, t_gt, model: ObjectModel, camera=None) -> dict:
    """All per-pair pose errors; rotations/translations in the world frame. camera: (K, world_to_camera 4x4,
    image width) or None (MSPD then None)."""
    if model.axis is not None:
        rot = P.rotation_error_axial_deg(R_est, R_gt, model.axis, model.discrete)
    else:
        rot = P.rotation_error_sym_deg(R_est, R_gt, model.discrete)
    d = model.diameter
    out = {
        "rot_err_deg": rot,
        "trans_err": float(P.translation_error(t_est, t_gt)),
        "add": P.add(R_est, t_est, R_gt, t_gt, model.points),
        "adds": P.adds(R_est, t_est, R_gt, t_gt, model.points),
        "mssd": P.mssd(R_est, t_est, R_gt, t_gt, model.points, model.sampled),
        "mspd": float("nan"),
    }
    out["mssd_ar"] = P.average_recall([out["mssd"]], P.mssd_thresholds(d))
    out["mspd_ar"] = float("nan")
    if camera is not None:
        K, E, width = camera
        Rc = E[:3, :3]
        out["mspd"] = P.mspd(Rc @ R_est, Rc @ t_est + E[:3, 3], Rc @ R_gt, Rc @ t_gt + E[:3, 3], K, model.points,
                             model.sampled)
        out["mspd_ar"] = P.average_recall([out["mspd"]], P.mspd_thresholds(width))
    return out


def _camera(row: dict):
    cam = row.get("camera")
    if not cam or cam.get("K") is None or cam.get("world_to_camera") is None:
        return None
    return np.asarray(cam["K"], float), np.asarray(cam["world_to_camera"], float), int(cam.get("width") or 640)


def _padded_locs(locs: list[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.array([len(x) for x in locs], np.int64)
    out = np.zeros((len(locs), max(int(counts.max(initial=0)), 1), dim))
    for b, x in enumerate(locs):
        if len(x):
            out[b, : len(x)] = x
    return out, counts


def _match(pred_locs, gt_locs, dim):
    """Hungarian matching on position distance within each scene (metrics.params.hungarian_match)."""
    P_loc, n_pred = _padded_locs(pred_locs, dim)
    G_loc, n_gt = _padded_locs(gt_locs, dim)
    dist = M.pairwise_distances(P_loc, G_loc)
    s, r, c = M.hungarian_match(dist, n_pred, n_gt)
    return s, r, c, dist[s, r, c], n_pred, n_gt


def _sums(scene: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(values, float)
    return np.bincount(scene, weights=np.nan_to_num(values), minlength=n)


def _mean_median(values) -> tuple[float | None, float | None]:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not values.size:
        return None, None
    return float(np.mean(values)), float(np.median(values))


def _counts(n_pred, n_gt, parsed_ok, ratios: dict, out: dict) -> None:
    n = len(n_gt)
    ones = np.ones(n)
    out["parse_rate"] = M.parse_rate(parsed_ok) if n else None
    out["count_acc"] = M.count_accuracy(n_pred, n_gt) if n else None
    out["count_abs_err"] = M.abs_count_error(n_pred, n_gt) if n else None
    ratios["parse_rate"] = (np.asarray(parsed_ok, float), ones)
    ratios["count_acc"] = ((n_pred == n_gt).astype(float), ones)
    ratios["count_abs_err"] = (np.abs(n_pred - n_gt).astype(float), ones)


def _base_record(ref, sample_id, pp, n_pred, n_gt) -> dict:
    return {"id": sample_id, "task": ref.task.name, "split": ref.split, "status": "ok" if pp.ok else "failed",
            "reasons": sorted(set(pp.reasons)), "details": pp.details[:5], "n_pred": int(n_pred), "n_gt": int(n_gt)}


# ------------------------------------------------------------------------------------------ pose tasks


def _predicted_poses(parsed, task) -> list[list[tuple]]:
    """Per scene: (object, material, loc, R) of each predicted object; an object whose rotation is no
    rotation (a zero quaternion, parallel 6-D rows) is dropped with the reason 'invalid_rotation'."""
    from igbench.rotations import to_matrix

    out = []
    for pp in parsed:
        objects, kept = [], []
        for k, obj in enumerate(pp.program.objects):
            try:
                R = to_matrix(obj.rotation, task.rotation_rep)
            except UserError as err:
                pp.reasons.append(INVALID_ROTATION)
                pp.details.append(f"object {k + 1}: {err}")
                continue
            kept.append(obj)
            objects.append((obj.attrs.get("object"), obj.attrs.get("material"), np.asarray(obj.loc, float), R))
        pp.program.objects[:] = kept  # what gets re-rendered is what was scored
        out.append(objects)
    return out


def _reference_poses(ref, ids, task) -> list[list[tuple]]:
    from igbench.rotations import to_matrix

    out = []
    for sample_id in ids:
        objects = []
        for obj in ref.rows[sample_id].get("objects") or []:
            R = obj.get("R_world")
            R = np.asarray(R, float) if R is not None else to_matrix(obj["rotation"], task.rotation_rep)
            t = np.asarray(obj.get("t_world") if obj.get("t_world") is not None else obj["loc"], float)
            objects.append((obj["object"], obj.get("material"), t, R))
        out.append(objects)
    return out


def score_pose_split(ref, ids, parsed, n_resamples: int, seed: int) -> tuple[dict, list[dict]]:
    """so3 / 6dof: the scores.json group and the per-sample records."""
    task = ref.task
    if task.library is None or task.rotation_rep is None:
        raise UserError(f"task '{task.name}' has no object library or rotation representation to score poses with")
    preds = _predicted_poses(parsed, task)
    gts = _reference_poses(ref, ids, task)
    n = len(ids)
    s, r, c, dist, n_pred, n_gt = _match([np.array([o[2] for o in p]).reshape(-1, 3) for p in preds],
                                         [np.array([o[2] for o in g]).reshape(-1, 3) for g in gts], 3)
    models: dict[str, ObjectModel] = {}
    cameras = [_camera(ref.rows[i]) for i in ids]
    keys = ("rot_err_deg", "trans_err", "add", "adds", "mssd", "mspd", "mssd_ar", "mspd_ar")
    pair = {k: np.full(len(s), np.nan) for k in (*keys, "diameter")}
    symmetric = np.zeros(len(s), bool)
    obj_ok = np.zeros(len(s), bool)
    mat_ok = np.zeros(len(s), bool)
    for k, (b, i, j) in enumerate(zip(s.tolist(), r.tolist(), c.tolist())):
        p_name, p_mat, t_e, R_e = preds[b][i]
        g_name, g_mat, t_g, R_g = gts[b][j]
        if g_name not in models:
            models[g_name] = object_model(task.library[g_name])
        model = models[g_name]
        errors = pose_pair_errors(R_e, t_e, R_g, t_g, model, cameras[b])  # the reference object's model
        for key in keys:
            pair[key][k] = errors[key]
        pair["diameter"][k] = model.diameter
        symmetric[k] = model.symmetric
        obj_ok[k], mat_ok[k] = p_name == g_name, p_mat == g_mat
    d = pair["diameter"]
    rel = {name: pair[name] / d for name in ("add", "adds", "mssd")}
    add_adds = np.where(symmetric, rel["adds"], rel["add"])
    has_mspd = any(cam is not None for cam in cameras)

    out: dict = {"n": n}
    ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    _counts(n_pred, n_gt, np.array([p.ok for p in parsed]), ratios, out)
    n_pairs = np.bincount(s, minlength=n).astype(float)
    gt_den = n_gt.astype(float)
    out["attr_acc"] = {"object": none_if_nan(obj_ok.mean()) if len(s) else None,
                       "material": none_if_nan(mat_ok.mean()) if len(s) else None}
    ratios["attr_acc.object"] = (_sums(s, obj_ok, n), n_pairs)
    ratios["attr_acc.material"] = (_sums(s, mat_ok, n), n_pairs)
    means = {"rot_err_deg": pair["rot_err_deg"], "trans_err": pair["trans_err"], "add_rel": rel["add"],
             "adds_rel": rel["adds"], "mssd_rel": rel["mssd"]}
    means["mspd_px"] = pair["mspd"] if has_mspd else np.zeros(0)  # None without cameras (in-memory rows)
    for name, values in means.items():
        out[f"{name}_mean"], out[f"{name}_median"] = _mean_median(values)
        if values.size:
            finite = np.isfinite(values)
            ratios[f"{name}_mean"] = (_sums(s[finite], values[finite], n),
                                      np.bincount(s[finite], minlength=n).astype(float))
    n_gt_total = float(n_gt.sum())
    recalls = {f"rot_recall@{t}": pair["rot_err_deg"] < t for t in ROT_THRESHOLDS_DEG}
    recalls.update({"add_recall@0.1d": rel["add"] < ADD_THRESHOLD, "adds_recall@0.1d": rel["adds"] < ADD_THRESHOLD,
                    "add_adds_recall@0.1d": add_adds < ADD_THRESHOLD, "mssd_ar": pair["mssd_ar"]})
    recalls["mspd_ar"] = pair["mspd_ar"] if has_mspd else None
    for name, hits in recalls.items():  # over all reference objects: an unmatched one is a miss
        if hits is None:
            out[name] = None
            continue
        hits = np.nan_to_num(np.asarray(hits, float))
        out[name] = float(hits.sum() / n_gt_total) if n_gt_total else None
        ratios[name] = (_sums(s, hits, n), gt_den)
    out["objects"] = {"predicted": int(n_pred.sum()), "reference": int(n_gt.sum()), "matched": int(len(s)),
                      "symmetric_matched": int(symmetric.sum())}
    out["thresholds"] = {"rot_recall_deg": list(ROT_THRESHOLDS_DEG), "add_rel": ADD_THRESHOLD,
                         "mssd_rel": [round(x, 2) for x in P.mssd_thresholds(1.0).tolist()],
                         "mspd_px_at_640": P.mspd_thresholds(640).tolist()}
    out["ci95"] = bootstrap_intervals(ratios, (), n_resamples, seed)

    records = []
    by_scene: dict[int, list[dict]] = {}
    for k, (b, i, j) in enumerate(zip(s.tolist(), r.tolist(), c.tolist())):
        wrong = [name for name, ok in (("object", obj_ok[k]), ("material", mat_ok[k])) if not ok]
        by_scene.setdefault(b, []).append({
            "gt": j, "pred": i, "loc_l2": float(dist[k]), "wrong": wrong,
            "rot_err_deg": none_if_nan(pair["rot_err_deg"][k]), "add_rel": none_if_nan(rel["add"][k]),
            "adds_rel": none_if_nan(rel["adds"][k]), "mssd_rel": none_if_nan(rel["mssd"][k]),
            "mspd_px": none_if_nan(pair["mspd"][k]), "symmetric": bool(symmetric[k]),
        })
    for b, (sample_id, pp) in enumerate(zip(ids, parsed)):
        objects = sorted(by_scene.get(b, []), key=lambda o: o["gt"])
        record = _base_record(ref, sample_id, pp, n_pred[b], n_gt[b])
        ar = sum(pair["mssd_ar"][k] for k in np.flatnonzero(s == b)) / n_gt[b] if n_gt[b] else float(n_pred[b] == 0)
        record.update({
            "quality": float(ar),  # MSSD average recall of this sample (worst first in samples.jsonl)
            "loc_l2_mean": float(np.mean([o["loc_l2"] for o in objects])) if objects else None,
            "rot_err_deg_mean": float(np.mean([o["rot_err_deg"] for o in objects])) if objects else None,
            "matched": objects,
        })
        records.append(record)
    return out, records


# -------------------------------------------------------------------------------------------- 2-D points


def score_points2d_split(ref, ids, parsed, n_resamples: int, seed: int) -> tuple[dict, list[dict]]:
    """dot2d: position error in canvas units and in pixels (through the sample's camera), counts, parse rate."""
    preds = [np.array([o.loc for o in pp.program.objects], float).reshape(-1, 2) for pp in parsed]
    gts = [np.array([o["loc"] for o in (ref.rows[i].get("objects") or [])], float).reshape(-1, 2) for i in ids]
    n = len(ids)
    s, r, c, dist, n_pred, n_gt = _match(preds, gts, 2)
    px = np.full(len(s), np.nan)
    for k, (b, i, j) in enumerate(zip(s.tolist(), r.tolist(), c.tolist())):
        camera = _camera(ref.rows[ids[b]])
        if camera is not None:
            px[k] = canvas_pixel_error(preds[b][i], gts[b][j], camera[0], camera[1])
    out: dict = {"n": n}
    ratios: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    _counts(n_pred, n_gt, np.array([p.ok for p in parsed]), ratios, out)
    for name, values in (("pos_err", dist), ("pos_err_px", px)):
        out[f"{name}_mean"], out[f"{name}_median"] = _mean_median(values)
        finite = np.isfinite(values)
        ratios[f"{name}_mean"] = (_sums(s[finite], values[finite], n), np.bincount(s[finite], minlength=n).astype(float))
    out["objects"] = {"predicted": int(n_pred.sum()), "reference": int(n_gt.sum()), "matched": int(len(s))}
    out["ci95"] = bootstrap_intervals(ratios, (), n_resamples, seed)
    records = []
    for b, (sample_id, pp) in enumerate(zip(ids, parsed)):
        ks = np.flatnonzero(s == b)
        objects = [{"gt": int(c[k]), "pred": int(r[k]), "loc_l2": float(dist[k]), "wrong": [], "rot_err_deg": None,
                    "pos_err_px": none_if_nan(px[k])} for k in ks]
        record = _base_record(ref, sample_id, pp, n_pred[b], n_gt[b])
        mean = float(np.mean(dist[ks])) if len(ks) else None
        # worst first: unmatched dots count as a whole canvas off
        misses = abs(int(n_pred[b]) - int(n_gt[b]))
        record.update({"quality": -(float(dist[ks].sum()) + misses) / max(int(n_gt[b]), int(n_pred[b]), 1),
                       "loc_l2_mean": mean, "pos_err_px_mean": _mean_median(px[ks])[0],
                       "matched": sorted(objects, key=lambda o: o["gt"])})
        records.append(record)
    return out, records


def canvas_pixel_error(pred_xy, gt_xy, K, world_to_camera) -> float:
    """||proj(pred) - proj(gt)|| in pixels, a canvas point (x, y) sitting at (x, y, 1) before the camera."""
    pts = np.array([[*pred_xy, 1.0, 1.0], [*gt_xy, 1.0, 1.0]]) @ np.asarray(world_to_camera, float).T
    uv = pts[:, :3] @ np.asarray(K, float).T
    uv = uv[:, :2] / uv[:, 2:3]
    return float(np.linalg.norm(uv[0] - uv[1]))
