"""Render one sample inside a worker: draw a scene that passes the visibility rule, render it, annotate it,
and stage it on disk (PNG pair + JSON, the JSON written last as the commit marker)."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from igbench.render_settings import RenderSettings
from igbench.generators import sample_scene
from igbench.program import format_program
from igbench.render_result import RenderResult
from igbench.render.staging import stage_sample
from igbench.scene import Scene
from igbench.task import Task


class VisibilityError(RuntimeError):
    pass


class SampleRenderer:
    def __init__(self, task: Task, split: str, base_seed: int, settings: RenderSettings, clevr_scenes: str | None = None):
        self.task = task
        self.split = split
        self.base_seed = base_seed
        self.settings = settings
        self.imported = None
        if clevr_scenes:  # re-rendering given scenes: no sampling, no visibility rule
            from igbench.compat.clevr_scenes import read_clevr_scenes

            self.imported = read_clevr_scenes(clevr_scenes, task, split)
            self.rules = {}
        else:
            self.rules = task.split_rules(split)
        self.session = make_session(task, settings)

    def visible_scene(self, index: int) -> Scene:
        """The first candidate scene (attempt 0, 1, ...) in which every object shows enough pixels.

        Visibility is always judged at the task's `visibility_resolution`, so a sample's program does not
        depend on the resolution it is rendered at."""
        if self.imported is not None:
            return copy.copy(self.imported[index])
        min_pixels = self.rules.get("min_visible_pixels", 0)
        attempts = self.rules.get("max_visibility_attempts", 100)
        for attempt in range(attempts):
            scene = sample_scene(self.task, self.split, index, self.base_seed, attempt)
            if min_pixels <= 0:
                return scene
            counts = np.bincount(self.session.instance_map(scene).ravel(), minlength=len(scene.program) + 1)
            if counts[1 : len(scene.program) + 1].min(initial=min_pixels) >= min_pixels:
                return scene
        raise VisibilityError(f"no candidate in {attempts} attempts had every object {min_pixels}+ pixels visible")

    def render(self, index: int) -> tuple[dict, bytes, bytes, dict]:
        """(row without images, RGB PNG, segmentation PNG, timings) for sample `index`."""
        row, result = self.render_result(index)
        return row, result.rgb_png, result.instance_png(), result.timings

    def render_result(self, index: int) -> tuple[dict, RenderResult]:
        """The row without images, and what the renderer returned (depth included, when asked for)."""
        start = time.perf_counter()
        scene = self.visible_scene(index)
        visibility = time.perf_counter() - start
        scene.camera = scene.camera.at_resolution(self.settings.width, self.settings.height)
        result = self.session.render(scene)
        result.timings["visibility"] = visibility
        row = scene.to_dict(self.task)
        row["program"] = format_program(scene.program, self.task)
        _annotate(row["objects"], scene, result.instance)
        if self.task.kind == "pose":
            tick = time.perf_counter()
            annotate_poses(row, scene, self.task, result.instance, self.session.amodal_masks())
            result.timings["amodal"] = time.perf_counter() - tick
        return row, result

    def stage(self, index: int, staging: Path) -> dict:
        row, result = self.render_result(index)
        stage_sample(staging, index, row, result.rgb_png, result.instance_png(), result.depth_png)
        return result.timings


def make_session(task: Task, settings: RenderSettings):
    """The renderer a task declares: Blender (default) or the 2-D canvas."""
    if task.renderer == "canvas":
        from igbench.render.canvas import CanvasSession

        return CanvasSession(task, settings)
    from igbench.blender_scenes.session import BlenderSession

    return BlenderSession(task, settings)


def world_point(loc) -> list[float]:
    """A 2-D task's canvas point (x, y) sits at (x, y, 1) in front of its identity camera."""
    return [*loc, 1.0] if len(loc) == 2 else list(loc)


def annotate_poses(row: dict, scene: Scene, task: Task, instance: np.ndarray, amodal: list[np.ndarray]) -> None:
    """Per object: pose in the world and in the camera frame, amodal box and pixel count, visible fraction,
    BOP object id; per sample: the rotation representation."""
    from igbench.rotations import to_matrix

    extrinsics = scene.camera.extrinsics
    row["rotation_rep"] = task.rotation_rep
    for k, (obj_row, obj, full) in enumerate(zip(row["objects"], scene.program, amodal)):
        R_world = to_matrix(obj.rotation, task.rotation_rep)
        t_world = np.asarray(obj.loc, float)
        obj_row["R_world"] = R_world.tolist()
        obj_row["t_world"] = t_world.tolist()
        obj_row["R_cam"] = (extrinsics[:3, :3] @ R_world).tolist()
        obj_row["t_cam"] = (extrinsics[:3, :3] @ t_world + extrinsics[:3, 3]).tolist()
        ys, xs = np.nonzero(full)
        obj_row["pixels_amodal"] = int(xs.size)
        obj_row["bbox_amodal"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if xs.size else [-1] * 4
        obj_row["visible_fraction"] = float(obj_row["visible_pixels"] / xs.size) if xs.size else 0.0
        obj_row["obj_id"] = task.library.obj_id(obj.attrs["object"])
        obj_row["mask_id"] = k + 1


def _annotate(objects: list[dict], scene: Scene, instance: np.ndarray) -> None:
    points = [world_point(obj.loc) for obj in scene.program]
    centres = scene.camera.project(points) if points else []
    for k, (row, centre) in enumerate(zip(objects, centres)):
        ys, xs = np.nonzero(instance == k + 1)
        row["pixel_coords"] = [float(v) for v in centre]
        row["visible_pixels"] = int(xs.size)
        row["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if xs.size else [-1] * 4
