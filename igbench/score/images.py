"""Re-rendered fidelity: re-render each scored program and compare it with the reference image."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from igbench.render_settings import RenderSettings
from igbench.metrics import image as IM
from igbench.scene import Camera, Light, Scene
from igbench.score.reference import ReferenceSplit
from igbench.score.rerender import cache_paths, render_key, rerender

IMAGE_METRICS = ("psnr", "ssim", "lpips", "mask_iou", "flip")
BATCH = 16


def render_settings_for(ref: ReferenceSplit, camera: Camera, device: str) -> RenderSettings:
    """The reference's own render settings (render_config.json), at its camera's resolution."""
    return RenderSettings.from_dict(ref.render_settings or {}, width=camera.width, height=camera.height,
                                    device=device, threads=0, depth=False)  # image metrics need no depth


def rerender_split(ref: ReferenceSplit, programs: dict, cache_dir: Path, workers: int, render_device: str,
                   progress: bool) -> tuple[dict[str, tuple[Path, Path]], dict[str, str], dict]:
    """Render every sample's scored program. Returns (id -> (rgb, seg) paths, id -> failure, cache stats)."""
    import hashlib

    task_sha = hashlib.sha256(ref.task.path.read_bytes()).hexdigest()
    jobs, key_of, settings = {}, {}, None
    for sample_id, program in programs.items():
        row = ref.rows[sample_id]
        for needed in ("camera", "lights", "seed"):
            if row.get(needed) is None:
                from igbench.errors import UserError

                raise UserError(f"--render needs the reference's {needed} for {sample_id}")
        camera = Camera.from_dict(row["camera"])
        scene = Scene(ref.task.name, ref.split, int(row.get("index") or 0), int(row["seed"]), program, camera,
                      [Light.from_dict(x) for x in row["lights"]])
        scene_dict = scene.to_dict(ref.task)
        settings = render_settings_for(ref, camera, render_device)
        key = render_key(scene_dict, settings, task_sha, ref.task.rotation_rep,
                         ref.task.library.fingerprint if ref.task.library is not None else None)
        jobs[key] = scene_dict
        key_of[sample_id] = key
    if not jobs:
        return {}, {}, {"rendered": 0, "cached": 0}
    # Jobs at different resolutions would need different sessions; a split has one resolution.
    failed_keys, cached = rerender(jobs, str(ref.task.path), settings, cache_dir, workers, progress=progress,
                                   rotation_rep=ref.task.rotation_rep, assets=ref.task.assets)
    paths, failed = {}, {}
    for sample_id, key in key_of.items():
        if key in failed_keys:
            failed[sample_id] = failed_keys[key]
        else:
            paths[sample_id] = cache_paths(cache_dir, key)
    return paths, failed, {"rendered": len(jobs) - cached - len(failed_keys), "cached": cached}


def load_render(paths: tuple[Path, Path]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with Image.open(paths[0]) as rgb, Image.open(paths[1]) as seg:
        return np.asarray(rgb.convert("RGB")), np.asarray(seg)


def image_metrics(pairs: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], device: str = "cpu",
                  lpips_net: str | None = "alex", with_flip: bool = True) -> dict[str, dict[str, float | None]]:
    """id -> (ref rgb, ref seg, render rgb, render seg) ==> id -> {psnr, ssim, lpips, mask_iou, flip}.

    Batched by image size on `device` (torch). LPIPS is None when its weights are not installed (the
    caller reports that) or the image is too small for the network."""
    import torch

    lpips_model = None
    if lpips_net:
        from igbench.metrics.lpips import build_lpips, lpips_available

        if lpips_available(lpips_net):
            lpips_model = build_lpips(lpips_net).to(device)
    by_shape: dict[tuple, list[str]] = {}
    for sample_id, (ref_rgb, _, out_rgb, _) in pairs.items():
        by_shape.setdefault((ref_rgb.shape, out_rgb.shape), []).append(sample_id)
    results: dict[str, dict[str, float | None]] = {}
    for (ref_shape, out_shape), ids in by_shape.items():
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            if ref_shape != out_shape:  # cannot compare pixels; mask IoU neither
                for sample_id in chunk:
                    results[sample_id] = {k: None for k in IMAGE_METRICS}
                continue
            ref = np.stack([pairs[i][0] for i in chunk]).astype(np.float32) / 255.0
            out = np.stack([pairs[i][2] for i in chunk]).astype(np.float32) / 255.0
            x = torch.from_numpy(ref).permute(0, 3, 1, 2).to(device)
            y = torch.from_numpy(out).permute(0, 3, 1, 2).to(device)
            with torch.no_grad():
                p = IM.psnr(x, y).cpu().numpy()
                s = IM.ssim(x, y).cpu().numpy()
                lp = np.full(len(chunk), math.nan)
                if lpips_model is not None and min(x.shape[-2:]) >= 32:
                    lp = lpips_model(x, y).double().cpu().numpy()
            iou = IM.mask_iou(np.stack([pairs[i][1] > 0 for i in chunk]), np.stack([pairs[i][3] > 0 for i in chunk]))
            fl = IM.flip(ref, out) if with_flip else np.full(len(chunk), math.nan)
            for k, sample_id in enumerate(chunk):
                results[sample_id] = {name: (float(v[k]) if np.isfinite(v[k]) else None)
                                      for name, v in zip(IMAGE_METRICS, (p, s, lp, iou, fl))}
    return results
