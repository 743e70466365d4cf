"""Pose tasks (so3, 6dof), the 2-D dot task, the object library, rotation representations, CLEVR-JSON import
and the BOP export, with real renders."""
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image
from cli_support import igbench, one_line_error
from scipy.spatial import cKDTree

from igbench.errors import UserError
from igbench.generators import sample_scene
from igbench.generators.so3 import tilt_deg
from igbench.objects.library import default_library
from igbench.program import parse
from igbench.rotations import ARITY, from_matrix, to_matrix
from igbench.task import load_task

TINY = ["--samples", "2", "--quiet"]






# ------------------------------------------------------------------------------------------ rotations

@pytest.mark.parametrize("rep", sorted(ARITY))
def test_every_rotation_representation_round_trips(rep):
    from igbench.generators.common import uniform_rotation

    rng = np.random.default_rng(0)
    for _ in range(200):
        R = uniform_rotation(rng)
        values = from_matrix(R, rep)
        assert len(values) == ARITY[rep]
        assert np.allclose(to_matrix(values, rep), R, atol=1e-9)
        rounded = tuple(round(v, 3) for v in values)  # what a program's text keeps
        assert np.degrees(np.arccos(np.clip((np.trace(to_matrix(rounded, rep) @ R.T) - 1) / 2, -1, 1))) < 0.5


def test_rotation_conventions_are_the_documented_ones():
    from scipy.spatial.transform import Rotation

    R = Rotation.from_euler("xyz", [0.1, -0.4, 1.2]).as_matrix()
    assert np.allclose(from_matrix(R, "euler"), [0.1, -0.4, 1.2])
    assert np.allclose(from_matrix(R, "6d"), R[:2].ravel())
    w, x, y, z = from_matrix(R, "quat")
    assert w >= 0 and np.allclose(Rotation.from_quat([x, y, z, w]).as_matrix(), R)
    assert np.allclose(to_matrix([0, 0, np.pi / 2], "aa") @ [1, 0, 0], [0, 1, 0])


def test_bad_rotation_reps_and_values_are_user_errors():
    with pytest.raises(UserError, match="unknown rotation representation 'quaternion'"):
        load_task("so3", rotation_rep="quaternion")
    with pytest.raises(UserError, match="applies to tasks with 3-D rotations"):
        load_task("clevr", rotation_rep="quat")
    with pytest.raises(UserError, match="two independent rows"):
        to_matrix([1, 0, 0, 2, 0, 0], "6d")
    with pytest.raises(UserError, match="length 0"):
        to_matrix([0, 0, 0, 0], "quat")


# ------------------------------------------------------------------------------------------ library

def test_default_library_has_recognisable_objects_with_fields():
    library = default_library()
    assert len(library.names) >= 10
    assert sum(library[n].symmetry["type"] == "none" for n in library.names) >= 5
    for name in library.names:
        spec = library[name]
        assert spec.category and spec.diameter > 0.3
        lo, hi = spec.vertices.min(axis=0), spec.vertices.max(axis=0)
        assert np.allclose((lo + hi) / 2, 0, atol=1e-9)  # canonical frame: box centred on the origin


@pytest.mark.parametrize("name", [n for n in default_library().names])
def test_declared_symmetries_map_each_object_onto_itself(name):
    spec = default_library()[name]
    points = spec.vertices
    tree = cKDTree(points)
    for R in spec.symmetry_rotations()[1:]:
        distances, _ = tree.query(points @ R.T)
        assert distances.max() < 0.06 * spec.diameter, name
    if spec.symmetry["type"] == "none":  # and asymmetric objects really are not symmetric under half turns
        for axis in np.eye(3):
            from scipy.spatial.transform import Rotation

            R = Rotation.from_rotvec(axis * np.pi).as_matrix()
            assert tree.query(points @ R.T)[0].max() > 0.02 * spec.diameter, name


# ------------------------------------------------------------------------------------------ samplers

