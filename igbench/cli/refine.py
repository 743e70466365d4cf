"""`igbench refine --model render-compare --base predictions.jsonl --data data/clevr --split ood --out refined.jsonl`."""
from __future__ import annotations

from igbench.models import REFINERS


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="render-compare", help=f"refiner: {', '.join(REFINERS)} (default: render-compare)")
    parser.add_argument("--base", required=True, help="the predictions (JSONL) to refine, from any model")
    parser.add_argument("--data", required=True, help="a rendered task folder (e.g. data/clevr) or a split folder")
    parser.add_argument("--split", default="test", help="split the predictions are for (default: test)")
    parser.add_argument("--out", default="refined.jsonl", help="output JSONL; ids already in it are skipped")
    parser.add_argument("--config", default=None, help="preset name or YAML path (default: the refiner's own)")
    parser.add_argument("--limit", type=int, default=None, help="refine only the first N samples of the split")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. refine.budget=40 predict.render_device=gpu")


def run(args) -> int:
    from igbench.config import load_config
    from igbench.models import refiner_module

    module = refiner_module(args.model)
    config = load_config(module.CONFIG_CLASS, args.config or module.DEFAULT_CONFIG, args.overrides)
    result = module.refine(config, args.base, args.data, args.split, args.out, limit=args.limit, progress=not args.quiet)
    print(f"igbench: {result['written']} refined predictions written to {result['out']} "
          f"({result['skipped']} already there)")
    return 0
