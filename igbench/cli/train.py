"""`igbench train --model igllm --data data/clevr [--config tiny] [--output runs/NAME] [--numeric char|float] [key=value ...]`.

Also `python -m igbench train ...` and `accelerate launch -m igbench train ...` (1..N GPUs; DeepSpeed or
FSDP through an accelerate config)."""
from __future__ import annotations

from pathlib import Path

from igbench.errors import UserError
from igbench.models import MODELS

NUMERIC = ("char", "float")


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="igllm", help=f"model to train: {', '.join(MODELS)} (default: igllm)")
    parser.add_argument("--data", required=True, help="a rendered task folder (e.g. data/clevr, holding train/ and val/)")
    parser.add_argument("--config", default=None,
                        help="preset name in igbench/configs (tiny, igllm-7b) or a YAML path (default: the model's recipe)")
    parser.add_argument("--output", default=None, help="run folder (default: runs/MODEL-CONFIG)")
    parser.add_argument("--numeric", choices=NUMERIC, default=None,
                        help="IG-LLM: numbers as text (char) or through the float head (float); "
                             "the same as model.numeric=..., over the preset's value")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its newest checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. train.max_steps=100 model.numeric=float")


def run(args) -> int:
    from igbench.config import load_config
    from igbench.models import model_module

    module = model_module(args.model)
    preset = args.config or module.DEFAULT_CONFIG
    config = load_config(module.CONFIG_CLASS, preset, with_numeric(args.model, args.numeric, args.overrides))
    output = Path(args.output) if args.output else Path("runs") / f"{args.model}-{Path(preset).stem}"
    result = module.train(config, args.data, output, resume=args.resume, progress=not args.quiet)
    if result.get("loss") is not None:
        print(f"igbench: step {result['step']}, loss {result['loss']:.4f}; run in {output}")
    return 0


def with_numeric(model: str, numeric: str | None, overrides: list[str]) -> list[str]:
    """The overrides with --numeric as `model.numeric=...`; a disagreeing `model.numeric=` override is an error."""
    if numeric is None:
        return list(overrides)
    if model != "igllm":
        raise UserError(f"--numeric applies to --model igllm, not {model}")
    for override in overrides:
        key, _, value = override.partition("=")
        if key.strip() == "model.numeric" and value.strip() != numeric:
            raise UserError(f"--numeric {numeric} disagrees with the override {override}; give one of them")
    return [*overrides, f"model.numeric={numeric}"]