def test_so3_splits_hold_out_a_tilt_band():
    task = load_task("so3")
    for split, inside in [("train", False), ("val", False), ("test", False), ("ood", True)]:
        for i in range(1000 if split != "val" else 200):
            (obj,) = sample_scene(task, split, i, 0).program
            assert obj.loc == (0.0, 0.0, 0.0)
            assert (40 <= tilt_deg(to_matrix(obj.rotation, "euler")) <= 60) == inside


def test_6dof_splits_hold_out_objects_and_materials_and_objects_rest_or_hover():
    task = load_task("6dof")
    heldout = set(task.library.heldout)
    seen = {}
    for split in ("train", "ood_shape", "ood_texture"):
        for i in range(500):
            scene = sample_scene(task, split, i, 0)
            assert 1 <= len(scene.program) <= 4
            centres = []
            for obj in scene.program:
                seen.setdefault(split, set()).update([obj.attrs["object"], obj.attrs["material"]])
                spec = task.library[obj.attrs["object"]]
                R = to_matrix(obj.rotation, "euler")
                lowest = (spec.vertices @ R.T)[:, 2].min() + obj.loc[2]
                assert -1e-9 <= lowest <= 0.4 + 1e-9
                centres.append((np.array(obj.loc), np.linalg.norm(spec.vertices, axis=1).max()))
            for a in range(len(centres)):
                for b in range(a):
                    assert np.linalg.norm(centres[a][0] - centres[b][0]) >= centres[a][1] + centres[b][1] + 0.05 - 1e-9
    assert seen["train"] & heldout == set() and heldout <= seen["ood_shape"]
    assert seen["ood_shape"] - {"plastic_red", "plastic_blue", "steel", "marble"} == heldout
    assert {"wood", "checker"} <= seen["ood_texture"] and not {"wood", "checker"} & seen["train"]


PINNED = json.loads((Path(__file__).parent / "fixtures" / "pose_and_canvas_programs.json").read_text())["sha256"]


@pytest.mark.parametrize("key", sorted(PINNED))
def test_pose_and_canvas_programs_are_pinned(tmp_path, key):
    """The so3, 6dof and dot2d samplers draw the same scenes, to the last bit, on every CPU and after every
    change (their arithmetic avoids BLAS, whose rounding differs between CPUs)."""
    import hashlib

    from igbench.cli.main import main

    task, split, seed = key.split("/")
    expected = PINNED[key]
    assert main(["render", "--task", task, "--split", split, "--seed", seed, "--n", str(len(expected)),
                 "--out", str(tmp_path), "--programs-only", "--quiet"]) == 0
    lines = (tmp_path / task / split / "programs.jsonl").read_bytes().splitlines()
    got = [hashlib.sha256(line).hexdigest()[:16] for line in lines]
    differ = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert len(got) == len(expected) and not differ, f"{key}: scenes {differ[:10]} differ from the pinned output"


def test_dot2d_checkerboard_splits():
    task = load_task("dot2d")
    parity = {}
    for split in ("train", "ood", "test"):
        parity[split] = set()
        for i in range(1000):
            (obj,) = sample_scene(task, split, i, 0).program
            x, y = obj.loc
            assert 0.02 <= x <= 0.98 and 0.02 <= y <= 0.98
            parity[split].add((min(int(y * 8), 7) + min(int(x * 8), 7)) % 2)
    assert parity == {"train": {0}, "ood": {1}, "test": {0, 1}}


def test_validation_during_training_logs_the_dot_position_error():
    """The trainer's eval.csv columns come from its scorer: for dot2d the position error is what it reports."""
    from igbench.models.igllm_train import score_programs

    references = [{"id": f"dot2d/val/{i:06d}", "objects": [{"loc": [0.25 + 0.1 * i, 0.5]}]} for i in range(3)]
    predictions = [{"id": r["id"], "program": f"add(loc=({r['objects'][0]['loc'][0] + 0.03:+.3f}, +0.460))"}
                   for r in references]
    metrics = score_programs(predictions, references, load_task("dot2d"))
    assert metrics["parse_rate"] == 1.0 and metrics["count_acc"] == 1.0
    assert metrics["pos_err_mean"] == pytest.approx(0.05, abs=1e-9)  # sqrt(0.03^2 + 0.04^2)


