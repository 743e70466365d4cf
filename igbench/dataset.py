"""Datasets on disk: typed HuggingFace `Features`, parquet shards per split, loading.

Layout of one split, `OUT/<task>/<split>/`:

    data/<split>-00000-of-00004.parquet   finished shards (HF's sharded naming, so load_dataset finds the split)
    staging/                              finished samples not yet in a shard (one PNG pair + JSON each)
    render_config.json                    the command's typed config, versions, and the task file's hash

Load a split with the standard API:

    datasets.load_dataset("OUT/<task>/<split>", split="<split>")
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from igbench.task import Task

SHARD_PATTERN = re.compile(r"^(?P<split>.+)-(?P<k>\d{5})-of-(?P<n>\d{5})\.parquet$")


def features(task: Task):
    """The typed schema of a split's rows (objects are a list of structs, not a JSON string)."""
    from datasets import Features, Image, List, Value

    obj = {name: Value("string") for name in task.categorical}
    for name, decl in task.numeric.items():
        obj[name] = List(Value("float64"), length=decl.arity)
        if not decl.required:
            obj[f"has_{name}"] = Value("bool")  # False: the field was absent from the program (zeros stored)
    obj["pixel_coords"] = List(Value("float64"), length=3)  # x, y in pixels, depth along the optical axis
    obj["visible_pixels"] = Value("int32")
    obj["bbox"] = List(Value("int32"), length=4)  # x_min, y_min, x_max, y_max (exclusive); -1s if unseen
    matrix = List(List(Value("float64")))
    return Features({
        "id": Value("string"),
        "task": Value("string"),
        "split": Value("string"),
        "index": Value("int64"),
        "seed": Value("int64"),
        "image": Image(),
        "segmentation": Image(),
        "program": Value("string"),
        "objects": List(obj),
        "camera": {"K": matrix, "world_to_camera": matrix, "width": Value("int32"), "height": Value("int32")},
        "lights": List({
            "name": Value("string"), "type": Value("string"), "location": List(Value("float64"), length=3),
            "target": List(Value("float64"), length=3), "energy": Value("float64"), "size": Value("float64"),
        }),
    })


def split_dir(out: Path, task: str, split: str) -> Path:
    return Path(out) / task / split


def num_shards(n: int, shard_size: int) -> int:
    return max(1, math.ceil(n / shard_size))


def shard_path(root: Path, split: str, k: int, total: int) -> Path:
    return root / "data" / f"{split}-{k:05d}-of-{total:05d}.parquet"


def finished_shards(root: Path, split: str, total: int) -> set[int]:
    found = set()
    for path in (root / "data").glob("*.parquet"):
        match = SHARD_PATTERN.match(path.name)
        if match and match["split"] == split and int(match["n"]) == total:
            found.add(int(match["k"]))
    return found


def write_shard(rows: list[dict], task: Task, path: Path) -> None:
    """Write rows as one parquet shard, atomically: a crash leaves the old state or the whole shard."""
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    schema = features(task)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    ordered = [{key: row[key] for key in schema} for row in rows]
    Dataset.from_list(ordered, features=schema).to_parquet(str(tmp))
    os.replace(tmp, path)


def load_split(path: str | Path, split: str | None = None):
    """`datasets.load_dataset` on a rendered split folder (the split name defaults to the folder's)."""
    from datasets import load_dataset

    path = Path(path)
    return load_dataset(str(path), split=split or path.name)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
