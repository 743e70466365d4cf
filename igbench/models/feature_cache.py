"""Features of a frozen encoder, computed once per (encoder weights, layer, input size and preprocessing,
split) and reused by every epoch, run and model that asks for the same.

An entry is content-addressed: its file name is the SHA-256 of what determines the features,

    key = sha256(json({**recipe, "weights": sha256 of the encoder's parameters and buffers,
                       "split": igbench.dataset.split_fingerprint(folder)}))
    cache_folder("features") / f"{key}.safetensors"     tensor "features" (N, ...), row ids in the metadata

so a changed encoder, layer, image size, preprocessing or split names another file, and a stale entry is
never read. Entries are written to a temporary and renamed (igbench.files), so a crash leaves no half
entry; two processes asking for the same missing entry (two benchmark rows on one encoder) take turns on
`KEY.lock`, so the second reads what the first computed. Delete the folder to reclaim the space; nothing
else points into it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from pathlib import Path
from typing import Callable, Iterable

import torch

from igbench.dataset import split_fingerprint
from igbench.files import cache_folder, replaced_atomically

TENSOR = "features"


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer of `module` (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def entry_path(encoder: torch.nn.Module, recipe: dict, split_folder: Path, folder: Path | None = None) -> Path:
    """Where the features of `encoder` under `recipe` (layer, size, preprocessing: JSON values) over the
    split in `split_folder` are cached."""
    key = {**recipe, "weights": weights_fingerprint(encoder), "split": split_fingerprint(Path(split_folder))}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return Path(folder or cache_folder("features")) / f"{digest}.safetensors"


def cached_features(encoder: torch.nn.Module, encode: Callable[[torch.Tensor], torch.Tensor], recipe: dict,
                    split_folder: Path, ids: list[str], batches: Callable[[], Iterable[torch.Tensor]],
                    folder: Path | None = None, progress: bool = False) -> torch.Tensor:
    """The features (N, ...) of the split's rows `ids`, in that order: read from the cache, or computed
    as `encode(batch)` (a view of `encoder`'s outputs) over `batches()` (inputs in the order of `ids`)
    and stored."""
    path = entry_path(encoder, recipe, split_folder, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _turn(path.with_suffix(".lock")):
        return _read_or_compute(path, encode, recipe, ids, batches, progress)


@contextlib.contextmanager
def _turn(lock: Path):
    """Hold an exclusive lock on `lock` (released by the OS if the process dies)."""
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_or_compute(path: Path, encode, recipe: dict, ids: list[str], batches, progress: bool) -> torch.Tensor:
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    if path.exists():
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            stored_ids = json.loads(f.metadata()["ids"])
        if stored_ids == list(ids):
            return load_file(str(path))[TENSOR]
    chunks = []
    with torch.no_grad(), tqdm(total=len(ids), desc="features", disable=not progress, unit="img") as bar:
        for batch in batches():
            chunks.append(encode(batch).float().cpu())
            bar.update(len(batch))
    features = torch.cat(chunks).contiguous()
    if features.shape[0] != len(ids):
        raise ValueError(f"{features.shape[0]} feature rows for {len(ids)} ids")
    with replaced_atomically(path) as tmp:
        save_file({TENSOR: features}, str(tmp), metadata={"ids": json.dumps(list(ids)), "recipe": json.dumps(recipe)})
    return features
