"""Every model under one roof: `MODELS` maps a `--model` name to the module that implements it.

A model reads images and writes scene programs. Its module provides (no torch or bpy at import):

    CONFIG_CLASS, DEFAULT_CONFIG         the run config's dataclass, its preset (name or YAML path)
    train(config, data, output, resume=False, progress=True) -> dict      writes a run folder (igbench.runs)
    predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict
        appends {"id", "program"} lines to `out` (igbench.score.predictions), skipping ids already there;
        returns {"written", "skipped", "out"}

A model that learns nothing still writes a run folder from `train` when the leaderboard enters it (`vlm`
records the pretrained model); `api` (a model behind a server) refuses `train` with one line.

A refiner improves another model's predictions instead (`REFINER = True`; `igbench refine`):

    CONFIG_CLASS, DEFAULT_CONFIG
    refine(config, base, data, split, out, limit=None, progress=True) -> dict   (the same return)

Imports are lazy, so `import igbench` stays free of torch. A model joins by adding an entry here.
"""
from __future__ import annotations

import importlib

from igbench.errors import UserError, choices, did_you_mean

MODELS = {
    "igllm": "igbench.models.igllm_run",
    # pretrained vision-language models, local or behind an OpenAI-compatible server; see docs/vlm.md
    "vlm": "igbench.models.vlm",
    "api": "igbench.models.api",
    # baselines/ (installed as igbench.baselines); see docs/baselines.md
    "oracle": "igbench.baselines.oracle",
    "prior": "igbench.baselines.prior",
    "cnn-set": "igbench.baselines.cnn_set",
}
REFINERS = {
    "render-compare": "igbench.baselines.render_compare",
}


def model_module(name: str):
    """The module of a model that trains and predicts."""
    if name in REFINERS:
        raise UserError(f"'{name}' learns nothing: it refines another model's predictions "
                        f"(`igbench refine --model {name} --base PREDICTIONS.jsonl ...`)")
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'{did_you_mean(name, MODELS)}; models: {choices(MODELS)}")
    return importlib.import_module(MODELS[name])


def refiner_module(name: str):
    """The module of a refiner (`igbench refine`)."""
    if name not in REFINERS:
        raise UserError(f"unknown refiner '{name}'{did_you_mean(name, REFINERS)}; refiners: {choices(REFINERS)}")
    return importlib.import_module(REFINERS[name])
