"""`igbench score` end to end on a real tiny rendered split: perfection, bad input, file-level errors,
`--render` with the cache."""
import json
import subprocess
import sys

import pytest

from igbench.cli.main import main
from igbench.score import score_predictions
from igbench.score.reference import load_split_dir
from igbench.task import load_task

TASK = load_task("clevr")
N = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    subprocess.run([sys.executable, "-m", "igbench", "render", "--split", "val", "--n", str(N), "--out", str(out),
                    "--resolution", "96x64", "--samples", "4", "--shard-size", "2", "--quiet"], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def rows(data):
    return list(load_split_dir(data / "clevr" / "val", TASK, "val").rows.values())


def write(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def oracle(rows):
    return [{"id": r["id"], "program": r["program"]} for r in rows]


def assert_perfect(group):
    assert group["n"] == N and group["parse_rate"] == 1 and group["count_acc"] == 1 and group["count_abs_err"] == 0
    assert all(v == 1 for v in group["attr_acc"].values())
    assert group["loc_l2_mean"] < 1e-3 and group["rot_err_deg_mean"] < 0.1  # the text keeps 3 decimals
    for key in ("inf", "1", "0.5", "0.25", "0.125"):
        assert group[f"f1@{key}"] == 1 and group[f"ap@{key}"] == 1
    assert group["failures"] == {}


@pytest.mark.blender
def test_ground_truth_as_prediction_scores_perfectly(data, rows, tmp_path):
    scores = score_predictions(write(tmp_path / "p.jsonl", oracle(rows)), data, bootstrap=100)
    assert_perfect(scores["results"]["clevr/val"])
    assert len(scores["predictions_sha256"]) == 64 and len(scores["reference"]["fingerprint"]) == 64


@pytest.mark.blender
def test_objects_lists_and_in_memory_rows_work_too(data, rows):
    preds = [{"id": r["id"], "objects": r["objects"]} for r in rows]  # dataset rows as structs, has_rotation included
    assert_perfect(score_predictions(preds, data, bootstrap=0)["results"]["clevr/val"])
    assert_perfect(score_predictions(oracle(rows), rows, bootstrap=0)["results"]["clevr/val"])  # the trainer's way


@pytest.mark.blender
def test_order_of_objects_does_not_matter(data, rows):
    reversed_ = [{"id": r["id"], "program": "\n".join(reversed(r["program"].splitlines()))} for r in rows]
    shifted = [{"id": r["id"], "program": r["program"].replace("loc=(+", "loc=(+1").replace("loc=(-", "loc=(-1")}
               for r in rows]
    a = score_predictions(reversed_, data, bootstrap=50)["results"]
    b = score_predictions(oracle(rows), data, bootstrap=50)["results"]
    assert a == b
    assert score_predictions(shifted, data, bootstrap=0)["results"]["clevr/val"]["loc_l2_mean"] > 0.01


def test_a_corpus_of_bad_predictions_is_scored_with_the_right_failure_counts(tmp_path):
    good = "add(shape='cube', color='red', material='metal', size='large', loc=(0, 0, 0.7), rotation=0.1)"
    bad = {
        "syntax_error": "add(shape='cube', color=",
        "unknown_value": good.replace("'red'", "'pink'"),
        "wrong_field_type": good.replace("(0, 0, 0.7)", "(nan, 0, 0.7)"),
        "non_finite_number": good.replace("(0, 0, 0.7)", "(1e999, 0, 0.7)"),
        "number_out_of_range": good.replace("(0, 0, 0.7)", "(1e308, 0, 0.7)"),
        "empty_program": "",
        "too_long": "#" + "x" * 1_000_000,
        "not_an_add_call": "import os",
        "unknown_field": good.replace("size=", "colour='red', size="),
    }
    ids = [f"clevr/val/{i:06d}" for i in range(len(bad) + 4)]
    reference = [{"id": i, "objects": [{"shape": "cube", "color": "red", "material": "metal", "size": "large",
                                        "loc": [0.0, 0.0, 0.7], "rotation": [0.1], "has_rotation": True}]} for i in ids]
    lines = [json.dumps({"id": i, "program": text}).encode() for i, text in zip(ids, bad.values())]
    lines.append(json.dumps({"id": ids[len(bad)], "program": 42}).encode())  # wrong JSON type
    lines.append(json.dumps({"id": ids[len(bad) + 1], "objects": [{"shape": "cube", "color": "red", "material": "metal",
                                                                   "size": "large", "loc": [float("nan"), 0, 0]}]}).encode())
    lines.append(b'{"id": "' + ids[len(bad) + 2].encode() + b'", "program": "add(shape=\'\xff\')"}')  # invalid UTF-8
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")  # ids[-1] has no line: missing
    scores = score_predictions(path, reference, bootstrap=0)
    group = scores["results"]["clevr/val"]
    expected = {key: 1 for key in bad}
    expected.update({"wrong_json_type": 1, "invalid_utf8": 1, "missing_prediction": 1})
    expected["non_finite_number"] += 1  # the NaN in the objects list
    assert group["failures"] == expected
    assert group["parse_rate"] == 0 and group["n"] == len(ids)
    assert scores["missing"] == {"count": 1, "examples": [ids[-1]]}


def test_partly_valid_programs_keep_their_valid_objects(tmp_path):
    ref = [{"id": "clevr/val/000000", "objects": [
        {"shape": "sphere", "color": "red", "material": "metal", "size": "large", "loc": [0.0, 0.0, 0.7]},
        {"shape": "sphere", "color": "blue", "material": "metal", "size": "large", "loc": [2.0, 0.0, 0.7]}]}]
    text = ("add(shape='ball', color='red', material='shiny', size='big', loc=(0, 0, 0.7))\n"
            "add(shape='sphere', color='blue', material='metal', size='large', loc=(2, 0")  # cut off
    group = score_predictions({"clevr/val/000000": text}, ref, bootstrap=0)["results"]["clevr/val"]
    assert group["failures"] == {"syntax_error": 1}
    assert group["recall@inf"] == 0.5 and group["precision@inf"] == 1


def run_cli(capsys, *args):
    code = main(["score", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.blender
@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\n\n", "is empty"),
    (b'{"id": "clevr/val/000000", "program": ""}\nnot json\n', "line 2: not a JSON object"),
    (b'["clevr/val/000000"]\n', "line 1: expected a JSON object, got a JSON array"),
    (b'{"id": 7, "program": ""}\n', "'id' is a JSON number"),
    (b'{"id": "clevr/val/000000", "program": ""}\n{"id": "clevr/val/000000", "program": ""}\n', "duplicate id 'clevr/val/000000' on lines 1 and 2"),
    (b'{"id": "clevr/val/000999", "program": ""}\n', "not in the reference, e.g. 'clevr/val/000999'"),
    (b'{"id": "clevr/nosuch/000000", "program": ""}\n', "no split 'nosuch'"),
    (b'{"id": "nonsense", "program": ""}\n', "malformed sample id 'nonsense'"),
    (b'{"id": "clevr/val/000000", "program": "\xff\xfe"\n', "not a JSON object"),
])
def test_file_level_problems_are_one_line_and_exit_2(data, tmp_path, capsys, content, message):
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, path, "--data", data, "--out", tmp_path / "out")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.blender
def test_missing_files_and_reference_are_one_line(data, tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "nope.jsonl", "--data", data)
    assert code == 2 and "not found" in err and err.count("\n") == 1
    path = write(tmp_path / "p.jsonl", [{"id": "clevr/ood/000000", "program": ""}])
    code, _, err = run_cli(capsys, path, "--data", data)
    assert code == 2 and "no reference for clevr/ood" in err and err.count("\n") == 1


@pytest.mark.blender
def test_cli_writes_scores_samples_and_a_report(data, rows, tmp_path, capsys, conforms):
    path = write(tmp_path / "p.jsonl", oracle(rows)[1:])  # one sample missing
    code, out, err = run_cli(capsys, path, "--data", data, "--out", tmp_path / "out", "--bootstrap", "100")
    assert code == 0, err
    assert "count accuracy" in out and "missing_prediction 1" in out
    conforms(tmp_path / "out" / "scores.json")
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    group = scores["results"]["clevr/val"]
    assert group["count_acc"] == pytest.approx(0.75) and group["failures"] == {"missing_prediction": 1}
    lo, hi = group["ci95"]["count_acc"]
    assert lo <= 0.75 <= hi
    assert scores["config"]["bootstrap"] == 100 and scores["igbench_version"]
    samples = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == N and samples[0]["reasons"] == ["missing_prediction"]  # worst first
    assert (tmp_path / "out" / "report" / "index.html").exists()


@pytest.mark.blender
def test_render_oracle_matches_its_reference_and_second_run_hits_the_cache(data, rows, tmp_path, capsys):
    cache = tmp_path / "cache"
    path = write(tmp_path / "p.jsonl", oracle(rows))
    args = [path, "--data", data, "--render", "--cache-dir", cache, "--workers", "2", "--bootstrap", "50"]
    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "a")
    assert code == 0, err
    group = json.loads((tmp_path / "a" / "scores.json").read_text())["results"]["clevr/val"]
    assert group["render"]["rendered"] == N and group["render"]["cached"] == 0
    assert group["mask_iou"] > 0.98 and group["psnr"] > 35 and group["ssim"] > 0.98
    if group["render"]["lpips"]:
        assert group["lpips"] < 0.02
    assert len(list((tmp_path / "a" / "report").glob("clevr_val_*.png"))) == N

    code, out, err = run_cli(capsys, *args, "--out", tmp_path / "b")
    again = json.loads((tmp_path / "b" / "scores.json").read_text())["results"]["clevr/val"]
    assert again["render"]["rendered"] == 0 and again["render"]["cached"] == N
    assert again["psnr"] == group["psnr"]

    # a wrong prediction re-renders differently and scores worse
    wrong = [{"id": r["id"], "program": r["program"].splitlines()[0]} for r in rows]
    code, out, err = run_cli(capsys, write(tmp_path / "w.jsonl", wrong), *args[1:], "--out", tmp_path / "c")
    worse = json.loads((tmp_path / "c" / "scores.json").read_text())["results"]["clevr/val"]
    assert worse["mask_iou"] < 0.9 and worse["psnr"] < group["psnr"] - 10


