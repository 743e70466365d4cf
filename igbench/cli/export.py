"""`igbench export --format bop DATA OUT`: copy a pose-task dataset into another project's layout."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a task folder (OUT/TASK) or one split folder (OUT/TASK/SPLIT)")
    p.add_argument("out", help="output folder (must not exist or be empty)")
    p.add_argument("--format", choices=["bop"], default="bop", help="target layout (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from igbench.compat.bop import export_bop

    names = export_bop(args.data, args.out)
    print(f"wrote a BOP-layout copy of {', '.join(names)} to {args.out} (units: mm; see docs/objects.md)")
    return 0
