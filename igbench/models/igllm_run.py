"""The `igllm` entry of the model registry (no torch at import; the work is in igllm_train.py / igllm_predict.py)."""
from __future__ import annotations

from igbench.models.igllm_config import IGLLMConfig

CONFIG_CLASS = IGLLMConfig
DEFAULT_CONFIG = "igllm-7b"


def train(config, data, output, resume=False, progress=True):
    from igbench.models.igllm_train import train as run

    return run(config, data, output, resume=resume, progress=progress)


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True):
    from igbench.models.igllm_predict import predict as run

    return run(checkpoint, data, split, out, batch_size=batch_size, limit=limit, overrides=overrides, progress=progress)
