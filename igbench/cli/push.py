"""`igbench push DATA --repo user/name [--private] [--dry-run DIR]`: publish splits with a dataset card."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a task folder (OUT/TASK, all its splits) or one split folder (OUT/TASK/SPLIT)")
    p.add_argument("--repo", required=True, help="Hub dataset repo id, user/name")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--license", default="cc-by-4.0", help="license in the card (default: %(default)s)")
    p.add_argument("--dry-run", metavar="DIR", help="write the Hub folder to DIR and upload nothing")


def run(args: argparse.Namespace) -> int:
    from igbench.hub import push

    where = push(args.data, args.repo, private=args.private, dry_run=args.dry_run, license=args.license)
    if args.dry_run:
        print(f"wrote the Hub folder for {args.repo} to {where} (nothing uploaded)")
        print(f"check it with: datasets.load_dataset({str(where)!r}, download_mode='force_redownload')")
    else:
        print(f"pushed to {where}")
    return 0
