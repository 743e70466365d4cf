"""`igbench merge`: combine the folders of sharded render jobs (`--shard i/N`) into one split.

Every job writes whole parquet files under their final names, so a merge only checks that the jobs ran
the same command (identical identity settings), that no file comes from two jobs, and that none is
missing, then copies the files into place. The merged split is the one an unsharded run writes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from igbench.dataset import finished_shards, num_shards, split_dir
from igbench.errors import UserError
from igbench.files import atomic_folder, write_json_atomic
from igbench.render.job import identity
from igbench.shards import check_format, read_config, verify_shards


def merge_parts(parts: list[str | Path], out: str | Path) -> Path:
    """Merge job folders (each OUT/<task>/<split> of one job) into out/<task>/<split>; return its path."""
    if not parts:
        raise UserError("merge needs at least one job folder")
    configs = [_read_config(Path(p)) for p in parts]
    first = identity(configs[0])
    for part, saved in zip(parts[1:], configs[1:]):
        theirs = identity(saved)
        changed = [f"{k}: {first.get(k)!r} vs {theirs.get(k)!r}" for k in {**first, **theirs} if theirs.get(k) != first.get(k)]
        if changed:
            raise UserError(f"{part} was rendered with other settings than {parts[0]} ({'; '.join(changed)})")
    task, split, n, size = first["task"], first["split"], first["n"], first["shard_size"]
    total = num_shards(n, size)
    owner: dict[int, Path] = {}
    for part in dict.fromkeys(Path(p).resolve() for p in parts):
        for k in sorted(finished_shards(part, split, total)):
            if k in owner:
                raise UserError(f"overlapping shards: parquet file {k} is in both {owner[k]} and {part}")
            owner[k] = part
    for part, saved in zip(parts, configs):
        mine = [Path(part).resolve() / "data" / f"{split}-{k:05d}-of-{total:05d}.parquet"
                for k, p in owner.items() if p == Path(part).resolve()]
        verify_shards(Path(part), saved, mine)
    missing = [k for k in range(total) if k not in owner]
    if missing:
        ranges = ", ".join(f"{k} (samples {k * size}-{min((k + 1) * size, n) - 1})" for k in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UserError(f"missing shards: parquet file(s) {ranges}{more} are in none of the job folders")

    dest = split_dir(Path(out), task, split).resolve()
    if set(owner.values()) == {dest}:  # every job wrote into one shared folder: finish it in place
        _tidy(dest)
        return dest
    with atomic_folder(dest, "merge destination") as tmp:
        (tmp / "data").mkdir()
        for k, part in sorted(owner.items()):
            name = f"{split}-{k:05d}-of-{total:05d}.parquet"
            shutil.copy(part / "data" / name, tmp / "data" / name)
        merged = dict(configs[0])
        merged["config"] = {**merged["config"], "shard": "0/1", "out": str(Path(out))}
        merged["merged_from"] = [str(Path(p).resolve()) for p in parts]
        records = {Path(p).resolve(): saved.get("shards", {}) for p, saved in zip(parts, configs)}
        merged["shards"] = {name: records[part][name] for k, part in owner.items()
                            for name in [f"{split}-{k:05d}-of-{total:05d}.parquet"]}
        write_json_atomic(tmp / "render_config.json", merged)
    return dest


def _read_config(part: Path) -> dict:
    path = part / "render_config.json"
    if not path.is_file():
        raise UserError(f"{part} is not an igbench render folder (no render_config.json)")
    saved = read_config(part)
    check_format(saved, path)
    return saved


def _tidy(root: Path) -> None:
    shutil.rmtree(root / "staging", ignore_errors=True)
    shutil.rmtree(root / "logs", ignore_errors=True)
