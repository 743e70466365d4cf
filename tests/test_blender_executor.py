"""The Blender executor, for real: a tiny Cycles render and an exact instance pass."""
import glob
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from igbench.program import parse
from igbench.scene import Camera, Light, Scene
from igbench.task import load_task

pytestmark = pytest.mark.blender

TASK = load_task("clevr")
PROGRAM = """
add(shape='sphere', color='red', material='rubber', size='large', loc=(-1.600, +1.200, +0.700))
add(shape='cube', color='blue', material='metal', size='large', loc=(+1.500, -0.800, +0.495), rotation=+0.300)
"""


@pytest.fixture(scope="module")
def session():
    from igbench.blender_scenes.session import BlenderSession
    from igbench.render_settings import RenderSettings

    return BlenderSession(TASK, RenderSettings(width=64, height=48, samples=4))


def scene_at(width, height, program=PROGRAM):
    rules = TASK.split_rules("train")
    cam = rules["camera"]
    camera = Camera.look_at(cam["location"], cam["look_at"], cam["focal_mm"], cam["sensor_width_mm"], 480, 320)
    lights = [Light(name, "AREA", tuple(rules["lights"][name]["location"]), (0.0, 0.0, 0.0),
                    rules["lights"][name]["energy"], rules["lights"][name]["size"]) for name in ("key", "fill", "back")]
    return Scene("clevr", "train", 0, 7, parse(program, TASK), camera.at_resolution(width, height), lights)


def test_tiny_render_is_not_blank_and_segmentation_sits_on_projected_centres(session):
    scene = scene_at(64, 48)
    result = session.render(scene)
    rgb = np.asarray(Image.open(io.BytesIO(result.rgb_png)))
    assert rgb.shape == (48, 64, 3)
    assert rgb.std() > 5, "image is blank"
    assert set(np.unique(result.instance)) == {0, 1, 2}
    centres = scene.camera.project([obj.loc for obj in scene.program])
    for k, (x, y, depth) in enumerate(centres, start=1):
        assert depth > 0
        assert result.instance[int(y), int(x)] == k
        ys, xs = np.nonzero(result.instance == k)
        assert abs(xs.mean() - x) < 3 and abs(ys.mean() - y) < 3
    red = rgb[result.instance == 1].mean(axis=0)
    blue = rgb[result.instance == 2].mean(axis=0)
    assert red[0] > red[2] and blue[2] > blue[0], "colours land on the wrong objects"


def test_instance_pass_is_exact_at_the_visibility_resolution(session):
    scene = scene_at(480, 320)
    instance = session.instance_map(scene)
    assert instance.shape == (320, 480)
    assert set(np.unique(instance)) == {0, 1, 2}  # no blended edge values
    counts = np.bincount(instance.ravel())
    assert counts[1] > 200 and counts[2] > 200


def test_off_centre_principal_point_and_other_aspect_match_projection(session):
    scene = scene_at(80, 80)
    K = np.array(scene.camera.K)
    K[0, 2] += 6
    K[1, 2] -= 4
    scene.camera = Camera(tuple(map(tuple, K)), scene.camera.world_to_camera, 80, 80)
    instance = session.instance_map(scene)
    for k, (x, y, _) in enumerate(scene.camera.project([o.loc for o in scene.program]), start=1):
        ys, xs = np.nonzero(instance == k)
        assert abs(xs.mean() - x) < 3 and abs(ys.mean() - y) < 3


def test_objects_are_replaced_between_scenes(session):
    session.render(scene_at(64, 48))
    one = scene_at(64, 48, PROGRAM.strip().splitlines()[0])
    assert set(np.unique(session.instance_map(one))) == {0, 1}


def test_gpu_request_renders_on_a_gpu_and_fails_clearly_without_one():
    code = (
        "from igbench.blender_scenes.session import BlenderSession\n"
        "from igbench.render_settings import RenderSettings\n"
        "from igbench.task import load_task\n"
        "try:\n"
        "    BlenderSession(load_task('clevr'), RenderSettings(device='gpu'))\n"
        "    print('GPU OK')\n"
        "except RuntimeError as err:\n"
        "    print('ERR', err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    last = out.strip().splitlines()[-1]
    has_gpu = bool(glob.glob("/dev/nvidia[0-9]*"))  # an NVIDIA device node: the one kind Cycles is asked for
    if has_gpu:
        assert last == "GPU OK", last
    else:
        assert last.startswith("ERR") and "no OptiX or CUDA device" in last, last


def _render_twice(settings):
    """The same scene from a session with some history and from a fresh one."""
    from igbench.blender_scenes.session import BlenderSession

    busy = BlenderSession(TASK, settings)
    busy.render(scene_at(64, 48, PROGRAM.strip().splitlines()[0]))
    return busy.render(scene_at(64, 48)).rgb_png, BlenderSession(TASK, settings).render(scene_at(64, 48)).rgb_png


def test_cycles_re_renders_are_byte_identical():
    from igbench.render_settings import RenderSettings

    first, again = _render_twice(RenderSettings(width=64, height=48, samples=4, denoise=False))
    assert first == again
    assert b"tEXt" not in first  # no render date or timing in the file


def test_denoised_re_renders_differ_by_at_most_one_level_in_a_few_pixels():
    # OpenImageDenoise on the CPU is not bit-reproducible (measured: up to 17 of 153,600 pixels, one level).
    from igbench.render_settings import RenderSettings

    first, again = (np.asarray(Image.open(io.BytesIO(png))).astype(int)
                    for png in _render_twice(RenderSettings(width=64, height=48, samples=4)))
    assert np.abs(first - again).max() <= 1
    assert (first != again).any(axis=-1).mean() < 0.01


def test_depth_is_the_camera_axis_distance_in_millimetres():
    from igbench.blender_scenes.session import BlenderSession
    from igbench.render_settings import RenderSettings

    scene = scene_at(96, 64)
    result = BlenderSession(TASK, RenderSettings(width=96, height=64, samples=1, depth=True)).render(scene)
    depth = np.asarray(Image.open(io.BytesIO(result.depth_png)))
    assert depth.dtype == np.uint16 and depth.shape == (64, 96)
    K, E = np.array(scene.camera.K), np.array(scene.camera.world_to_camera)
    centre = -E[:3, :3].T @ E[:3, 3]
    checked = 0
    for v, u in zip(*np.nonzero(result.instance == 0)):  # the ground: where its ray meets z = 0
        ray = E[:3, :3].T @ np.linalg.solve(K, [u + 0.5, v + 0.5, 1.0])  # camera z of the ray is 1
        assert abs(depth[v, u] - 1000 * -centre[2] / ray[2]) <= 1.0
        checked += 1
    assert checked > 1000
    x, y, z = scene.camera.project([scene.program.objects[0].loc])[0]  # the sphere (radius 0.7): its front
    assert abs(depth[int(y), int(x)] - 1000 * (z - 0.7)) < 30
