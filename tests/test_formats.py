"""The versioned formats: JSON Schemas that accept what igbench writes and reject what it must not."""
import copy
import json
from pathlib import Path

import pytest

from igbench.formats import SCHEMAS_DIR, higher_is_better, metric_directions, metric_value, schema, validation_errors

REPO = Path(__file__).resolve().parents[1]


def test_the_schemas_are_draft_2020_12_and_valid():
    import jsonschema

    for name in ("scores", "render_config"):
        assert schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema(name))
    assert sorted(p.name for p in SCHEMAS_DIR.glob("*.json")) == ["render_config.schema.json", "scores.schema.json"]


def test_every_metric_has_a_direction():
    assert higher_is_better("f1@0.5") and higher_is_better("attr_acc") and higher_is_better("psnr_median")
    assert higher_is_better("mssd_ar") and higher_is_better("add_adds_recall@0.1d")
    assert not higher_is_better("loc_l2_mean") and not higher_is_better("lpips") and not higher_is_better("pos_err_px_median")
    assert not higher_is_better("count_abs_err") and not higher_is_better("flip_median")
    with pytest.raises(ValueError, match="no declared direction"):
        higher_is_better("mystery_metric")
    directions = metric_directions({"clevr/val": {"n": 3, "parse_rate": 1.0, "loc_l2_mean": 0.1, "objects": {}, "ci95": {}}})
    assert directions == {"loc_l2_mean": False, "parse_rate": True}


def test_a_metric_is_found_by_its_own_key_or_by_its_dotted_path():
    split = {"f1@0.5": 0.25, "attr_acc": {"color": 0.75}, "render": {"psnr": 31.5}, "n": 4}
    assert metric_value(split, "f1@0.5") == 0.25  # the dot is part of the key
    assert metric_value(split, "attr_acc.color") == 0.75 and metric_value(split, "render.psnr") == 31.5
    assert metric_value(split, "attr_acc.shape") is None and metric_value(split, "f1@0.25") is None
    assert metric_value(split, "n.more") is None  # a path through a number ends there


def scores_file(tmp_path, conforms):
    from igbench.score import score_predictions

    rows = [{"id": "clevr/val/000000", "objects": [
        {"shape": "cube", "color": "red", "material": "metal", "size": "large", "loc": [1.0, 2.0, 0.7],
         "rotation": [0.1], "has_rotation": True}]}]
    scores = score_predictions([{"id": "clevr/val/000000", "program": "add(shape='cube', color='red', material='metal', "
                                 "size='large', loc=(1.0, 2.0, 0.7), rotation=0.1)"}], rows, bootstrap=20)
    conforms(scores, "scores")
    return scores


def test_scores_carry_their_version_and_directions_and_the_schema_catches_breakage(tmp_path, conforms):
    scores = scores_file(tmp_path, conforms)
    assert scores["schema_version"] == 1
    group = scores["results"]["clevr/val"]
    assert set(scores["higher_is_better"]) == {k for k in group if k not in ("n", "rot_pairs", "objects", "ci95", "failures")}
    assert scores["higher_is_better"]["f1@0.5"] is True and scores["higher_is_better"]["loc_l2_mean"] is False
    for damage in (lambda s: s.pop("higher_is_better"), lambda s: s.update(schema_version=2),
                   lambda s: s["results"]["clevr/val"].update(parse_rate=1.5),
                   lambda s: s["results"]["clevr/val"].update(loc_l2_mean="0.1"),
                   lambda s: s["results"]["clevr/val"]["ci95"].update(parse_rate=[0.5]),
                   lambda s: s["reference"].update(fingerprint="not-a-hash")):
        broken = copy.deepcopy(scores)
        damage(broken)
        assert validation_errors(broken, "scores"), damage


def test_the_committed_result_tables_conform(conforms):
    for path in sorted((REPO / "results").rglob("scores.json")):
        data = json.loads(path.read_text())
        if "schema_version" in data:  # tables scored before the versioned format are kept as they were
            conforms(path)


def test_render_config_carries_a_format_version_and_the_schema_catches_breakage(tmp_path, conforms):
    from igbench.cli.main import main

    assert main(["render", "--task", "dot2d", "--split", "ood", "--n", "2", "--out", str(tmp_path), "--quiet"]) == 0
    path = tmp_path / "dot2d" / "ood" / "render_config.json"
    conforms(path)
    saved = json.loads(path.read_text())
    from igbench.shards import FORMAT_VERSION

    assert saved["format_version"] == FORMAT_VERSION == 2 and len(saved["shards"]) == 1
    for damage in (lambda s: s.pop("format_version"), lambda s: s.update(format_version="1"),
                   lambda s: s["render_settings"].update(width=0), lambda s: s.update(task_sha256="abc"),
                   lambda s: s["config"].pop("split"),
                   lambda s: next(iter(s["shards"].values())).update(sha256="not a digest")):
        broken = copy.deepcopy(saved)
        damage(broken)
        assert validation_errors(broken, "render_config"), damage
