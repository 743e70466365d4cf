"""Place Blender's camera from igbench's Camera (OpenCV axes, pixel intrinsics)."""
from __future__ import annotations

import numpy as np

from igbench.blender_scenes._bpy import bpy, mathutils
from igbench.scene import Camera

SENSOR_WIDTH_MM = 36.0
# OpenCV camera axes (x right, y down, z forward) -> Blender camera axes (x right, y up, z backward).
_CV_TO_BLENDER = np.diag([1.0, -1.0, -1.0])


def apply_camera(cam_object, camera: Camera) -> None:
    K = camera.K_array
    if not np.isclose(K[0, 0], K[1, 1]):
        raise ValueError("Blender cameras have square pixels: K needs fx == fy")
    extrinsics = camera.extrinsics
    rotation_world = extrinsics[:3, :3].T @ _CV_TO_BLENDER
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_world
    matrix[:3, 3] = camera.location
    cam_object.matrix_world = mathutils.Matrix(matrix.tolist())

    data = cam_object.data
    data.type = "PERSP"
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = SENSOR_WIDTH_MM
    data.lens = K[0, 0] * SENSOR_WIDTH_MM / camera.width
    largest = max(camera.width, camera.height)
    data.shift_x = (camera.width / 2 - K[0, 2]) / largest
    data.shift_y = (K[1, 2] - camera.height / 2) / largest
    data.clip_start = 0.05
    data.clip_end = 200.0
    for scene in bpy.data.scenes:
        scene.render.resolution_x = camera.width
        scene.render.resolution_y = camera.height
        scene.render.resolution_percentage = 100
        scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
