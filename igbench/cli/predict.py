"""`igbench predict --checkpoint runs/NAME --data data/clevr --split ood --out predictions.jsonl`."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a run folder, or one of its checkpoints/step_* folders; "
                        "with --model vlm a Hub id or model folder, with --model api the model name the server knows")
    parser.add_argument("--model", default=None, help="model kind (default: the run folder's run.yaml), e.g. vlm, api")
    parser.add_argument("--endpoint", default=None, help="--model api: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key-env", default=None, help="--model api: the environment variable holding the key "
                        "(default: OPENAI_API_KEY)")
    parser.add_argument("--data", required=True, help="a rendered task folder (e.g. data/clevr) or a split folder")
    parser.add_argument("--split", default="test", help="split to predict (default: test)")
    parser.add_argument("--out", default="predictions.jsonl", help="output JSONL; ids already in it are skipped")
    parser.add_argument("--batch-size", type=int, default=None, help="samples per decoding batch (default: the run's)")
    parser.add_argument("--limit", type=int, default=None, help="predict only the first N samples of the split")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. predict.max_new_tokens=512")


def run(args) -> int:
    from igbench.errors import UserError
    from igbench.models import model_module
    from igbench.runs import read_run

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    bad = [o for o in args.overrides if not o.startswith("predict.")]
    if bad:
        raise UserError(f"predict takes only predict.* overrides, got '{bad[0]}'")
    model = args.model or read_run(args.checkpoint)["model"]
    module = model_module(model)
    extra = {}
    if args.endpoint is not None or args.api_key_env is not None:
        if model != "api":
            raise UserError("--endpoint and --api-key-env go with --model api")
        extra = {"endpoint": args.endpoint, "api_key_env": args.api_key_env}
    result = module.predict(args.checkpoint, args.data, args.split, args.out, batch_size=args.batch_size,
                            limit=args.limit, overrides=args.overrides, progress=not args.quiet, **extra)
    print(f"igbench: {result['written']} predictions written to {result['out']} "
          f"({result['skipped']} already there)")
    return 0

