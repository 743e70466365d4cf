"""Sharded rendering merges into exactly the unsharded split; `igbench push` builds a loadable Hub folder."""
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest
from cli_support import igbench, one_line_error
import yaml

TINY = ["--split", "ood", "--n", "6", "--shard-size", "2", "--resolution", "64x48", "--samples", "2", "--quiet"]






@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("unsharded")
    igbench("render", "--out", str(out), *TINY)
    return out / "clevr" / "ood"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """Two jobs of a job array on two machines (separate folders), run concurrently as separate processes."""
    base = tmp_path_factory.mktemp("jobs")
    procs = [subprocess.Popen([sys.executable, "-m", "igbench", "render", "--out", str(base / f"job{i}"), *TINY,
                               "--shard", f"{i}/2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    return [base / f"job{i}" / "clevr" / "ood" for i in range(2)]


def rows(split_dir):
    ds = datasets.load_dataset(str(split_dir), split="ood")
    return ds.cast_column("image", datasets.Image(decode=False))


@pytest.mark.blender
def test_jobs_write_disjoint_final_files(jobs):
    names = [sorted(p.name for p in (job / "data").glob("*.parquet")) for job in jobs]
    assert names == [["ood-00000-of-00003.parquet", "ood-00002-of-00003.parquet"], ["ood-00001-of-00003.parquet"]]


@pytest.mark.blender
def test_merged_jobs_equal_the_unsharded_run(jobs, reference, tmp_path):
    igbench("merge", *map(str, jobs), "--out", str(tmp_path))
    merged, single = rows(tmp_path / "clevr" / "ood"), rows(reference)
    assert merged["id"] == single["id"]
    assert merged["program"] == single["program"]
    assert merged["seed"] == single["seed"]


@pytest.mark.blender
def test_jobs_sharing_one_folder_merge_in_place(reference, tmp_path):
    for i in range(3):
        igbench("render", "--out", str(tmp_path), *TINY, "--shard", f"{i}/3")
    igbench("merge", str(tmp_path / "clevr" / "ood"), "--out", str(tmp_path))
    assert rows(tmp_path / "clevr" / "ood")["program"] == rows(reference)["program"]
    assert not (tmp_path / "clevr" / "ood" / "staging").exists()


@pytest.mark.blender
def test_merge_refuses_missing_and_overlapping_shards(jobs, reference, tmp_path):
    one_line_error(igbench("merge", str(jobs[0]), "--out", str(tmp_path / "a"), check=False), "missing shards")
    one_line_error(igbench("merge", str(jobs[0]), str(reference), "--out", str(tmp_path / "b"), check=False),
                   "overlapping shards")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.blender
def test_merge_refuses_jobs_of_different_commands(jobs, tmp_path):
    other = tmp_path / "other"
    igbench("render", "--out", str(other), *TINY, "--shard", "1/2", "--seed", "5")
    one_line_error(igbench("merge", str(jobs[0]), str(other / "clevr" / "ood"), "--out", str(tmp_path / "m"),
                           check=False), "seed: 0 vs 5")


@pytest.mark.parametrize("shard,fragment", [("5/4", "0 <= i < N"), ("1/0", "0 <= i < N"), ("a/b", "expected i/N"),
                                            ("3/4", "only 3 parquet file")])
def test_bad_shard_specs(tmp_path, shard, fragment):
    one_line_error(igbench("render", "--out", str(tmp_path / "o"), *TINY, "--shard", shard, check=False), fragment)
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def two_splits(reference, tmp_path_factory):
    """A task folder with two complete splits: the reference ood split and a val split."""
    root = tmp_path_factory.mktemp("task")
    (root / "clevr").mkdir()
    os.symlink(reference, root / "clevr" / "ood")
    igbench("render", "--out", str(root), *[a if a != "ood" else "val" for a in TINY])
    return root / "clevr"


@pytest.mark.blender
def test_push_dry_run_folder_loads_and_round_trips(two_splits, tmp_path):
    hub = tmp_path / "hub"
    igbench("push", str(two_splits), "--repo", "alice/igbench-clevr", "--dry-run", str(hub))
    # force_redownload: datasets 4 caches folders with a `configs` card by folder name only (README)
    loaded = datasets.load_dataset(str(hub), download_mode="force_redownload")
    assert sorted(loaded) == ["ood", "val"]
    for split in ("ood", "val"):
        pushed = loaded[split].cast_column("image", datasets.Image(decode=False))
        original = datasets.load_dataset(str(two_splits / split), split=split).cast_column(
            "image", datasets.Image(decode=False))
        assert pushed.features == original.features
        assert isinstance(pushed.features["segmentation"], datasets.Image)
        assert pushed["program"] == original["program"]
        assert [im["bytes"] for im in pushed["image"]] == [im["bytes"] for im in original["image"]]
    text = (hub / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert [s["split"] for s in front["configs"][0]["data_files"]] == ["ood", "val"]
    assert {s["name"]: s["num_examples"] for s in front["dataset_info"]["splits"]} == {"ood": 6, "val": 6}
    assert front["license"] and front["task_categories"] and front["size_categories"] == ["n<1K"]
    assert "bpy) 5.0.1" in text and "![samples](images/samples.png)" in text
    assert (hub / "images" / "samples.png").stat().st_size > 1000


@pytest.mark.blender
def test_push_refuses_without_login_bad_repo_or_incomplete_data(two_splits, tmp_path):
    no_login = {"HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": "", "HF_HUB_OFFLINE": "0"}
    env = {**no_login}
    proc = igbench("push", str(two_splits), "--repo", "alice/igbench-clevr", env=env, check=False)
    one_line_error(proc, "not logged in")
    one_line_error(igbench("push", str(two_splits), "--repo", "not a repo", check=False), "is not a Hub repo id")
    one_line_error(igbench("push", str(two_splits), "--repo", "alice/x", "--dry-run", str(two_splits / "ood"),
                           check=False), "exists and is not an empty folder")
    partial = tmp_path / "partial"
    igbench("render", "--out", str(partial), *TINY, "--shard", "0/2")
    one_line_error(igbench("push", str(partial / "clevr"), "--repo", "alice/x", "--dry-run", str(tmp_path / "d"),
                           check=False), "incomplete")
    assert not (tmp_path / "d").exists()


@pytest.mark.blender
def test_depth_splits_push_with_a_depth_column_and_never_mixed_with_splits_without(two_splits, tmp_path):
    tiny = ["--n", "2", "--resolution", "64x48", "--samples", "1", "--quiet", "--depth"]
    igbench("render", "--out", str(tmp_path / "data"), "--split", "train", *tiny)
    igbench("render", "--out", str(tmp_path / "data"), "--split", "val", *tiny)
    hub = tmp_path / "hub"
    igbench("push", str(tmp_path / "data" / "clevr"), "--repo", "alice/igbench-depth", "--dry-run", str(hub))
    loaded = datasets.load_dataset(str(hub), split="val", download_mode="force_redownload")
    assert isinstance(loaded.features["depth"], datasets.Image) and loaded[0]["depth"].mode.startswith("I")
    assert "depth maps" in (hub / "README.md").read_text()
    mixed = tmp_path / "mixed" / "clevr"
    mixed.mkdir(parents=True)
    for split, source in (("train", tmp_path / "data" / "clevr" / "train"), ("ood", two_splits / "ood")):
        (mixed / split).symlink_to(source)
    one_line_error(igbench("push", str(mixed), "--repo", "alice/x", "--dry-run", str(tmp_path / "d"), check=False),
                   "only some splits have depth maps")


@pytest.mark.blender
def test_load_split_reads_folders_and_names_what_is_wrong(two_splits, tmp_path):
    from igbench.dataset import load_split
    from igbench.errors import UserError

    assert load_split(two_splits / "val").num_rows == 6
    assert load_split(two_splits, "ood").num_rows == 6
    with pytest.raises(UserError, match="rendered splits: ood, val"):
        load_split(two_splits, "test")
    with pytest.raises(UserError, match="not a Hub repo id"):
        load_split(tmp_path / "nothing here")


LAUNCHERS = Path(__file__).resolve().parents[1] / "launchers"


@pytest.mark.blender
def test_slurm_array_script_renders_its_share(reference, tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    settings = ["--shard-size", "2", "--resolution", "64x48", "--samples", "2"]
    for i in range(2):
        subprocess.run(["bash", str(LAUNCHERS / "slurm_render.sbatch"), "clevr", "ood", "6", str(tmp_path), *settings],
                       check=True, timeout=600, capture_output=True,
                       env={**env, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_COUNT": "2"})
    igbench("merge", str(tmp_path / "clevr" / "ood"), "--out", str(tmp_path))
    assert rows(tmp_path / "clevr" / "ood")["program"] == rows(reference)["program"]


@pytest.mark.blender
def test_submitit_launcher_runs_jobs_and_merges(reference, tmp_path):
    proc = subprocess.run([sys.executable, str(LAUNCHERS / "submitit_render.py"), "--jobs", "2", "--cluster", "local",
                           "--logs", str(tmp_path / "logs"), "--", "--out", str(tmp_path), *TINY],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert rows(tmp_path / "clevr" / "ood")["program"] == rows(reference)["program"]