# ------------------------------------------------------------------------------------------ renders

@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("pose")
    igbench("render", "--task", "6dof", "--split", "train", "--n", "3", "--out", str(out), "--resolution", "120x90",
            "--depth", *TINY)
    igbench("render", "--task", "so3", "--split", "ood", "--n", "2", "--out", str(out), "--resolution", "64x64",
            "--rotation-rep", "quat", *TINY)
    igbench("render", "--task", "dot2d", "--split", "test", "--n", "3", "--out", str(out), "--resolution", "84x84", "--quiet")
    return out


@pytest.mark.blender
def test_annotated_poses_project_each_object_onto_its_own_mask(rendered):
    library = default_library()
    for task, split in (("6dof", "train"), ("so3", "ood")):
        ds = datasets.load_dataset(str(rendered / task / split), split=split)
        for row in ds:
            K = np.array(row["camera"]["K"])
            seg = np.asarray(row["segmentation"])
            assert row["rotation_rep"] == ("quat" if task == "so3" else "euler")
            program = parse(row["program"], load_task(task, rotation_rep=row["rotation_rep"]))
            for obj, parsed in zip(row["objects"], program):
                if obj["pixels_amodal"] < 30:
                    continue
                pts = library[obj["object"]].vertices @ np.array(obj["R_cam"]).T + obj["t_cam"]
                uv = pts @ K.T
                uv = uv[:, :2] / uv[:, 2:]
                x0, y0, x1, y1 = obj["bbox_amodal"]
                assert abs(uv[:, 0].min() - x0) < 2.5 and abs(uv[:, 0].max() - x1) < 2.5
                assert abs(uv[:, 1].min() - y0) < 2.5 and abs(uv[:, 1].max() - y1) < 2.5
                assert obj["visible_pixels"] == int((seg == obj["mask_id"]).sum())
                # visible over amodal pixels: 1 for the lone object of so3 (nothing can hide it)
                assert obj["visible_fraction"] == pytest.approx((seg == obj["mask_id"]).sum() / obj["pixels_amodal"])
                if task == "so3":
                    assert obj["visible_fraction"] == 1.0
                R_world = to_matrix(parsed.rotation, row["rotation_rep"])
                assert np.abs(R_world - np.array(obj["R_world"])).max() < 2e-3


@pytest.mark.blender
def test_dot2d_renders_without_blender_and_its_dot_sits_at_its_position(rendered):
    ds = datasets.load_dataset(str(rendered / "dot2d" / "test"), split="test")
    for row in ds:
        rgb = np.asarray(row["image"]).astype(int)
        x, y = row["objects"][0]["loc"]
        px, py = int(x * 84), int(y * 84)
        assert rgb[py, px, 0] > 200 and rgb[py, px, 1] < 80  # red at the dot
        assert (rgb[0, 0] == 255).all()                      # white canvas
        assert np.asarray(row["segmentation"])[py, px] == 1


