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


_TEXTURES = {"checker": "ShaderNodeTexChecker", "noise": "ShaderNodeTexNoise", "wave": "ShaderNodeTexWave"}


def pose_material(name: str, spec: dict):
    """A pose-task material: a plain Principled BSDF, or one whose colour is a procedural texture on the
    object's generated coordinates mixing two colours (see igbench/objects/materials.yaml)."""
    mat = bpy.data.materials.new(f"igbench_{name}")
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Metallic"].default_value = float(spec.get("metallic", 0.0))
    bsdf.inputs["Roughness"].default_value = float(spec.get("roughness", 0.5))
    if "texture" not in spec:
        bsdf.inputs["Base Color"].default_value = (*_linear(spec["color"]), 1.0)
        return mat
    coords = nodes.new("ShaderNodeTexCoord")
    texture = nodes.new(_TEXTURES[spec["texture"]])
    texture.inputs["Scale"].default_value = float(spec.get("scale", 5.0))
    links.new(coords.outputs["Generated"], texture.inputs["Vector"])
    first, second = (_linear(c) for c in spec["colors"])
    if spec["texture"] == "checker":
        texture.inputs["Color1"].default_value = (*first, 1.0)
        texture.inputs["Color2"].default_value = (*second, 1.0)
        links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
        return mat
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (*first, 1.0)
    ramp.color_ramp.elements[1].color = (*second, 1.0)
    links.new(texture.outputs["Fac"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _linear(rgb) -> tuple[float, float, float]:
    return tuple(srgb_to_linear(c / 255.0) for c in rgb)
