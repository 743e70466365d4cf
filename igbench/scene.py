"""What a sample is: a program plus the camera and lights it is seen under. Plain data, no bpy.

Camera convention (the one BOP and OpenCV use): `world_to_camera` maps world points into a camera frame
with x right, y down and z forward (into the scene); `K` maps camera points to pixels with the origin
at the top-left corner of the image. World: z up, the ground plane is z = 0.
"""
from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as json_string  # json.dumps' own string encoder (ensure_ascii)

import numpy as np

from igbench.program import PRECISION, Obj, Program, format_object, format_program, object_template
from igbench.task import Task


def object_scale(shape: str, size: float) -> float:
    """Scale of the unit mesh: `size` is the bounding radius in the ground plane, so a cube's half side
    is size/sqrt(2) (as in CLEVR); spheres and cylinders have radius `size`. The object's centre sits at
    z = scale, on the ground."""
    return size / math.sqrt(2.0) if shape == "cube" else size


@dataclass(frozen=True)
class Camera:
    K: tuple[tuple[float, ...], ...]  # 3x3 intrinsics at (width, height)
    world_to_camera: tuple[tuple[float, ...], ...]  # 4x4, OpenCV axes
    width: int
    height: int

    @classmethod
    def look_at(cls, location, target, focal_mm: float, sensor_width_mm: float, width: int, height: int) -> Camera:
        (camera,) = cls.many(look_at_matrices(np.asarray(location, float)[None], target), focal_mm, sensor_width_mm,
                             width, height)
        return camera

    @classmethod
    def many(cls, world_to_camera: np.ndarray, focal_mm: float, sensor_width_mm: float, width: int,
             height: int) -> list[Camera]:
        """Cameras with the given extrinsics (n, 4, 4) and one lens and image size."""
        f_px = focal_mm / sensor_width_mm * width
        K = _tuples([[f_px, 0.0, width / 2], [0.0, f_px, height / 2], [0.0, 0.0, 1.0]])
        width, height = int(width), int(height)
        return [cls(K, tuple(map(tuple, matrix)), width, height) for matrix in np.asarray(world_to_camera, float).tolist()]

    @property
    def K_array(self) -> np.ndarray:
        return np.array(self.K, dtype=float)

    @property
    def extrinsics(self) -> np.ndarray:
        return np.array(self.world_to_camera, dtype=float)

    @property
    def location(self) -> np.ndarray:
        """The camera centre in world coordinates."""
        T = self.extrinsics
        return -T[:3, :3].T @ T[:3, 3]

    def at_resolution(self, width: int, height: int) -> Camera:
        """The same view at another image size (the horizontal field of view is kept)."""
        scale = width / self.width
        K = self.K_array
        K[0, :] *= scale
        K[1, :] *= scale
        K[1, 2] = K[1, 2] - self.height * scale / 2 + height / 2
        return Camera(_tuples(K), self.world_to_camera, int(width), int(height))

    def project(self, points) -> np.ndarray:
        """World points (N, 3) -> (N, 3) of pixel x, pixel y, depth along the optical axis."""
        points = np.atleast_2d(np.asarray(points, float))
        T = self.extrinsics
        cam = points @ T[:3, :3].T + T[:3, 3]
        pix = cam @ self.K_array.T
        return np.column_stack([pix[:, 0] / cam[:, 2], pix[:, 1] / cam[:, 2], cam[:, 2]])

    def ground_directions(self) -> dict[str, np.ndarray]:
        """Unit vectors in the ground plane for 'left', 'right', 'front' and 'behind' as the camera sees them."""
        ((right, behind),) = ground_axes(self.extrinsics[None])
        return {"right": right, "left": -right, "behind": behind, "front": -behind}

    def to_dict(self) -> dict:
        return {"K": [list(r) for r in self.K], "world_to_camera": [list(r) for r in self.world_to_camera],
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(_tuples(d["K"]), _tuples(d["world_to_camera"]), int(d["width"]), int(d["height"]))


@dataclass(frozen=True)
class Light:
    name: str
    type: str  # Blender light type: AREA, POINT, SUN, SPOT
    location: tuple[float, float, float]
    target: tuple[float, float, float]
    energy: float  # watts
    size: float  # area light edge length

    def to_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "location": list(self.location),
                "target": list(self.target), "energy": self.energy, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> Light:
        return cls(d["name"], d["type"], tuple(d["location"]), tuple(d["target"]), float(d["energy"]), float(d["size"]))


@dataclass
class Scene:
    """Everything the executor needs to render a sample, and everything a re-render needs to match it."""

    task: str
    split: str
    index: int
    seed: int
    program: Program
    camera: Camera
    lights: list[Light] = field(default_factory=list)

    @property
    def id(self) -> str:
        return sample_id(self.task, self.split, self.index)

    def to_dict(self, task: Task) -> dict:
        return {
            "id": self.id, "task": self.task, "split": self.split, "index": self.index, "seed": self.seed,
            "objects": [objects_row(o, task) for o in self.program],
            "camera": self.camera.to_dict(), "lights": [light.to_dict() for light in self.lights],
        }

    @classmethod
    def from_dict(cls, d: dict, task: Task) -> Scene:
        program = Program([object_from_row(row, task) for row in d["objects"]])
        return cls(d["task"], d["split"], int(d["index"]), int(d["seed"]), program,
                   Camera.from_dict(d["camera"]), [Light.from_dict(x) for x in d["lights"]])


def sample_id(task: str, split: str, index: int) -> str:
    return f"{task}/{split}/{index:06d}"


def objects_row(obj: Obj, task: Task) -> dict:
    """An object as a flat record: categorical fields as strings, numeric fields as lists (absent -> zeros)."""
    row = {name: obj.attrs[name] for name in task.categorical}
    for name, decl in task.numeric.items():
        row[name] = list(obj.numbers.get(name, (0.0,) * decl.arity))
        if not decl.required:
            row[f"has_{name}"] = name in obj.numbers
    return row


class SceneLines:
    """`json.dumps({**scene.to_dict(task), "program": format_program(scene.program, task)})`, the same bytes,
    without building the dict.

    json.dumps (default separators, ensure_ascii) writes a dict as `{"key": value, ...}`, a string through
    `encode_basestring_ascii`, True/False as true/false, an int and a finite float by their repr, and a
    list as `[a, b]`: exactly Python's repr of a list of ints and finite floats. So the templates below are
    filled with encoded strings, `true`/`false` and the repr of each number. A non-finite float is the one
    number whose repr differs (nan, inf: json writes NaN, Infinity); its repr contains an 'n' and no finite
    float's does, so such a scene falls back to json.dumps. Numbers must be ints or floats, as a Scene holds
    them (tests/test_scene_lines.py checks the bytes on sampled scenes and edge values).

    Objects with the same attributes and fields share two templates, made once: their row's text and their
    program text (program.object_template). The program's numbers are formatted by the template itself, so
    the one rule it cannot apply, a zero never shown with a minus (format_number), sends the object whose
    text shows one to format_object."""

    def __init__(self, task: Task):
        self.task = task
        self.categorical = tuple(task.categorical)
        self.numeric = tuple((name, (0.0,) * decl.arity, decl.required) for name, decl in task.numeric.items())
        self.strings = _Encoded()
        self.objects: dict = {}  # the templates of each kind of object (see _object_templates)
        self.repeated: dict = {}  # texts of the parts that repeat from scene to scene (intrinsics, lights but their location)
        self.number = f"%+.{PRECISION}f"  # format_number's conversion
        self.negative_zero = self.number % -0.0

    def line(self, scene: Scene) -> str:
        numbers = []  # the repr of every number, checked at once for nan and inf
        objects, programs = [], []
        for obj in scene.program:
            values = obj.numbers
            key = _object_key(obj)
            templates = self.objects.get(key) or self._object_templates(obj, key)
            if templates is None:
                return self._dumped(scene)
            row, program = templates
            flat = tuple(itertools.chain.from_iterable(values.values()))
            texts = tuple(map(repr, flat))
            numbers += texts
            objects.append(row % texts)
            text = program % flat
            programs.append(format_object(obj, self.task) if self.negative_zero in text else text)
        camera = scene.camera
        K, world_to_camera = self._repeated(camera.K), repr([list(r) for r in camera.world_to_camera])
        numbers.append(world_to_camera)
        lights = []
        for light in scene.lights:
            location = repr(list(light.location))
            numbers.append(location)
            rest = self._repeated(light.name, light.type, light.target, light.energy, light.size)
            lights.append(rest and rest[0] + location + rest[1])
        if "n" in "".join(numbers) or K is None or None in lights:
            return self._dumped(scene)
        strings, program = self.strings, "\n".join(programs)
        return (f'{{"id": {json_string(scene.id)}, "task": {strings[scene.task]}, "split": {strings[scene.split]}, '
                f'"index": {scene.index!r}, "seed": {scene.seed!r}, "objects": [{", ".join(objects)}], '
                f'"camera": {{"K": {K}, "world_to_camera": {world_to_camera}, "width": {camera.width!r}, '
                f'"height": {camera.height!r}}}, "lights": [{", ".join(lights)}], '
                f'"program": {json_string(program)}}}')

    def marked_templates(self, scene: Scene, kinds: list[Obj]) -> list[bytes] | None:
        """`line`'s text for compiled writers (generators/clevr_lines.py): templates in which one marker character
        stands for each number (MARKERS), in this order: before the objects (the id's digits, index, seed), the
        camera (world_to_camera's 16 numbers; the intrinsics and image size of `scene`'s camera, which every scene
        written with them must share), the program's start, the end; each light of `scene` (its location; the rest
        its own); then the row text of an object of each of `kinds` (its numbers in the order it holds them),
        then their program text, JSON-escaped. None where a part has no such template (a number that is not
        finite, a field the program does not show)."""
        camera, strings = scene.camera, self.strings
        K = self._repeated(camera.K)
        lights = [self._repeated(light.name, light.type, light.target, light.energy, light.size) for light in scene.lights]
        templates = [self.objects.get(key) or self._object_templates(obj, key)
                     for obj, key in ((obj, _object_key(obj)) for obj in kinds)]
        if K is None or None in lights or None in templates:
            return None
        given = [K, scene.task, scene.split, *(text for pair in lights + templates for text in pair)]
        if any(marker in text for text in given for marker in MARKERS):  # (JSON escapes them: never in practice)
            return None
        location = "[" + ", ".join([REPR] * 3) + "]"
        world_to_camera = "[" + ", ".join(["[" + ", ".join([REPR] * 4) + "]"] * 4) + "]"
        parts = [f'{{"id": {json_string(f"{scene.task}/{scene.split}/")[:-1]}{ID}", "task": {strings[scene.task]}, '
                 f'"split": {strings[scene.split]}, "index": {INT}, "seed": {INT}, "objects": [',
                 f'], "camera": {{"K": {K}, "world_to_camera": {world_to_camera}, "width": {camera.width!r}, '
                 f'"height": {camera.height!r}}}, "lights": [',
                 '], "program": "', '"}', *(before + location + after for before, after in lights)]
        rows = [_marked(row, {"%s": REPR}) for row, _ in templates]
        programs = [_marked(json_string(program)[1:-1], {self.number: FIXED3}) for _, program in templates]
        if None in rows or None in programs:
            return None
        return [part.encode("ascii") for part in parts + rows + programs]

    def _dumped(self, scene: Scene) -> str:
        return json.dumps({**scene.to_dict(self.task), "program": format_program(scene.program, self.task)})

    def _object_templates(self, obj: Obj, key):
        """The %-templates of the row and the program text of objects like `obj`, both over the repr (row) or
        the value (program) of each number in the order obj.numbers holds them; None for an object whose
        numeric fields are not the task's or not in its order (json.dumps then writes the scene)."""
        values = obj.numbers
        if list(values) != [name for name, _, _ in self.numeric if name in values]:
            return None
        if len(self.objects) > 4096:  # bounded, whatever the scenes hold
            self.objects.clear()
        fields = [f"{_literal(name)}: {_literal(obj.attrs[name])}" for name in self.categorical]
        for name, zeros, required in self.numeric:
            holes = ", ".join(["%s"] * len(values[name])) if name in values else ", ".join(map(repr, zeros))
            fields.append(f"{_literal(name)}: [{holes}]")
            if not required:
                fields.append(f'{_literal("has_" + name)}: {"true" if name in values else "false"}')
        row = "{" + ", ".join(fields) + "}"
        templates = self.objects[key] = (row, object_template(obj, self.task, self.number))
        return templates

    def _repeated(self, *parts):
        """The text of a camera's intrinsics, or of a light before and after its location, made once for the
        same objects (a split's cameras share one K, its lights their constant fields); None where a number in
        it is not finite. Keyed by identity, not value: -0.0 == 0.0 and 3 == 3.0, but their texts differ. The
        entry keeps its objects alive, so no other object can take their ids while it is kept."""
        key = tuple(map(id, parts))
        entry = self.repeated.get(key)
        if entry is None:
            if len(self.repeated) > 64:  # bounded, whatever the scenes hold
                self.repeated.clear()
            if len(parts) == 1:  # intrinsics
                numbers = text = repr([list(row) for row in parts[0]])
            else:
                name, kind, target, energy, size = parts
                numbers = f"{list(target)!r}{energy!r}{size!r}"
                text = (f'{{"name": {json_string(name)}, "type": {json_string(kind)}, "location": ',
                        f', "target": {list(target)!r}, "energy": {energy!r}, "size": {size!r}}}')
            entry = self.repeated[key] = (parts, None if "n" in numbers else text)
        return entry[1]


# The markers of SceneLines.marked_templates: a number written as repr, one written as the program's %+.3f, an
# integer, and an integer zero-padded to 6 digits (the sample id's).
REPR, FIXED3, INT, ID = "\x00", "\x01", "\x02", "\x03"
MARKERS = (REPR, FIXED3, INT, ID)
_CONVERSION = re.compile(r"%(?:%|s|\+\.\d+f|\.0s)?")


def _object_key(obj: Obj) -> tuple:
    """What decides an object's templates: its attributes, its numeric fields and their lengths."""
    return tuple(obj.attrs.items()), tuple(obj.numbers), tuple(map(len, obj.numbers.values()))


def _marked(template: str, holes: dict[str, str]) -> str | None:
    """A %-template with each conversion in `holes` as its marker and each '%%' as '%'; None for another one."""
    parts, at = [], 0
    for match in _CONVERSION.finditer(template):
        conversion = match.group(0)
        if conversion != "%%" and conversion not in holes:
            return None
        parts += [template[at:match.start()], "%" if conversion == "%%" else holes[conversion]]
        at = match.end()
    return "".join(parts) + template[at:]


def _literal(string: str) -> str:
    """A string as a %-template writes it: json-encoded, each '%' doubled."""
    return json_string(string).replace("%", "%%")


class _Encoded(dict):
    """json.dumps' text of each string, encoded once (attribute values repeat from object to object)."""

    def __missing__(self, text: str) -> str:
        if len(self) > 4096:  # bounded, whatever the scenes hold
            self.clear()
        encoded = self[text] = json_string(text)
        return encoded


def object_from_row(row: dict, task: Task) -> Obj:
    attrs = {name: row[name] for name in task.categorical}
    numbers = {
        name: tuple(float(v) for v in row[name])
        for name in task.numeric
        if row.get(f"has_{name}", True)
    }
    return Obj(attrs, numbers)


# Cameras are the same on every CPU: each dot product of 3-vectors (the norms, `rotation @ location`) is written
# out as elementwise products and sums in one fixed order, (x0 + x2) + x1, never fused. Through BLAS (np.linalg.norm,
# `@`) the last bits depend on the CPU and on the data's alignment: OpenBLAS fuses multiply-adds on some CPUs and
# sums in another order on others. This order, unfused, is what its kernels computed for aligned rows on the
# machine that sampled the pinned programs (tests/fixtures/clevr_programs.json), so those cameras are kept.


def look_at_matrices(locations: np.ndarray, target) -> np.ndarray:
    """world_to_camera (n, 4, 4) of cameras at `locations` (n, 3) looking at `target`, z up (OpenCV axes)."""
    forward = _units(np.asarray(target, float) - locations)
    right = _units(_cross(forward, np.array([0.0, 0.0, 1.0])))
    down = _cross(forward, right)
    rotation = np.stack([right, down, forward], axis=1)
    world_to_camera = np.zeros((len(locations), 4, 4))
    world_to_camera[:, :3, :3] = rotation
    world_to_camera[:, :3, 3] = _dots(-rotation, locations[:, None, :])
    world_to_camera[:, 3, 3] = 1.0
    return world_to_camera


def ground_axes(world_to_camera: np.ndarray) -> np.ndarray:
    """(n, 2, 3): the right and behind unit vectors in the ground plane of each camera (n, 4, 4)."""
    flat = np.array([1.0, 1.0, 0.0])
    return np.stack([_units(world_to_camera[:, 0, :3] * flat), _units(world_to_camera[:, 2, :3] * flat)], axis=1)


def _units(v: np.ndarray) -> np.ndarray:
    """Rows of `v` (n, 3) over their norms."""
    return v / np.sqrt(_dots(v, v))[..., None]


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of the 3-vectors along the last axis, summed as (x0 + x2) + x1 (see above)."""
    p = a * b
    return (p[..., 0] + p[..., 2]) + p[..., 1]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.cross of rows of 3-vectors: the same products and differences, without its general-case overhead."""
    (a0, a1, a2), (b0, b1, b2) = np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0)
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _tuples(matrix) -> tuple[tuple[float, ...], ...]:
    return tuple(map(tuple, np.asarray(matrix, float).tolist()))
