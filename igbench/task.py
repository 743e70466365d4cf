"""Tasks: the vocabulary, appearance and split rules of a family of scenes, loaded from YAML.

A task file (igbench/tasks/<name>.yaml, or any path) declares the categorical fields of an object with
their canonical values and synonyms, its numeric fields with their arity, and one entry per split whose
keys override the shared `sampling` rules. Splits are data: a user adds one by editing the YAML.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import yaml

from igbench.errors import UserError, choices, did_you_mean

TASKS_DIR = Path(__file__).parent / "tasks"
# What a task is, declared by its YAML's `kind`; the dataset's columns, the scorer, the leaderboard's
# columns and the models that can read it follow from it (each looks up `task.kind`, nothing is guessed).
KINDS = {
    "scene_set": "a set of objects on a ground plane (CLEVR): Hungarian matching in 3-D, attributes, counts",
    "pose": "objects of a mesh library in full 3-D poses (so3, 6dof): pose annotations, BOP's pose errors",
    "canvas": "points on a 2-D canvas (dot2d): position error in pixels",
}


@dataclass(frozen=True)
class CategoricalField:
    name: str
    values: tuple[str, ...]
    synonyms: dict[str, str] = field(default_factory=dict)

    def normalise(self, raw: str) -> str | None:
        """The canonical value for `raw` (case-insensitive, synonyms resolved), or None if unknown."""
        key = raw.strip().lower()
        if key in self.values:
            return key
        return self.synonyms.get(key)


@dataclass(frozen=True)
class NumericField:
    name: str
    arity: int
    required: bool


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    generator: str
    kind: str  # one of KINDS
    categorical: dict[str, CategoricalField]
    numeric: dict[str, NumericField]
    splits: dict[str, dict]
    spec: dict  # the whole YAML, for the generator and the renderer
    path: Path
    rotation_rep: str | None = None  # pose tasks: the dataset's rotation representation (igbench.rotations)
    library: object = None  # pose tasks: the igbench.objects.library.Library the objects come from
    assets: str | None = None  # the --assets folder the library was read from, if any

    @property
    def default_resolution(self) -> str:
        return str(self.spec.get("default_resolution", "480x320"))

    @property
    def renderer(self) -> str:
        """'blender' (Cycles), or 'canvas' for tasks drawn in 2-D with numpy."""
        return str(self.spec.get("renderer", "blender"))

    @property
    def field_names(self) -> list[str]:
        """Canonical attribute order: categorical fields, then numeric fields, as declared."""
        return [*self.categorical, *self.numeric]

    def split_rules(self, split: str) -> dict:
        """The task's `sampling` rules with the split's own keys laid over them."""
        self.check_split(split)
        rules = copy.deepcopy(self.spec.get("sampling", {}))
        rules.update(copy.deepcopy(self.splits[split]))
        return rules

    def check_split(self, split: str) -> None:
        if split not in self.splits:
            raise UserError(
                f"task '{self.name}' has no split '{split}'{did_you_mean(split, self.splits)}; "
                f"its splits: {choices(self.splits)} (add one in {self.path})"
            )


def available_tasks() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def load_task(name_or_path: str, rotation_rep: str | None = None, assets: str | None = None) -> Task:
    """Load a built-in task by name (`clevr`) or a task YAML by path.

    Pose tasks take the dataset's rotation representation (default: the YAML's `default_rotation_rep`)
    and an optional `assets` folder whose manifest replaces the default object library."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = TASKS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            known = available_tasks()
            raise UserError(f"unknown task '{name_or_path}'{did_you_mean(name_or_path, known)}; tasks: {choices(known)}")
    task = _load_task_file(path.resolve())
    return _resolve(task, rotation_rep, assets)


def _resolve(task: Task, rotation_rep: str | None, assets: str | None) -> Task:
    rotation = task.numeric.get("rotation")
    takes_rep = rotation is not None and rotation.arity == 0
    if rotation_rep and not takes_rep:
        raise UserError(f"--rotation-rep applies to tasks with 3-D rotations (so3, 6dof); '{task.name}' has none")
    uses_library = any(f.values == ("library",) for f in task.categorical.values())
    if assets and not uses_library:
        raise UserError(f"--assets applies to tasks with an object library (so3, 6dof); '{task.name}' has none")
    if not (takes_rep or uses_library):
        return task
    numeric, categorical, library, rep = dict(task.numeric), dict(task.categorical), None, None
    if takes_rep:
        from igbench.rotations import ARITY, check_rep

        rep = check_rep(rotation_rep or task.spec.get("default_rotation_rep", "euler"))
        numeric["rotation"] = NumericField("rotation", ARITY[rep], rotation.required)
    if uses_library:
        from igbench.objects.library import load_library

        library = load_library(assets)
        categorical = {name: CategoricalField(name, tuple(library.names), f.synonyms) if f.values == ("library",) else f
                       for name, f in categorical.items()}
    return replace(task, numeric=numeric, categorical=categorical, rotation_rep=rep, library=library,
                   assets=str(Path(assets).resolve()) if assets else None)


@lru_cache(maxsize=None)
def _load_task_file(path: Path) -> Task:
    try:
        spec = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"task file not found: {path}") from None
    except yaml.YAMLError as err:
        raise UserError(f"task file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise UserError(f"task file {path} must hold a mapping")
    missing = [k for k in ("name", "generator", "kind", "categorical", "numeric", "splits") if k not in spec]
    if missing:
        raise UserError(f"task file {path} lacks {', '.join(missing)}"
                        + (f" (kind: one of {choices(KINDS)})" if "kind" in missing else ""))
    if spec["kind"] not in KINDS:
        raise UserError(f"task file {path}: unknown kind '{spec['kind']}'{did_you_mean(str(spec['kind']), KINDS)}; "
                        f"kinds: {choices(KINDS)}")
    categorical = {}
    for name, decl in (spec["categorical"] or {}).items():
        values = ("library",) if decl["values"] == "library" else tuple(decl["values"])
        synonyms = {str(k).lower(): v for k, v in (decl.get("synonyms") or {}).items()}
        bad = [v for v in synonyms.values() if v not in values]
        if bad:
            raise UserError(f"task file {path}: synonyms of '{name}' point to unknown values {bad}")
        categorical[name] = CategoricalField(name, values, synonyms)
    numeric = {  # arity 0: set per dataset from its rotation representation (see _resolve)
        name: NumericField(name, 0 if decl["arity"] == "rotation_rep" else int(decl["arity"]), bool(decl.get("required", True)))
        for name, decl in (spec["numeric"] or {}).items()
    }
    clash = set(categorical) & set(numeric)
    if clash:
        raise UserError(f"task file {path}: fields declared both categorical and numeric: {sorted(clash)}")
    splits = {str(k): dict(v or {}) for k, v in spec["splits"].items()}
    return Task(
        name=spec["name"],
        description=str(spec.get("description", "")).strip(),
        generator=spec["generator"],
        kind=spec["kind"],
        categorical=categorical,
        numeric=numeric,
        splits=splits,
        spec=spec,
        path=path,
    )
