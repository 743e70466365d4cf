"""Scene samplers, one module per task family (Python and numpy, the CLEVR sampler's bulk loops compiled with
numba; no Blender).

A sampler implements `sample(task, split, index, seed) -> Scene`, and may add `sample_many(task, split, indices,
seeds)`, the same scenes in the same order many at once, and `sample_lines(task, split, indices, seeds, lines)`,
their `SceneLines` text. `sample_scene` derives the seed: sample `index` of (task, split, base seed) is the same
scene on any machine, in any order, with any number of workers. `attempt` counts re-draws after a failed
visibility check.
"""
from __future__ import annotations

import importlib
import zlib
from collections.abc import Iterator

import numpy as np

from igbench.generators.stream import seed_sequence_words
from igbench.scene import Scene, SceneLines
from igbench.task import Task


def seed_entropy(task: str, split: str, index: int, base_seed: int, attempt: int = 0) -> list[int]:
    return [base_seed & 0xFFFFFFFF, base_seed >> 32, zlib.crc32(task.encode()), zlib.crc32(split.encode()), index, attempt]


def scene_seed(task: str, split: str, index: int, base_seed: int, attempt: int = 0) -> int:
    """A 63-bit seed for one candidate scene, from stable hashes of its coordinates."""
    words = seed_entropy(task, split, index, base_seed, attempt)
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]) >> 1


def scene_seeds(task: str, split: str, indices: list[int], base_seed: int) -> list[int]:
    """[scene_seed(task, split, i, base_seed) for i in indices], hashed all at once."""
    entropy = np.array([seed_entropy(task, split, 0, base_seed)] * len(indices), dtype=object)
    entropy[:, 4] = indices
    if not entropy.size or not ((entropy >= 0) & (entropy <= 0xFFFFFFFF)).all():  # words SeedSequence would split
        return [scene_seed(task, split, i, base_seed) for i in indices]
    words = seed_sequence_words(entropy.astype(np.uint64), 2).astype(np.uint64)
    return ((words[:, 0] | words[:, 1] << np.uint64(32)) >> np.uint64(1)).tolist()


def sampler(task: Task):
    return importlib.import_module(f"igbench.generators.{task.generator}")


def sample_scene(task: Task, split: str, index: int, base_seed: int, attempt: int = 0) -> Scene:
    seed = scene_seed(task.name, split, index, base_seed, attempt)
    return sampler(task).sample(task, split, index, seed)


def sample_lines(task: Task, split: str, indices, base_seed: int, lines: SceneLines) -> Iterator[str]:
    """lines.line(scene) for each scene of sample_scenes(task, split, indices, base_seed), through the sampler's
    `sample_lines` where it has one (the CLEVR sampler writes them from its arrays, in compiled code)."""
    module = sampler(task)
    indices = list(indices)
    if hasattr(module, "sample_lines"):
        return module.sample_lines(task, split, indices, scene_seeds(task.name, split, indices, base_seed), lines)
    return (lines.line(scene) for scene in sample_scenes(task, split, indices, base_seed))


def sample_scenes(task: Task, split: str, indices, base_seed: int) -> Iterator[Scene]:
    """sample_scene(task, split, i, base_seed) for i in indices, in order, through the sampler's `sample_many`
    where it has one (the CLEVR sampler does: the same scenes, many times faster)."""
    module = sampler(task)
    indices = list(indices)
    seeds = scene_seeds(task.name, split, indices, base_seed)
    if hasattr(module, "sample_many"):
        return module.sample_many(task, split, indices, seeds)
    return (module.sample(task, split, i, seed) for i, seed in zip(indices, seeds))
