"""The versioned files igbench writes, their JSON Schemas (igbench/schemas/, draft 2020-12) and checks.

    scores.json          `schema_version` (SCORES_SCHEMA_VERSION), `higher_is_better` per metric
    render_config.json   `format_version` (written by igbench.render.job)

A change to either file's layout raises its version and its schema together.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

SCHEMAS_DIR = Path(__file__).parent / "schemas"
SCORES_SCHEMA_VERSION = 1

# Which way each metric of scores.json is better (docs/metrics.md). Keys of a split's results that are
# counts or records rather than metrics have no direction.
_HIGHER = re.compile(r"^(parse_rate|count_acc|attr_acc|(precision|recall|f1|ap)@.+|(rot|add|adds|add_adds)_recall@.+"
                     r"|mssd_ar|mspd_ar|psnr|ssim|mask_iou)(_median)?$")
_LOWER = re.compile(r"^(count_abs_err|loc_l2|rot_err_deg|trans_err|add_rel|adds_rel|mssd_rel|mspd_px|pos_err|pos_err_px"
                    r"|lpips|flip)(_mean|_median)?$")
NOT_METRICS = frozenset({"n", "rot_pairs", "objects", "ci95", "failures", "thresholds", "render"})


def metric_value(split_results: dict, key: str):
    """The metric `key` of one split's results in scores.json, None where it has none: a key as it stands
    (`f1@0.5` holds a dot of its own), else a dotted path into a nested group (`attr_acc.color`, `render.psnr`)."""
    if key in split_results:
        return split_results[key]
    node = split_results
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def higher_is_better(key: str) -> bool:
    """True when a higher value of the metric `key` is better, False when lower is."""
    if _HIGHER.match(key):
        return True
    if _LOWER.match(key):
        return False
    raise ValueError(f"scores.json metric '{key}' has no declared direction (igbench.formats)")


def metric_directions(results: dict) -> dict[str, bool]:
    """`higher_is_better` of scores.json: every metric named in any split's results."""
    keys = {key for group in results.values() for key in group if key not in NOT_METRICS}
    return {key: higher_is_better(key) for key in sorted(keys)}


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """The JSON Schema of `name` ('scores' or 'render_config')."""
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text())


def validation_errors(data: dict, name: str) -> list[str]:
    """Where `data` breaks the schema `name`, one line each ('path: message'); empty when it conforms."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(name), format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}"
            for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]

