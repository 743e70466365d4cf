"""Shared by the IG-LLM tests: a tiny rendered CLEVR dataset (1-2 objects per scene, 64x48 pixels,
2 Cycles samples), made once per test session with the real renderer."""
from __future__ import annotations

import os
from pathlib import Path

import yaml

TRAIN_N, VAL_N = 8, 4


def tiny_dataset(tmp_path_factory, train_n: int = TRAIN_N, val_n: int = VAL_N, num_objects=(1, 2)) -> Path:
    """DATA/clevr with train (8 scenes) and val (4 scenes), or the sizes given; rendered on first use in a session."""
    from igbench.render.job import RenderConfig, run_render
    from igbench.task import TASKS_DIR

    root = tmp_path_factory.getbasetemp() / f"igllm-data-{train_n}-{val_n}-{num_objects[0]}-{num_objects[1]}"
    done = root / "done"
    if done.exists():
        return root / "clevr"
    root.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((TASKS_DIR / "clevr.yaml").read_text())
    for split in spec["splits"].values():
        split["num_objects"] = list(num_objects)  # short programs: the tests overfit them on a CPU in seconds
    task_file = root / "clevr_few.yaml"
    task_file.write_text(yaml.safe_dump(spec))
    for split, n in (("train", train_n), ("val", val_n)):
        report = run_render(RenderConfig(task=str(task_file), split=split, n=n, out=str(root), resolution="64x48",
                                         samples=2, shard_size=n), progress=False)
        assert report.complete, report.failed
    done.write_text("ok")
    return root / "clevr"


def cli(*argv: str) -> int:
    from igbench.cli.main import main

    return main(list(argv))


def read_jsonl(path) -> list[dict]:
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
