"""`igbench bench render`: throughput and memory of the renderer on this machine (prints figures)."""
from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from statistics import mean

from igbench.blender_scenes.settings import RenderSettings
from igbench.task import load_task


def bench_render(task_name: str, split: str, n: int, settings: RenderSettings, seed: int = 0, progress: bool = True) -> dict:
    """Render samples 0..n-1 in one persistent session (after one warm-up sample) and time each stage."""
    from tqdm import tqdm

    from igbench.render.sample import SampleRenderer

    task = load_task(task_name)
    started = time.perf_counter()
    with _blender_output_silenced():
        renderer = SampleRenderer(task, split, seed, settings)
        renderer.render(n)  # warm-up: kernels, GL context and meshes are built once per worker
    startup = time.perf_counter() - started
    stages: list[dict] = []
    tick = time.perf_counter()
    for index in tqdm(range(n), desc="bench render", unit="img", disable=not progress):
        t0 = time.perf_counter()
        with _blender_output_silenced():
            _, _, _, timings = renderer.render(index)
        stages.append({**timings, "total": time.perf_counter() - t0})
    elapsed = time.perf_counter() - tick
    return {
        "task": task.name, "split": split, "n": n, "settings": settings.to_dict(),
        "startup_s": startup,
        "images_per_s": n / elapsed,
        "s_per_image": elapsed / n,
        "stage_s": {k: mean(s.get(k, 0.0) for s in stages) for k in stages[0]},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


@contextmanager
def _blender_output_silenced():
    """Blender prints per-render chatter on the C-level stdout/stderr; keep it off the figures."""
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


def format_report(report: dict) -> str:
    s = report["settings"]
    lines = [
        f"igbench bench render: {report['task']}/{report['split']}, {report['n']} images, "
        f"{s['width']}x{s['height']}, {s['samples']} samples, denoise={s['denoise']}, device={s['device']}",
        f"  start-up (session + first image): {report['startup_s']:.2f} s",
        f"  throughput: {report['images_per_s']:.3f} images/s ({report['s_per_image']:.2f} s/image)",
        "  per image: " + ", ".join(f"{k} {v:.3f} s" for k, v in report["stage_s"].items()),
        f"  peak memory (RSS): {report['peak_rss_mib']:.0f} MiB",
    ]
    return "\n".join(lines)
