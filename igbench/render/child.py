"""Blender in child processes: how every process that runs Blender starts, and a one-session renderer.

Blender runs only in spawned children (the parent never imports bpy). Every such child starts with
`start_blender_child`: Ctrl-C is the parent's to handle, and Blender's per-render chatter on the C-level
stdout/stderr goes to a log file or nowhere. (A child spawned by a process that imported bpy inherits
Blender's script folders on sys.path; `igbench.blender_scenes._bpy` drops them before importing bpy.)
"""
from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from igbench.errors import UserError


def start_blender_child(log_path: Path | None = None) -> None:
    """The first call in a child that will run Blender: ignore Ctrl-C, send C-level output to `log_path`
    (appended) or to /dev/null, for good."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


@contextmanager
def output_silenced():
    """Blender's C-level stdout/stderr sent to /dev/null for the duration (in a process that keeps its terminal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


class BlenderProcess:
    """One Blender session in a spawned child that renders scenes on request: `render(scene dict)` -> RGB."""

    def __init__(self, task_path: str, settings, what: str = "igbench"):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(str(task_path), settings, child), daemon=True)
        self._proc.start()
        child.close()
        kind, payload = self._recv()
        if kind != "ready":
            self.close()
            raise UserError(f"{what} could not start Blender: {payload}")
        self.count = 0
        self.seconds = 0.0

    def _recv(self):
        try:
            return self._conn.recv()
        except EOFError:
            return "error", f"the Blender process exited (code {self._proc.exitcode})"

    def render(self, scene: dict) -> np.ndarray:
        """The RGB image (H, W, 3 uint8) of a scene given as `Scene.to_dict`; RuntimeError if it failed."""
        from PIL import Image

        tick = time.perf_counter()
        self._conn.send(json.dumps(scene))
        kind, payload = self._recv()
        if kind != "ok":
            raise RuntimeError(payload)
        self.count += 1
        self.seconds += time.perf_counter() - tick
        with Image.open(io.BytesIO(payload)) as img:
            return np.asarray(img.convert("RGB"))

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()


def _serve(task_path: str, settings, conn) -> None:
    start_blender_child()
    try:
        from igbench.blender_scenes.session import BlenderSession
        from igbench.scene import Scene
        from igbench.task import load_task

        task = load_task(task_path)
        session = BlenderSession(task, settings)
    except Exception as err:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            result = session.render(Scene.from_dict(json.loads(job), task))
            conn.send(("ok", result.rgb_png))
        except Exception as err:  # noqa: BLE001 - one failed render is that scene's problem
            conn.send(("error", f"{type(err).__name__}: {err}"))
