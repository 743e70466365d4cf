"""Shared by the VLM tests: tiny random VLMs (igbench.models.tiny_vlm) saved once per session, and a real
`transformers serve` child process on 127.0.0.1."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def tiny_vlm(tmp_path_factory, architecture: str) -> Path:
    from igbench.models.tiny_vlm import build

    folder = tmp_path_factory.getbasetemp() / f"tiny-{architecture}"
    if not (folder / "config.json").exists():
        build(architecture, folder)
    return folder


def split_with_broken_image(data: Path, tmp_path: Path, index: int) -> tuple[Path, str]:
    """A copy of DATA/val whose sample `index` (in id order) holds bytes that are no image: (task folder, its id)."""
    import json
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    from igbench.shards import CONFIG_NAME, file_record

    broken = tmp_path / "broken" / "clevr"
    shutil.copytree(data / "val", broken / "val")
    shard = sorted((broken / "val" / "data").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    rows[index]["image"] = {"bytes": b"\x89PNG but not really", "path": None}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    # recorded as the render's own output, so that the readers' shard check passes and the image is what fails
    config = broken / "val" / CONFIG_NAME
    saved = json.loads(config.read_text())
    saved["shards"][shard.name] = file_record(shard)
    config.write_text(json.dumps(saved))
    return broken, rows[index]["id"]


# ------------------------------------------------------------------------------- transformers serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`transformers serve FOLDER` on 127.0.0.1 in a child process (its own process group)."""

    def __init__(self, model_folder: Path, port: int | None = None, log: Path | None = None):
        self.model_folder, self.port = str(model_folder), port or free_port()
        self.log = log
        self.proc = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> "Server":
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", self.model_folder,
                                      "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"],
                                     stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("transformers serve did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None
