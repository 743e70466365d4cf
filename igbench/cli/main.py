"""`igbench COMMAND ...`: one module per command under igbench/cli/, each a thin layer over the library."""
from __future__ import annotations

import argparse
import importlib
import sys

from igbench import __version__
from igbench.errors import UserError

COMMANDS = {
    "render": "Render a split of a task into a HuggingFace dataset.",
    "merge": "Merge the folders of sharded render jobs (--shard i/N) into one split.",
    "export": "Export a pose-task dataset in another layout (BOP).",
    "push": "Publish rendered splits to the HuggingFace Hub with a dataset card (or --dry-run DIR).",
    "bench": "Speed figures on this machine (`igbench bench render`); the leaderboard is `make benchmark`.",
    "train": "Train a model (e.g. `--model igllm`) on a rendered dataset.",
    "predict": "Write predictions.jsonl for a split with a trained run.",
    "probe": "Diagnose an IG-LLM run: do the frozen features carry the attributes; does the LM use the image?",
    "refine": "Refine another model's predictions by re-rendering them (render-compare).",
    "score": "Score predictions.jsonl against a rendered reference (parameters; images with --render).",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, like every other user error
        self.exit(2, f"igbench: error: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser that lists every command and knows the arguments of `command` alone: the other commands'
    modules are not imported (some import much, and `igbench render --programs-only` is short)."""
    parser = _Parser(prog="igbench", description="Inverse-graphics benchmark suite.")
    parser.add_argument("--version", action="version", version=f"igbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"igbench.cli.{name}").add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"igbench.cli.{args.command}")
    try:
        return module.run(args) or 0
    except UserError as err:
        print(f"igbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("igbench: interrupted; finished work is kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
