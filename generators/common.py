"""Pieces the samplers share: jittered cameras and lights, uniform rotations, object and material pools."""
from __future__ import annotations

import numpy as np

from igbench.errors import UserError
from igbench.scene import Camera, Light
from igbench.task import Task


def jittered_camera(spec: dict, resolution, rng) -> Camera:
    """A camera at `location` plus a uniform offset in [-jitter, jitter] per axis, looking at `look_at`."""
    location = np.asarray(spec["location"], float) + rng.uniform(-spec["jitter"], spec["jitter"], 3)
    width, height = resolution
    return Camera.look_at(location, spec["look_at"], spec["focal_mm"], spec["sensor_width_mm"], width, height)


def shell_camera(spec: dict, resolution, rng) -> Camera:
    """A camera on a spherical shell around `look_at`: radius, elevation and azimuth drawn uniformly."""
    radius = rng.uniform(*spec["radius"])
    elevation = np.radians(rng.uniform(*spec["elevation_deg"]))
    azimuth = rng.uniform(0, 2 * np.pi)
    target = np.asarray(spec["look_at"], float)
    location = target + radius * np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                           np.sin(elevation)])
    width, height = resolution
    return Camera.look_at(location, target, spec["focal_mm"], spec["sensor_width_mm"], width, height)


def jittered_lights(spec: dict, rng, names=("key", "fill", "back")) -> list[Light]:
    lights = []
    for name in names:
        decl = spec[name]
        location = np.asarray(decl["location"], float) + rng.uniform(-spec["jitter"], spec["jitter"], 3)
        lights.append(Light(name, "AREA", tuple(location.tolist()), (0.0, 0.0, 0.0), float(decl["energy"]),
                            float(decl["size"])))
    return lights


def place_with_retries(place, tries: int, what: str, hint: str):
    """The first layout `place()` manages (it returns None when an object does not fit) in `tries` tries."""
    for _ in range(tries):
        program = place()
        if program is not None:
            return program
    raise UserError(f"{what}: could not place the objects in {tries} tries; {hint}")


def uniform_rotation(rng) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3) (normalised Gaussian quaternion)."""
    from scipy.spatial.transform import Rotation

    q = rng.normal(size=4)
    return Rotation.from_quat(q / np.linalg.norm(q)).as_matrix()


def object_pool(task: Task, rules: dict) -> list[str]:
    """The library objects a split draws from: `all`, `id` (minus the held-out ones) or `heldout`."""
    library = task.library
    which = rules.get("objects", "all")
    if which == "all":
        names = library.names
    elif which == "id":
        names = [n for n in library.names if n not in library.heldout]
    elif which == "heldout":
        names = list(library.heldout)
    else:
        names = list(which)
    if not names:
        raise UserError(f"{task.name}: the split's object pool '{which}' is empty for this object library")
    return names
