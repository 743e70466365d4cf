"""Models that read an image and write a scene program.

`MODELS` maps a `--model` name to the module that implements it. A model module provides:

    CONFIG_CLASS            a dataclass of the model's run config (model, augment, train, predict sections)
    train(config, data, output, resume, progress) -> dict
    load_for_prediction(checkpoint) -> a predictor with .predict(rows) -> list[str]

Imports are lazy, so `import igbench` stays free of torch. Baselines join by adding an entry here.
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
    "render-compare": "igbench.baselines.render_compare",
}


def model_module(name: str):
    if name not in MODELS:
        raise UserError(f"unknown model '{name}'{did_you_mean(name, MODELS)}; models: {choices(MODELS)}")
    return importlib.import_module(MODELS[name])
