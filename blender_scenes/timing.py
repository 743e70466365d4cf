"""Timing Cycles' render stages from Blender's render handlers (for `igbench bench render`)."""
from __future__ import annotations

import time

from igbench.blender_scenes._bpy import bpy


class StageClock:
    """Splits each Cycles render into sync (scene/BVH/device update), sampling (+ denoising) and writing,
    from the timestamps of Blender's render handlers and Cycles' status messages."""

    def __init__(self):
        self.events: list[tuple[float, str, str]] = []
        self._handlers = []

    def __enter__(self):
        def make(kind):
            @bpy.app.handlers.persistent
            def handler(arg, *_):
                name = arg if isinstance(arg, str) else getattr(arg, "name", "")
                self.events.append((time.perf_counter(), kind, name))
            return handler

        for kind in ("render_init", "render_stats", "render_write", "render_complete"):
            h = make(kind)
            getattr(bpy.app.handlers, kind).append(h)
            self._handlers.append((kind, h))
        return self

    def __exit__(self, *exc):
        for kind, h in self._handlers:
            if h in getattr(bpy.app.handlers, kind):
                getattr(bpy.app.handlers, kind).remove(h)

    def split(self) -> dict:
        """Seconds of the last Cycles ('rgb') render: sync, sampling, write (0 where a mark is missing)."""
        start = next((t for t, kind, name in reversed(self.events) if kind == "render_init" and name == "rgb"), None)
        if start is None:
            return {}
        after = [(t, kind, name) for t, kind, name in self.events if t >= start]
        first_sample = next((t for t, kind, msg in after if kind == "render_stats" and "| Sample " in msg), None)
        finished = next((t for t, kind, msg in after if kind == "render_stats" and msg.endswith("| Finished")), None)
        written = next((t for t, kind, name in after if kind == "render_write"), None)
        if first_sample is None or finished is None or written is None:
            return {}
        return {"sync": first_sample - start, "sampling": finished - first_sample, "write": written - finished}
