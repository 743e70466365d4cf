"""`igbench export --format bop DATA OUT`: a BOP-layout copy of a pose-task dataset, for bop_toolkit users.

Layout (https://github.com/thodan/bop_toolkit, docs/bop_datasets_format.md), one BOP scene per igbench split:

    OUT/camera.json                       the first sample's intrinsics (cameras are per image: see scene_camera)
    OUT/models/obj_000001.ply ...         the object library's meshes, in millimetres
    OUT/models/models_info.json           diameter, extents, symmetries_discrete / symmetries_continuous
    OUT/<split>/000000/rgb/000042.png     the image of sample 42
    OUT/<split>/000000/depth/000042.png   its depth in millimetres (16-bit; only if rendered with --depth)
    OUT/<split>/000000/mask_visib/000042_000001.png   the visible mask of its object 1 (0-based object index)
    OUT/<split>/000000/scene_gt.json      cam_R_m2c (row-major), cam_t_m2c (mm), obj_id
    OUT/<split>/000000/scene_camera.json  cam_K, cam_R_w2c, cam_t_w2c (mm), depth_scale
    OUT/<split>/000000/scene_gt_info.json bbox_obj, bbox_visib ([x, y, w, h]), px_count_all/visib/valid, visib_fract

Scene units are read as metres. Depth (`igbench render --depth`) is already BOP's: Z along the camera axis in
millimetres, depth_scale 1, and every pixel of an object has it, so `px_count_valid` equals `px_count_all`.
Without depth no depth/ folder is written, and bop_toolkit's VSD cannot be computed (MSSD and MSPD can).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from igbench.errors import UserError
from igbench.files import atomic_folder

MM = 1000.0


def export_bop(data: str | Path, out: str | Path) -> list[str]:
    """Export every split found in DATA (a split folder or a task folder) into OUT; returns the split names."""
    from igbench.hub import find_splits
    from igbench.task import load_task

    splits = find_splits(Path(data))
    saved = splits[0].saved
    config = saved["config"]
    task = load_task(config["task"], config.get("rotation_rep"), config.get("assets"))
    if task.kind != "pose":
        raise UserError(f"BOP export needs a pose task (so3, 6dof); '{task.name}' has no object poses")
    with atomic_folder(Path(out), "export folder") as tmp:
        _write_models(task, tmp / "models")
        first_camera = None
        for split in splits:
            first_camera = _write_split(split, tmp / split.name / "000000") or first_camera
        (tmp / "camera.json").write_text(json.dumps(first_camera, indent=1))
    return [s.name for s in splits]


def _write_models(task, folder: Path) -> None:
    from igbench.objects.meshes import Mesh, write_ply

    folder.mkdir(parents=True)
    info = {}
    for name in task.library.names:
        spec = task.library[name]
        obj_id = task.library.obj_id(name)
        write_ply(Mesh(spec.vertices, spec.mesh.faces), folder / f"obj_{obj_id:06d}.ply", scale=MM)
        lo, hi = spec.vertices.min(axis=0) * MM, spec.vertices.max(axis=0) * MM
        entry = {"diameter": spec.diameter * MM, "min_x": lo[0], "min_y": lo[1], "min_z": lo[2],
                 "size_x": hi[0] - lo[0], "size_y": hi[1] - lo[1], "size_z": hi[2] - lo[2], "name": name}
        symmetry = spec.symmetry
        discrete = [R for R in spec.symmetry_rotations()[1:]] if symmetry["type"] == "discrete" else []
        if symmetry["type"] == "continuous":
            entry["symmetries_continuous"] = [{"axis": list(map(float, symmetry["axis"])), "offset": [0.0, 0.0, 0.0]}]
            from scipy.spatial.transform import Rotation

            discrete = [Rotation.from_euler("xyz", e, degrees=True).as_matrix() for e in symmetry.get("rotations", [])]
        if discrete:
            entry["symmetries_discrete"] = [_flat4x4(R) for R in discrete]
        info[str(obj_id)] = {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in entry.items()}
    (folder / "models_info.json").write_text(json.dumps(info, indent=1))


def _flat4x4(R) -> list[float]:
    T = np.eye(4)
    T[:3, :3] = R
    return [float(v) for v in T.ravel()]


def _write_split(split, folder: Path) -> dict | None:
    import pyarrow.parquet as pq
    from PIL import Image

    (folder / "rgb").mkdir(parents=True)
    (folder / "mask_visib").mkdir()
    scene_gt, scene_camera, scene_info, first = {}, {}, {}, None
    for path in split.files:
        for row in pq.read_table(path).to_pylist():
            im_id = str(row["index"])
            (folder / "rgb" / f"{row['index']:06d}.png").write_bytes(row["image"]["bytes"])
            if row.get("depth"):
                (folder / "depth").mkdir(exist_ok=True)
                (folder / "depth" / f"{row['index']:06d}.png").write_bytes(row["depth"]["bytes"])
            instance = np.asarray(Image.open(io.BytesIO(row["segmentation"]["bytes"])))
            camera = row["camera"]
            extrinsics = np.asarray(camera["world_to_camera"], float)
            K = np.asarray(camera["K"], float)
            scene_camera[im_id] = {"cam_K": [float(v) for v in K.ravel()], "depth_scale": 1.0,
                                   "cam_R_w2c": [float(v) for v in extrinsics[:3, :3].ravel()],
                                   "cam_t_w2c": [float(v) * MM for v in extrinsics[:3, 3]]}
            first = first or {"width": camera["width"], "height": camera["height"], "fx": K[0, 0], "fy": K[1, 1],
                              "cx": K[0, 2], "cy": K[1, 2], "depth_scale": 1.0}
            scene_gt[im_id], scene_info[im_id] = [], []
            for k, obj in enumerate(row["objects"]):
                scene_gt[im_id].append({"cam_R_m2c": [float(v) for v in np.asarray(obj["R_cam"]).ravel()],
                                        "cam_t_m2c": [float(v) * MM for v in obj["t_cam"]], "obj_id": int(obj["obj_id"])})
                mask = instance == obj["mask_id"]
                Image.fromarray((mask * 255).astype(np.uint8)).save(folder / "mask_visib" / f"{row['index']:06d}_{k:06d}.png")
                scene_info[im_id].append({
                    "bbox_obj": _xywh(obj["bbox_amodal"]), "bbox_visib": _xywh(obj["bbox"]),
                    "px_count_all": int(obj["pixels_amodal"]), "px_count_valid": int(obj["pixels_amodal"]),
                    "px_count_visib": int(obj["visible_pixels"]), "visib_fract": float(obj["visible_fraction"]),
                })
    for name, content in (("scene_gt", scene_gt), ("scene_camera", scene_camera), ("scene_gt_info", scene_info)):
        (folder / f"{name}.json").write_text(json.dumps(content, indent=1))
    return first


def _xywh(box) -> list[int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    return [-1, -1, -1, -1] if x0 < 0 else [x0, y0, x1 - x0, y1 - y0]
