"""`cnn-set`: a small CNN trained from scratch that fills K object slots (DETR-style set prediction).

Each slot predicts existence, every categorical attribute of the task, `loc` (x, y, z; dot2d: x, y) and,
for shapes whose yaw is visible (the task's `rotation_period_deg`), the yaw as (sin, cos) of yaw * 2 pi / period.
Training matches slots to reference objects with the Hungarian algorithm (cost: attribute
log-likelihoods + L1 position + existence) and sums BCE on existence (every slot), cross-entropy on
attributes, L1 on position and MSE on the yaw's (sin, cos) (matched slots). The network is in
`cnn_set_model.py` (torch); this module only holds the config and the registry entry points.

    igbench train --model cnn-set --data data/clevr [--config PATH] [train.steps=3000 ...]
    igbench predict --checkpoint runs/cnn-set-cnn-set --data data/clevr --split test --out p.jsonl
"""
from __future__ import annotations

from dataclasses import dataclass, field

from igbench.baselines import common

NAME = "cnn-set"
DEFAULT_CONFIG = common.preset("cnn-set")


@dataclass
class CnnModel:
    slots: int = 10  # K: the most objects one image can hold (CLEVR: 10)
    width: int = 96  # input size: images are resized to width x height
    height: int = 64
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])  # one stride-2 block each
    convs_per_block: int = 1  # 3x3 convolutions per block (the first has stride 2)
    hidden: int = 512
    dropout: float = 0.0  # on the flattened features and the hidden layer of the head
    coord_channels: bool = True  # append x, y coordinate planes to the input (CoordConv)
    loc_scale: float = 3.0  # positions are predicted divided by this (CLEVR: xy in [-3, 3])


@dataclass
class CnnLoss:
    exist: float = 1.0
    attrs: float = 1.0
    loc: float = 5.0
    rotation: float = 1.0
    empty_weight: float = 0.5  # BCE weight of slots matched to no object


@dataclass
class CnnTrain:
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    warmup_steps: int = 100
    seed: int = 0
    train_split: str = "train"
    log_every: int = 50
    save_every: int = 1000  # checkpoint (model + optimizer) for --resume
    threads: int = 0  # torch CPU threads; 0: torch's default


@dataclass
class CnnPredict:
    batch_size: int = 64
    threshold: float = 0.5  # a slot is an object when its existence probability exceeds this
    precision: int = 3


@dataclass
class CnnSetConfig:
    model: CnnModel = field(default_factory=CnnModel)
    loss: CnnLoss = field(default_factory=CnnLoss)
    train: CnnTrain = field(default_factory=CnnTrain)
    predict: CnnPredict = field(default_factory=CnnPredict)


CONFIG_CLASS = CnnSetConfig


def train(config: CnnSetConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    from igbench.baselines.cnn_set_model import train as run

    return run(config, data, output, resume=resume, progress=progress)


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    from igbench.baselines.cnn_set_model import predict as run

    return run(checkpoint, data, split, out, batch_size=batch_size, limit=limit, overrides=overrides, progress=progress)
