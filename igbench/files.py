"""Writing files and folders so that a crash leaves either the old state or the whole new one."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from igbench.errors import UserError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: dict) -> None:
    write_bytes_atomic(Path(path), (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


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
