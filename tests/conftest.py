"""Shared checks: every scores.json and render_config.json the suite writes conforms to its JSON Schema."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from igbench.formats import validation_errors

SCHEMA_OF = {"scores.json": "scores", "base_scores.json": "scores", "render_config.json": "render_config"}


def assert_conforms(data, name: str | None = None) -> None:
    """`data` (a dict, or the path of a file named as in SCHEMA_OF) conforms to the schema `name`."""
    where = "data"
    if isinstance(data, (str, Path)):
        where, name = str(data), name or SCHEMA_OF[Path(data).name]
        data = json.loads(Path(data).read_text())
    errors = validation_errors(data, name)
    assert not errors, f"{where} breaks the {name} schema: " + "; ".join(errors[:5])


@pytest.fixture
def conforms():
    return assert_conforms


@pytest.fixture(scope="session", autouse=True)
def every_written_file_conforms(tmp_path_factory):
    """After the session: every such file under the session's temporary folders conforms."""
    yield
    root = Path(tmp_path_factory.getbasetemp())
    broken = []
    for filename, name in SCHEMA_OF.items():
        for path in sorted(root.rglob(filename)):
            errors = validation_errors(json.loads(path.read_text()), name)
            if errors:
                broken.append(f"{path.relative_to(root)}: {errors[0]}")
    assert not broken, f"{len(broken)} written file(s) break their schema: " + "; ".join(broken[:5])


@pytest.fixture(scope="session", autouse=True)
def caches_in_the_session_folder(tmp_path_factory):
    """igbench's caches (frozen-encoder features, render caches) go under the session's temporary folder,
    not the user's ~/.cache, unless a test chooses its own."""
    patch = pytest.MonkeyPatch()
    patch.setenv("IGBENCH_CACHE", str(tmp_path_factory.mktemp("igbench-cache")))
    yield
    patch.undo()
