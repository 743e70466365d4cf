"""Re-render predicted programs under the reference sample's camera, lights and seed, with the same executor
and render settings as the reference, through the parallel render workers; cached on disk.

Cache: `<cache_dir>/<key>.rgb.png` and `<key>.seg.png`, key = sha256 of everything that changes the
pixels: the program (objects at full precision), the camera, the lights, the Cycles seed, the render
settings (resolution, samples, denoise, bounces, device), the task file's hash, the bpy version and a
cache-format version. A second scoring run of the same predictions renders nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

from igbench.files import cache_folder, write_bytes_atomic
from igbench.render_settings import RenderSettings

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return cache_folder("rerender")


def render_key(scene_dict: dict, settings: RenderSettings, task_sha256: str, rotation_rep: str | None = None,
               library: str | None = None) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        bpy_version = version("bpy")
    except PackageNotFoundError:
        bpy_version = None
    identity = {
        "v": CACHE_VERSION, "objects": scene_dict["objects"], "camera": scene_dict["camera"],
        "lights": scene_dict["lights"], "seed": scene_dict["seed"] % (2**31),
        "settings": {k: v for k, v in settings.to_dict().items() if k != "threads"},
        "task_sha256": task_sha256, "bpy": bpy_version,
    }
    if rotation_rep or library:  # pose tasks: the same numbers mean another pose in another representation
        identity.update(rotation_rep=rotation_rep, library=library)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.rgb.png", cache_dir / f"{key}.seg.png"


class _Rerenderer:
    """Lives in a render worker: one Blender session, renders (key, scene JSON) jobs into the cache."""

    def __init__(self, spec):
        from igbench.render.sample import make_session
        from igbench.task import load_task

        self.task = load_task(spec.task_path, spec.rotation_rep, spec.assets)
        self.session = make_session(self.task, spec.settings)  # Blender, or the 2-D canvas (dot2d)

    def stage(self, job, staging) -> dict:
        from igbench.scene import Scene

        key, scene_json = job
        result = self.session.render(Scene.from_dict(json.loads(scene_json), self.task))
        rgb, seg = cache_paths(Path(staging), key)
        for path, data in ((seg, result.instance_png()), (rgb, result.rgb_png)):  # rgb last: the commit marker
            write_bytes_atomic(path, data)
        return result.timings


def make_rerenderer(spec) -> _Rerenderer:
    return _Rerenderer(spec)


def rerender(jobs: dict[str, dict], task_path: str, settings: RenderSettings, cache_dir: Path, workers: int = 1,
             max_retries: int = 1, progress: bool = True, rotation_rep: str | None = None,
             assets: str | None = None) -> tuple[dict[str, str], int]:
    """Render every job (key -> scene dict) not yet in the cache. Returns (failed key -> reason, #cached)."""
    from tqdm import tqdm

    from igbench.render.workers import WorkerPool, WorkerSpec

    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = [k for k in jobs if not all(p.exists() for p in cache_paths(cache_dir, k))]
    cached = len(jobs) - len(todo)
    failed: dict[str, str] = {}
    if not todo:
        return failed, cached
    n_workers = max(1, min(workers, len(todo)))
    threads = 0 if n_workers == 1 else max(1, (os.cpu_count() or 1) // n_workers)
    spec = WorkerSpec(task_path, "rerender", 0, replace(settings, threads=threads), str(cache_dir),
                      str(cache_dir / "logs"), renderer_factory=make_rerenderer, rotation_rep=rotation_rep,
                      assets=assets)
    pool = WorkerPool(spec, n_workers)
    bar = tqdm(total=len(todo), unit="img", desc="re-render", disable=not progress, dynamic_ncols=True)
    items = [(k, json.dumps(jobs[k])) for k in todo]  # hashable: the pool counts tries per item

    def done(item, timings):
        bar.update(1)

    def fail(item, reason):
        failed[item[0]] = reason

    try:
        pool.run(items, max_retries, done, fail)
    finally:
        bar.close()
        pool.close()
    return failed, cached
