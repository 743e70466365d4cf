"""`prior`: one program for every image, from the train split's statistics alone (it never looks at the image).

Definitions (`fit_prior`, checked by hand in tests/test_baselines.py):
- count  N = round(mean number of objects per training scene) (halves round up);
- attributes: each categorical field's most frequent value over all training objects (ties: the value
  declared first in the task);
- positions: objects of each training scene are ordered left to right as the camera sees them (pixel x
  from `pixel_coords`; world x if a row has none); slot k's position is the mean `loc` of the k-th object
  over the training scenes that have at least k objects; the prediction uses slots 1..N;
- rotation: CLEVR: none (absent means 0, the middle of the cube's range); pose tasks, where a rotation is
  required: slot k's rotation is the chordal L2 mean of the k-th objects' world rotations (scipy's
  `Rotation.mean`), written in the dataset's rotation representation.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from igbench.baselines import common
from igbench.dataset import load_rows, split_fingerprint
from igbench.files import write_json_atomic
from igbench.runs import check_resume, check_task, open_run, start_run
from igbench.score.predictions import append_predictions, todo_rows

NAME = "prior"
DEFAULT_CONFIG = common.preset("prior")
STATS_FILE = "prior.json"


@dataclass
class PriorTrain:
    train_split: str = "train"


@dataclass
class PriorPredict:
    batch_size: int = 1000
    precision: int = 3


@dataclass
class PriorConfig:
    train: PriorTrain = field(default_factory=PriorTrain)
    predict: PriorPredict = field(default_factory=PriorPredict)


CONFIG_CLASS = PriorConfig


def fit_prior(scenes: list[list[dict]], task) -> dict:
    """Statistics of a split: `scenes` is a list of object-struct lists (dataset rows' `objects`)."""
    from igbench.errors import UserError

    if not scenes:
        raise UserError("the prior needs at least one training scene")
    counts = [len(s) for s in scenes]
    mean_count = sum(counts) / len(counts)
    count = int(mean_count + 0.5)
    attrs = {}
    for name, decl in task.categorical.items():
        tally = Counter(o[name] for s in scenes for o in s)
        attrs[name] = max(decl.values, key=lambda v: (tally[v], -decl.values.index(v)))
    width = max(counts, default=0)
    arity = task.numeric["loc"].arity  # (x, y, z); (x, y) on a 2-D canvas
    sums = [[0.0] * arity for _ in range(width)]
    seen = [0] * width
    for scene in scenes:
        for k, obj in enumerate(sorted(scene, key=_left_to_right)):
            for axis in range(arity):
                sums[k][axis] += float(obj["loc"][axis])
            seen[k] += 1
    positions = [[v / n for v in s] for s, n in zip(sums, seen)]
    stats = {"n_scenes": len(scenes), "mean_count": mean_count, "count": count, "attrs": attrs,
             "slot_positions": positions, "slot_support": seen}
    rotation = task.numeric.get("rotation")
    if rotation is not None and rotation.required:
        stats["slot_rotations"] = _mean_rotations(scenes, width)
    return stats


def _mean_rotations(scenes: list[list[dict]], width: int) -> list[list[list[float]]]:
    """Per left-to-right slot, the mean of the objects' world rotation matrices (`R_world`)."""
    from scipy.spatial.transform import Rotation

    matrices = [[] for _ in range(width)]
    for scene in scenes:
        for k, obj in enumerate(sorted(scene, key=_left_to_right)):
            matrices[k].append(obj["R_world"])
    return [Rotation.from_matrix(m).mean().as_matrix().tolist() for m in matrices]


def _left_to_right(obj: dict):
    pixel = obj.get("pixel_coords")
    return (float(pixel[0]) if pixel else float(obj["loc"][0]), float(obj["loc"][0]), float(obj["loc"][1]))


def prior_program(stats: dict, task):
    from igbench.program import Obj, Program
    from igbench.rotations import from_matrix

    objects = []
    for k in range(min(stats["count"], len(stats["slot_positions"]))):
        numbers = {"loc": tuple(stats["slot_positions"][k])}
        if "slot_rotations" in stats:
            numbers["rotation"] = from_matrix(stats["slot_rotations"][k], task.rotation_rep)
        objects.append(Obj(dict(stats["attrs"]), numbers))
    return Program(objects)


def train(config: PriorConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    task, rows, folder = load_rows(data, config.train.train_split, columns=["id", "task", "objects"])
    output = Path(output)
    check_resume(output, config, resume, fixed=())
    start_run(output, NAME, config, task.name, data, {"train_fingerprint": split_fingerprint(folder)})
    stats = fit_prior([r["objects"] for r in rows], task)
    write_json_atomic(output / STATS_FILE, stats, sort_keys=False)
    return {"step": 0, "loss": None}


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    from igbench.errors import UserError
    from igbench.program import format_program

    run, config, info = open_run(checkpoint, NAME, PriorConfig, overrides)
    if not (run / STATS_FILE).exists():
        raise UserError(f"{run} holds no {STATS_FILE}; train it first")
    stats = json.loads((run / STATS_FILE).read_text())
    task, rows, _ = load_rows(data, split, columns=["id", "task"])
    check_task(info, task, data)
    text = format_program(prior_program(stats, task), task, precision=config.predict.precision)
    todo, skipped = todo_rows(rows, Path(out), limit)
    append_predictions(Path(out), [{"id": r["id"], "program": text} for r in todo])
    return {"written": len(todo), "skipped": skipped, "out": str(out)}
