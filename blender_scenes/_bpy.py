"""The one place bpy is imported, so a missing Blender fails with install help instead of a bare error."""
try:
    import bpy  # noqa: F401
    import mathutils  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "igbench renders with Blender's Python module, which failed to import "
        f"({err}). Install it with `pip install bpy==5.0.1` on Python 3.11 (`make setup` does this)."
    ) from err
