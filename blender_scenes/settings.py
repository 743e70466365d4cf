"""How to render: resolution, sampling, device. Pure data, importable without Blender."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from igbench.errors import UserError

DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class RenderSettings:
    width: int = 480
    height: int = 320
    samples: int = 16            # Cycles samples per pixel (adaptive sampling may stop earlier)
    denoise: bool = True         # OpenImageDenoise on the final image
    device: str = "cpu"          # 'gpu' renders with Cycles on OptiX or CUDA
    threads: int = 0             # Cycles CPU threads; 0 lets Blender use every core
    max_bounces: int = 4         # light path depth; CLEVR scenes hold no glass or volumes

    def __post_init__(self):
        if self.width < 1 or self.height < 1:
            raise UserError(f"resolution must be positive, got {self.width}x{self.height}")
        if self.samples < 1:
            raise UserError(f"samples must be at least 1, got {self.samples}")
        if self.device not in DEVICES:
            raise UserError(f"unknown device '{self.device}'; expected one of {', '.join(DEVICES)}")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_resolution(text: str) -> tuple[int, int]:
    """'480x320' -> (480, 320)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or int(match[1]) < 1 or int(match[2]) < 1 or max(int(match[1]), int(match[2])) > 16384:
        raise UserError(f"bad resolution '{text}': expected WIDTHxHEIGHT, e.g. 480x320")
    return int(match[1]), int(match[2])
