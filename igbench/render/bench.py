"""`igbench bench render`: speed, memory and image quality of the renderer on this machine (prints figures).

One run renders the same CLEVR scenes with
  (b) igbench's default settings (`--n` images),
  (a) the original CLEVR settings: Cycles, 512 samples, no denoiser (`--n-reference` images),
  (r) a 1024-sample reference, rendered once per scene and cached on disk,
and reports images/s, seconds per image by stage, peak memory, the PSNR of (a) and (b) against (r) and the
speed ratio. Optionally: one worker with every thread against one single-threaded worker per core
(`--workers 2`), and the resident memory over many consecutive images (`--soak 1000`).

Every configuration renders in its own persistent Blender session after a one-sample warm-up, so the
figures are steady-state per-image costs of a worker, as `igbench render` pays them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from statistics import mean

import numpy as np

from igbench.files import cache_folder, write_bytes_atomic
from igbench.render_settings import RenderSettings, original_clevr_settings, reference_settings
from igbench.render.child import output_silenced, start_blender_child
from igbench.task import load_task

REFERENCE_SEED_OFFSET = 0x5EED  # (r) samples with another Cycles seed than (a) and (b): no shared noise
STAGES = ("visibility", "build", "instance", "sync", "sampling", "denoise", "write", "other")


def default_cache_dir() -> Path:
    return cache_folder("bench")


# ------------------------------------------------------------------------------------------------ report


def bench_render(task_name: str, split: str, n: int, settings: RenderSettings, *, n_reference: int = 3,
                 reference_samples: int = 1024, original_samples: int = 512, seed: int = 0,
                 cache_dir: Path | None = None, workers: int = 0, soak: int = 0, soak_resolution=(48, 32),
                 progress: bool = True) -> dict:
    """Everything `igbench bench render` prints, as a dict (see format_report)."""
    if settings.device == "gpu" and gpu_backend() is None:
        raise NoGPU("Cycles found no CUDA or OptiX device on this machine; nothing was measured "
                    "(run on a GPU machine, or use --device cpu)")
    task = load_task(task_name)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    n_ref = min(n_reference, n)
    report: dict = {"task": task.name, "split": split, "seed": seed, "machine": machine_info()}

    report["default"] = _timed_run(task, split, seed, range(n), settings, "(b) defaults", progress)
    if n_ref:
        # Split the denoiser off "sampling": the same scenes again without it.
        if settings.denoise:
            plain = _timed_run(task, split, seed, range(n_ref), settings.with_(denoise=False), "(b) no denoiser",
                               progress, keep_images=False)
            with_denoiser = mean(report["default"]["per_image"][i]["sampling"] for i in range(n_ref))
            denoise = max(0.0, with_denoiser - plain["stage_s"]["sampling"])
            stage = report["default"]["stage_s"]
            stage["denoise"] = min(denoise, stage["sampling"])
            stage["sampling"] -= stage["denoise"]
            report["default"]["denoise_estimated_on"] = n_ref
            # The same in CPU seconds, which the load of other processes does not inflate.
            report["default"]["denoise_cpu_s"] = max(0.0, report["default"]["cpu_s_per_image"] - plain["cpu_s_per_image"])
        a_settings = original_clevr_settings(settings.width, settings.height, settings.device, settings.threads)
        a_settings = a_settings.with_(samples=original_samples)
        report["original"] = _timed_run(task, split, seed, range(n_ref), a_settings, "(a) original CLEVR", progress)
    # (r) last: usually cached, and it is only what (a) and (b) are scored against.
    ref_settings = reference_settings(settings.width, settings.height, reference_samples, settings.device,
                                      settings.threads)
    references, report["reference"] = _references(task, split, seed, range(n_ref), ref_settings, cache_dir, progress)
    if n_ref:
        report["psnr_db"] = {
            name: _psnr_summary([psnr(report[name]["images"][i], references[i]) for i in range(n_ref)])
            for name in ("original", "default")
        }
        report["speed_ratio"] = report["original"]["s_per_image"] / report["default"]["s_per_image"]
        report["speed_ratio_cpu"] = report["original"]["cpu_s_per_image"] / report["default"]["cpu_s_per_image"]
        if settings.device == "gpu":  # the card against this machine's CPU, same settings
            cpu = _timed_run(task, split, seed, range(n_ref), settings.with_(device="cpu"), "(b) on CPU", progress,
                             keep_images=False)
            report["cpu_default"] = cpu
            report["gpu_speedup_vs_cpu"] = cpu["s_per_image"] / report["default"]["s_per_image"]
    for name in ("default", "original"):
        if name in report:
            report[name].pop("images", None)
    if workers > 1:
        report["workers"] = bench_workers(task_name, split, seed, n, settings, workers)
    if soak > 0:
        report["soak"] = bench_soak(task_name, split, seed, soak, settings.with_(width=soak_resolution[0],
                                                                                 height=soak_resolution[1]))
    report["machine"]["load_after"] = os.getloadavg()
    return report


class NoGPU(RuntimeError):
    pass


def gpu_backend() -> str | None:
    from igbench.blender_scenes.session import gpu_backend as find

    return find()


def machine_info() -> dict:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        bpy_version = version("bpy")
    except Exception:  # noqa: BLE001 - only a label
        bpy_version = None
    return {"cpus": os.cpu_count(), "cpu_model": model or platform.processor(), "platform": platform.platform(),
            "bpy": bpy_version, "load_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M")}


# ------------------------------------------------------------------------------------------------ timing


def _timed_run(task, split: str, seed: int, indices, settings: RenderSettings, label: str, progress: bool,
               keep_images: bool = True) -> dict:
    """Render `indices` in one fresh session (after a one-sample warm-up) and time every stage."""
    from tqdm import tqdm

    from igbench.blender_scenes.timing import StageClock
    from igbench.render.sample import SampleRenderer

    indices = list(indices)
    _reset_peak_rss()
    started = time.perf_counter()
    with output_silenced():
        renderer = SampleRenderer(task, split, seed, settings)
        _warm_up(renderer, indices[0])
    startup = time.perf_counter() - started
    per_image, images = [], []
    tick, cpu_tick = time.perf_counter(), time.process_time()
    with StageClock() as clock:
        for index in tqdm(indices, desc=label, unit="img", disable=not progress, file=sys.stderr):
            t0 = time.perf_counter()
            with output_silenced():
                _, rgb, _, timings = renderer.render(index)
            total = time.perf_counter() - t0
            rgb_split = clock.split()
            row = {k: timings.get(k, 0.0) for k in ("visibility", "build", "instance")}
            row.update({k: rgb_split.get(k, 0.0) for k in ("sync", "sampling", "write")})
            row["denoise"] = 0.0
            row["other"] = max(0.0, total - sum(row.values()))  # reading the PNG back, annotations, Python
            row["total"] = total
            per_image.append(row)
            if keep_images:
                images.append(rgb)
    elapsed, cpu = time.perf_counter() - tick, time.process_time() - cpu_tick
    return {
        "label": label, "n": len(indices), "settings": settings.to_dict(), "startup_s": startup,
        "images_per_s": len(indices) / elapsed, "s_per_image": elapsed / len(indices),
        # CPU seconds of this process (all its threads) per image: what the image costs, whatever else
        # loads the machine; wall seconds on an idle machine are about this over the thread count.
        "cpu_s_per_image": cpu / len(indices),
        "stage_s": {k: mean(r[k] for r in per_image) for k in (*STAGES, "total")},
        "per_image": per_image,
        "peak_rss_mib": _peak_rss_mib(),
        "images": images,
    }


def _warm_up(renderer, index: int) -> None:
    """One render at one sample: loads kernels and the denoiser and builds the meshes, without paying (a)'s
    512 samples twice."""
    cycles = renderer.session.rgb_scene.cycles
    samples = cycles.samples
    cycles.samples = 1
    try:
        renderer.render(index)
    finally:
        cycles.samples = samples


# ------------------------------------------------------------------------------------------------ reference


def _references(task, split: str, seed: int, indices, settings: RenderSettings, cache_dir: Path, progress: bool):
    """The (r) image of each index: from the cache, or rendered (with its own Cycles seed) and cached."""
    from tqdm import tqdm

    indices = list(indices)
    paths = {i: cache_dir / f"{_reference_key(task, split, seed, i, settings)}.png" for i in indices}
    missing = [i for i in indices if not paths[i].exists()]
    info = {"settings": settings.to_dict(), "n": len(indices), "cached": len(indices) - len(missing),
            "rendered": len(missing), "cache_dir": str(cache_dir), "s_per_image": None}
    if missing:
        from igbench.render.sample import SampleRenderer

        cache_dir.mkdir(parents=True, exist_ok=True)
        tick = time.perf_counter()
        with output_silenced():
            renderer = SampleRenderer(task, split, seed, settings)
        for i in tqdm(missing, desc="(r) reference", unit="img", disable=not progress, file=sys.stderr):
            with output_silenced():
                scene = renderer.visible_scene(i)
                scene.camera = scene.camera.at_resolution(settings.width, settings.height)
                scene = replace(scene, seed=scene.seed + REFERENCE_SEED_OFFSET)
                rgb = renderer.session.render(scene).rgb_png
            write_bytes_atomic(paths[i], rgb)
        info["s_per_image"] = (time.perf_counter() - tick) / len(missing)
    return {i: paths[i].read_bytes() for i in indices}, info


def _reference_key(task, split: str, seed: int, index: int, settings: RenderSettings) -> str:
    """Scene (task file, split, seed, index) + what shapes the converged image (not device or threads)."""
    try:
        from importlib.metadata import version

        blender = version("bpy")
    except Exception:  # noqa: BLE001
        blender = None
    shaping = {k: v for k, v in settings.to_dict().items() if k not in ("device", "threads", "persistent_data")}
    blob = json.dumps({"task_sha256": hashlib.sha256(task.path.read_bytes()).hexdigest(), "split": split,
                       "seed": seed, "index": index, "settings": shaping, "bpy": blender,
                       "seed_offset": REFERENCE_SEED_OFFSET}, sort_keys=True)
    return f"{task.name}-{split}-{seed}-{index:06d}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


# ------------------------------------------------------------------------------------------------ quality


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def psnr(a: bytes, b: bytes) -> float:
    """PSNR in dB of two 8-bit RGB PNGs (`igbench.metrics.image.psnr` on values / 255: 100 dB when identical)."""
    from igbench.metrics.image import psnr as psnr_db

    x, y = decode_png(a), decode_png(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape} vs {y.shape}")
    return float(psnr_db(x[None] / 255.0, y[None] / 255.0)[0])


def _psnr_summary(values: list[float]) -> dict:
    return {"mean": mean(values), "min": min(values), "per_image": values}


# ------------------------------------------------------------------------------------------------ workers


def bench_workers(task_name: str, split: str, seed: int, n: int, settings: RenderSettings, workers: int) -> dict:
    """Throughput of one worker using every core against `workers` single-threaded workers, each in its
    own process and Blender session, on the same n images (timed after every worker has warmed up)."""
    cores = os.cpu_count() or 1
    one = _run_pool(task_name, split, seed, n, settings.with_(threads=cores), 1)
    many = _run_pool(task_name, split, seed, n, settings.with_(threads=max(1, cores // workers)), workers)
    return {"n": n, "workers": workers, "cores": cores,
            "one_worker": one, "many_workers": many,
            "speedup": many["images_per_s"] / one["images_per_s"]}


def _run_pool(task_name, split, seed, n, settings, workers) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers + 1)
    queue = ctx.Queue()
    shares = [list(range(w, n, workers)) for w in range(workers)]
    procs = [ctx.Process(target=_pool_worker, args=(task_name, split, seed, settings, share, barrier, queue), daemon=True)
             for share in shares]
    for p in procs:
        p.start()
    barrier.wait()  # every worker is warm
    tick = time.perf_counter()
    results = [queue.get() for _ in procs]
    elapsed = time.perf_counter() - tick
    for p in procs:
        p.join()
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"a bench worker failed: {errors[0]}")
    return {"workers": workers, "threads_per_worker": settings.threads, "images_per_s": n / elapsed,
            "s_per_image": elapsed / n, "peak_rss_mib_per_worker": max(r["peak_rss_mib"] for r in results)}


def _pool_worker(task_name, split, seed, settings, indices, barrier, queue) -> None:
    start_blender_child()
    try:
        from igbench.render.sample import SampleRenderer

        renderer = SampleRenderer(load_task(task_name), split, seed, settings)
        _warm_up(renderer, indices[0] if indices else 0)
    except Exception as err:  # noqa: BLE001 - reported to the parent
        barrier.wait()
        queue.put({"error": f"{type(err).__name__}: {err}"})
        return
    barrier.wait()
    for index in indices:
        renderer.render(index)
    queue.put({"peak_rss_mib": _peak_rss_mib()})


# ------------------------------------------------------------------------------------------------ soak


def bench_soak(task_name: str, split: str, seed: int, count: int, settings: RenderSettings) -> dict:
    """Resident memory of one worker over `count` consecutive images (in a fresh process)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_soak_worker, args=(task_name, split, seed, count, settings, queue), daemon=True)
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"the soak worker failed: {result['error']}")
    return result


