"""Run folders: what `igbench train --model NAME` writes and `igbench predict` reads, for every model.

    config.yaml                       the resolved config (preset + overrides), as trained
    run.yaml                          model, task, data, igbench version (and a model's extras, e.g. the
                                      train split's fingerprint)
    checkpoints/step_000500/state.json   models that checkpoint by step: written last, marks it complete

A run names its model and task in run.yaml; a folder that does not is refused, never guessed.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from igbench.errors import UserError
from igbench.files import write_text_atomic

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.yaml"
STATE_FILE = "state.json"


def check_resume(output: Path, config, resume: bool, fixed: tuple[str, ...]) -> None:
    """Refuse to write into a folder that holds a run unless resuming it; on resume, the saved config must
    agree with `config` on every `fixed` entry (a section such as 'model', or a dotted key 'train.lr')."""
    from igbench.config import to_dict

    saved = Path(output) / CONFIG_FILE
    if not saved.exists():
        return
    if not resume:
        raise UserError(f"{output} already holds a run; pass --resume to continue it, or choose another --output")
    before, now = yaml.safe_load(saved.read_text()) or {}, to_dict(config)
    for entry in fixed:
        section, _, key = entry.partition(".")
        old, new = (before.get(section) or {}), now[section]
        if not key and old != new:
            raise UserError(f"--resume with a different '{section}' config than {saved}; use the same config")
        if key and old.get(key) != new[key]:
            raise UserError(f"--resume with {entry}={new[key]}, the run has {old.get(key)}; use the same value")


def start_run(output: Path, model: str, config, task_name: str, data, extra: dict | None = None) -> None:
    """Write config.yaml (the resolved config) and run.yaml (model, task, data, version) into `output`."""
    from igbench import __version__
    from igbench.config import to_dict

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output / CONFIG_FILE, yaml.safe_dump(to_dict(config), sort_keys=False))
    run = {"model": model, "task": task_name, "data": str(Path(data).resolve()), "igbench_version": __version__}
    write_text_atomic(output / RUN_FILE, yaml.safe_dump({**run, **(extra or {})}, sort_keys=False))


def run_folder(checkpoint: str | Path) -> Path:
    """The run folder of a run folder or of one of its checkpoints/step_* folders."""
    path = Path(checkpoint)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    for folder in (path, path.parent.parent):
        if (folder / RUN_FILE).exists():
            return folder
    raise UserError(f"{path} is not an igbench run (no {RUN_FILE}; train one with `igbench train`)")


def read_run(checkpoint: str | Path) -> dict:
    """run.yaml of a run (or of the run a checkpoint belongs to); its model and task must be named."""
    folder = run_folder(checkpoint)
    try:
        info = yaml.safe_load((folder / RUN_FILE).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{folder / RUN_FILE} is unreadable: {str(err).splitlines()[0]}") from None
    if not isinstance(info, dict):
        raise UserError(f"{folder / RUN_FILE} is not a mapping of model, task, data")
    for key in ("model", "task"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise UserError(f"{folder / RUN_FILE} names no {key}; it is not a complete igbench run")
    return info


def open_run(checkpoint: str | Path, model: str, config_class, overrides=()) -> tuple[Path, object, dict]:
    """(run folder, saved config with `overrides` applied, run.yaml) of a run of `model`."""
    from igbench.config import load_config

    run = run_folder(checkpoint)
    info = read_run(run)
    if info["model"] != model:
        raise UserError(f"{run} is a '{info['model']}' run, not '{model}'")
    try:
        saved = yaml.safe_load((run / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{run} has an unreadable {CONFIG_FILE}: {str(err).splitlines()[0]}") from None
    return run, load_config(config_class, None, list(overrides), base=saved), info


def check_task(info: dict, task, data) -> None:
    """The split to predict must come from the task the run was trained on."""
    if info["task"] != task.name:
        raise UserError(f"the run was trained on task '{info['task']}', {data} is '{task.name}'")


def latest_checkpoint(output: Path) -> Path | None:
    """The newest complete checkpoints/step_* folder (its state.json written), or None."""
    folders = sorted(p for p in (Path(output) / "checkpoints").glob("step_*") if (p / STATE_FILE).exists())
    return folders[-1] if folders else None


def checkpoint_step(folder: Path) -> int:
    return json.loads((Path(folder) / STATE_FILE).read_text())["step"]


def mark_checkpoint(folder: Path, step: int, processes: int = 1) -> None:
    """Write the checkpoint's state.json, last: from now on it counts as complete. The process count lets a
    run resume on another one with the same global batch."""
    write_text_atomic(Path(folder) / STATE_FILE, json.dumps({"step": step, "processes": processes}) + "\n")
