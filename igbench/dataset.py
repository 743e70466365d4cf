"""Datasets on disk: typed HuggingFace `Features`, parquet shards per split, loading.

Layout of one split, `OUT/<task>/<split>/`:

    data/<split>-00000-of-00004.parquet   finished shards (HF's sharded naming, so load_dataset finds the split)
    staging/                              finished samples not yet in a shard (one PNG pair + JSON each)
    render_config.json                    the command's typed config, versions, the task file's hash,
                                          format_version and each finished shard's size and SHA-256
    locks/<k>.lock                        held by the render writing parquet file k (pid and host inside)

Load a split with the standard API:

    datasets.load_dataset("OUT/<task>/<split>", split="<split>")
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

from igbench.errors import UserError
from igbench.files import file_sha256, replaced_atomically
from igbench.task import Task

SHARD_PATTERN = re.compile(r"^(?P<split>.+)-(?P<k>\d{5})-of-(?P<n>\d{5})\.parquet$")


def features(task: Task, depth: bool = False):
    """The typed schema of a split's rows (objects are a list of structs, not a JSON string). `depth`: the
    split was rendered with --depth (a 16-bit PNG per sample, millimetres along the camera axis)."""
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
    pose = task.kind == "pose"
    if pose:  # enough for the BOP metrics without re-deriving anything
        obj.update({
            "R_world": matrix, "t_world": List(Value("float64"), length=3),  # object -> world
            "R_cam": matrix, "t_cam": List(Value("float64"), length=3),      # object -> camera (OpenCV axes)
            "pixels_amodal": Value("int32"), "bbox_amodal": List(Value("int32"), length=4),  # as if alone
            "visible_fraction": Value("float64"), "obj_id": Value("int32"), "mask_id": Value("int32"),
        })
    columns = {
        "id": Value("string"),
        "task": Value("string"),
        "split": Value("string"),
        "index": Value("int64"),
        "seed": Value("int64"),
        "image": Image(),
        "segmentation": Image(),
        **({"depth": Image()} if depth else {}),
        "program": Value("string"),
        "objects": List(obj),
        "camera": {"K": matrix, "world_to_camera": matrix, "width": Value("int32"), "height": Value("int32")},
        "lights": List({
            "name": Value("string"), "type": Value("string"), "location": List(Value("float64"), length=3),
            "target": List(Value("float64"), length=3), "energy": Value("float64"), "size": Value("float64"),
        }),
    }
    if pose:
        columns["rotation_rep"] = Value("string")  # how `rotation` in programs reads (igbench.rotations)
    return Features(columns)


def split_dir(out: Path, task: str, split: str) -> Path:
    return Path(out) / task / split


def num_shards(n: int, shard_size: int) -> int:
    return max(1, math.ceil(n / shard_size))


def shard_path(root: Path, split: str, k: int, total: int) -> Path:
    return root / "data" / f"{split}-{k:05d}-of-{total:05d}.parquet"


def verified_split(root: Path, files: list[Path]) -> tuple[dict, dict[str, str] | None]:
    """What every reader of a rendered split folder checks before loading it: render_config.json's format,
    each shard against its recorded size and SHA-256, and that the render finished (every shard of the split
    is there: an interrupted render, or a job array's folders not merged yet, is refused, never loaded half).
    Returns the render config and the shards' verified SHA-256 (file name -> hex); ({}, None) for a folder
    without render_config.json, such as a Hub download."""
    from igbench.shards import CONFIG_NAME, check_format, read_config, verify_shards

    root = Path(root)
    if not (root / CONFIG_NAME).exists():
        return {}, None
    saved = read_config(root)
    check_format(saved, root / CONFIG_NAME)
    digests = verify_shards(root, saved, files)
    config = saved.get("config", {})
    if "n" in config and "shard_size" in config:
        total = num_shards(config["n"], config["shard_size"])
        missing = sorted(set(range(total)) - finished_shards(root, config["split"], total))
        if missing:
            first = shard_path(root, config["split"], missing[0], total).name
            raise UserError(f"{root} is unfinished: {len(missing)} of its {total} shards are missing (the first: "
                            f"{first}); rerun `{saved.get('command', 'igbench render ...')}` to finish it, or "
                            f"`igbench merge` the folders of a job array")
    return saved, digests


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
    schema = features(task, depth=bool(rows) and "depth" in rows[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = [{key: row[key] for key in schema} for row in rows]
    with replaced_atomically(path) as tmp:
        Dataset.from_list(ordered, features=schema).to_parquet(str(tmp))


def split_folder(data: str | Path, split: str) -> Path:
    """`data/<split>` (data is a task folder such as data/clevr) or the split folder itself."""
    data = Path(data)
    folder = data / split if (data / split).is_dir() else (data if data.name == split else None)
    if folder is None or not folder.is_dir():
        raise UserError(f"no split '{split}' in {data} (expected {data / split}/data/*.parquet)")
    if not any((folder / "data").glob("*.parquet")):
        raise UserError(f"{folder} holds no parquet shards (render it with `igbench render`)")
    return folder


def shard_files(folder: Path, split: str) -> list[Path]:
    """The split's parquet shards in `folder/data`, in name order."""
    return sorted((Path(folder) / "data").glob(f"{split}-*.parquet"))


def fingerprint_files(paths: list[Path]) -> str:
    """sha256 over (file name, sha256 of its bytes) of every shard, in name order."""
    return fingerprint_digests({path.name: file_sha256(path) for path in paths})


def fingerprint_digests(digests: dict[str, str]) -> str:
    """`fingerprint_files` from shard digests already known (file name -> sha256 hex)."""
    outer = hashlib.sha256()
    for name in sorted(digests):
        outer.update(f"{name}\0{digests[name]}\n".encode())
    return outer.hexdigest()


def split_fingerprint(folder: Path) -> str:
    """The fingerprint of a split folder's shards (what a run records of the data it was trained on)."""
    return fingerprint_files(shard_files(folder, Path(folder).name))


def split_task(names, folder) -> Task:
    """The one task a split's rows (their `task` column) belong to."""
    from igbench.task import load_task

    names = set(names)
    if len(names) != 1:
        raise UserError(f"{folder} mixes tasks {sorted(names)}" if names else f"{folder} names no task")
    return load_task(names.pop())


def read_rows(folder: Path, split: str, columns: list[str] | None = None, optional: tuple[str, ...] = (),
              required: tuple[str, ...] = ("id", "task", "objects"), verified: bool = False) -> list[dict]:
    """The rows of a rendered split folder as dicts in id order, read with pyarrow straight from the parquet
    shards: only `columns` (all when None) plus those of `optional` the shards have, so that what is not
    asked for (images) is never decoded. Every `required` column the read asks for must be there. The folder
    is checked with `verified_split` first, unless the caller did (`verified`)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = shard_files(folder, split)
    if not files:
        raise UserError(f"{folder} holds no parquet shards of split '{split}' (render it with `igbench render`)")
    if not verified:
        verified_split(folder, files)
    try:
        present = set(pq.read_schema(str(files[0])).names)
        wanted = None if columns is None else [*columns, *(c for c in optional if c in present and c not in columns)]
        missing = [c for c in required if c not in present and (wanted is None or c in wanted)]
        if missing:
            raise UserError(f"{folder} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        table = pq.read_table([str(f) for f in files], columns=wanted)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - a damaged or foreign parquet file is the user's data problem
        raise UserError(f"cannot read the shards in {folder / 'data'}: {str(err).splitlines()[0]}") from None
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    if not rows:
        raise UserError(f"{folder} is empty")
    return rows


def load_rows(data: str | Path, split: str, columns: list[str] | None = None) -> tuple[Task, list[dict], Path]:
    """(task, rows in id order, split folder) of `data/<split>` or of the split folder itself; `columns`
    limits what is read (the `task` column is always read: it names the task)."""
    folder = split_folder(data, split)
    if columns is not None and "task" not in columns:
        columns = [*columns, "task"]
    rows = read_rows(folder, split, columns)
    return split_task((r["task"] for r in rows), folder), rows, folder


def load_task_split(data: str | Path, split: str, required: tuple[str, ...] = ("id", "task", "image", "objects")):
    """(task, `datasets.Dataset`) of a rendered split, for models that read images lazily batch by batch."""
    folder = split_folder(data, split)
    try:
        rows = load_split(folder, split)
    except UserError:
        raise
    except Exception as err:  # datasets raises many kinds for unreadable folders
        raise UserError(f"cannot load {folder} as a dataset: {str(err).splitlines()[0]}") from None
    missing = [c for c in required if c not in rows.column_names]
    if missing:
        raise UserError(f"{folder} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if len(rows) == 0:
        raise UserError(f"{folder} is empty")
    return split_task(rows.unique("task"), folder), rows


def load_split(source: str | Path, split: str | None = None):
    """A split from a local folder or a Hub dataset repo, with `datasets.load_dataset`.

    `source` may be a split folder (OUT/TASK/SPLIT; the split defaults to its name), a task folder
    (OUT/TASK, with `split`), a folder written by `igbench push --dry-run`, or a Hub repo id
    (`user/name`, with `split`), which honours HF_HUB_OFFLINE through datasets' cache."""
    from datasets import load_dataset

    path = Path(source)
    if path.is_dir():
        if split is not None and (path / split / "data").is_dir():
            path = path / split
        rendered = sorted(p.name for p in path.iterdir() if (p / "render_config.json").is_file())
        if rendered and split not in rendered:
            raise UserError(f"{source}: no split {split!r} here; rendered splits: {', '.join(rendered)}")
        if (path / "render_config.json").is_file():
            split = split or path.name
        if split is None:
            raise UserError(f"{source}: name the split to load")
        shards = shard_files(path, split)
        if not shards:
            raise UserError(f"{source}: no parquet files for split '{split}' in {path / 'data'}")
        verified_split(path, shards)
        files = [str(f.resolve()) for f in shards]
        # Explicit absolute files: datasets 4 caches a local folder whose card declares `configs` under the
        # folder's name alone, so two folders of the same name would share (stale) cache entries.
        return _load(lambda: load_dataset("parquet", data_files={split: files}, split=split), split, source)
    if not _looks_like_repo_id(str(source)):
        raise UserError(f"{source}: no such folder, and not a Hub repo id (user/name)")
    if split is None:
        raise UserError(f"{source}: name the split to load")
    return _load(lambda: load_dataset(str(source), split=split), split, source)


def _looks_like_repo_id(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", text)) and not Path(text).exists()


def _load(load, split: str, source) -> object:
    try:
        return load()
    except ValueError as err:  # unknown split
        raise UserError(f"{source}: {str(err).splitlines()[0]}") from None
    except (FileNotFoundError, ConnectionError) as err:
        offline = " (HF_HUB_OFFLINE is set and it is not in the local cache)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise UserError(f"{source}: cannot load split '{split}'{offline}: {str(err).splitlines()[0][:200]}") from None
