"""The one place bpy is imported, so a missing Blender fails with install help instead of a bare error."""
import sys
from pathlib import Path


def _blender_scripts_folder(entry: str) -> bool:
    parts = Path(entry).parts
    return "bpy" in parts and "scripts" in parts


if "bpy" not in sys.modules:
    # A process spawned by one that had imported bpy inherits Blender's script folders on sys.path; the
    # pure-Python `bpy` package in there would shadow the real module. Blender adds them back on import.
    sys.path[:] = [entry for entry in sys.path if not _blender_scripts_folder(entry)]

try:
    import bpy  # noqa: F401,E402
    import mathutils  # noqa: F401,E402
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "igbench renders with Blender's Python module, which failed to import "
        f"({err}). Install it with `pip install bpy==5.0.1` on Python 3.11 (`make setup` does this)."
    ) from err
