"""Unit meshes for the CLEVR shapes, built once per Blender session and shared by every object.

Each mesh has half-height 1 and rests its base at z = -1, so an object of scale s placed at z = s sits
on the ground: sphere radius 1, cylinder radius 1 and height 2, cube half side 1 (slightly bevelled).
"""
from __future__ import annotations

from igbench.blender_scenes._bpy import bpy

import bmesh


def build_mesh(shape: str):
    builders = {"cube": _cube, "sphere": _sphere, "cylinder": _cylinder}
    if shape not in builders:
        raise ValueError(f"no mesh for shape '{shape}'")
    mesh = bpy.data.meshes.new(f"igbench_{shape}")
    bm = bmesh.new()
    builders[shape](bm)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)  # one slot, filled per object (slot link = OBJECT)
    return mesh


def mesh_from_arrays(name: str, vertices, faces):
    """A Blender mesh from numpy arrays (an object-library mesh), normals made consistent, smooth where
    faces meet at less than 40 degrees."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(map(float, v)) for v in vertices], [], [tuple(map(int, f)) for f in faces])
    bm = bmesh.new()
    bm.from_mesh(mesh)
    bmesh.ops.remove_doubles(bm, verts=bm.verts, dist=1e-6)
    bmesh.ops.recalc_face_normals(bm, faces=bm.faces)
    for face in bm.faces:
        face.smooth = True
    _mark_sharp_edges(bm, angle_deg=40)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(None)
    return mesh


def _cube(bm):
    bmesh.ops.create_cube(bm, size=2.0)
    bmesh.ops.bevel(bm, geom=list(bm.edges) + list(bm.verts), offset=0.04, segments=3, affect="EDGES",
                    profile=0.5)
    for face in bm.faces:
        face.smooth = True
    _mark_sharp_edges(bm, angle_deg=60)


def _sphere(bm):
    bmesh.ops.create_uvsphere(bm, u_segments=48, v_segments=24, radius=1.0)
    for face in bm.faces:
        face.smooth = True


def _cylinder(bm):
    bmesh.ops.create_cone(bm, cap_ends=True, cap_tris=False, segments=48, radius1=1.0, radius2=1.0, depth=2.0)
    for face in bm.faces:
        face.smooth = True
    _mark_sharp_edges(bm, angle_deg=60)


def _mark_sharp_edges(bm, angle_deg: float):
    """Keep hard edges hard while curved faces stay smooth (Blender honours sharp edges natively)."""
    import math

    for edge in bm.edges:
        if len(edge.link_faces) == 2 and edge.calc_face_angle(0.0) > math.radians(angle_deg):
            edge.smooth = False
