"""`igbench bench render` end to end at a tiny resolution: the report has every figure and they are sane.
No timing assertions: this machine's speed is not the code's behaviour."""
import json
import math
import subprocess
import sys

import pytest


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "report.json"
    args = ["bench", "render", "--n", "2", "--n-reference", "1", "--resolution", "48x32", "--samples", "2",
            "--original-samples", "4", "--reference-samples", "16", "--cache-dir", str(tmp / "cache"),
            "--soak", "3", "--quiet", "--json", str(out)]
    proc = subprocess.run([sys.executable, "-m", "igbench", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stdout, tmp


@pytest.mark.blender
def test_report_has_every_figure(report):
    data, text, _ = report
    for name in ("default", "original"):
        run = data[name]
        assert run["images_per_s"] > 0 and run["s_per_image"] > 0
        assert run["peak_rss_mib"] > 0
        assert set(run["stage_s"]) >= {"visibility", "build", "instance", "sync", "sampling", "denoise", "write", "total"}
        assert all(v >= 0 for v in run["stage_s"].values())
        assert sum(v for k, v in run["stage_s"].items() if k != "total") == pytest.approx(run["stage_s"]["total"], rel=0.05)
    assert data["default"]["n"] == 2 and data["original"]["n"] == 1
    assert data["original"]["settings"]["samples"] == 4 and not data["original"]["settings"]["denoise"]
    assert data["reference"]["settings"]["samples"] == 16 and data["reference"]["rendered"] == 1
    for name in ("original", "default"):
        value = data["psnr_db"][name]["mean"]
        assert math.isfinite(value) and value > 10
    assert data["speed_ratio"] > 0
    assert data["soak"]["n"] == 3 and data["soak"]["rss_end_mib"] > 0
    assert "speed ratio (b)/(a)" in text and "PSNR against (r)" in text and "soak:" in text


@pytest.mark.blender
def test_reference_is_cached(report):
    _, _, tmp = report
    assert len(list((tmp / "cache").glob("*.png"))) == 1


def test_psnr():
    import io

    import numpy as np
    from PIL import Image

    from igbench.render.bench import psnr

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    a = np.full((4, 4, 3), 100)
    b = a.copy()
    b[0, 0, 0] += 10  # mse = 100 / 48
    assert psnr(png(a), png(a)) == pytest.approx(100.0)  # the scorer's cap for identical images
    assert psnr(png(a), png(b)) == pytest.approx(10 * math.log10(255**2 * 48 / 100))
