"""Pieces the samplers share: jittered cameras and lights, uniform rotations, object and material pools."""
from __future__ import annotations

import math

import numpy as np

from igbench.errors import UserError
from igbench.scene import Camera, Light, look_at_matrices
from igbench.task import Task


LIGHTS = ("key", "fill", "back")


def jittered_camera(spec: dict, resolution, rng) -> Camera:
    """A camera at `location` plus a uniform offset in [-jitter, jitter] per axis, looking at `look_at`."""
    (camera,) = jittered_cameras(spec, resolution, rng.uniform(-spec["jitter"], spec["jitter"], 3)[None])
    return camera


def jittered_cameras(spec: dict, resolution, offsets: np.ndarray) -> list[Camera]:
    """jittered_camera for many drawn offsets (n, 3) at once."""
    width, height = resolution
    return Camera.many(jittered_camera_matrices(spec, offsets), spec["focal_mm"], spec["sensor_width_mm"], width, height)


def jittered_camera_matrices(spec: dict, offsets: np.ndarray) -> np.ndarray:
    """world_to_camera (n, 4, 4) of the cameras at `location` plus each offset (n, 3), looking at `look_at`."""
    return look_at_matrices(np.asarray(spec["location"], float) + offsets, spec["look_at"])


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


def jittered_lights(spec: dict, rng, names=LIGHTS) -> list[Light]:
    """Area lights at their `location` plus a uniform offset in [-jitter, jitter] per axis, drawn in `names` order."""
    (lights,) = jittered_light_sets(spec, np.stack([rng.uniform(-spec["jitter"], spec["jitter"], 3) for _ in names])[None],
                                    names)
    return lights


def jittered_light_sets(spec: dict, offsets: np.ndarray, names=LIGHTS) -> list[list[Light]]:
    """jittered_lights for many drawn offsets (n, len(names), 3) at once."""
    return light_sets(spec, jittered_light_locations(spec, offsets, names), names)


def jittered_light_locations(spec: dict, offsets: np.ndarray, names=LIGHTS) -> np.ndarray:
    """The lights' `location`s plus each drawn offset (n, len(names), 3)."""
    return np.array([spec[name]["location"] for name in names], float) + offsets


def light_sets(spec: dict, locations: np.ndarray, names=LIGHTS) -> list[list[Light]]:
    """The area lights of `spec` at each row of locations (n, len(names), 3)."""
    decls = [spec[name] for name in names]
    return [[Light(name, "AREA", tuple(location), (0.0, 0.0, 0.0), float(decl["energy"]), float(decl["size"]))
             for name, decl, location in zip(names, decls, lights)] for lights in locations.tolist()]


def place_with_retries(place, tries: int, what: str, hint: str):
    """The first layout `place()` manages (it returns None when an object does not fit) in `tries` tries."""
    for _ in range(tries):
        program = place()
        if program is not None:
            return program
    raise UserError(f"{what}: could not place the objects in {tries} tries; {hint}")


def uniform_rotation(rng) -> np.ndarray:
    """A rotation matrix drawn uniformly from SO(3): a Gaussian quaternion, which scipy normalises (in its own
    compiled arithmetic: np.linalg.norm's BLAS dot could round differently on another CPU)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(rng.normal(size=4)).as_matrix()


def distance(a, b) -> float:
    """|a - b| of two 3-D points, summed in one fixed order: the same bits on every CPU (np.linalg.norm's BLAS
    dot may fuse and reorder)."""
    d0, d1, d2 = (float(x) - float(y) for x, y in zip(a, b))
    return math.sqrt((d0 * d0 + d1 * d1) + d2 * d2)


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
