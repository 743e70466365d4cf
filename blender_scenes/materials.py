"""CLEVR's two materials: matte rubber and glossy metal, one Blender material per (material, colour)."""
from __future__ import annotations

from igbench.blender_scenes._bpy import bpy

# Principled BSDF inputs per material name.
MATERIALS = {
    "rubber": {"Metallic": 0.0, "Roughness": 0.75, "Specular IOR Level": 0.25},
    "metal": {"Metallic": 1.0, "Roughness": 0.22, "Specular IOR Level": 0.5},
}


def srgb_to_linear(channel: float) -> float:
    """sRGB-encoded [0, 1] -> linear [0, 1] (IEC 61966-2-1), so rendered colours match the named RGB."""
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


class MaterialLibrary:
    """Creates each (material, colour) once per session and hands out the same datablock afterwards."""

    def __init__(self, colors_rgb: dict[str, list[int]]):
        self._colors = colors_rgb
        self._cache: dict[tuple[str, str], bpy.types.Material] = {}

    def get(self, material: str, color: str):
        key = (material, color)
        if key not in self._cache:
            self._cache[key] = self._create(material, color)
        return self._cache[key]

    def _create(self, material: str, color: str):
        if material not in MATERIALS:
            raise ValueError(f"no Blender material for '{material}'")
        if color not in self._colors:
            raise ValueError(f"no RGB value for colour '{color}'")
        mat = bpy.data.materials.new(f"igbench_{material}_{color}")
        bsdf = mat.node_tree.nodes["Principled BSDF"]
        linear = [srgb_to_linear(c / 255.0) for c in self._colors[color]]
        bsdf.inputs["Base Color"].default_value = (*linear, 1.0)
        for name, value in MATERIALS[material].items():
            bsdf.inputs[name].default_value = value
        return mat


def diffuse_material(name: str, gray: float):
    mat = bpy.data.materials.new(name)
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (gray, gray, gray, 1.0)
    bsdf.inputs["Roughness"].default_value = 0.9
    bsdf.inputs["Specular IOR Level"].default_value = 0.2
    return mat
