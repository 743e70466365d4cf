"""Render worker processes: each keeps one Blender session and renders many samples.

The parent talks to every worker over its own pipe and watches its process sentinel, so a worker that
crashes (or is killed) costs only the sample it was rendering: that sample is retried on a fresh worker,
and reported by id once its retries are spent. Workers ignore Ctrl-C (the parent decides) and exit when
the parent's end of the pipe closes, so killing the parent never leaves them rendering forever.
"""
from __future__ import annotations

import multiprocessing as mp
from collections import Counter, deque
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Callable

from igbench.render_settings import RenderSettings
from igbench.errors import UserError
from igbench.render.child import start_blender_child

MAX_START_FAILURES = 3


@dataclass(frozen=True)
class WorkerSpec:
    task_path: str
    split: str
    base_seed: int
    settings: RenderSettings
    staging: str
    log_dir: str
    # Optional: a picklable top-level callable spec -> object with .stage(job, staging) -> timings, used
    # instead of SampleRenderer (the scorer re-renders predicted programs through the same pool).
    renderer_factory: Callable | None = None
    rotation_rep: str | None = None
    assets: str | None = None
    clevr_scenes: str | None = None  # render these imported scenes instead of sampling


def worker_main(spec: WorkerSpec, conn, worker_id: int) -> None:
    start_blender_child(Path(spec.log_dir) / f"worker-{worker_id}.log")
    try:
        if spec.renderer_factory is not None:
            renderer = spec.renderer_factory(spec)
        else:
            from igbench.render.sample import SampleRenderer
            from igbench.task import load_task

            task = load_task(spec.task_path, spec.rotation_rep, spec.assets)
            renderer = SampleRenderer(task, spec.split, spec.base_seed, spec.settings, spec.clevr_scenes)
    except Exception as err:  # noqa: BLE001 - reported to the parent as a fatal start-up error
        conn.send(("fatal", None, f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", None, None))
    staging = Path(spec.staging)
    while True:
        try:
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None:
            return
        try:
            timings = renderer.stage(index, staging)
            message = ("done", index, timings)
        except Exception as err:  # noqa: BLE001 - one sample's failure is data, not a crash
            message = ("error", index, f"{type(err).__name__}: {err}")
        try:
            conn.send(message)
        except (BrokenPipeError, OSError):
            return


class WorkerPool:
    def __init__(self, spec: WorkerSpec, n_workers: int):
        self.spec = spec
        self.n_workers = n_workers
        self._ctx = mp.get_context("spawn")
        self._workers: dict[int, tuple[mp.Process, object]] = {}
        self._next_id = 0
        self._start_failures = 0

    def run(
        self,
        indices: list[int],
        max_retries: int,
        on_done: Callable[[int, dict], None],
        on_failed: Callable[[int, str], None],
    ) -> None:
        """Render every index; call on_done(index, timings) or, after max_retries, on_failed(index, reason)."""
        pending = deque(indices)
        tries: Counter = Counter()
        busy: dict[int, int] = {}
        ready: set[int] = set()
        for _ in range(min(self.n_workers, len(pending))):
            self._start()

        def fail(index: int, reason: str) -> None:
            tries[index] += 1
            if tries[index] > max_retries:
                on_failed(index, reason)
            else:
                pending.append(index)

        while pending or busy:
            for wid in sorted(ready - set(busy)):
                if not pending:
                    break
                index = pending.popleft()
                self._workers[wid][1].send(index)
                busy[wid] = index
            conns = {conn: wid for wid, (_, conn) in self._workers.items()}
            sentinels = {proc.sentinel: wid for wid, (proc, _) in self._workers.items()}
            for handle in wait(list(conns) + list(sentinels), timeout=1.0):
                wid = conns.get(handle, sentinels.get(handle))
                if wid not in self._workers:
                    continue
                proc, conn = self._workers[wid]
                if handle is conn:
                    try:
                        kind, index, payload = conn.recv()
                    except (EOFError, OSError):
                        continue  # the sentinel reports the death
                    if kind == "ready":
                        ready.add(wid)
                    elif kind == "fatal":
                        raise UserError(f"render worker could not start: {payload}")
                    elif kind == "done":
                        busy.pop(wid, None)
                        on_done(index, payload)
                    else:
                        busy.pop(wid, None)
                        fail(index, payload)
                elif not proc.is_alive() or proc.exitcode is not None:
                    proc.join()
                    del self._workers[wid]
                    was_ready = wid in ready
                    ready.discard(wid)
                    if wid in busy:
                        fail(busy.pop(wid), f"worker process died (exit code {proc.exitcode})")
                    if not was_ready:
                        self._start_failures += 1
                        if self._start_failures >= MAX_START_FAILURES:
                            raise UserError(
                                f"render workers keep dying at start-up; see {self.spec.log_dir}/worker-*.log"
                            )
                    if pending or busy:
                        self._start()

    def close(self) -> None:
        for proc, conn in self._workers.values():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc, conn in self._workers.values():
            proc.join(timeout=3)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self._workers.clear()

    def _start(self) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        wid = self._next_id
        self._next_id += 1
        proc = self._ctx.Process(target=worker_main, args=(self.spec, child_conn, wid), daemon=True,
                                 name=f"igbench-render-{wid}")
        proc.start()
        child_conn.close()
        self._workers[wid] = (proc, parent_conn)
