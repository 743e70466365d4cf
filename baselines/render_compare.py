"""`render-compare`: analysis by synthesis. Refines the continuous parameters (x, y, and the yaw of shapes
whose yaw is visible) of any predicted program by re-rendering it with the executor, under the sample's
own camera, lights, Cycles seed and render settings, and minimising an image loss with a gradient-free
search under a budget of renders per scene. Attributes and the object count are kept as predicted.

The image loss is the squared difference of the Gaussian-blurred render and input image. The search is a
per-object pattern search (compass search): each render tries one move (a step along +-x, +-y, or +-yaw)
for every object of a group whose image windows (the projected bounding boxes of the object before and
after the move, plus a margin) do not overlap, and keeps each object's move if the loss inside its own
window went down. An object's step halves after a failed round of all its directions, and it stops
below `min_step`. One render goes to the prediction as given and one to the result; if the result's
whole-image loss is not lower, the prediction is kept unchanged. So each scene costs at most `budget`
renders.

    igbench refine --model render-compare --base cnn-set-test.jsonl --data data/clevr --split test \\
        --out refined.jsonl [refine.budget=24 ...]

A refiner, not a trained model: nothing is learnt, so there is no `igbench train` for it (the registry's
refiner interface, igbench.models).

Each output line carries, besides id and program, `renders`, `loss_before` and `loss_after`. The Blender
session lives in a child process: this module never imports bpy.
"""
from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from igbench.baselines import common
from igbench.dataset import load_rows
from igbench.errors import UserError
from igbench.metrics.image import blur_rgb, image_loss_map
from igbench.render_settings import split_render_settings
from igbench.score.predictions import append_predictions, todo_rows

NAME = "render-compare"
DEFAULT_CONFIG = common.preset("render-compare")


@dataclass
class RefineSettings:
    budget: int = 24  # renders per scene, the first (prediction as given) and the last (the result) included
    step: float = 0.4  # initial x/y step (scene units)
    min_step: float = 0.05  # an object stops when its step falls below this
    rotation: bool = True  # also search the yaw of shapes with a rotation period
    rot_step_deg: float = 20.0  # initial yaw step (halves with the x/y step)
    blur: float = 1.0  # Gaussian sigma in pixels applied to both images
    margin_px: int = 3  # added around each object's window
    clamp_xy: bool = True  # keep x and y inside the task's xy_range
    samples: Optional[int] = None  # Cycles samples per render; null: the reference split's


@dataclass
class RefineOutput:
    precision: int = 3  # digits after the point in the written programs
    render_device: str = "cpu"  # cpu | gpu (Cycles)


@dataclass
class RenderCompareConfig:
    refine: RefineSettings = field(default_factory=RefineSettings)
    predict: RefineOutput = field(default_factory=RefineOutput)


CONFIG_CLASS = RenderCompareConfig
REFINER = True  # igbench.models: refines another model's predictions (`refine`), has no train/predict


# ------------------------------------------------------------------------------------------ the search


@dataclass
class _ObjState:
    xy: np.ndarray
    yaw: Optional[float]
    step: float
    rot_step: float
    dirs: list
    fails: int = 0
    done: bool = False


