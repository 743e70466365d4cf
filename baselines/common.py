"""What the baselines share beyond igbench's run folders (igbench.runs) and readers (igbench.dataset):
their presets and the reference program of a dataset row."""
from __future__ import annotations

from pathlib import Path

CONFIGS_DIR = Path(__file__).parent / "configs"


def preset(name: str) -> str:
    """The path of a baseline preset (baselines/configs/NAME.yaml), as `igbench.config.load_config` takes it."""
    return str(CONFIGS_DIR / f"{name}.yaml")


def reference_program(row: dict, task):
    """The program of a dataset row (from its object structs)."""
    from igbench.scene import object_from_row
    from igbench.program import Program

    return Program([object_from_row(o, task) for o in row["objects"]])
