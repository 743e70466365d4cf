"""`igbench bench render [--n 20] [--device cpu|gpu]`: prints figures; not a test."""
from __future__ import annotations

import argparse
import json

from igbench.blender_scenes.settings import RenderSettings, parse_resolution
from igbench.errors import UserError

DEFAULTS = RenderSettings()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["render"], help="what to benchmark")
    p.add_argument("--task", default="clevr")
    p.add_argument("--split", default="train")
    p.add_argument("--n", type=int, default=20, help="images to time (default: %(default)s)")
    p.add_argument("--resolution", default=f"{DEFAULTS.width}x{DEFAULTS.height}")
    p.add_argument("--samples", type=int, default=DEFAULTS.samples)
    p.add_argument("--no-denoise", dest="denoise", action="store_false")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    from igbench.render.bench import bench_render, format_report

    if args.n < 1:
        raise UserError(f"--n must be positive, got {args.n}")
    width, height = parse_resolution(args.resolution)
    settings = RenderSettings(width=width, height=height, samples=args.samples, denoise=args.denoise, device=args.device)
    report = bench_render(args.task, args.split, args.n, settings)
    print(format_report(report))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    return 0
