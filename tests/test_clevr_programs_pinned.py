"""The CLEVR sampler draws the same scenes as the day its output was pinned (tests/fixtures/clevr_programs.json),
so a dataset rendered before any change to the sampler's code stays reproducible."""
import hashlib
import itertools
import json
from pathlib import Path

import pytest

from igbench.cli.main import main
from igbench.generators import sample_scene
from igbench.program import format_program
from igbench.task import load_task

PINNED = json.loads((Path(__file__).parent / "fixtures" / "clevr_programs.json").read_text())


def short_sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:16]


@pytest.fixture
def compiled_for_any_size(monkeypatch):
    """The compiled layout loop even for a handful of scenes (by default runs that short are drawn one by one)."""
    from igbench.generators import clevr

    monkeypatch.setattr(clevr, "COMPILED_FROM", 1)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "one-by-one"])
@pytest.mark.parametrize("key", sorted(k for k in PINNED["sha256"] if k.count("/") == 1))
def test_programs_only_output_is_pinned(tmp_path, key, compiled, request):
    if compiled:
        request.getfixturevalue("compiled_for_any_size")
    split, seed = key.split("/")
    expected = PINNED["sha256"][key]
    assert main(["render", "--task", "clevr", "--split", split, "--seed", seed, "--n", str(len(expected)),
                 "--out", str(tmp_path), "--programs-only", "--quiet"]) == 0
    lines = (tmp_path / "clevr" / split / "programs.jsonl").read_bytes().splitlines()
    if split == "train" and seed == "0":
        assert [json.loads(line) for line in lines[:3]] == PINNED["examples_train_0"]
    got = [short_sha(line) for line in lines]
    differ = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert len(got) == len(expected) and not differ, f"{key}: scenes {differ[:10]} differ from the pinned output"


def test_visibility_redraws_are_pinned():
    task = load_task("clevr")
    got = []
    for i in range(len(PINNED["sha256"]["train/0/attempts"])):
        scene = sample_scene(task, "train", i, 0, attempt=1 + i % 3)
        row = scene.to_dict(task)
        row["program"] = format_program(scene.program, task)
        got.append(short_sha(json.dumps(row).encode()))
    assert got == PINNED["sha256"]["train/0/attempts"]


def crowded_task(tmp_path, sizes=None, **split):
    import yaml

    spec = yaml.safe_load(Path(load_task("clevr").path).read_text())
    spec["splits"]["crowded"] = {"num_objects": [9, 10], "colors_by_shape": {"cube": ["red"], "sphere": ["gray", "blue", "red"]},
                                 **split}
    if sizes:
        spec["sizes"] = sizes
    path = tmp_path / "crowded.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_task(str(path))


@pytest.mark.parametrize("rules", [{}, {"min_edge_gap": -0.2}, {"sizes": {"large": 0.7, "medium": 0.5, "small": 0.35}}])
def test_many_at_once_equals_one_by_one_on_a_crowded_split(tmp_path, rules, compiled_for_any_size):
    """Many failed layouts, one-colour and three-colour choices (Lemire's rejection path), cubes' yaws; a
    negative gap (objects may overlap) and three sizes (a size's word may be rejected too) alike."""
    from igbench.generators import sample_scenes

    from igbench.generators import sample_lines
    from igbench.scene import SceneLines

    task = crowded_task(tmp_path, **rules)
    many = list(sample_scenes(task, "crowded", range(150), 4))
    lines = SceneLines(task)
    texts = list(sample_lines(task, "crowded", range(150), 4, lines))
    for i in range(150):
        one = sample_scene(task, "crowded", i, 4)
        assert many[i].to_dict(task) == one.to_dict(task), i
        assert format_program(many[i].program, task) == format_program(one.program, task)
        assert texts[i] == SceneLines(task).line(one), i


def test_lines_with_numbers_the_compiled_writers_do_not_take_are_written_in_python(tmp_path, compiled_for_any_size):
    """Positions beyond %+.3f's compiled range (2**52) on some scenes: those lines come from SceneLines."""
    from igbench.generators import sample_lines, sample_scenes
    from igbench.scene import SceneLines

    task = crowded_task(tmp_path, num_objects=[3, 4], xy_range=[-1e16, 1e16])
    scenes = list(sample_scenes(task, "crowded", range(40), 1))
    assert any(abs(obj.loc[0]) > 2**52 for scene in scenes for obj in scene.program)
    assert list(sample_lines(task, "crowded", range(40), 1, SceneLines(task))) == [
        SceneLines(task).line(scene) for scene in scenes]


