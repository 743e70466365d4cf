"""Render one split as N jobs through submitit (SLURM, or local processes), then merge them.

    python launchers/submitit_render.py --jobs 16 --partition gpu -- --task clevr --split train --n 100000 --out /shared/data
    python launchers/submitit_render.py --jobs 2 --cluster local -- --split val --n 100 --out data

Everything after `--` goes to `igbench render`; `--out` must be a folder every job can write (a shared
filesystem on a cluster). Jobs resume where they stopped, so rerunning this after a failure finishes the split.
"""
from __future__ import annotations

import argparse
import subprocess
import sys


def render_share(render_args: list[str], shard: str) -> None:
    subprocess.run([sys.executable, "-m", "igbench", "render", *render_args, "--shard", shard, "--quiet"], check=True)


def main(argv: list[str] | None = None) -> int:
    import submitit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, required=True, help="number of jobs (N of --shard i/N)")
    parser.add_argument("--cluster", default=None, help="submitit cluster: slurm, local (default: auto-detect)")
    parser.add_argument("--partition", default=None, help="SLURM partition")
    parser.add_argument("--cpus", type=int, default=8, help="CPUs per job")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs per job (pass --device gpu to render)")
    parser.add_argument("--timeout-min", type=int, default=480)
    parser.add_argument("--logs", default="submitit-logs", help="folder for submitit's job logs")
    parser.add_argument("render_args", nargs=argparse.REMAINDER, help="-- then the `igbench render` arguments")
    args = parser.parse_args(argv)
    render_args = [a for a in args.render_args if a != "--"]
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--out", default="data")
    probe.add_argument("--task", default="clevr")
    probe.add_argument("--split", default="train")
    known, _ = probe.parse_known_args(render_args)

    executor = submitit.AutoExecutor(folder=args.logs, cluster=args.cluster)
    executor.update_parameters(timeout_min=args.timeout_min, cpus_per_task=args.cpus, gpus_per_node=args.gpus,
                               name="igbench-render", slurm_array_parallelism=args.jobs,
                               **({"slurm_partition": args.partition} if args.partition else {}))
    jobs = executor.map_array(render_share, [render_args] * args.jobs, [f"{i}/{args.jobs}" for i in range(args.jobs)])
    print(f"submitted {len(jobs)} jobs: {', '.join(job.job_id for job in jobs)}")
    for job in jobs:
        job.result()  # re-raises a job's failure here
    split_folder = f"{known.out}/{known.task}/{known.split}"
    return subprocess.run([sys.executable, "-m", "igbench", "merge", split_folder, "--out", known.out]).returncode


if __name__ == "__main__":
    sys.exit(main())
