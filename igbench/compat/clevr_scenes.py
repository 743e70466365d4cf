"""Reading scenes in the original CLEVR scene-JSON schema, so they re-render with igbench.

Each scene lists `objects` with shape, color, material, size, 3d_coords and rotation. The original
generator drew `rotation` as 360 * random() and handed that number to Blender as radians, so the value in
the JSON is the yaw in radians, not degrees: igbench reads it that way, then folds cube yaws into
[-pi/4, pi/4) (a cube's 90-degree symmetry) and drops the yaw of spheres and cylinders, as its own
programs do. The JSON holds no camera or lights: scenes render under the task's base camera and lights,
unjittered.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from igbench.errors import UserError
from igbench.program import Obj, Program
from igbench.scene import Camera, Light, Scene
from igbench.task import Task

FIELDS = ("shape", "color", "material", "size", "3d_coords", "rotation")


def read_clevr_scenes(path: str | Path, task: Task, split: str) -> list[Scene]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not JSON: {err}") from None
    scenes = data.get("scenes", [data]) if isinstance(data, dict) else None
    if not scenes or not all(isinstance(s, dict) for s in scenes):
        raise UserError(f"{path}: expected CLEVR scenes ({{'scenes': [...]}} or one scene object)")
    camera, lights = base_view(task)
    programs = []
    for number, raw in enumerate(scenes):
        if "objects" not in raw:
            raise UserError(f"{path}: scene {number} lacks 'objects'")
        program = Program([_object(o, task, path, number, k) for k, o in enumerate(raw["objects"])])
        programs.append((int(raw.get("image_index", number)), program))
    programs.sort(key=lambda item: item[0])  # sample i is the i-th scene in image_index order
    return [Scene(task.name, split, i, image_index, program, camera, lights)
            for i, (image_index, program) in enumerate(programs)]


def base_view(task: Task) -> tuple[Camera, list[Light]]:
    rules = task.spec["sampling"]
    cam = rules["camera"]
    width, height = rules["visibility_resolution"]
    camera = Camera.look_at(cam["location"], cam["look_at"], cam["focal_mm"], cam["sensor_width_mm"], width, height)
    lights = [Light(name, "AREA", tuple(map(float, decl["location"])), (0.0, 0.0, 0.0), float(decl["energy"]),
                    float(decl["size"]))
              for name, decl in rules["lights"].items() if isinstance(decl, dict)]
    return camera, lights


def _object(raw, task: Task, path: Path, scene: int, k: int) -> Obj:
    where = f"{path}: scene {scene}, object {k}"
    if not isinstance(raw, dict):
        raise UserError(f"{where} is not an object")
    missing = [f for f in FIELDS if f not in raw]
    if missing:
        raise UserError(f"{where} lacks {', '.join(repr(m) for m in missing)}")
    attrs = {}
    for name in ("shape", "color", "material", "size"):
        value = task.categorical[name].normalise(str(raw[name]))
        if value is None:
            raise UserError(f"{where}: unknown {name} '{raw[name]}'")
        attrs[name] = value
    coords = raw["3d_coords"]
    if not (isinstance(coords, list) and len(coords) == 3):
        raise UserError(f"{where}: '3d_coords' must be [x, y, z]")
    numbers = {"loc": tuple(float(c) for c in coords)}
    period = task.spec.get("rotation_period_deg", {}).get(attrs["shape"])
    if period:
        half = math.radians(period) / 2
        yaw = float(raw["rotation"])  # radians, whatever the original's variable name suggested
        numbers["rotation"] = (float(np.mod(yaw + half, 2 * half) - half),)
    return Obj(attrs, numbers)