@pytest.mark.parametrize("at_once, band", [(1, 1e-9), (7, 1e-9), (1024, 1e-3)])
def test_how_many_at_once_and_the_band_change_no_scene(monkeypatch, at_once, band):
    """How many scenes go through the compiled loop at once only changes the speed, and a scene inside the band
    goes to `sample` (a band of 1e-3 sends some; the scenes stay the same)."""
    from igbench.generators import clevr, sample_scenes

    task = load_task("clevr")
    expected = [sample_scene(task, "val", i, 2) for i in range(120)]
    monkeypatch.setattr(clevr, "COMPILED_FROM", 1)
    monkeypatch.setattr(clevr, "SCENES_AT_ONCE", at_once)
    monkeypatch.setattr(clevr, "BAND", band)
    fallbacks, one_by_one = [], clevr.sample
    monkeypatch.setattr(clevr, "sample", lambda *args: fallbacks.append(args) or one_by_one(*args))
    got = list(sample_scenes(task, "val", range(120), 2))
    assert [s.to_dict(task) for s in got] == [s.to_dict(task) for s in expected]
    assert (len(fallbacks) > 0) == (band > 1e-6), len(fallbacks)


def test_the_compiled_generator_draws_numpys_raw_values():
    """The compiled PCG64 (its 128-bit step on 64-bit halves) gives random_raw's values for any seed's state."""
    import numpy as np

    from igbench.generators import clevr_layouts
    from igbench.generators.stream import pcg64_states

    seeds = [0, 1, 2**32 - 1, 2**32, 2**63 + 12345, 987654321]
    gens = clevr_layouts.generators(pcg64_states(seeds))
    first, then = clevr_layouts.raw_values(gens, 5), clevr_layouts.raw_values(gens, 3000)
    for seed, a, b in zip(seeds, first, then):
        assert np.array_equal(np.concatenate([a, b]), np.random.PCG64(seed).random_raw(3005)), seed


def test_any_indices_come_back_in_their_order(compiled_for_any_size):
    """Indices out of order and repeated, across more than one batch of the compiled loop."""
    from igbench.generators import sample_scenes

    task = load_task("clevr")
    indices = [7, 3, 250, 0, 3, *range(400, 1400), 5]
    got = [s.to_dict(task) for s in sample_scenes(task, "ood", indices, 5)]
    assert len(got) == len(indices)
    assert [got[i] for i in (0, 1, 2, 3, 4, 500, len(indices) - 1)] == [
        sample_scene(task, "ood", indices[i], 5).to_dict(task) for i in (0, 1, 2, 3, 4, 500, len(indices) - 1)]


def test_many_at_once_raises_the_same_error_when_nothing_fits(tmp_path, compiled_for_any_size):
    from igbench.errors import UserError
    from igbench.generators import sample_scenes

    task = crowded_task(tmp_path, xy_range=[-1.5, 1.5], max_scene_tries=3)
    with pytest.raises(UserError, match="could not place the objects in 3 tries"):
        list(sample_scenes(task, "crowded", range(5), 0))


def test_seeds_hashed_at_once_are_numpys():
    """The vectorised SeedSequence and PCG64 seeding give numpy's own values, one-word and two-word seeds alike."""
    import numpy as np

    from igbench.generators import scene_seed, scene_seeds
    from igbench.generators.stream import pcg64_states

    for base_seed in (0, 7, 2**40 + 3, 2**70):  # 2**70: words SeedSequence splits, hashed one by one
        assert scene_seeds("clevr", "ood", list(range(200)), base_seed) == [scene_seed("clevr", "ood", i, base_seed)
                                                                            for i in range(200)]
    seeds = scene_seeds("clevr", "train", list(range(300)), 0) + [0, 1, 2**32 - 1, 2**32]
    assert pcg64_states(seeds) == [np.random.PCG64(seed).state for seed in seeds]


@pytest.mark.parametrize("n", [3, 5, 6, 7])
def test_the_compiled_bounded_draw_redraws_a_rejected_word_as_numpy_does(n):
    """Word 0 is one Lemire's method rejects for any n that is not a power of two: with it cached as the
    generator's 32-bit half, numpy's integers(0, n) draws the next word, and so must the compiled draw."""
    import numpy as np

    from igbench.generators import clevr_layouts
    from igbench.generators.stream import pcg64_states

    state = {**pcg64_states([11])[0], "has_uint32": 1, "uinteger": 0}
    bitgen = np.random.PCG64()
    bitgen.state = state
    expected = [int(v) for v in np.random.Generator(bitgen).integers(0, n, 4)]
    gen = clevr_layouts.generators([state])[0]
    assert [clevr_layouts._below(gen, n) for _ in range(4)] == expected
