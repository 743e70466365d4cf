"""The cnn-set config: network, loss, training and prediction sections (no torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

NAME = "cnn-set"  # the registry name (igbench.models.MODELS), recorded in run.yaml


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
    # A frozen pretrained encoder instead of the CNN from scratch (an NS-VQA-like baseline): imagenet-vgg16 or
    # imagenet-alexnet (igbench.models.imagenet_encoder), read at `backbone_layer` (null: relu4_3 / relu5).
    # Its features of the training split are cached once; a 1x1 convolution to channels[-1] and the head train.
    backbone: Optional[str] = None
    backbone_layer: Optional[str] = None
    # How objects are read off the features. slots: `slots` predictions from an MLP over the whole flattened
    # map, matched to the objects by the Hungarian algorithm (DETR-style). cells: one prediction per cell of
    # the feature map; an object belongs to the cell its centre projects into, and the objects are the cells
    # whose existence is a local maximum above predict.threshold (CenterNet-style; at most `slots` of them).
    head: str = "slots"
    cell_convs: int = 2  # head=cells: 3x3 convolutions (channels[-1] wide) between the features and the cells


@dataclass
class CnnLoss:
    exist: float = 1.0
    attrs: float = 1.0
    loc: float = 5.0
    rotation: float = 1.0
    empty_weight: float = 0.5  # BCE weight of slots matched to no object (head=slots)
    cell_sigma: float = 1.0  # head=cells: width, in cells, of the Gaussian that softens the loss around objects


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
