"""Publishing rendered splits on the HuggingFace Hub: `igbench push DATA --repo user/name`.

The Hub folder is built completely on local disk first (parquet files as rendered, a dataset card, a sample
grid, the render configs); only then is it uploaded, in one commit, so a failed push leaves nothing
half-uploaded. `--dry-run DIR` stops after building.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from igbench.dataset import SHARD_PATTERN, finished_shards, num_shards
from igbench.errors import UserError
from igbench.files import atomic_folder
from igbench.shards import check_format, verify_shards

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass
class SplitFolder:
    path: Path
    saved: dict  # render_config.json

    @property
    def name(self) -> str:
        return self.saved["config"]["split"]

    @property
    def task(self) -> str:
        return self.saved["config"]["task"]

    @property
    def n(self) -> int:
        return int(self.saved["config"]["n"])

    @property
    def files(self) -> list[Path]:
        return sorted((self.path / "data").glob(f"{self.name}-*.parquet"))


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id or "") or ".." in repo_id or "--" in repo_id or repo_id.endswith((".", "-")):
        raise UserError(f"--repo {repo_id!r} is not a Hub repo id; expected user/name, e.g. alice/igbench-clevr")


def find_splits(data: Path) -> list[SplitFolder]:
    """The complete splits in DATA: a split folder (OUT/TASK/SPLIT) or a task folder (OUT/TASK)."""
    data = Path(data)
    if not data.is_dir():
        raise UserError(f"{data}: no such folder")
    folders = [data] if (data / "render_config.json").is_file() else sorted(
        p for p in data.iterdir() if (p / "render_config.json").is_file()
    )
    if not folders:
        raise UserError(f"{data} holds no rendered split (no render_config.json in it or its subfolders)")
    splits = []
    for folder in folders:
        try:
            saved = json.loads((folder / "render_config.json").read_text())
            config = saved["config"]
        except (json.JSONDecodeError, KeyError):
            raise UserError(f"{folder / 'render_config.json'} is damaged") from None
        total = num_shards(int(config["n"]), int(config["shard_size"]))
        have = finished_shards(folder, config["split"], total)
        if len(have) != total or (folder / "staging").exists():
            raise UserError(
                f"split {folder} is incomplete ({len(have)} of {total} parquet files); "
                "finish it (rerun the render) or merge its jobs first"
            )
        check_format(saved, folder / "render_config.json")
        split = SplitFolder(folder, saved)
        verify_shards(folder, saved, split.files)
        splits.append(split)
    tasks = {s.task for s in splits}
    if len(tasks) > 1:
        raise UserError(f"{data} mixes tasks {sorted(tasks)}; push one task per repo")
    with_depth = sorted(s.name for s in splits if s.saved["config"].get("depth"))
    if with_depth and len(with_depth) < len(splits):
        raise UserError(f"only some splits have depth maps ({', '.join(with_depth)}); one repo shares one schema: "
                        "render every split with --depth, or none")
    return splits


def build_hub_folder(data: Path, dest: Path, repo_id: str, license: str) -> list[SplitFolder]:
    """Write the Hub layout into `dest` (which must not exist or be empty), atomically."""
    from igbench.card import render_card, sample_grid

    splits = find_splits(data)
    with atomic_folder(dest, "--dry-run") as tmp:
        (tmp / "data").mkdir()
        (tmp / "igbench").mkdir()
        for split in splits:
            for path in split.files:
                if SHARD_PATTERN.match(path.name):
                    shutil.copy(path, tmp / "data" / path.name)
            shutil.copy(split.path / "render_config.json", tmp / "igbench" / f"{split.name}_render_config.json")
        sample_grid(splits[0].files[0], tmp / "images" / "samples.png")
        (tmp / "README.md").write_text(render_card(splits, repo_id, license))
    return splits


def push(data: Path, repo_id: str, private: bool = False, dry_run: Path | None = None,
         license: str = "cc-by-4.0") -> Path:
    check_repo_id(repo_id)
    if dry_run is not None:
        build_hub_folder(data, Path(dry_run), repo_id, license)
        return Path(dry_run)
    from huggingface_hub import HfApi, get_token

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise UserError("HF_HUB_OFFLINE is set; unset it to push (or use --dry-run DIR)")
    if not get_token():
        raise UserError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="igbench-push-") as tmp:
        folder = Path(tmp) / "repo"
        splits = build_hub_folder(data, folder, repo_id, license)
        api = HfApi()
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                              commit_message=f"igbench: {', '.join(s.name for s in splits)} of {splits[0].task}")
        except Exception as err:  # noqa: BLE001 - any Hub or network failure is one line for the user
            raise UserError(f"push to {repo_id} failed: {type(err).__name__}: {str(err).splitlines()[0][:300]}") from None
    return Path(f"https://huggingface.co/datasets/{repo_id}")
