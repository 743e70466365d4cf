"""The 2-D canvas renderer (dot2d): discs drawn with numpy, 4x4 supersampled. No Blender is needed for
a flat dot, and drawing one takes about a millisecond instead of a Cycles render's seconds."""
from __future__ import annotations

import io
import time

import numpy as np

from igbench.render_result import RenderResult
from igbench.scene import Scene
from igbench.task import Task

SUPERSAMPLING = 4


class CanvasSession:
    def __init__(self, task: Task, settings):
        self.task = task
        self.settings = settings
        spec = task.spec["canvas"]
        self.radius = float(spec["dot_radius"])
        self.dot = np.array(spec["dot_rgb"], float)
        self.background = np.array(spec["background_rgb"], float)

    def instance_map(self, scene: Scene) -> np.ndarray:
        return self.render(scene).instance

    def render(self, scene: Scene) -> RenderResult:
        from PIL import Image

        start = time.perf_counter()
        coverage = self._coverage(scene)  # (objects + 1, H, W); channel 0 is the background
        alpha = coverage[1:].sum(axis=0).clip(0, 1)[..., None]
        rgb = (self.background * (1 - alpha) + self.dot * alpha).round().astype(np.uint8)
        instance = np.where(coverage[1:].max(axis=0, initial=0) >= 0.5, coverage.argmax(axis=0), 0).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
        return RenderResult(buffer.getvalue(), instance, {"rgb": time.perf_counter() - start})

    def _coverage(self, scene: Scene) -> np.ndarray:
        width, height = scene.camera.width, scene.camera.height
        s = SUPERSAMPLING
        ys, xs = np.mgrid[0:height * s, 0:width * s]
        xs, ys = (xs + 0.5) / s, (ys + 0.5) / s
        layers = [np.zeros((height, width))]
        scale = scene.camera.K[0][0]
        for obj in scene.program:
            cx, cy = obj.loc[0] * scale, obj.loc[1] * scale
            inside = ((xs - cx) ** 2 + (ys - cy) ** 2) <= (self.radius * scale) ** 2
            layers.append(inside.reshape(height, s, width, s).mean(axis=(1, 3)))
        coverage = np.stack(layers)
        coverage[0] = 1 - coverage[1:].sum(axis=0).clip(0, 1) if len(layers) > 1 else 1
        return coverage
