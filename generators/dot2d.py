"""The 2-D dot sampler: a position on a unit canvas, from checkerboard cells or uniformly.

`positions: checkerboard_even` draws uniformly inside a random cell whose (row + col) is even,
`checkerboard_odd` inside the other cells, `uniform` anywhere (all within `margin` of the border).
The camera is the identity with K = diag(W, W, 1): a point (x, y, 1) projects to pixel (x W, y W).
"""
from __future__ import annotations

import numpy as np

from igbench.errors import UserError
from igbench.program import Obj, Program
from igbench.scene import Camera, Scene
from igbench.task import Task


def canvas_camera(width: int, height: int) -> Camera:
    K = ((float(width), 0.0, 0.0), (0.0, float(width), 0.0), (0.0, 0.0, 1.0))
    return Camera(K, tuple(tuple(float(v) for v in row) for row in np.eye(4)), width, height)


def in_cells(x: float, y: float, cells: int, parity: int) -> bool:
    row, col = min(int(y * cells), cells - 1), min(int(x * cells), cells - 1)
    return (row + col) % 2 == parity


def sample(task: Task, split: str, index: int, seed: int) -> Scene:
    rules = task.split_rules(split)
    rng = np.random.default_rng(seed)
    cells, margin, positions = rules["cells"], rules["margin"], rules["positions"]
    if positions == "uniform":
        x, y = rng.uniform(margin, 1 - margin, 2)
    elif positions in ("checkerboard_even", "checkerboard_odd"):
        parity = 0 if positions.endswith("even") else 1
        choices = [(r, c) for r in range(cells) for c in range(cells) if (r + c) % 2 == parity]
        row, col = choices[int(rng.integers(len(choices)))]
        x = np.clip((col + rng.uniform()) / cells, margin, 1 - margin)
        y = np.clip((row + rng.uniform()) / cells, margin, 1 - margin)
    else:
        raise UserError(f"{task.name}/{split}: unknown positions rule '{positions}' "
                        "(uniform, checkerboard_even, checkerboard_odd)")
    width, height = (int(v) for v in task.default_resolution.lower().split("x"))
    program = Program([Obj({}, {"loc": (float(x), float(y))})])
    return Scene(task.name, split, index, seed, program, canvas_camera(width, height), [])