def _soak_worker(task_name, split, seed, count, settings, queue) -> None:
    start_blender_child()
    try:
        from igbench.render.sample import SampleRenderer

        renderer = SampleRenderer(load_task(task_name), split, seed, settings)
        _warm_up(renderer, 0)
        rss = [(0, _rss_mib())]
        tick = time.perf_counter()
        every = max(1, count // 10)
        for index in range(count):
            renderer.render(index)
            if (index + 1) % every == 0 or index + 1 == count:
                rss.append((index + 1, _rss_mib()))
        elapsed = time.perf_counter() - tick
        start, end = rss[0][1], rss[-1][1]
        queue.put({"n": count, "resolution": f"{settings.width}x{settings.height}", "rss_mib": rss,
                   "rss_start_mib": start, "rss_end_mib": end, "peak_rss_mib": _peak_rss_mib(),
                   "growth": (end - start) / start, "s_per_image": elapsed / count})
    except Exception as err:  # noqa: BLE001
        queue.put({"error": f"{type(err).__name__}: {err}"})


# ------------------------------------------------------------------------------------------------ memory


def _status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mib() -> float:
    value = _status_mib("VmRSS")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak (VmHWM), so each configuration gets its own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    value = _status_mib("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------ output


def _describe(s: dict) -> str:
    text = f"{s['width']}x{s['height']}, {s['samples']} samples"
    if s.get("adaptive_sampling", True):
        text += f", adaptive {s.get('adaptive_threshold', 0.01):g}"
        if s.get("adaptive_min_samples"):
            text += f" (min {s['adaptive_min_samples']})"
    else:
        text += ", no adaptive sampling"
    if s["denoise"]:
        text += (f", OIDN {s.get('denoise_quality', 'HIGH').lower()}/prefilter {s.get('denoise_prefilter', 'ACCURATE').lower()}"
                 f"/{s.get('denoise_passes', 'RGB_ALBEDO_NORMAL').lower()}")
    else:
        text += ", no denoiser"
    text += (f", bounces {s['max_bounces']}/diffuse {s.get('diffuse_bounces', 2)}/glossy {s.get('glossy_bounces', 4)}"
             f", light tree {'on' if s.get('light_tree', True) else 'off'}, {s.get('sampling_pattern', '').lower()}"
             f", {s['device']}")
    if s.get("threads"):
        text += f", {s['threads']} threads"
    return text


def _run_lines(run: dict, name: str) -> list[str]:
    stage = run["stage_s"]
    parts = [f"{k} {stage[k]:.3f}" for k in STAGES]
    note = (f" (denoise = same scenes with minus without the denoiser, over {run['denoise_estimated_on']}; "
            f"{run['denoise_cpu_s']:.2f} CPU s)") if run.get("denoise_estimated_on") else ""
    return [
        f"{name}: {_describe(run['settings'])}",
        f"    {run['n']} images: {run['images_per_s']:.3f} images/s, {run['s_per_image']:.2f} s/image "
        f"({run['cpu_s_per_image']:.2f} CPU s/image), "
        f"peak RSS {run['peak_rss_mib']:.0f} MiB, start-up {run['startup_s']:.2f} s",
        "    s/image by stage: " + ", ".join(parts) + note,
    ]


def format_report(report: dict) -> str:
    m = report["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["load_before"])
    lines = [
        f"igbench bench render: {report['task']}/{report['split']}, seed {report['seed']}, {m['date']}",
        f"  machine: {m['cpus']} CPUs ({m['cpu_model']}), bpy {m['bpy']}, load average before {load}"
        + (f", after {', '.join(f'{x:.2f}' for x in m['load_after'])}" if "load_after" in m else ""),
    ]
    ref = report["reference"]
    if ref["n"]:
        made = (f"{ref['rendered']} rendered now ({ref['s_per_image']:.1f} s/image)" if ref["rendered"] else "")
        lines.append(f"(r) reference: {_describe(ref['settings'])}, other Cycles seed; {ref['n']} scenes: "
                     f"{ref['cached']} from cache" + (", " + made if made else "") + f" [{ref['cache_dir']}]")
    lines += _run_lines(report["default"], "(b) igbench defaults")
    if "original" in report:
        lines += _run_lines(report["original"], "(a) original CLEVR")
        p = report["psnr_db"]
        lines.append(f"PSNR against (r), mean (min) over {report['original']['n']} scenes: "
                     f"(a) {p['original']['mean']:.2f} dB ({p['original']['min']:.2f}), "
                     f"(b) {p['default']['mean']:.2f} dB ({p['default']['min']:.2f})")
        lines.append(f"speed ratio (b)/(a): {report['speed_ratio']:.1f}x in wall time "
                     f"((a) {report['original']['s_per_image']:.2f} s/image, (b) {report['default']['s_per_image']:.2f} s/image), "
                     f"{report['speed_ratio_cpu']:.1f}x in CPU time")
    if "cpu_default" in report:
        lines.append(f"(b) on this machine's CPU: {report['cpu_default']['s_per_image']:.2f} s/image; "
                     f"GPU/CPU speed-up {report['gpu_speedup_vs_cpu']:.1f}x")
    if "workers" in report:
        w = report["workers"]
        lines.append(f"workers on {w['cores']} cores, {w['n']} images: 1 worker x {w['one_worker']['threads_per_worker']} "
                     f"threads {w['one_worker']['images_per_s']:.3f} images/s; {w['workers']} workers x "
                     f"{w['many_workers']['threads_per_worker']} thread(s) {w['many_workers']['images_per_s']:.3f} images/s "
                     f"({w['speedup']:.2f}x; peak RSS per worker {w['many_workers']['peak_rss_mib_per_worker']:.0f} MiB)")
    if "soak" in report:
        s = report["soak"]
        lines.append(f"soak: {s['n']} consecutive images at {s['resolution']} in one worker ({s['s_per_image']:.3f} s/image): "
                     f"RSS {s['rss_start_mib']:.0f} MiB after warm-up, {s['rss_end_mib']:.0f} MiB at the end "
                     f"({100 * s['growth']:+.1f}%), peak {s['peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)
