"""Typed configs: nested dataclasses filled from a YAML preset, then from `key=value` overrides.

    config = load_config(RunConfig, "tiny", ["train.max_steps=50", "model.numeric=float"])

A preset is a name of a file in igbench/configs/ (`tiny` -> igbench/configs/tiny.yaml) or a path to a
YAML file. Every key must be a field of the dataclass: an unknown key, in a file or an override, is a
UserError that names the closest known key. Values are type-checked against the field annotations, so
`train.max_steps=ten` fails at once instead of deep inside a training loop.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import yaml

from igbench.errors import UserError, choices, did_you_mean

CONFIGS_DIR = Path(__file__).parent / "configs"


def available_presets() -> list[str]:
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.yaml"))


def preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.exists():
            raise UserError(f"config file not found: {path}")
        return path
    path = CONFIGS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = available_presets()
        raise UserError(f"unknown config '{name_or_path}'{did_you_mean(name_or_path, known)}; presets: {choices(known)}")
    return path


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of config keys")
    return data


def load_config(cls, preset: str | None, overrides: list[str] = (), base: dict | None = None):
    """Defaults of `cls`, then `base` (a dict, e.g. a saved run config), then the preset, then overrides."""
    data: dict = {}
    if base:
        _merge(data, base)
    if preset:
        path = preset_path(preset)
        _merge(data, read_yaml(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override '{item}' must look like key=value (e.g. train.max_steps=100)")
        value = yaml.safe_load(raw) if raw.strip() else None
        _set_dotted(data, key.strip(), value)
    return from_dict(cls, data)


def from_dict(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise UserError(f"config key '{prefix.rstrip('.')}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            full = f"{prefix}{key}"
            hint = did_you_mean(full, all_keys(cls, prefix)) or did_you_mean(key, list(fields))
            raise UserError(f"unknown config key '{full}'{hint}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}")
    return cls(**kwargs)


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def all_keys(cls, prefix: str = "") -> list[str]:
    """Every dotted key a config class accepts (for 'did you mean')."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            keys.extend(all_keys(typ, f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _coerce(typ, value, key: str):
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(typ)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0] if errors else f"config key '{key}' cannot be {value!r}")
    if dataclasses.is_dataclass(typ):
        return from_dict(typ, value if value is not None else {}, f"{key}.")
    if origin is typing.Literal:
        allowed = typing.get_args(typ)
        if value not in allowed:
            raise UserError(f"config key '{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}"
                            f"{did_you_mean(value, allowed)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' must be a list, got {value!r}")
        (item,) = typing.get_args(typ)[:1] or (typing.Any,)
        return [_coerce(item, v, key) for v in value]
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if typ is typing.Any:
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config key '{key}' must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config key '{key}' must be an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads '2e-5' as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config key '{key}' must be a number, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise UserError(f"config key '{key}' must be a string, got {value!r}")
    return value
