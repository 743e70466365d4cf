"""Writing files and folders so that a crash leaves either the old state or the whole new one."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from igbench.errors import UserError


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_folder(name: str) -> Path:
    """igbench's cache folder `name`: under $IGBENCH_CACHE, else $XDG_CACHE_HOME/igbench, else ~/.cache/igbench."""
    base = os.environ.get("IGBENCH_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "igbench")
    return Path(base).expanduser() / name


@contextmanager
def replaced_atomically(path: Path):
    """Yield a sibling `NAME.<pid>.tmp` to write (streamed, by any writer); on success it is renamed over
    `path`, so readers see the old file or the whole new one; on failure it is removed. Processes writing
    the same file do not share a temporary."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with replaced_atomically(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(Path(path), text.encode())


def write_json_atomic(path: Path, data: dict, sort_keys: bool = True) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")


@contextmanager
def atomic_folder(dest: Path, what: str):
    """Yield a temporary sibling of `dest` to fill; on success it becomes `dest`, on failure it vanishes.
    `dest` must not exist or be an empty folder (`what` names the option for the error)."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"{what} {dest} exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.writing-{os.getpid()}")
    try:
        tmp.mkdir()
        yield tmp
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