@pytest.mark.blender
def test_bop_export_parses_and_matches_the_dataset(rendered, tmp_path):
    out = tmp_path / "bop"
    igbench("export", "--format", "bop", str(rendered / "6dof"), str(out))
    ds = datasets.load_dataset(str(rendered / "6dof" / "train"), split="train")
    scene = out / "train" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())
    info = json.loads((scene / "scene_gt_info.json").read_text())
    cams = json.loads((scene / "scene_camera.json").read_text())
    models = json.loads((out / "models" / "models_info.json").read_text())
    library = default_library()
    for row in ds:
        im = str(row["index"])
        assert np.allclose(cams[im]["cam_K"], np.array(row["camera"]["K"]).ravel())
        for k, (obj, entry, meta) in enumerate(zip(row["objects"], gt[im], info[im])):
            assert np.allclose(entry["cam_R_m2c"], np.array(obj["R_cam"]).ravel())
            assert np.allclose(entry["cam_t_m2c"], np.array(obj["t_cam"]) * 1000)
            assert entry["obj_id"] == library.obj_id(obj["object"])
            assert meta["px_count_visib"] == obj["visible_pixels"]
            assert (scene / "mask_visib" / f"{row['index']:06d}_{k:06d}.png").exists()
        assert (scene / "rgb" / f"{row['index']:06d}.png").read_bytes()[:4] == b"\x89PNG"
        depth = np.asarray(Image.open(scene / "depth" / f"{row['index']:06d}.png"))
        assert depth.dtype == np.uint16 and (depth > 0).all()  # the ground is everywhere behind
        seg = np.asarray(row["segmentation"])
        for obj in row["objects"]:  # each visible object's depth lies within its reach around its origin
            radius_mm = np.linalg.norm(library[obj["object"]].vertices, axis=1).max() * 1000
            seen = depth[seg == obj["mask_id"]].astype(float)
            assert seen.size == obj["visible_pixels"]
            if seen.size:
                assert np.abs(seen - obj["t_cam"][2] * 1000).max() <= radius_mm + 1
        assert any(obj["visible_pixels"] for obj in row["objects"])  # the depth check saw something
    mug = str(library.obj_id("mug"))
    assert models[mug]["diameter"] == pytest.approx(library["mug"].diameter * 1000)
    assert (out / "models" / f"obj_{int(mug):06d}.ply").read_text().startswith("ply")
    one_line_error(igbench("export", "--format", "bop", str(rendered / "dot2d"), str(tmp_path / "x"), check=False),
                   "needs a pose task")
    assert "depth" not in datasets.load_dataset(str(rendered / "so3" / "ood"), split="ood").features
    one_line_error(igbench("render", "--task", "dot2d", "--n", "2", "--out", str(tmp_path / "d"), "--depth", check=False),
                   "--depth needs a task rendered in 3-D")


# ------------------------------------------------------------------------------------------ compatibility

CLEVR_JSON = {"info": {"split": "val"}, "scenes": [
    {"image_index": 1, "objects": [
        {"shape": "cube", "color": "red", "material": "metal", "size": "large", "3d_coords": [1.0, -1.0, 0.495],
         "rotation": 200.0},
        {"shape": "sphere", "color": "blue", "material": "rubber", "size": "small", "3d_coords": [-1.5, 1.0, 0.35],
         "rotation": 30.0}]},
    {"image_index": 0, "objects": [
        {"shape": "cylinder", "color": "green", "material": "rubber", "size": "large", "3d_coords": [0.0, 0.0, 0.7],
         "rotation": 10.0}]},
]}


@pytest.mark.blender
def test_clevr_scene_json_re_renders_with_the_original_rotation_convention(tmp_path):
    path = tmp_path / "CLEVR_val_scenes.json"
    path.write_text(json.dumps(CLEVR_JSON))
    proc = igbench("render", "--from-clevr-scenes", str(path), "--out", str(tmp_path / "out"), "--resolution", "64x48", *TINY)
    assert "radians" in proc.stdout
    ds = datasets.load_dataset(str(tmp_path / "out" / "clevr" / "imported"), split="imported")
    assert ds.num_rows == 2
    assert ds[0]["program"].startswith("add(shape='cylinder'")  # image_index order
    cube = parse(ds[1]["program"], load_task("clevr")).objects[0]
    folded = (200.0 + np.pi / 4) % (np.pi / 2) - np.pi / 4  # 200 radians, folded by the cube's symmetry
    assert cube.rotation[0] == pytest.approx(folded, abs=1e-3)
    assert set(np.unique(np.asarray(ds[1]["segmentation"]))) <= {0, 1, 2}


def test_clevr_json_missing_fields_is_one_line(tmp_path):
    broken = json.loads(json.dumps(CLEVR_JSON))
    del broken["scenes"][0]["objects"][1]["3d_coords"]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    one_line_error(igbench("render", "--from-clevr-scenes", str(path), "--out", str(tmp_path / "o"), check=False),
                   "scene 0, object 1 lacks '3d_coords'")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ user assets

