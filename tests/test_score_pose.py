"""`igbench score` on the pose tasks (so3, 6dof) and dot2d, on real tiny renders: ground truth scores
perfectly (in two rotation representations), hand-made perturbations give the expected numbers, malformed
predictions are failures, and `--render` re-renders pose and canvas programs."""
import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from igbench.cli.main import main
from igbench.rotations import from_matrix
from igbench.score import score_predictions
from igbench.score.api import score
from igbench.score.reference import load_split_dir
from igbench.task import load_task

RENDER = ["--resolution", "64x48", "--samples", "2", "--quiet"]


def render(out, task, split, n, *extra):
    subprocess.run([sys.executable, "-m", "igbench", "render", "--task", task, "--split", split, "--n", str(n),
                    "--out", str(out), *RENDER, *extra], check=True, capture_output=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("pose")
    render(out, "6dof", "train", 3)
    render(out, "so3", "test", 2)
    subprocess.run([sys.executable, "-m", "igbench", "render", "--task", "dot2d", "--split", "test", "--n", "3",
                    "--out", str(out), "--resolution", "64x64", "--quiet"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def data_quat(tmp_path_factory):
    out = tmp_path_factory.mktemp("pose_quat")
    render(out, "so3", "ood", 2, "--rotation-rep", "quat")
    return out


def rows_of(root, task, split):
    return list(load_split_dir(root / task / split, load_task(task), split).rows.values())


def oracle(rows):
    return [{"id": r["id"], "program": r["program"]} for r in rows]


def assert_pose_perfect(group, n, camera=True):
    assert group["n"] == n and group["parse_rate"] == 1 and group["count_acc"] == 1 and group["failures"] == {}
    assert group["attr_acc"] == {"object": 1.0, "material": 1.0}
    assert group["rot_err_deg_mean"] < 0.2 and group["trans_err_mean"] < 1e-3  # programs keep 3 decimals
    assert group["add_rel_mean"] < 2e-3 and group["mssd_rel_mean"] < 3e-3
    if camera:
        assert group["mspd_px_mean"] < 0.1 and group["mspd_ar"] == 1
    else:  # rows without a camera: MSPD is undefined
        assert group["mspd_px_mean"] is None and group["mspd_ar"] is None
    for key in ("rot_recall@5", "rot_recall@10", "rot_recall@15", "add_recall@0.1d", "adds_recall@0.1d",
                "add_adds_recall@0.1d", "mssd_ar"):
        assert group[key] == 1, key
        assert group["ci95"][key] == [1, 1]


@pytest.mark.blender
def test_ground_truth_scores_perfectly_on_6dof_so3_and_dot2d(data, tmp_path):
    rows = {t: rows_of(data, t, s) for t, s in (("6dof", "train"), ("so3", "test"), ("dot2d", "test"))}
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for r in rows.values() for p in oracle(r)))
    results = score_predictions(path, data, bootstrap=100)["results"]
    assert sorted(results) == ["6dof/train", "dot2d/test", "so3/test"]
    assert_pose_perfect(results["6dof/train"], 3)
    assert_pose_perfect(results["so3/test"], 2)
    assert results["6dof/train"]["objects"]["reference"] == sum(len(r["objects"]) for r in rows["6dof"])
    dot = results["dot2d/test"]
    assert dot["parse_rate"] == 1 and dot["count_acc"] == 1 and dot["failures"] == {}
    assert dot["pos_err_mean"] < 1e-3 and dot["pos_err_px_mean"] < 0.05  # 64 px canvas, 3 decimals
    # dataset rows as `objects` structs score perfectly too
    structs = [{"id": r["id"], "objects": r["objects"]} for r in rows["6dof"]]
    group = score_predictions(structs, data, bootstrap=0)["results"]["6dof/train"]
    assert group["rot_err_deg_mean"] < 1e-4 and group["mssd_ar"] == 1


@pytest.mark.blender
def test_so3_in_quaternions_and_trainer_rows_without_rotation_rep(data_quat):
    rows = rows_of(data_quat, "so3", "ood")
    assert all(r["rotation_rep"] == "quat" and len(r["objects"][0]["rotation"]) == 4 for r in rows)
    assert_pose_perfect(score_predictions(oracle(rows), data_quat, bootstrap=50)["results"]["so3/ood"], 2)
    # a trainer hands in {id, objects} only: the representation is inferred from R_world
    bare = [{"id": r["id"], "objects": r["objects"]} for r in rows]
    assert_pose_perfect(score_predictions(oracle(rows), bare, bootstrap=50)["results"]["so3/ood"], 2, camera=False)


def rz(deg):
    return Rotation.from_euler("z", deg, degrees=True).as_matrix()


def handmade_rows(data, objects, rep="euler"):
    """so3 rows with the given (object, R_world) and the camera of a rendered sample."""
    template = rows_of(data, "so3", "test")[0]
    out = []
    for k, (name, R) in enumerate(objects):
        row = copy.deepcopy(template)
        row["id"], row["index"], row["rotation_rep"] = f"so3/test/{k:06d}", k, rep
        obj = row["objects"][0]
        obj.update(object=name, rotation=list(from_matrix(R, rep)), R_world=np.asarray(R).tolist())
        row["program"] = None
        out.append(row)
    return out


def prediction(row, R, rep="euler", name=None, loc_shift=(0, 0, 0)):
    obj = row["objects"][0]
    struct = {"object": name or obj["object"], "material": obj["material"],
              "loc": list(np.asarray(obj["loc"]) + loc_shift), "rotation": list(from_matrix(R, rep))}
    return {"id": row["id"], "objects": [struct]}


@pytest.mark.blender
def test_symmetries_and_a_ten_degree_rotation_give_the_expected_errors(data):
    R0 = Rotation.from_euler("xyz", [0.4, -0.3, 1.1]).as_matrix()
    tilt = Rotation.from_rotvec(np.radians(10) * np.array([1.0, 2.0, 0.5]) / np.linalg.norm([1.0, 2.0, 0.5]))
    cases = [  # object, reference R, predicted R, expected rotation error
        ("table", R0, R0 @ rz(180), 0.0),  # a discrete symmetry
        ("bowl", R0, R0 @ rz(37), 0.0),  # a continuous one, between the library's 10-degree samples
        ("mug", R0, tilt.as_matrix() @ R0, 10.0),  # no symmetry
        ("box", R0, R0 @ Rotation.from_euler("x", 180, degrees=True).as_matrix(), 0.0),
    ]
    rows = handmade_rows(data, [(name, R) for name, R, _, _ in cases])
    preds = [prediction(row, R_pred) for row, (_, _, R_pred, _) in zip(rows, cases)]
    run = score(preds, rows, bootstrap=0)
    group = run.scores["results"]["so3/test"]
    by_id = {s["id"]: s["matched"][0] for s in run.samples}
    for row, (name, _, _, expected) in zip(rows, cases):
        pair = by_id[row["id"]]
        assert pair["rot_err_deg"] == pytest.approx(expected, abs=0.5 if expected else 1e-4), name
        assert pair["symmetric"] == (name != "mug")
        if expected == 0:
            # continuous symmetries are sampled every <= 0.01 d (BOP), so MSSD/MSPD keep up to 0.005 d
            assert pair["mssd_rel"] < 0.006 and pair["adds_rel"] < 0.01 and pair["mspd_px"] < 0.5, name
    assert by_id[rows[0]["id"]]["add_rel"] > 0.2  # plain ADD sees the half turn, ADD-S and MSSD do not
    assert group["rot_recall@5"] == 0.75 and group["rot_recall@15"] == 1.0
    assert group["mssd_ar"] < 1 and group["adds_recall@0.1d"] == 1.0
    assert group["rot_err_deg_median"] == pytest.approx(0.0, abs=1e-3)

    # 6-D and axis-angle datasets: the same poses give the same errors
    for rep in ("6d", "aa"):
        rows_rep = handmade_rows(data, [(name, R) for name, R, _, _ in cases], rep)
        preds_rep = [prediction(row, R_pred, rep) for row, (_, _, R_pred, _) in zip(rows_rep, cases)]
        again = score_predictions(preds_rep, rows_rep, bootstrap=0)["results"]["so3/test"]
        assert again["rot_err_deg_mean"] == pytest.approx(group["rot_err_deg_mean"], abs=1e-6)

    # a translation error of 0.1 (about 0.1 d of a mug) and a wrong object identity
    mug = rows[2]
    shifted = score_predictions([prediction(mug, R0, loc_shift=(0.1, 0, 0), name="bowl")], [mug],
                                bootstrap=0)["results"]["so3/test"]
    assert shifted["trans_err_mean"] == pytest.approx(0.1, abs=1e-9) and shifted["rot_err_deg_mean"] < 1e-4
    assert shifted["add_rel_mean"] == pytest.approx(0.1 / load_task("so3").library["mug"].diameter)
    assert shifted["attr_acc"]["object"] == 0  # pose errors use the reference object's model


@pytest.mark.blender
def test_6dof_missing_object_and_count_errors(data):
    rows = rows_of(data, "6dof", "train")
    multi = max(rows, key=lambda r: len(r["objects"]))
    n_gt = len(multi["objects"])
    preds = [{"id": multi["id"], "objects": multi["objects"][1:]}]  # one object left out
    group = score_predictions(preds, [multi], bootstrap=0)["results"]["6dof/train"]
    assert group["count_acc"] == 0 and group["count_abs_err"] == 1
    for key in ("rot_recall@5", "add_recall@0.1d", "mssd_ar", "mspd_ar"):
        assert group[key] == pytest.approx((n_gt - 1) / n_gt)
    assert group["rot_err_deg_mean"] < 1e-4  # the matched ones are right


@pytest.mark.blender
def test_malformed_predictions_count_as_failures(data_quat):
    rows = rows_of(data_quat, "so3", "ood")
    good = rows[1]["program"]
    cases = [
        ("invalid_rotation", good.split("rotation=")[0] + "rotation=(0, 0, 0, 0))"),  # a zero quaternion
        ("wrong_field_type", good.split("rotation=")[0] + "rotation=(0.1, 0.2, 0.3))"),  # euler in a quat dataset
        ("syntax_error", "add(object='mug', material="),
        ("unknown_value", good.replace(f"object='{rows[1]['objects'][0]['object']}'", "object='spaceship'")),
        ("non_finite_number", good.split("loc=")[0] + "loc=(1e999, 0, 0), rotation=(1, 0, 0, 0))"),
    ]
    for reason, program in cases:
        preds = [{"id": rows[0]["id"], "program": rows[0]["program"]}, {"id": rows[1]["id"], "program": program}]
        group = score_predictions(preds, data_quat, bootstrap=20)["results"]["so3/ood"]
        assert reason in group["failures"], (reason, group["failures"])
        assert group["parse_rate"] == 0.5 and group["mssd_ar"] == 0.5 and group["rot_recall@15"] == 0.5, reason
        assert group["count_acc"] == 0.5
    # no prediction at all for a sample: a failure, not a crash
    group = score_predictions([{"id": rows[0]["id"], "program": 42}], data_quat, bootstrap=0)["results"]["so3/ood"]
    assert group["failures"] == {"missing_prediction": 1, "wrong_json_type": 1}
    assert group["parse_rate"] == 0 and group["rot_err_deg_mean"] is None and group["mssd_ar"] == 0


@pytest.mark.blender
def test_dot2d_shift_gives_the_expected_error(data):
    rows = rows_of(data, "dot2d", "test")
    preds = [{"id": r["id"], "objects": [{"loc": [r["objects"][0]["loc"][0] + 0.1, r["objects"][0]["loc"][1]]}]}
             for r in rows]
    preds[0] = {"id": rows[0]["id"], "program": "add(loc=(0.5,))"}  # wrong arity
    group = score_predictions(preds, data, bootstrap=50)["results"]["dot2d/test"]
    assert group["pos_err_mean"] == pytest.approx(0.1) and group["pos_err_px_mean"] == pytest.approx(6.4)
    assert group["parse_rate"] == pytest.approx(2 / 3) and group["count_acc"] == pytest.approx(2 / 3)
    assert sum(group["failures"].values()) == 1


def run_cli(capsys, *args):
    code = main(["score", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.blender
def test_render_re_renders_pose_and_canvas_programs(data, data_quat, tmp_path, capsys, conforms):
    cache = tmp_path / "cache"
    for root, items in ((data, [("6dof", "train"), ("dot2d", "test")]), (data_quat, [("so3", "ood")])):
        path = tmp_path / f"{root.name}.jsonl"
        path.write_text("".join(json.dumps(p) + "\n" for t, s in items for p in oracle(rows_of(root, t, s))))
        out = tmp_path / root.name
        code, _, err = run_cli(capsys, path, "--data", root, "--render", "--cache-dir", cache, "--bootstrap", "20",
                               "--out", out)
        assert code == 0, err
        conforms(out / "scores.json")
        results = json.loads((out / "scores.json").read_text())["results"]
        for task, split in items:
            group = results[f"{task}/{split}"]
            assert group["render"]["failed"] == 0 and group["render"]["rendered"] == group["n"], task
            assert group["mask_iou"] > 0.95 and group["psnr"] > 30, task
    # a quaternion read as Euler angles would render another pose: the cache key holds the representation
    from igbench.render_settings import RenderSettings
    from igbench.score.rerender import render_key

    scene = {"objects": [], "camera": {}, "lights": [], "seed": 0}
    assert render_key(scene, RenderSettings(), "x", "quat", "lib") != render_key(scene, RenderSettings(), "x", "euler", "lib")
