"""What the baselines share: run folders (config.yaml + run.yaml), split loading, prediction files."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from igbench.dataset import split_folder
from igbench.errors import UserError

CONFIGS_DIR = Path(__file__).parent / "configs"


def preset(name: str) -> str:
    """The path of a baseline preset (baselines/configs/NAME.yaml), as `igbench.config.load_config` takes it."""
    return str(CONFIGS_DIR / f"{name}.yaml")


def load_rows(data: str | Path, split: str, columns: list[str] | None = None):
    """(task, rows as a list of dicts in id order, split folder). `columns` limits what is decoded."""
    import pyarrow.parquet as pq

    from igbench.task import load_task

    folder = split_folder(data, split)
    files = sorted((folder / "data").glob("*.parquet"))
    try:
        table = pq.read_table([str(f) for f in files], columns=columns)
    except Exception as err:  # noqa: BLE001 - unreadable shards are the user's data problem
        raise UserError(f"cannot read {folder}: {str(err).splitlines()[0]}") from None
    for needed in ("id", "objects"):
        if columns is None and needed not in table.column_names:
            raise UserError(f"{folder} lacks the column '{needed}'")
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    if not rows:
        raise UserError(f"{folder} is empty")
    names = {r.get("task") or r["id"].split("/")[0] for r in rows}
    if len(names) != 1:
        raise UserError(f"{folder} mixes tasks {sorted(names)}")
    task = load_task(names.pop())
    return task, rows, folder


def data_fingerprint(folder: Path) -> str:
    from igbench.score.reference import fingerprint_files

    return fingerprint_files(sorted((Path(folder) / "data").glob("*.parquet")))


def start_run(output: Path, model: str, config, task_name: str, data, resume: bool, extra: dict | None = None) -> None:
    """Create a run folder: config.yaml (the resolved config) and run.yaml (model, task, data)."""
    from igbench import __version__
    from igbench.config import to_dict

    output = Path(output)
    if (output / "config.yaml").exists() and not resume:
        raise UserError(f"{output} already holds a run; pass --resume to continue it, or choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    run = {"model": model, "task": task_name, "data": str(Path(data).resolve()), "igbench_version": __version__}
    run.update(extra or {})
    (output / "run.yaml").write_text(yaml.safe_dump(run, sort_keys=False))


def open_run(checkpoint: str | Path, model: str, config_class, overrides=()):
    """(run folder, config with predict.* overrides applied, run.yaml dict) of a baseline's run."""
    from igbench.config import load_config

    run = Path(checkpoint)
    if not (run / "run.yaml").exists():
        raise UserError(f"{run} is not a {model} run (no run.yaml; train one with `igbench train --model {model}`)")
    try:
        info = yaml.safe_load((run / "run.yaml").read_text()) or {}
        saved = yaml.safe_load((run / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{run} has an unreadable run.yaml/config.yaml: {err}") from None
    if info.get("model") != model:
        raise UserError(f"{run} is a '{info.get('model')}' run, not '{model}'")
    return run, load_config(config_class, None, list(overrides), base=saved), info


def check_task(info: dict, task, data) -> None:
    if info.get("task") and info["task"] != task.name:
        raise UserError(f"the run was trained on task '{info['task']}', {data} is '{task.name}'")


def todo_rows(rows: list[dict], out: Path, limit: int | None) -> tuple[list[dict], int]:
    """The rows still to predict (ids not yet in `out`, the first `limit` of the split), and how many were done."""
    from igbench.predict import already_predicted

    if limit is not None and limit < 0:
        raise UserError(f"--limit must be non-negative, got {limit}")
    done = already_predicted(Path(out))
    chosen = rows if limit is None else rows[:limit]
    return [r for r in chosen if r["id"] not in done], len(done)


def append_predictions(out: Path, records: list[dict]) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.flush()


def reference_program(row: dict, task):
    """The program of a dataset row (from its object structs)."""
    from igbench.scene import object_from_row
    from igbench.program import Program

    return Program([object_from_row(o, task) for o in row["objects"]])
