"""Finished samples waiting for their shard: `<index>.rgb.png`, `<index>.seg.png` (and `<index>.depth.png`
when depth is rendered), then `<index>.json`.

The JSON is written last, so its presence means the sample is complete. Bpy-free: the parent process
reads and clears staged samples without importing Blender, which only its workers need.
"""
from __future__ import annotations

import json
from pathlib import Path

from igbench.files import write_bytes_atomic


def stage_sample(staging: Path, index: int, row: dict, rgb_png: bytes, seg_png: bytes,
                 depth_png: bytes | None = None) -> None:
    meta, rgb, seg, depth = staged_paths(staging, index)
    write_bytes_atomic(rgb, rgb_png)
    write_bytes_atomic(seg, seg_png)
    if depth_png is not None:
        write_bytes_atomic(depth, depth_png)
    write_bytes_atomic(meta, json.dumps(row).encode())


def staged_paths(staging: Path, index: int) -> list[Path]:
    stem = staging / f"{index:06d}"
    return [stem.with_suffix(".json"), stem.with_suffix(".rgb.png"), stem.with_suffix(".seg.png"),
            stem.with_suffix(".depth.png")]


def load_staged(staging: Path, index: int) -> dict:
    """The dataset row of a staged sample, images as PNG bytes."""
    meta, rgb, seg, depth = staged_paths(staging, index)
    row = json.loads(meta.read_text())
    row["image"] = {"bytes": rgb.read_bytes(), "path": None}
    row["segmentation"] = {"bytes": seg.read_bytes(), "path": None}
    if depth.exists():
        row["depth"] = {"bytes": depth.read_bytes(), "path": None}
    return row
