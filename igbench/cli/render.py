"""`igbench render --task clevr --split ood --n 1000 --out data`."""
from __future__ import annotations

import argparse
import sys

from igbench.render.job import RenderConfig, run_render

DEFAULTS = RenderConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=DEFAULTS.task, help="task name or path to a task YAML (default: %(default)s)")
    p.add_argument("--split", default=None, help="split declared in the task YAML (default: train; 'imported' with --from-clevr-scenes)")
    p.add_argument("--n", type=int, default=DEFAULTS.n, help="number of samples (default: %(default)s)")
    p.add_argument("--out", default=DEFAULTS.out, help="output root; the split goes to OUT/TASK/SPLIT (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="base seed (default: %(default)s)")
    p.add_argument("--workers", type=int, default=DEFAULTS.workers, help="render processes (default: %(default)s)")
    p.add_argument("--resolution", default=None, help="WIDTHxHEIGHT (default: the task's, 480x320 for clevr)")
    p.add_argument("--samples", type=int, default=DEFAULTS.samples, help="Cycles samples per pixel (default: %(default)s)")
    p.add_argument("--no-denoise", dest="denoise", action="store_false", help="turn OpenImageDenoise off")
    p.add_argument("--depth", action="store_true",
                   help="also store a depth map per sample (Z in millimetres, 16-bit PNG; ~0.04 s per 480x320 image)")
    p.add_argument("--device", choices=["cpu", "gpu"], default=DEFAULTS.device, help="Cycles device (default: %(default)s)")
    p.add_argument("--shard-size", type=int, default=DEFAULTS.shard_size, help="samples per parquet shard (default: %(default)s)")
    p.add_argument("--shard", default=DEFAULTS.shard, metavar="I/N",
                   help="render only job I of N (0-based) for cluster arrays; combine with `igbench merge`")
    p.add_argument("--max-retries", type=int, default=DEFAULTS.max_retries, help="retries of a failed sample (default: %(default)s)")
    p.add_argument("--rotation-rep", choices=["euler", "euler_int", "aa", "6d", "quat"], default=None,
                   help="pose tasks: how programs write rotations (default: the task's, euler)")
    p.add_argument("--assets", default=None, help="pose tasks: folder with manifest.yaml of your own meshes")
    p.add_argument("--from-clevr-scenes", default=None, metavar="JSON",
                   help="re-render the scenes of an original CLEVR scene JSON (rotation read as radians, see docs)")
    p.add_argument("--programs-only", action="store_true", help="write the sampled programs without rendering")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    fields = {k: v for k, v in vars(args).items() if k in RenderConfig.__dataclass_fields__}
    if fields["split"] is None:
        fields["split"] = "imported" if args.from_clevr_scenes else DEFAULTS.split
    config = RenderConfig(**fields)
    if config.from_clevr_scenes:
        print("reading CLEVR scenes: 'rotation' is taken as radians (the original applied it so), cube yaws folded "
              "into [-45, 45) degrees; base camera and lights, unjittered")
    report = run_render(config, progress=not args.quiet)
    if config.programs_only:
        print(f"wrote {report.n} programs to {report.root / 'programs.jsonl'} (not rendered: no visibility check)")
        return 0
    if report.failed:
        print(f"{len(report.failed)} of {report.n} samples failed (rerun the same command to retry them):", file=sys.stderr)
        for sample, reason in sorted(report.failed.items()):
            print(f"  {sample}: {reason}", file=sys.stderr)
        return 1
    print(f"{report.n} samples in {report.root} ({report.rendered} rendered now, {report.already_done} before)")
    if config.shard != DEFAULTS.shard:
        print(f"job {config.shard} done; once every job is, run: igbench merge PART_FOLDERS... --out OUT")
        return 0
    print(f"load with: datasets.load_dataset({str(report.root)!r}, split={config.split!r})")
    return 0