TETRA_OBJ = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
CUBE_PLY = """ply
format ascii 1.0
element vertex 8
property float x
property float y
property float z
element face 6
property list uchar int vertex_indices
end_header
0 0 0
1 0 0
1 1 0
0 1 0
0 0 1
1 0 1
1 1 1
0 1 1
4 0 3 2 1
4 4 5 6 7
4 0 1 5 4
4 2 3 7 6
4 1 2 6 5
4 0 4 7 3
"""


def write_assets(folder: Path, manifest: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tetra.obj").write_text(TETRA_OBJ)
    (folder / "cube.ply").write_text(CUBE_PLY)
    (folder / "manifest.yaml").write_text(manifest)
    return folder


MANIFEST = """objects:
  - {name: tetra, file: tetra.obj, category: toy, scale: 0.8}
  - {name: crate, file: cube.ply, category: container, scale: 0.6, symmetry: {discrete: [[0, 0, 90], [0, 0, 180], [0, 0, 270]]}}
heldout_objects: [tetra]
"""


def test_a_manifest_symmetry_can_be_an_axis_with_its_flips(tmp_path):
    from igbench.objects.library import load_library

    manifest = MANIFEST.replace("{discrete: [[0, 0, 90], [0, 0, 180], [0, 0, 270]]}", "{continuous: [0, 0, 1], discrete: [[180, 0, 0]]}")
    crate = load_library(write_assets(tmp_path / "assets", manifest))["crate"]
    assert crate.symmetry == {"type": "continuous", "axis": [0.0, 0.0, 1.0], "rotations": [[180.0, 0.0, 0.0]]}
    rotations = crate.symmetry_rotations()
    assert len(rotations) == 36 + 36  # the axis every 10 degrees, and each of those flipped upside down
    assert sum(np.allclose(r, np.diag([1.0, -1.0, -1.0])) for r in rotations) == 1


@pytest.mark.blender
def test_user_assets_render_with_their_own_vocabulary(tmp_path):
    assets = write_assets(tmp_path / "assets", MANIFEST)
    task = load_task("so3", assets=str(assets))
    assert task.categorical["object"].values == ("tetra", "crate")
    assert task.library["crate"].diameter == pytest.approx(0.6 * np.sqrt(3))
    igbench("render", "--task", "so3", "--split", "train", "--n", "2", "--out", str(tmp_path / "out"),
            "--assets", str(assets), "--resolution", "48x48", *TINY)
    ds = datasets.load_dataset(str(tmp_path / "out" / "so3" / "train"), split="train")
    assert {o["object"] for row in ds for o in row["objects"]} <= {"tetra", "crate"}


@pytest.mark.parametrize("setup,fragment", [
    (lambda d: write_assets(d, MANIFEST.replace("tetra.obj", "missing.obj")), "mesh file not found"),
    (lambda d: (write_assets(d, MANIFEST), (d / "tetra.obj").write_bytes(b"\x00\x01garbage")), "cannot read mesh"),
    (lambda d: (write_assets(d, MANIFEST), (d / "manifest.yaml").unlink()), "no manifest.yaml"),
    (lambda d: write_assets(d, MANIFEST.replace("heldout_objects: [tetra]", "heldout_objects: [teapot]")),
     "unknown objects ['teapot']"),
])
def test_bad_assets_are_one_line_errors(tmp_path, setup, fragment):
    folder = tmp_path / "assets"
    folder.mkdir()
    setup(folder)
    proc = igbench("render", "--task", "so3", "--n", "1", "--out", str(tmp_path / "o"), "--assets", str(folder), check=False)
    one_line_error(proc, fragment)
    assert not (tmp_path / "o").exists()


def test_unknown_object_in_a_program_and_unknown_rep_on_the_cli(tmp_path):
    from igbench.program import ProgramError

    with pytest.raises(ProgramError, match="unknown object 'spaceship'"):
        parse("add(object='spaceship', material='steel', loc=(0, 0, 0), rotation=(0, 0, 0))", load_task("so3"))
    proc = igbench("render", "--task", "so3", "--rotation-rep", "matrix", "--out", str(tmp_path / "o"), check=False)
    assert proc.returncode == 2 and "invalid choice: 'matrix'" in proc.stderr and proc.stderr.count("\n") == 1
