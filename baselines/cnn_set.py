"""`cnn-set`: a small CNN (from scratch, or a frozen pretrained encoder) that fills object slots.

Each slot predicts existence, every categorical attribute of the task, `loc` (x, y, z; dot2d: x, y) and,
for shapes whose yaw is visible (the task's `rotation_period_deg`), the yaw as (sin, cos) of yaw * 2 pi / period.
Training matches slots to reference objects with the Hungarian algorithm (cost: attribute
log-likelihoods + L1 position + existence) and sums BCE on existence (every slot), cross-entropy on
attributes, L1 on position and MSE on the yaw's (sin, cos) (matched slots). With `model.head=cells` every
cell of the feature map is a slot: an object is trained at the cell its centre projects into (CenterNet's
focal loss on existence) and read off where existence peaks. `model.backbone` puts a frozen ImageNet
encoder in front of either head. The network is in `cnn_set_model.py` (torch), its config in
`cnn_set_config.py`; this module is the registry entry.

    igbench train --model cnn-set --data data/clevr [--config PATH] [train.steps=3000 ...]
    igbench predict --checkpoint runs/cnn-set-cnn-set --data data/clevr --split test --out p.jsonl
"""
from __future__ import annotations

from igbench.baselines import common
from igbench.baselines.cnn_set_config import NAME, CnnSetConfig

DEFAULT_CONFIG = common.preset("cnn-set")
CONFIG_CLASS = CnnSetConfig


def train(config: CnnSetConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    from igbench.baselines.cnn_set_model import train as run

    return run(config, data, output, resume=resume, progress=progress)


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    from igbench.baselines.cnn_set_model import predict as run

    return run(checkpoint, data, split, out, batch_size=batch_size, limit=limit, overrides=overrides, progress=progress)
