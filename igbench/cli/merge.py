"""`igbench merge JOB_FOLDER... --out OUT`: combine sharded render jobs into one split."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("parts", nargs="+", metavar="JOB_FOLDER", help="split folders (OUT/TASK/SPLIT) of the jobs")
    p.add_argument("--out", required=True, help="output root; the merged split goes to OUT/TASK/SPLIT")


def run(args: argparse.Namespace) -> int:
    from igbench.render.merge import merge_parts

    dest = merge_parts(args.parts, args.out)
    print(f"merged {len(args.parts)} job folder(s) into {dest}")
    print(f"load with: datasets.load_dataset({str(dest)!r}, split={dest.name!r})")
    return 0
