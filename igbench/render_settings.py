"""How to render: resolution, sampling, denoising, light paths, device. Pure data, importable without Blender.

The defaults are igbench's tuned settings (see docs/performance.md for what each one buys and costs);
`original_clevr_settings` and `reference_settings` are the fixed presets `igbench bench render` compares
them against.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace

from igbench.errors import UserError

DEVICES = ("cpu", "gpu")
DENOISE_PREFILTERS = ("NONE", "FAST", "ACCURATE")
DENOISE_QUALITIES = ("HIGH", "BALANCED", "FAST")
DENOISE_PASSES = ("RGB", "RGB_ALBEDO", "RGB_ALBEDO_NORMAL")
SAMPLING_PATTERNS = ("AUTOMATIC", "TABULATED_SOBOL", "BLUE_NOISE", "BLUE_NOISE_FIRST", "SOBOL_BURLEY")


@dataclass(frozen=True)
class RenderSettings:
    width: int = 480
    height: int = 320
    samples: int = 3             # Cycles samples per pixel, then OpenImageDenoise (docs/performance.md)
    denoise: bool = True         # OpenImageDenoise on the final image
    device: str = "cpu"          # 'gpu' renders with Cycles on OptiX or CUDA
    threads: int = 0             # Cycles CPU threads; 0 lets Blender use every core
    max_bounces: int = 4         # light path depth; CLEVR scenes hold no glass or volumes
    diffuse_bounces: int = 2     # capped by max_bounces
    glossy_bounces: int = 4      # capped by max_bounces
    adaptive_sampling: bool = True     # no effect at a few samples; saves time when samples are raised
    adaptive_threshold: float = 0.01   # Cycles' noise threshold (its default)
    adaptive_min_samples: int = 0      # 0: Cycles picks
    # OIDN: ACCURATE denoises the albedo/normal guides before the image; FAST leaves grain on metal tops.
    denoise_prefilter: str = "ACCURATE"
    denoise_quality: str = "HIGH"        # OIDN network: HIGH, BALANCED or FAST
    # OIDN guides: RGB, RGB_ALBEDO or RGB_ALBEDO_NORMAL. With the accurate prefilter each guide costs one more
    # network pass; the normal guide bought nothing visible on CLEVR scenes for its ~1.2 CPU s (docs/performance.md).
    denoise_passes: str = "RGB_ALBEDO"
    sampling_pattern: str = "BLUE_NOISE"  # ~1 dB better than TABULATED_SOBOL after the denoiser, same cost
    light_tree: bool = False      # three area lights: the tree costs ~14% per sample and buys ~0.5 dB
    # Off: Cycles' persistent data made a render depend on the scenes rendered before it in the session (so on
    # how samples fell to workers) and saved nothing measurable here (docs/performance.md).
    persistent_data: bool = False
    # Also render depth: Z along the camera axis in millimetres, a 16-bit PNG (BOP's convention, depth_scale 1).
    depth: bool = False

    def __post_init__(self):
        if self.width < 1 or self.height < 1:
            raise UserError(f"resolution must be positive, got {self.width}x{self.height}")
        if self.samples < 1:
            raise UserError(f"samples must be at least 1, got {self.samples}")
        if self.device not in DEVICES:
            raise UserError(f"unknown device '{self.device}'; expected one of {', '.join(DEVICES)}")
        if min(self.max_bounces, self.diffuse_bounces, self.glossy_bounces) < 0:
            raise UserError("light bounces must be non-negative")
        if self.adaptive_threshold < 0 or self.adaptive_min_samples < 0:
            raise UserError("adaptive sampling threshold and minimum samples must be non-negative")
        if self.denoise_prefilter not in DENOISE_PREFILTERS:
            raise UserError(f"denoise_prefilter must be one of {', '.join(DENOISE_PREFILTERS)}")
        if self.denoise_quality not in DENOISE_QUALITIES:
            raise UserError(f"denoise_quality must be one of {', '.join(DENOISE_QUALITIES)}")
        if self.denoise_passes not in DENOISE_PASSES:
            raise UserError(f"denoise_passes must be one of {', '.join(DENOISE_PASSES)}")
        if self.sampling_pattern not in SAMPLING_PATTERNS:
            raise UserError(f"sampling_pattern must be one of {', '.join(SAMPLING_PATTERNS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "RenderSettings":
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, saved: dict, **overrides) -> "RenderSettings":
        """Settings recorded in a render_config.json (unknown keys ignored), with `overrides` laid over them."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in saved.items() if k in known}, **overrides})


def original_clevr_settings(width: int = 480, height: int = 320, device: str = "cpu", threads: int = 0) -> RenderSettings:
    """(a) in the benchmark: the original CLEVR generator's sampling (Cycles, 512 samples, no denoiser, and
    no adaptive sampling, which its Blender 2.78 did not have) on igbench's stage and light paths."""
    # Every field spelled out, so that tuning the defaults never changes (a) or (r)'s cache key.
    return RenderSettings(width=width, height=height, samples=512, denoise=False, device=device, threads=threads,
                          max_bounces=4, diffuse_bounces=2, glossy_bounces=4, adaptive_sampling=False,
                          adaptive_threshold=0.01, adaptive_min_samples=0, denoise_prefilter="ACCURATE",
                          denoise_quality="HIGH", denoise_passes="RGB_ALBEDO_NORMAL",
                          sampling_pattern="TABULATED_SOBOL", light_tree=True, persistent_data=True)


def reference_settings(width: int = 480, height: int = 320, samples: int = 1024, device: str = "cpu",
                       threads: int = 0) -> RenderSettings:
    """(r) in the benchmark: the converged image, what (a) and the defaults are scored against. Same light
    paths as (a), every pixel gets every sample, no denoiser."""
    return original_clevr_settings(width, height, device, threads).with_(samples=samples)


def parse_resolution(text: str) -> tuple[int, int]:
    """'480x320' -> (480, 320)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or int(match[1]) < 1 or int(match[2]) < 1 or max(int(match[1]), int(match[2])) > 16384:
        raise UserError(f"bad resolution '{text}': expected WIDTHxHEIGHT, e.g. 480x320")
    return int(match[1]), int(match[2])


def split_render_settings(split_folder, camera, device: str = "cpu", samples: int | None = None):
    """The split's own render settings (every field `render_config.json` saved, so that the true program
    re-renders to the input image even after igbench's defaults change), at the camera's resolution, on
    `device` (cpu | gpu), with `samples` Cycles samples when set."""
    import json
    from pathlib import Path

    saved = {}
    path = Path(split_folder) / "render_config.json"
    if path.exists():
        saved = json.loads(path.read_text()).get("render_settings") or {}
    overrides = {"samples": int(samples)} if samples else {}
    return RenderSettings.from_dict(saved, width=camera.width, height=camera.height,
                                    device=device, threads=0, depth=False, **overrides)
