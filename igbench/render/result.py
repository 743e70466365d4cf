"""What a renderer returns for one scene (shared by the Blender executor and the 2-D canvas)."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RenderResult:
    rgb_png: bytes                       # the encoded RGB image, stored as is
    instance: np.ndarray                 # (H, W) uint8: 0 background/ground, k+1 the program's k-th object
    timings: dict[str, float] = field(default_factory=dict)
    amodal: list[np.ndarray] | None = None  # per object, its full silhouette as if alone (pose tasks)

    def instance_png(self) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.instance, mode="L").save(buffer, format="PNG")
        return buffer.getvalue()
