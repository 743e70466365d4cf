"""What a split folder promises about its parquet files, and who may write them.

render_config.json records every finished shard's size and SHA-256 under `shards` (name -> {"size",
"sha256"}), and its layout's `format_version`. Resuming, merging, pushing and scoring check both: a file
that is missing from the record, shorter or longer, or changed, is damaged (a resumed render renders it
again; the readers refuse it, naming it). Writers of one folder hold an fcntl lock per parquet file they
render (`locks/<k>.lock`, holding the writer's pid and host), so two runs never write the same file, and
the kernel drops the locks of a run that dies, `kill -9` included.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
from contextlib import contextmanager
from pathlib import Path

from igbench.errors import UserError
from igbench.files import file_sha256, write_json_atomic

# 1: the layout before shards were recorded; 2: adds `format_version` and `shards`.
FORMAT_VERSION = 2
CONFIG_NAME = "render_config.json"
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def check_format(saved: dict, path: Path) -> None:
    version = saved.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise UserError(f"{path} has format_version {version}; this igbench reads format_version {FORMAT_VERSION} "
                        f"(render the split again with this version of igbench)")


def file_record(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": file_sha256(path)}


def damage(path: Path, record: dict | None) -> str | None:
    """Why `path` does not match its record (None: it does)."""
    if record is None:
        return "not recorded in render_config.json"
    size = path.stat().st_size
    if size != record["size"]:
        return f"{size} bytes, recorded {record['size']}"
    if file_sha256(path) != record["sha256"]:
        return "its SHA-256 differs from the recorded one"
    return None


def verify_shards(root: Path, saved: dict, paths) -> dict[str, str]:
    """Refuse the first shard of `paths` (files in root/data) that does not match render_config.json; return
    the verified SHA-256 of each (file name -> hex), so that callers need not read the files again."""
    records = saved.get("shards", {})
    for path in sorted(paths, key=lambda p: p.name):
        why = damage(path, records.get(path.name))
        if why:
            raise UserError(f"damaged shard {path}: {why}; rerun the render that made it to render it again")
    return {path.name: records[path.name]["sha256"] for path in paths}


def read_config(root: Path) -> dict:
    path = root / CONFIG_NAME
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is damaged") from None


@contextmanager
def _config_lock(root: Path):
    """Serialise read-modify-write of render_config.json between jobs sharing the folder."""
    with open(root / ".render_config.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_shard(root: Path, name: str, record: dict) -> None:
    with _config_lock(root):
        saved = read_config(root)
        saved.setdefault("shards", {})[name] = record
        write_json_atomic(root / CONFIG_NAME, saved)


def forget_shard(root: Path, name: str) -> None:
    with _config_lock(root):
        saved = read_config(root)
        if saved.get("shards", {}).pop(name, None) is not None:
            write_json_atomic(root / CONFIG_NAME, saved)


def write_config(root: Path, saved: dict) -> None:
    """Write render_config.json, keeping the shard records already in it."""
    with _config_lock(root):
        path = root / CONFIG_NAME
        shards = json.loads(path.read_text()).get("shards", {}) if path.exists() else {}
        write_json_atomic(path, {**saved, "shards": {**shards, **saved.get("shards", {})}})


class WriterLocks:
    """Exclusive locks on parquet files k of a split folder, for as long as this object is open."""

    def __init__(self, root: Path, files: list[int]):
        self.folder = root / "locks"
        self.handles = []
        self.folder.mkdir(parents=True, exist_ok=True)
        me = f"pid {os.getpid()} on {platform.node()}"
        try:
            for k in files:
                handle = open(self.folder / f"{k:05d}.lock", "a+")
                self.handles.append(handle)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise UserError(f"{root} is being rendered by another igbench render ({holder}, writing parquet "
                                    f"file {k}); wait for it to finish, or render elsewhere") from None
                handle.seek(0)
                handle.truncate()
                handle.write(me + "\n")
                handle.flush()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for handle in self.handles:
            handle.close()  # closing the file drops its lock
        self.handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_disk_full(err: OSError) -> bool:
    """ENOSPC, EFBIG (a file size limit) or EDQUOT, also when pyarrow only says so in its message."""
    text = str(err)
    return err.errno in DISK_FULL or any(os.strerror(code) in text for code in DISK_FULL)