@pytest.mark.blender
def test_render_limit_rerenders_the_first_samples_only_and_scores_parameters_on_all(data, rows, tmp_path, capsys):
    cache = tmp_path / "cache"
    wrong = write(tmp_path / "w.jsonl", [{"id": r["id"], "program": r["program"].splitlines()[0]} for r in rows])
    args = [wrong, "--data", data, "--render", "--cache-dir", cache, "--workers", "2", "--bootstrap", "0"]
    assert run_cli(capsys, *args, "--out", tmp_path / "all")[0] == 0
    code, out, err = run_cli(capsys, *args, "--render-limit", "2", "--out", tmp_path / "two")
    assert code == 0, err
    full = json.loads((tmp_path / "all" / "scores.json").read_text())["results"]["clevr/val"]
    part = json.loads((tmp_path / "two" / "scores.json").read_text())["results"]["clevr/val"]
    assert part["render"]["n"] == 2 and part["render"]["rendered"] + part["render"]["cached"] == 2
    assert part["n"] == N and part["count_acc"] == full["count_acc"] and part["f1@0.5"] == full["f1@0.5"]
    samples = {json.loads(l)["id"]: json.loads(l) for l in (tmp_path / "all" / "samples.jsonl").read_text().splitlines()}
    limited = {json.loads(l)["id"]: json.loads(l) for l in (tmp_path / "two" / "samples.jsonl").read_text().splitlines()}
    first = sorted(samples)[:2]
    assert part["psnr"] == pytest.approx(sum(samples[i]["psnr"] for i in first) / 2)
    assert all("psnr" in limited[i] for i in first) and sum("psnr" in r for r in limited.values()) == 2


@pytest.mark.parametrize("extra, message", [(["--render", "--render-limit", "0"], "at least 1"),
                                            (["--render-limit", "5"], "needs --render")])
def test_render_limit_is_checked(tmp_path, capsys, extra, message):
    path = write(tmp_path / "p.jsonl", [{"id": "clevr/val/000000", "program": ""}])
    code, out, err = run_cli(capsys, path, "--data", tmp_path, *extra)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_scoring_imports_neither_torch_nor_bpy_until_images_are_compared():
    code = ("import igbench.score, igbench.cli.score, igbench.metrics.params, igbench.metrics.image, igbench.metrics.lpips\n"
            "import sys; print([m for m in ('torch', 'bpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
