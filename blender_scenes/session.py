"""A Blender session that renders many scenes: the executor.

One session per worker process. It builds the stage once (ground, world, camera, light rig, meshes,
materials) and per scene only swaps the objects and moves the camera and lights. Two Blender scenes share
the objects: `rgb` renders with Cycles, `ids` renders an exact instance map with Workbench (flat
shading, each object's colour set to its id, no anti-aliasing, raw colour management). With
`settings.depth`, a third, `depth`, renders every surface with one emission material whose strength is its
camera-axis depth in millimetres / 65535: one Cycles sample at each pixel's centre, written as a raw 16-bit
PNG, so the PNG holds depth in millimetres.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from igbench.blender_scenes._bpy import bpy
from igbench.blender_scenes.camera import apply_camera
from igbench.blender_scenes.lights import LightRig
from igbench.blender_scenes.materials import diffuse_material
from igbench.blender_scenes.objects import object_builder
from igbench.render_settings import RenderSettings
from igbench.render_result import RenderResult, strip_png_metadata
from igbench.scene import Scene
from igbench.task import Task

GROUND_GRAY = 0.42
WORLD_GRAY = 0.12
MAX_INSTANCES = 254  # ids are stored in one 8-bit channel; 0 is ground and background
DEPTH_MM_PER_METRE = 1000.0  # scene units are metres; depth PNGs hold millimetres (0: nothing hit, > 65.5 m clips)


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
        self._stage = {"ground": True, "ground_gray": GROUND_GRAY, "world_gray": WORLD_GRAY, **task.spec.get("stage", {})}
        self._make_ground()
        self._lights = LightRig(self.rgb_scene.collection)
        self._objects = object_builder(task)
        self._current: list = []  # the Blender objects of the scene built last, in program order
        self._configure_cycles(self.rgb_scene)
        self.ids_scene = self._make_ids_scene()
        self.depth_scene = self._make_depth_scene() if settings.depth else None

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
        result = RenderResult(strip_png_metadata(rgb_path.read_bytes()), instance, timings)
        if self.depth_scene is not None:
            tick = time.perf_counter()
            depth_path = self._tmp / "depth.png"
            self._render_to(self.depth_scene, depth_path)
            result.depth_png = strip_png_metadata(depth_path.read_bytes())
            timings["depth"] = time.perf_counter() - tick
        return result

    def amodal_masks(self) -> list[np.ndarray]:
        """Each object's full silhouette in the scene just built, as if the others were absent."""
        masks = []
        for obj in self._current:
            for other in self._current:
                other.hide_render = other is not obj
            masks.append(self._render_ids() > 0)
        for obj in self._current:
            obj.hide_render = False
        return masks

    def instance_map(self, scene: Scene) -> np.ndarray:
        """Only the instance map (fast): what the sampler's visibility check counts pixels on."""
        self._build(scene)
        return self._render_ids()

    # ------------------------------------------------------------------------------------------- stage

    def _make_ground(self) -> None:
        if self._stage["ground"]:
            mesh = bpy.data.meshes.new("igbench_ground")
            half = 60.0
            mesh.from_pydata([(-half, -half, 0), (half, -half, 0), (half, half, 0), (-half, half, 0)], [], [(0, 1, 2, 3)])
            mesh.materials.append(diffuse_material("igbench_ground", self._stage["ground_gray"]))
            ground = bpy.data.objects.new("igbench_ground", mesh)
            ground.color = (0.0, 0.0, 0.0, 1.0)  # instance id 0 in the ids pass
            self._stage_collection.objects.link(ground)
        gray = self._stage["world_gray"]
        world = bpy.data.worlds.new("igbench_world")
        world.color = (gray,) * 3
        background = world.node_tree.nodes.get("Background")
        if background is not None:
            background.inputs["Color"].default_value = (gray, gray, gray, 1.0)
        self.rgb_scene.world = world

    def _configure_cycles(self, scene) -> None:
        """Every Cycles setting that RenderSettings controls (see docs/performance.md for what each costs)."""
        s = self.settings
        scene.render.engine = "CYCLES"
        cycles = scene.cycles
        cycles.samples = s.samples
        cycles.use_adaptive_sampling = s.adaptive_sampling
        cycles.adaptive_threshold = s.adaptive_threshold
        cycles.adaptive_min_samples = s.adaptive_min_samples
        try:
            cycles.sampling_pattern = s.sampling_pattern
        except TypeError:  # a Blender without this pattern: keep its default
            pass
        cycles.use_denoising = s.denoise
        if s.denoise:
            cycles.denoiser = "OPENIMAGEDENOISE"
            cycles.denoising_prefilter = s.denoise_prefilter
            cycles.denoising_quality = s.denoise_quality
            cycles.denoising_input_passes = s.denoise_passes
            cycles.denoising_use_gpu = s.device == "gpu"
        cycles.max_bounces = s.max_bounces
        cycles.diffuse_bounces = min(s.diffuse_bounces, s.max_bounces)
        cycles.glossy_bounces = min(s.glossy_bounces, s.max_bounces)
        cycles.transmission_bounces = 0
        cycles.volume_bounces = 0
        cycles.transparent_max_bounces = 0
        cycles.caustics_reflective = False
        cycles.caustics_refractive = False
        cycles.use_light_tree = s.light_tree
        cycles.use_animated_seed = False
        scene.render.use_persistent_data = s.persistent_data
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

    def _shared_scene(self, name: str):
        """A scene over the same objects, ground and camera as `rgb` (no lights, a black world)."""
        scene = bpy.data.scenes.new(name)
        scene.collection.children.link(self._objects_collection)
        scene.collection.children.link(self._stage_collection)
        scene.camera = self._camera
        world = bpy.data.worlds.new(f"igbench_{name}_world")
        world.color = (0.0, 0.0, 0.0)
        background = world.node_tree.nodes.get("Background") if world.node_tree else None
        if background is not None:
            background.inputs["Strength"].default_value = 0.0
        scene.world = world
        scene.view_settings.view_transform = "Raw"
        scene.view_settings.look = "None"
        scene.render.dither_intensity = 0.0
        scene.render.use_compositing = False
        scene.render.use_sequencer = False
        return scene

    def _make_depth_scene(self):
        depth = self._shared_scene("depth")
        depth.render.engine = "CYCLES"
        cycles = depth.cycles
        cycles.device = "CPU"  # one sample of one emission shader: cheap anywhere
        cycles.samples = 1
        cycles.use_adaptive_sampling = False
        cycles.use_denoising = False
        cycles.max_bounces = 0
        cycles.filter_width = 0.01  # the sample sits at the pixel centre: no blend across depth edges
        cycles.use_animated_seed = False
        material = bpy.data.materials.new("igbench_depth")
        nodes, links = material.node_tree.nodes, material.node_tree.links
        nodes.clear()
        camera_data, scale = nodes.new("ShaderNodeCameraData"), nodes.new("ShaderNodeMath")
        emission, output = nodes.new("ShaderNodeEmission"), nodes.new("ShaderNodeOutputMaterial")
        scale.operation = "MULTIPLY"
        scale.inputs[1].default_value = DEPTH_MM_PER_METRE / 65535.0
        emission.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        links.new(camera_data.outputs["View Z Depth"], scale.inputs[0])
        links.new(scale.outputs[0], emission.inputs["Strength"])
        links.new(emission.outputs["Emission"], output.inputs["Surface"])
        depth.view_layers[0].material_override = material
        _png_output(depth, color_mode="BW", bits="16")
        return depth

    def _make_ids_scene(self):
        ids = self._shared_scene("ids")
        ids.render.engine = "BLENDER_WORKBENCH"
        shading = ids.display.shading
        shading.light = "FLAT"
        shading.color_type = "OBJECT"
        shading.show_object_outline = False
        shading.show_cavity = False
        shading.show_specular_highlight = False
        shading.show_shadows = False
        ids.display.render_aa = "OFF"
        _png_output(ids, color_mode="RGB")
        return ids

    # ------------------------------------------------------------------------------------------- per scene

    def _build(self, scene: Scene) -> None:
        if len(scene.program) > MAX_INSTANCES:
            raise ValueError(f"a scene holds at most {MAX_INSTANCES} objects, got {len(scene.program)}")
        for obj in list(self._objects_collection.objects):
            bpy.data.objects.remove(obj)
        self._current = []
        for k, item in enumerate(scene.program):
            blender_obj = self._objects.create(item, f"igbench_object_{k}")
            blender_obj.color = ((k + 1) / 255.0, 0.0, 0.0, 1.0)
            self._objects_collection.objects.link(blender_obj)
            self._current.append(blender_obj)
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


def _png_output(scene, color_mode: str, bits: str = "8") -> None:
    settings = scene.render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = color_mode
    settings.color_depth = bits
    settings.compression = 15


def gpu_backend() -> str | None:
    """'OPTIX' or 'CUDA' when Cycles sees such a device here (OptiX preferred), else None."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA"):
        try:
            prefs.compute_device_type = backend
        except TypeError:  # this Blender build lacks the backend
            continue
        prefs.get_devices()
        if any(d.type == backend for d in prefs.devices):
            return backend
    return None


def _enable_gpu() -> None:
    """Cycles on the best GPU backend, every device of that backend on (and the CPU off)."""
    backend = gpu_backend()
    if backend is None:
        raise RuntimeError("--device gpu: Cycles found no OptiX or CUDA device on this machine; use --device cpu")
    prefs = bpy.context.preferences.addons["cycles"].preferences
    prefs.compute_device_type = backend
    prefs.get_devices()
    for device in prefs.devices:
        device.use = device.type == backend
