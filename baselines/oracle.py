"""`oracle`: predicts the reference programs themselves.

The ceiling of every parameter metric, and a check that the scorer and the re-renderer agree with the data:
its re-rendered fidelity (same executor, camera, lights and Cycles seed) is the noise floor of the image
metrics. `igbench train --model oracle --data data/clevr` only writes the run folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from igbench.baselines import common
from igbench.dataset import load_rows, split_fingerprint, split_folder
from igbench.runs import check_resume, check_task, open_run, start_run
from igbench.score.predictions import append_predictions, todo_rows

NAME = "oracle"
DEFAULT_CONFIG = common.preset("oracle")


@dataclass
class OraclePredict:
    batch_size: int = 1000  # rows per written chunk
    precision: int = 6  # digits after the point in the written programs


@dataclass
class OracleTrain:
    train_split: str = "train"  # only checked to exist: the oracle learns nothing


@dataclass
class OracleConfig:
    train: OracleTrain = field(default_factory=OracleTrain)
    predict: OraclePredict = field(default_factory=OraclePredict)


CONFIG_CLASS = OracleConfig


def train(config: OracleConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    folder = split_folder(data, config.train.train_split)
    task, _, _ = load_rows(data, config.train.train_split, columns=["id", "task"])
    check_resume(Path(output), config, resume, fixed=())
    start_run(Path(output), NAME, config, task.name, data, {"train_fingerprint": split_fingerprint(folder)})
    return {"step": 0, "loss": None}


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    from igbench.program import format_program

    _, config, info = open_run(checkpoint, NAME, OracleConfig, overrides)
    task, rows, _ = load_rows(data, split, columns=["id", "task", "objects"])
    check_task(info, task, data)
    todo, skipped = todo_rows(rows, Path(out), limit)
    records = [{"id": r["id"], "program": format_program(common.reference_program(r, task), task,
                                                          precision=config.predict.precision)} for r in todo]
    append_predictions(Path(out), records)
    return {"written": len(records), "skipped": skipped, "out": str(out)}
