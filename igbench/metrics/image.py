"""Image metrics between a re-render and its reference, batched (torch on the GPU when there is one).

Images are float tensors (N, 3, H, W) with values in [0, 1] (8-bit images divided by 255); data range L = 1.
"""
from __future__ import annotations

import math

import numpy as np

PSNR_MSE_FLOOR = 1e-10  # identical images get 100 dB instead of infinity (JSON has no inf; means stay finite)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is a user error."""
    import torch

    from igbench.errors import UserError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA GPU on this machine; use --device auto or cpu")
    if device not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{device}'; expected auto, cpu or cuda")
    return device


def psnr(x, y, data_range: float = 1.0):
    """Per image: PSNR = 10 log10(L^2 / max(MSE, 1e-10)), MSE = mean over channels and pixels of (x - y)^2.

    (N, C, H, W) torch tensors -> (N,) tensor, or (N, ...) numpy arrays -> (N,) array, in dB (at most
    100 dB at L = 1, for identical images)."""
    if isinstance(x, np.ndarray):
        mse = np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2, axis=tuple(range(1, x.ndim)))
        return 10.0 * np.log10(data_range**2 / np.maximum(mse, PSNR_MSE_FLOOR))
    import torch

    mse = torch.mean((x.double() - y.double()) ** 2, dim=(1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / torch.clamp(mse, min=PSNR_MSE_FLOOR))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA):
    """1-D Gaussian weights g_i = exp(-(i - c)^2 / (2 sigma^2)) / Z, i = 0..size-1, c = (size - 1)/2."""
    import torch

    i = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x, y, data_range: float = 1.0, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
         k1: float = SSIM_K1, k2: float = SSIM_K2):
    """Per image SSIM (Wang et al. 2004) with a Gaussian window (11 taps, sigma 1.5), k1 = .01, k2 = .03:

        mu_x = G * x, sigma_x^2 = G * x^2 - mu_x^2, sigma_xy = G * (x y) - mu_x mu_y   (G: the window)
        SSIM map = ((2 mu_x mu_y + C1)(2 sigma_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))
        C1 = (k1 L)^2, C2 = (k2 L)^2

    averaged over the positions where the window lies inside the image ("valid"; the same as cropping
    (window - 1)/2 pixels of the border, as scikit-image and torchmetrics do) and over channels.
    Population (not sample) covariance. (N, C, H, W) -> (N,). Images smaller than the window: NaN."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    if h < window or w < window:
        return torch.full((n,), float("nan"), dtype=torch.float64, device=x.device)
    g = gaussian_window(window, sigma).to(x.device)
    gx = g.view(1, 1, 1, window).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, window, 1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, gx, groups=c), gy, groups=c)

    x, y = x.double(), y.double()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return smap.mean(dim=(1, 2, 3))


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Foreground IoU per image: |A and B| / |A or B| for boolean masks (N, H, W); 1 when both are empty.

    Foreground = instance id > 0 in the segmentation pass (any object, ground and sky excluded)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    inter = np.logical_and(a, b).sum(axis=(1, 2))
    union = np.logical_or(a, b).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def flip_available() -> bool:
    try:
        import flip_evaluator  # noqa: F401
    except ImportError:
        return False
    return True


def flip(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean NVIDIA FLIP error per image (LDR, sRGB inputs, 67 pixels per degree), via `flip-evaluator`;
    (N, H, W, 3) float in [0, 1] -> (N,), 0 = identical. NaN for every image when the package is absent."""
    if not flip_available():
        return np.full(len(x), math.nan)
    import flip_evaluator

    out = []
    for ref, test in zip(x, y):
        out.append(flip_evaluator.evaluate(np.ascontiguousarray(ref, np.float32), np.ascontiguousarray(test, np.float32),
                                           "LDR", applyMagma=False)[1])
    return np.asarray(out, float)


# Render-and-compare's image loss (numpy): what refiners minimise between a render and the input image.


def image_loss_map(rgb: np.ndarray, target_blurred: np.ndarray, sigma: float) -> np.ndarray:
    """Per-pixel squared error (summed over RGB) between blur_rgb(rgb) and an already blurred target."""
    return ((blur_rgb(rgb, sigma) - target_blurred) ** 2).sum(axis=2)


def blur_rgb(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """An RGB image (uint8 or float) as float32 in [0, 1], Gaussian-blurred in x and y by `sigma` pixels."""
    from scipy.ndimage import gaussian_filter

    img = np.asarray(rgb)
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return gaussian_filter(img, sigma=(sigma, sigma, 0)) if sigma > 0 else img
