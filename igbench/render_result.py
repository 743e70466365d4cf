"""What a renderer returns for one scene (shared by the Blender executor and the 2-D canvas)."""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RenderResult:
    rgb_png: bytes                       # the encoded RGB image, stored as is
    instance: np.ndarray                 # (H, W) uint8: 0 background/ground, k+1 the program's k-th object
    timings: dict[str, float] = field(default_factory=dict)
    amodal: list[np.ndarray] | None = None  # per object, its full silhouette as if alone (pose tasks)
    depth_png: bytes | None = None       # 16-bit PNG, Z along the camera axis in mm, when settings.depth

    def instance_png(self) -> bytes:
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(self.instance, mode="L").save(buffer, format="PNG")
        return buffer.getvalue()


_VOLATILE_CHUNKS = {b"tEXt", b"zTXt", b"iTXt", b"tIME", b"eXIf"}


def strip_png_metadata(png: bytes) -> bytes:
    """The PNG without its text, time and EXIF chunks (Blender writes render times and dates there), so the
    same render gives the same bytes. Pixel data is untouched."""
    out, pos = [png[:8]], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        end = pos + 12 + length
        if png[pos + 4 : pos + 8] not in _VOLATILE_CHUNKS:
            out.append(png[pos:end])
        pos = end
    return b"".join(out)
