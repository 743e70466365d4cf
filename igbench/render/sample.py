"""Render one sample inside a worker: draw a scene that passes the visibility rule, render it, annotate it,
and stage it on disk (PNG pair + JSON, the JSON written last as the commit marker)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from igbench.blender_scenes.session import BlenderSession
from igbench.blender_scenes.settings import RenderSettings
from igbench.generators import sample_scene
from igbench.program import format_program
from igbench.render.staging import stage_sample
from igbench.scene import Scene
from igbench.task import Task


class VisibilityError(RuntimeError):
    pass


class SampleRenderer:
    def __init__(self, task: Task, split: str, base_seed: int, settings: RenderSettings):
        self.task = task
        self.split = split
        self.base_seed = base_seed
        self.settings = settings
        self.rules = task.split_rules(split)
        self.session = BlenderSession(task, settings)

    def visible_scene(self, index: int) -> Scene:
        """The first candidate scene (attempt 0, 1, ...) in which every object shows enough pixels.

        Visibility is always judged at the task's `visibility_resolution`, so a sample's program does not
        depend on the resolution it is rendered at."""
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
        start = time.perf_counter()
        scene = self.visible_scene(index)
        visibility = time.perf_counter() - start
        scene.camera = scene.camera.at_resolution(self.settings.width, self.settings.height)
        result = self.session.render(scene)
        result.timings["visibility"] = visibility
        row = scene.to_dict(self.task)
        row["program"] = format_program(scene.program, self.task)
        _annotate(row["objects"], scene, result.instance)
        return row, result.rgb_png, result.instance_png(), result.timings

    def stage(self, index: int, staging: Path) -> dict:
        row, rgb, seg, timings = self.render(index)
        stage_sample(staging, index, row, rgb, seg)
        return timings


def _annotate(objects: list[dict], scene: Scene, instance: np.ndarray) -> None:
    centres = scene.camera.project([obj.loc for obj in scene.program]) if len(scene.program) else []
    for k, (row, centre) in enumerate(zip(objects, centres)):
        ys, xs = np.nonzero(instance == k + 1)
        row["pixel_coords"] = [float(v) for v in centre]
        row["visible_pixels"] = int(xs.size)
        row["bbox"] = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if xs.size else [-1] * 4
