"""`igbench bench render [--n 20] [--n-reference 3] [--device cpu|gpu] [--workers 2] [--soak 1000]`:
speed, memory and image quality of the renderer on this machine; `igbench bench score [--n 100000]`:
the scorer's throughput. Both print figures; neither is a test."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from igbench.render_settings import RenderSettings, parse_resolution
from igbench.errors import UserError

DEFAULTS = RenderSettings()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["render", "score"], help="what to benchmark")
    p.add_argument("--task", default="clevr")
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0, help="base seed of the scenes (default: %(default)s)")
    p.add_argument("--n", type=int, default=20,
                   help="render: images to time with igbench's settings, (b); score: synthetic scenes (default: %(default)s)")
    p.add_argument("--n-reference", type=int, default=3,
                   help="of those, how many also render with the original CLEVR settings (a) and get a cached "
                        "reference (r) for PSNR; (a) costs ~75-90 s/image on 2 CPU cores, 0 skips (a) and (r) "
                        "(default: %(default)s)")
    p.add_argument("--resolution", default=f"{DEFAULTS.width}x{DEFAULTS.height}")
    p.add_argument("--samples", type=int, default=DEFAULTS.samples, help="(b)'s samples (default: %(default)s)")
    p.add_argument("--no-denoise", dest="denoise", action="store_false", help="(b) without OpenImageDenoise")
    p.add_argument("--original-samples", type=int, default=512, help="(a)'s samples (default: %(default)s, as CLEVR)")
    p.add_argument("--reference-samples", type=int, default=1024, help="(r)'s samples (default: %(default)s)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--threads", type=int, default=0, help="Cycles threads, 0 = every core (default: %(default)s)")
    p.add_argument("--workers", type=int, default=0,
                   help="also compare 1 worker with every thread against this many single-threaded workers")
    p.add_argument("--soak", type=int, default=0, metavar="N",
                   help="also render N consecutive images in one worker at --soak-resolution and report its memory")
    p.add_argument("--soak-resolution", default="48x32")
    p.add_argument("--cache-dir", help="where (r) is cached (default: $IGBENCH_CACHE/bench or ~/.cache/igbench/bench)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UserError(f"--n must be positive, got {args.n}")
    if args.what == "score":
        from igbench.score.bench import bench_score, format_report as format_score

        report = bench_score(args.n)
        print(format_score(report))
        _save(report, args.json_out)
        return 0
    from igbench.render.bench import NoGPU, bench_render, format_report

    for name in ("n_reference", "workers", "soak", "threads"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be non-negative, got {getattr(args, name)}")
    if args.original_samples < 1 or args.reference_samples < 1:
        raise UserError("--original-samples and --reference-samples must be positive")
    width, height = parse_resolution(args.resolution)
    soak_resolution = parse_resolution(args.soak_resolution)
    settings = DEFAULTS.with_(width=width, height=height, samples=args.samples, denoise=args.denoise,
                              device=args.device, threads=args.threads)
    try:
        report = bench_render(args.task, args.split, args.n, settings, n_reference=args.n_reference,
                              reference_samples=args.reference_samples, original_samples=args.original_samples,
                              seed=args.seed, cache_dir=args.cache_dir, workers=args.workers, soak=args.soak,
                              soak_resolution=soak_resolution, progress=not args.quiet)
    except NoGPU as err:
        print(f"igbench bench render: no GPU: {err}", file=sys.stderr)
        return 3
    print(format_report(report))
    _save(report, args.json_out)
    return 0


def _save(report: dict, path: str | None) -> None:
    if path:
        from igbench.files import write_json_atomic

        write_json_atomic(Path(path), report, sort_keys=False)
