"""A Blender session that renders many scenes: the executor.

One session per worker process. It builds the stage once (ground, world, camera, light rig, meshes,
materials) and per scene only swaps the objects and moves the camera and lights. Two Blender scenes share
the objects: `rgb` renders with Cycles, `ids` renders an exact instance map with Workbench (flat
shading, each object's colour set to its id, no anti-aliasing, raw colour management).
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from igbench.blender_scenes._bpy import bpy
from igbench.blender_scenes.camera import apply_camera
from igbench.blender_scenes.lights import LightRig
from igbench.blender_scenes.materials import MaterialLibrary, diffuse_material
from igbench.blender_scenes.primitives import build_mesh
from igbench.blender_scenes.settings import RenderSettings
from igbench.generators.clevr import object_scale
from igbench.scene import Scene
from igbench.task import Task

GROUND_GRAY = 0.42
WORLD_GRAY = 0.12
MAX_INSTANCES = 254  # ids are stored in one 8-bit channel; 0 is ground and background


@dataclass
class RenderResult:
    rgb_png: bytes                       # the PNG Blender wrote, stored as is
    instance: np.ndarray                 # (H, W) uint8: 0 background/ground, k+1 the program's k-th object
    timings: dict[str, float] = field(default_factory=dict)

    def instance_png(self) -> bytes:
        import io

        buffer = io.BytesIO()
        Image.fromarray(self.instance, mode="L").save(buffer, format="PNG", optimize=False)
        return buffer.getvalue()


class BlenderSession:
    def __init__(self, task: Task, settings: RenderSettings):
        self.task = task
        self.settings = settings
        self._scratch = tempfile.TemporaryDirectory(prefix="igbench_blender_")  # Blender writes renders here
        self._tmp = Path(self._scratch.name)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.rgb_scene = bpy.context.scene
        self.rgb_scene.name = "rgb"
        self._objects_collection = bpy.data.collections.new("igbench_objects")
        self._stage_collection = bpy.data.collections.new("igbench_stage")
        self.rgb_scene.collection.children.link(self._objects_collection)
        self.rgb_scene.collection.children.link(self._stage_collection)
        self._camera = bpy.data.objects.new("igbench_camera", bpy.data.cameras.new("igbench_camera"))
        self.rgb_scene.collection.objects.link(self._camera)
        self.rgb_scene.camera = self._camera
        self._ground = self._make_ground()
        self._lights = LightRig(self.rgb_scene.collection)
        self._materials = MaterialLibrary(task.spec.get("colors_rgb", {}))
        self._meshes: dict[str, object] = {}
        self._configure_cycles(self.rgb_scene)
        self.ids_scene = self._make_ids_scene()

    # ------------------------------------------------------------------------------------------- public

    def render(self, scene: Scene) -> RenderResult:
        """RGB with Cycles and the instance map with Workbench, at the scene camera's resolution."""
        timings = {}
        start = time.perf_counter()
        self._build(scene)
        timings["build"] = time.perf_counter() - start
        instance = self._render_ids()
        timings["instance"] = time.perf_counter() - start - timings["build"]
        self.rgb_scene.cycles.seed = scene.seed % (2**31)
        rgb_path = self._tmp / "rgb.png"
        tick = time.perf_counter()
        self._render_to(self.rgb_scene, rgb_path)
        timings["rgb"] = time.perf_counter() - tick
        return RenderResult(rgb_path.read_bytes(), instance, timings)

    def instance_map(self, scene: Scene) -> np.ndarray:
        """Only the instance map (fast): what the sampler's visibility check counts pixels on."""
        self._build(scene)
        return self._render_ids()

    # ------------------------------------------------------------------------------------------- stage

    def _make_ground(self):
        mesh = bpy.data.meshes.new("igbench_ground")
        half = 60.0
        mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
        mesh.materials.append(diffuse_material("igbench_ground", GROUND_GRAY))
        ground = bpy.data.objects.new("igbench_ground", mesh)
        ground.color = (0.0, 0.0, 0.0, 1.0)  # instance id 0 in the ids pass
        self._stage_collection.objects.link(ground)
        world = bpy.data.worlds.new("igbench_world")
        world.color = (WORLD_GRAY,) * 3
        background = world.node_tree.nodes.get("Background")
        if background is not None:
            background.inputs["Color"].default_value = (WORLD_GRAY, WORLD_GRAY, WORLD_GRAY, 1.0)
        self.rgb_scene.world = world
        return ground

    def _configure_cycles(self, scene) -> None:
        s = self.settings
        scene.render.engine = "CYCLES"
        cycles = scene.cycles
        cycles.samples = s.samples
        cycles.use_adaptive_sampling = True
        cycles.use_denoising = s.denoise
        if s.denoise:
            cycles.denoiser = "OPENIMAGEDENOISE"
        cycles.max_bounces = s.max_bounces
        cycles.diffuse_bounces = min(2, s.max_bounces)
        cycles.glossy_bounces = s.max_bounces
        cycles.transmission_bounces = 0
        cycles.volume_bounces = 0
        cycles.transparent_max_bounces = 0
        cycles.caustics_reflective = False
        cycles.caustics_refractive = False
        cycles.use_animated_seed = False
        scene.render.use_persistent_data = True
        scene.render.use_compositing = False
        scene.render.use_sequencer = False
        scene.render.dither_intensity = 0.0
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        if s.threads:
            scene.render.threads_mode = "FIXED"
            scene.render.threads = s.threads
        scene.cycles.device = "CPU"
        if s.device == "gpu":
            scene.cycles.device = "GPU"
            _enable_gpu()
        _png_output(scene, color_mode="RGB")

    def _make_ids_scene(self):
        ids = bpy.data.scenes.new("ids")
        ids.collection.children.link(self._objects_collection)
        ids.collection.children.link(self._stage_collection)
        ids.camera = self._camera
        ids.render.engine = "BLENDER_WORKBENCH"
        shading = ids.display.shading
        shading.light = "FLAT"
        shading.color_type = "OBJECT"
        shading.show_object_outline = False
        shading.show_cavity = False
        shading.show_specular_highlight = False
        shading.show_shadows = False
        ids.display.render_aa = "OFF"
        ids.view_settings.view_transform = "Raw"
        ids.view_settings.look = "None"
        ids.render.dither_intensity = 0.0
        ids.render.use_compositing = False
        ids.render.use_sequencer = False
        world = bpy.data.worlds.new("igbench_ids_world")
        world.color = (0.0, 0.0, 0.0)
        ids.world = world
        _png_output(ids, color_mode="RGB")
        return ids

    # ------------------------------------------------------------------------------------------- per scene

    def _build(self, scene: Scene) -> None:
        if len(scene.program) > MAX_INSTANCES:
            raise ValueError(f"a scene holds at most {MAX_INSTANCES} objects, got {len(scene.program)}")
        for obj in list(self._objects_collection.objects):
            bpy.data.objects.remove(obj)
        sizes = self.task.spec["sizes"]
        for k, item in enumerate(scene.program):
            shape = item.attrs["shape"]
            if shape not in self._meshes:
                self._meshes[shape] = build_mesh(shape)
            blender_obj = bpy.data.objects.new(f"igbench_object_{k}", self._meshes[shape])
            scale = object_scale(shape, sizes[item.attrs["size"]])
            blender_obj.scale = (scale, scale, scale)
            blender_obj.location = item.loc
            blender_obj.rotation_euler = (0.0, 0.0, item.rotation[0] if item.rotation else 0.0)
            blender_obj.material_slots[0].link = "OBJECT"
            blender_obj.material_slots[0].material = self._materials.get(item.attrs["material"], item.attrs["color"])
            blender_obj.color = ((k + 1) / 255.0, 0.0, 0.0, 1.0)
            self._objects_collection.objects.link(blender_obj)
        apply_camera(self._camera, scene.camera)
        self._lights.apply(scene.lights)

    def _render_ids(self) -> np.ndarray:
        path = self._tmp / "ids.png"
        self._render_to(self.ids_scene, path)
        with Image.open(path) as image:
            return np.asarray(image)[..., 0].copy()

    def _render_to(self, scene, path: Path) -> None:
        scene.render.filepath = str(path)
        if path.exists():
            os.remove(path)
        bpy.ops.render.render(write_still=True, scene=scene.name)
        if not path.exists():
            raise RuntimeError(f"Blender wrote no image for scene '{scene.name}'")


def _png_output(scene, color_mode: str) -> None:
    settings = scene.render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = color_mode
    settings.color_depth = "8"
    settings.compression = 15


def _enable_gpu() -> None:
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.get_devices()
        devices = [d for d in prefs.devices if d.type == backend]
        if devices:
            for device in prefs.devices:
                device.use = device.type == backend
            return
    raise RuntimeError("--device gpu: Cycles found no OptiX or CUDA device on this machine; use --device cpu")
