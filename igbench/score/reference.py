"""The reference a predictions file is scored against: rendered splits on disk, or rows in memory.

A sample id `<task>/<split>/<index>` names its split folder `DATA/<task>/<split>/` (the layout
`igbench render` writes). `--data` may be the data root or one split folder. Rows are read with pyarrow
straight from the parquet shards, column by column, so parameter scoring never decodes an image.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from igbench.dataset import fingerprint_digests, fingerprint_files, read_rows, shard_files, verified_split
from igbench.errors import UserError
from igbench.program import Program
from igbench.task import Task, load_task

ID_PATTERN = re.compile(r"^(?P<task>[A-Za-z0-9_.-]+)/(?P<split>[A-Za-z0-9_.-]+)/(?P<index>\d+)$")
META_COLUMNS = ["id", "task", "split", "index", "seed", "program", "objects", "camera", "lights"]
OPTIONAL_COLUMNS = ["rotation_rep"]  # pose datasets


@dataclass
class ReferenceSplit:
    task: Task
    split: str
    rows: dict[str, dict]  # id -> row (no images), in id order
    path: Path | None = None  # the split folder, when read from disk
    fingerprint: str = ""
    render_settings: dict | None = None  # from render_config.json
    _images: dict[str, dict] = field(default_factory=dict, repr=False)  # id -> {'image': bytes, 'segmentation': bytes}

    @property
    def key(self) -> str:
        return f"{self.task.name}/{self.split}"

    def programs(self) -> list[Program]:
        """The reference programs (from the rows' object structs; `has_<field>: false` marks an absent field)."""
        from igbench.score.predictions import objects_to_program

        out = []
        for sample_id, row in self.rows.items():
            program, rejections = objects_to_program(row.get("objects") or [], self.task)
            if rejections:
                raise UserError(f"reference sample {sample_id} is invalid: {rejections[0].reason}")
            out.append(program)
        return out

    def images(self, ids: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """id -> (RGB uint8 HxWx3, instance ids uint8 HxW), decoding only the samples asked for."""
        if self.path is not None and not self._images:
            self._images = _read_image_columns(self.path, self.split)
        out = {}
        for sample_id in ids:
            item = self._images.get(sample_id)
            if item is None:
                raise UserError(f"reference {self.key} holds no image for {sample_id}")
            rgb = np.asarray(_open_image(item["image"]).convert("RGB"))
            seg = np.asarray(_open_image(item["segmentation"]))
            out[sample_id] = (rgb, seg if seg.ndim == 2 else seg[..., 0])
        return out


def _open_image(value):
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        value = value.get("bytes") or Path(value["path"]).read_bytes()
    return Image.open(io.BytesIO(value))


def split_id(sample_id: str) -> tuple[str, str]:
    match = ID_PATTERN.match(sample_id)
    if not match:
        raise UserError(f"malformed sample id '{sample_id[:80]}': expected TASK/SPLIT/INDEX, e.g. clevr/val/000042")
    return match["task"], match["split"]


def find_split_dir(data: Path, task: str, split: str) -> Path:
    """DATA/<task>/<split>, or DATA itself when it is that split's folder."""
    for candidate in (data / task / split, data):
        if candidate.name == split and any((candidate / "data").glob(f"{split}-*.parquet")):
            return candidate
    raise UserError(
        f"no reference for {task}/{split} under {data}: expected {data / task / split}/data/{split}-*.parquet "
        f"(render it with `igbench render --task {task} --split {split}`, or point --data at the data root)"
    )


def load_split_dir(root: Path, task: Task, split: str) -> ReferenceSplit:
    files = shard_files(root, split)
    render_config, digests = verified_split(root, files)
    rows = {row["id"]: row for row in read_rows(root, split, META_COLUMNS, optional=tuple(OPTIONAL_COLUMNS), required=(),
                                                   verified=True)}
    task = dataset_task(task, rows.values(), render_config, f"reference {root}")
    fingerprint = fingerprint_digests(digests) if digests is not None else fingerprint_files(files)
    return ReferenceSplit(task, split, rows, root, fingerprint, render_config.get("render_settings"))


def dataset_task(task: Task, rows, render_config: dict | None = None, where: str = "reference") -> Task:
    """The task as the dataset was rendered: for pose tasks, its rotation representation (the rows'
    `rotation_rep`, else render_config.json's, else inferred from the rows' R_world) and its object library
    (render_config.json's `--assets`, checked against the recorded library fingerprint)."""
    rotation = task.numeric.get("rotation")
    if task.library is None and task.rotation_rep is None:
        return task
    render_config = render_config or {}
    rows = list(rows)
    reps = {r.get("rotation_rep") for r in rows} - {None}
    if len(reps) > 1:
        raise UserError(f"{where} mixes rotation representations {sorted(reps)}; score each separately")
    rep = next(iter(reps), None) or render_config.get("rotation_rep") or _infer_rotation_rep(rows)
    assets = (render_config.get("config") or {}).get("assets") or task.assets
    if assets and not Path(assets).is_dir():
        raise UserError(f"{where} was rendered with --assets {assets}, which is not a folder here")
    if rep is None or rotation is None:
        rep = task.rotation_rep
    if rep != task.rotation_rep or (assets and assets != task.assets):
        task = load_task(str(task.path), rep, assets)
    recorded = render_config.get("library")
    if recorded and task.library is not None and recorded != task.library.fingerprint:
        raise UserError(f"{where} was rendered with object library {recorded!r}, but the library here is "
                        f"{task.library.fingerprint!r}")
    return task


def _infer_rotation_rep(rows: list[dict]) -> str | None:
    """The representation whose matrix of an object's `rotation` equals its recorded R_world (rows that
    carry no `rotation_rep`, e.g. a trainer's {id, objects} references); None when nothing tells."""
    from igbench.rotations import ARITY, to_matrix

    for row in rows:
        for obj in row.get("objects") or []:
            values, R = obj.get("rotation"), obj.get("R_world")
            if values is None or R is None:
                continue
            for rep, arity in ARITY.items():
                try:
                    if len(values) == arity and np.allclose(to_matrix(values, rep), R, atol=1e-6):
                        return rep
                except (UserError, ValueError):
                    continue
            return None
    return None


def _read_image_columns(root: Path, split: str) -> dict[str, dict]:
    return {row["id"]: row for row in read_rows(root, split, ["id", "image", "segmentation"], required=(), verified=True)}


def load_reference(ids: list[str], data: str | Path) -> dict[str, ReferenceSplit]:
    """The reference splits that the given ids point into, keyed 'task/split'."""
    data = Path(data)
    wanted: dict[tuple[str, str], None] = {}
    for sample_id in ids:
        wanted.setdefault(split_id(sample_id))
    out = {}
    for task_name, split in wanted:
        task = load_task(task_name)
        task.check_split(split)
        root = find_split_dir(data, task.name, split)
        out[f"{task.name}/{split}"] = load_split_dir(root, task, split)
    return out


def reference_from_rows(rows, task: Task | str | None = None) -> dict[str, ReferenceSplit]:
    """In-memory reference (e.g. a trainer's validation rows): dicts with id, objects and, for --render,
    camera, lights, seed, image, segmentation. Grouped by the task/split their ids name."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        row = dict(row)
        task_name, split = split_id(str(row["id"]))
        groups.setdefault(f"{task_name}/{split}", []).append(row)
    out = {}
    for key, items in groups.items():
        task_name, split = key.split("/")
        task_obj = load_task(task) if isinstance(task, str) else task
        if task_obj is None:
            task_obj = dataset_task(load_task(task_name), items, None, f"reference rows of {key}")
        items.sort(key=lambda r: r["id"])
        digest = hashlib.sha256()
        for r in items:
            digest.update(json.dumps([r["id"], r.get("program"), r["objects"]], sort_keys=True, default=str).encode())
        images = {r["id"]: {"image": r["image"], "segmentation": r["segmentation"]}
                  for r in items if r.get("image") is not None and r.get("segmentation") is not None}
        meta = {r["id"]: {k: v for k, v in r.items() if k not in ("image", "segmentation")} for r in items}
        out[key] = ReferenceSplit(task_obj, split, meta, None, "rows:" + digest.hexdigest(), None, images)
    return out
