"""`igbench probe --checkpoint runs/NAME --data data/clevr`: do the frozen encoder's tokens carry the
attributes, and does the trained IG-LLM use the image (igbench.models.igllm_probe)?"""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="an IG-LLM run folder, or one of its checkpoints/step_*")
    parser.add_argument("--data", required=True, help="the rendered task folder the run was trained on (e.g. data/clevr)")
    parser.add_argument("--split", default="val", help="split of the image-use measurement (default: val)")
    parser.add_argument("--features-split", default="train",
                        help="split of the linear probe of the frozen features (default: train, whose features "
                             "the run's training cached)")
    parser.add_argument("--n", type=int, default=64, help="samples of --split to measure (default: 64)")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from igbench.errors import UserError
    from igbench.files import write_json_atomic
    from igbench.models.igllm_predict import resolve_checkpoint
    from igbench.models.igllm_probe import format_report, probe
    from igbench.runs import read_run

    if args.n < 1:
        raise UserError(f"--n must be positive, got {args.n}")
    run_dir, _ = resolve_checkpoint(args.checkpoint)
    if read_run(run_dir)["model"] != "igllm":
        raise UserError(f"igbench probe reads IG-LLM runs; {run_dir} is a {read_run(run_dir)['model']} run")
    report = probe(args.checkpoint, args.data, args.split, args.features_split, args.n, progress=not args.quiet)
    print(format_report(report))
    if args.json_out:
        write_json_atomic(args.json_out, report)
    return 0
