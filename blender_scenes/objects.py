"""Turning a program's objects into Blender objects, one builder per kind of task.

`ClevrObjects`: CLEVR shapes (unit meshes scaled by size), CLEVR's rubber and metal.
`LibraryObjects`: meshes of the task's object library (built once per session and shared), placed by
`loc` and the rotation in the dataset's representation, with the pose tasks' materials.
"""
from __future__ import annotations

import numpy as np

from igbench.blender_scenes._bpy import bpy, mathutils
from igbench.blender_scenes.materials import MaterialLibrary, pose_material
from igbench.blender_scenes.primitives import build_mesh, mesh_from_arrays
from igbench.program import Obj
from igbench.scene import object_scale
from igbench.task import Task


class ClevrObjects:
    def __init__(self, task: Task):
        self.sizes = task.spec["sizes"]
        self.materials = MaterialLibrary(task.spec.get("colors_rgb", {}))
        self.meshes: dict[str, object] = {}

    def create(self, item: Obj, name: str):
        shape = item.attrs["shape"]
        if shape not in self.meshes:
            self.meshes[shape] = build_mesh(shape)
        blender_obj = bpy.data.objects.new(name, self.meshes[shape])
        scale = object_scale(shape, self.sizes[item.attrs["size"]])
        blender_obj.scale = (scale, scale, scale)
        blender_obj.location = item.loc
        blender_obj.rotation_euler = (0.0, 0.0, item.rotation[0] if item.rotation else 0.0)
        blender_obj.material_slots[0].link = "OBJECT"
        blender_obj.material_slots[0].material = self.materials.get(item.attrs["material"], item.attrs["color"])
        return blender_obj


class LibraryObjects:
    def __init__(self, task: Task):
        from igbench.objects.library import material_specs

        self.task = task
        self.library = task.library
        self.material_specs = material_specs()
        self.materials: dict[str, object] = {}
        self.meshes: dict[str, object] = {}

    def create(self, item: Obj, name: str):
        from igbench.rotations import to_matrix

        object_name = item.attrs["object"]
        if object_name not in self.meshes:
            spec = self.library[object_name]
            self.meshes[object_name] = mesh_from_arrays(f"igbench_{object_name}", spec.vertices, spec.mesh.faces)
        blender_obj = bpy.data.objects.new(name, self.meshes[object_name])
        matrix = np.eye(4)
        matrix[:3, :3] = to_matrix(item.rotation, self.task.rotation_rep)
        matrix[:3, 3] = item.loc
        blender_obj.matrix_world = mathutils.Matrix(matrix.tolist())
        material = item.attrs["material"]
        if material not in self.materials:
            self.materials[material] = pose_material(material, self.material_specs[material])
        blender_obj.material_slots[0].link = "OBJECT"
        blender_obj.material_slots[0].material = self.materials[material]
        return blender_obj


def object_builder(task: Task):
    return LibraryObjects(task) if task.kind == "pose" else ClevrObjects(task)
