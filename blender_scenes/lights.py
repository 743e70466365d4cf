"""Key, fill and back lights from the scene's Light records, aimed at their targets."""
from __future__ import annotations

from igbench.blender_scenes._bpy import bpy, mathutils
from igbench.scene import Light


class LightRig:
    """Keeps one Blender light per name and updates it per scene, so nothing is re-created per image."""

    def __init__(self, collection):
        self._collection = collection
        self._objects: dict[str, object] = {}

    def apply(self, lights: list[Light]) -> None:
        wanted = {light.name for light in lights}
        for name in list(self._objects):
            if name not in wanted:
                obj = self._objects.pop(name)
                data = obj.data
                bpy.data.objects.remove(obj)
                bpy.data.lights.remove(data)
        for light in lights:
            obj = self._objects.get(light.name)
            if obj is None or obj.data.type != light.type:
                data = bpy.data.lights.new(f"igbench_{light.name}", light.type)
                obj = bpy.data.objects.new(f"igbench_{light.name}", data)
                self._collection.objects.link(obj)
                self._objects[light.name] = obj
            obj.data.energy = light.energy
            if light.type == "AREA":
                obj.data.size = light.size
            location = mathutils.Vector(light.location)
            obj.location = location
            obj.rotation_euler = (mathutils.Vector(light.target) - location).to_track_quat("-Z", "Y").to_euler()