def object_window(obj, camera, task, margin: int) -> Optional[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) pixel box (exclusive) of an object's bounding box as the camera sees it, or None
    when it is off-screen or behind the camera."""
    radius = float((task.spec.get("sizes") or {}).get(obj.attrs.get("size"), 0.7))
    x, y, z = obj.loc
    top = max(2.0 * z, radius)
    corners = np.array([[x + dx, y + dy, dz] for dx in (-radius, radius) for dy in (-radius, radius) for dz in (0.0, top)])
    pix = camera.project(corners)
    if (pix[:, 2] <= 1e-6).any():
        return None
    x0 = int(math.floor(pix[:, 0].min())) - margin
    y0 = int(math.floor(pix[:, 1].min())) - margin
    x1 = int(math.ceil(pix[:, 0].max())) + margin + 1
    y1 = int(math.ceil(pix[:, 1].max())) + margin + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, camera.width), min(y1, camera.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def refine_program(program, target_rgb: np.ndarray, camera, task, render, settings: RefineSettings):
    """Refine `program` against `target_rgb` (HxWx3 uint8). `render(program) -> HxWx3 uint8` renders one
    candidate. Returns (refined program, info dict: renders, loss_before, loss_after, accepted, kept)."""
    from igbench.program import Obj, Program

    if settings.budget < 2:
        raise UserError(f"refine.budget must be at least 2 (the prediction and the result), got {settings.budget}")
    periods = {s: math.radians(d) for s, d in (task.spec.get("rotation_period_deg") or {}).items()}
    xy_range = (task.spec.get("sampling") or {}).get("xy_range", [-math.inf, math.inf])
    target = blur_rgb(target_rgb, settings.blur)
    objects = list(program.objects)
    if not objects:
        return program, {"renders": 0, "loss_before": None, "loss_after": None, "accepted": 0, "kept": True}

    def build(states):
        out = []
        for obj, st in zip(objects, states):
            numbers = dict(obj.numbers)
            numbers["loc"] = (float(st.xy[0]), float(st.xy[1]), float(obj.loc[2]))
            if st.yaw is not None:
                numbers["rotation"] = (float(st.yaw),)
            out.append(Obj(dict(obj.attrs), numbers))
        return Program(out)

    states = []
    for obj in objects:
        rotatable = settings.rotation and obj.attrs.get("shape") in periods and "rotation" in task.numeric
        yaw = (obj.rotation[0] if obj.rotation else 0.0) if rotatable else None
        dirs = [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0)] + ([(0, 0, 1), (0, 0, -1)] if rotatable else [])
        states.append(_ObjState(np.array(obj.loc[:2], float), yaw, settings.step, math.radians(settings.rot_step_deg), dirs))

    def window(k, st_xy, yaw):
        probe = Obj(objects[k].attrs, {"loc": (float(st_xy[0]), float(st_xy[1]), float(objects[k].loc[2]))})
        return object_window(probe, camera, task, settings.margin_px)

    error = image_loss_map(render(program), target, settings.blur)
    renders, accepted = 1, 0
    loss_before = float(error.mean())
    cursor = 0
    while renders < settings.budget - 1:
        group, proposals = [], {}
        n = len(states)
        for j in range(n):
            k = (cursor + j) % n
            st = states[k]
            if st.done:
                continue
            dx, dy, dr = st.dirs[0]
            xy = st.xy + st.step * np.array([dx, dy], float)
            if settings.clamp_xy:
                xy = np.clip(xy, xy_range[0], xy_range[1])
            yaw = None if st.yaw is None else st.yaw + dr * st.rot_step
            win = _union(window(k, st.xy, st.yaw), window(k, xy, yaw))
            if win is None:
                st.done = True
                continue
            if any(_overlap(win, proposals[g][2]) for g in group):
                continue
            group.append(k)
            proposals[k] = (xy, yaw, win)
        if not group:
            break
        cursor = (group[-1] + 1) % n
        trial = [(_ObjState(proposals[k][0], proposals[k][1], 0, 0, []) if k in proposals else st)
                 for k, st in enumerate(states)]
        new_error = image_loss_map(render(build(trial)), target, settings.blur)
        renders += 1
        for k in group:
            xy, yaw, (x0, y0, x1, y1) = proposals[k]
            st = states[k]
            if new_error[y0:y1, x0:x1].sum() < error[y0:y1, x0:x1].sum() - 1e-9:
                st.xy, st.yaw, st.fails = xy, yaw, 0
                error[y0:y1, x0:x1] = new_error[y0:y1, x0:x1]
                accepted += 1
            else:
                st.dirs.append(st.dirs.pop(0))
                st.fails += 1
                if st.fails >= len(st.dirs):
                    st.fails = 0
                    st.step /= 2
                    st.rot_step /= 2
                    st.done = st.step < settings.min_step
    result = build(states)
    if accepted == 0:
        return program, {"renders": renders, "loss_before": loss_before, "loss_after": loss_before,
                         "accepted": 0, "kept": True}
    loss_after = float(image_loss_map(render(result), target, settings.blur).mean())
    renders += 1
    if loss_after >= loss_before:
        return program, {"renders": renders, "loss_before": loss_before, "loss_after": loss_before,
                         "accepted": accepted, "kept": True}
    return result, {"renders": renders, "loss_before": loss_before, "loss_after": loss_after,
                    "accepted": accepted, "kept": False}


# --------------------------------------------------------------------------------- the render process


# ------------------------------------------------------------------------------------- registry entry


def read_base(path: str | Path, task) -> dict:
    """id -> Program of a predictions file (lenient parse: what the scorer would score)."""
    from igbench.score.predictions import parse_prediction, read_predictions

    records, _ = read_predictions(path)
    return {r.id: parse_prediction(r, task).program for r in records}


def refine(config: RenderCompareConfig, base, data, split, out, limit=None, progress=True) -> dict:
    """Refine the predictions in `base` for the samples of `data`/`split`, appending to `out` (resumable:
    ids already in `out` are skipped)."""
    from PIL import Image
    from tqdm.auto import tqdm

    from igbench.program import Program, format_program
    from igbench.render.child import BlenderProcess
    from igbench.scene import Camera, Light, Scene

    if not Path(base).is_file():
        raise UserError(f"--base: no such predictions file: {base}")
    task, rows, folder = load_rows(data, split, columns=["id", "task", "index", "seed", "image", "camera", "lights"])
    base_file, base = str(base), read_base(base, task)
    todo, skipped = todo_rows(rows, Path(out), limit)
    renderers: dict = {}
    written = renders = 0
    bar = tqdm(total=len(todo), desc=f"render-compare {split}", disable=not progress, unit="scene", dynamic_ncols=True)
    try:
        for row in todo:
            camera = Camera.from_dict(row["camera"])
            lights = [Light.from_dict(x) for x in row["lights"]]
            program = base.get(row["id"], Program())
            key = (camera.width, camera.height)
            if key not in renderers and program.objects:
                settings = split_render_settings(folder, camera, config.predict.render_device, config.refine.samples)
                renderers[key] = BlenderProcess(str(task.path), settings, "render-compare")
            renderer = renderers.get(key)

            def render(p, _row=row, _camera=camera, _lights=lights):
                scene = Scene(task.name, split, int(_row["index"]), int(_row["seed"]), p, _camera, _lights)
                return renderer.render(scene.to_dict(task))

            image = row["image"]
            with Image.open(io.BytesIO(image["bytes"] if isinstance(image, dict) else image)) as img:
                target = np.asarray(img.convert("RGB"))
            tick = time.perf_counter()
            try:
                refined, stats = refine_program(program, target, camera, task, render, config.refine)
            except RuntimeError as err:  # a render failed: keep the base prediction
                refined, stats = program, {"renders": 0, "error": str(err)[:200], "kept": True}
            stats["seconds"] = round(time.perf_counter() - tick, 3)
            renders += stats.get("renders", 0)
            record = {"id": row["id"], "program": format_program(refined, task, precision=config.predict.precision),
                      "base": base_file, **stats}
            append_predictions(Path(out), [record])
            written += 1
            bar.update(1)
    finally:
        bar.close()
        for renderer in renderers.values():
            renderer.close()
    return {"written": written, "skipped": skipped, "out": str(out), "renders": renders}
