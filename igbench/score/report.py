"""What a person reads: the terminal table and a static HTML report (worst cases first, pictures, plots)."""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

from igbench.files import write_json_atomic, write_text_atomic
from igbench.formats import metric_value
from igbench.metrics.params import THRESHOLDS, threshold_key

ROWS = [
    ("n", "samples", "{:d}"), ("parse_rate", "parse rate", "{:.3f}"), ("count_acc", "count accuracy", "{:.3f}"),
    ("count_abs_err", "|count error|", "{:.3f}"), ("attr_acc.shape", "shape accuracy", "{:.3f}"),
    ("attr_acc.color", "color accuracy", "{:.3f}"), ("attr_acc.material", "material accuracy", "{:.3f}"),
    ("attr_acc.size", "size accuracy", "{:.3f}"), ("loc_l2_mean", "position L2 mean", "{:.3f}"),
    ("loc_l2_median", "position L2 median", "{:.3f}"),
    ("attr_acc.object", "object accuracy", "{:.3f}"),
    ("rot_err_deg_mean", "rotation err (deg) mean", "{:.2f}"), ("rot_err_deg_median", "rotation err (deg) median", "{:.2f}"),
    *[(f"f1@{threshold_key(t)}", f"F1@{threshold_key(t)}", "{:.3f}") for t in THRESHOLDS],
    *[(f"ap@{threshold_key(t)}", f"AP@{threshold_key(t)}", "{:.3f}") for t in THRESHOLDS],
    # pose tasks (so3, 6dof)
    ("trans_err_mean", "translation err mean", "{:.3f}"), ("trans_err_median", "translation err median", "{:.3f}"),
    ("add_rel_mean", "ADD / d mean", "{:.3f}"), ("adds_rel_mean", "ADD-S / d mean", "{:.3f}"),
    ("mssd_rel_mean", "MSSD / d mean", "{:.3f}"), ("mspd_px_mean", "MSPD (px) mean", "{:.2f}"),
    *[(f"rot_recall@{t}", f"rotation recall @{t} deg", "{:.3f}") for t in (5, 10, 15)],
    ("add_recall@0.1d", "ADD recall @0.1d", "{:.3f}"), ("adds_recall@0.1d", "ADD-S recall @0.1d", "{:.3f}"),
    ("add_adds_recall@0.1d", "ADD(-S) recall @0.1d", "{:.3f}"),
    ("mssd_ar", "MSSD average recall", "{:.3f}"), ("mspd_ar", "MSPD average recall", "{:.3f}"),
    # dot2d
    ("pos_err_mean", "position err mean", "{:.4f}"), ("pos_err_median", "position err median", "{:.4f}"),
    ("pos_err_px_mean", "position err (px) mean", "{:.2f}"), ("pos_err_px_median", "position err (px) median", "{:.2f}"),
    ("render.n", "images re-rendered", "{:d}"), ("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("lpips", "LPIPS", "{:.4f}"),
    ("mask_iou", "mask IoU", "{:.4f}"), ("flip", "FLIP", "{:.4f}"),
]


def format_table(scores: dict) -> str:
    """Metrics down, task/split across; '[lo, hi]' is the bootstrap 95% interval where there is one."""
    groups = scores["results"]
    keys = sorted(groups)
    cells = [["metric", *keys]]
    for key, label, fmt in ROWS:
        if all(metric_value(groups[g], key) is None for g in keys) and key not in ("n",):
            continue
        row = [label]
        for g in keys:
            value = metric_value(groups[g], key)
            if value is None:
                row.append("-")
                continue
            text = fmt.format(value)
            ci = groups[g].get("ci95", {}).get(key)
            if ci and ci[0] is not None:
                text += f" [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"
            row.append(text)
        cells.append(row)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if scores.get("failures"):
        lines.append("failures (samples): " + ", ".join(f"{k} {v}" for k, v in scores["failures"].items()))
    return "\n".join(lines)


def side_by_side(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """reference | re-render | |difference| x 4, with a 2-pixel white gutter."""
    if ref.shape != out.shape:
        out = np.zeros_like(ref)
    diff = np.clip(np.abs(ref.astype(int) - out.astype(int)) * 4, 0, 255).astype(np.uint8)
    gutter = np.full((ref.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([ref, gutter, out, gutter, diff], axis=1)


def _safe(sample_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", sample_id)


def _quality(record: dict) -> str:
    value = record["f1@0.5"] if "f1@0.5" in record else record.get("quality")
    return "-" if value is None else f"{value:.3f}"


def worst_first(record: dict):
    """Worst first: lowest F1@0.5 (CLEVR) or quality (pose: MSSD average recall; dot2d: minus the position
    error), then lowest PSNR, then largest position error."""
    psnr = record.get("psnr")
    quality = record["f1@0.5"] if "f1@0.5" in record else record.get("quality")
    return (quality if quality is not None else -float("inf"), psnr if psnr is not None else float("inf"),
            -(record.get("loc_l2_mean") or 0.0))


def write_report(run, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pictures = {}
    for sample_id, images in run.pictures.items():
        name = f"{_safe(sample_id)}.png"
        picture = side_by_side(images["ref"], images["out"])
        scale = max(1, 256 // picture.shape[0])
        Image.fromarray(picture).resize((picture.shape[1] * scale, picture.shape[0] * scale), Image.NEAREST).save(folder / name)
        pictures[sample_id] = name
    plots = _plots(run.samples, folder)
    rows = []
    for record in sorted(run.samples, key=worst_first)[:500]:
        picture = pictures.get(record["id"])
        picture_cell = f'<img src="{picture}">' if picture else ""
        objects = "; ".join(
            f"#{o['gt']}&larr;{o['pred']}: {o['loc_l2']:.3f}" + (f" wrong {'/'.join(o['wrong'])}" if o["wrong"] else "")
            + (f" rot {o['rot_err_deg']:.1f}&deg;" if o["rot_err_deg"] is not None else "")
            + (f" MSSD {o['mssd_rel']:.3f}d" if o.get("mssd_rel") is not None else "")
            for o in record["matched"])
        image_cells = "".join(f"<td>{'-' if record.get(k) is None else f'{record[k]:.3f}'}</td>"
                              for k in ("psnr", "ssim", "lpips", "mask_iou"))
        rows.append(
            f"<tr><td>{html.escape(record['id'])}<br>{html.escape(', '.join(record['reasons']) or 'ok')}</td>"
            f"<td>{record['n_pred']}/{record['n_gt']}</td><td>{_quality(record)}</td>{image_cells}"
            f"<td class=o>{objects}<br><small>{html.escape(' | '.join(record['details']))}</small></td>"
            f"<td>{picture_cell}</td></tr>"
        )
    page = f"""<!doctype html><meta charset=utf-8><title>igbench scores</title>
<style>body{{font:13px sans-serif;margin:1em}}td,th{{border-bottom:1px solid #ddd;padding:3px;vertical-align:top}}
td.o{{max-width:40em}}pre{{background:#f6f6f6;padding:8px}}img{{image-rendering:pixelated}}</style>
<h1>igbench scores</h1><p>predictions sha256 {run.scores.get('predictions_sha256')}<br>
reference {html.escape(str(run.scores['reference']['path']))} ({run.scores['reference']['fingerprint'][:16]})</p>
<pre>{html.escape(format_table(run.scores))}</pre>
{''.join(f'<img src={p!r}> ' for p in plots)}
<h2>Samples, worst first</h2><p>Pictures: reference | re-render | |difference| x4. Objects: ground-truth
index &larr; predicted index: position error, wrong attributes, rotation error (CLEVR: cube yaw), MSSD.
Quality (pose tasks): the sample's MSSD average recall; dot2d: minus its mean position error.</p>
<table><tr><th>id</th><th>pred/gt</th><th>F1@0.5 / quality</th><th>PSNR</th><th>SSIM</th><th>LPIPS</th><th>mask IoU</th>
<th>matched objects</th><th>picture</th></tr>{''.join(rows)}</table>"""
    write_text_atomic(folder / "index.html", page)
    write_json_atomic(folder / "summary.json", {"pictures": pictures, "plots": plots}, sort_keys=False)


def _plots(samples: list[dict], folder: Path) -> list[str]:
    """Histograms of per-object position and yaw errors and per-sample PSNR (matplotlib, if installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    series = {
        "position error (scene units)": [o["loc_l2"] for s in samples for o in s["matched"]],
        "rotation error (deg)": [o["rot_err_deg"] for s in samples for o in s["matched"] if o["rot_err_deg"] is not None],
        "PSNR per sample (dB)": [s["psnr"] for s in samples if s.get("psnr") is not None],
    }
    series = {k: v for k, v in series.items() if v}
    if not series:
        return []
    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3), squeeze=False)
    for ax, (label, values) in zip(axes[0], series.items()):
        ax.hist(values, bins=30)
        ax.set_xlabel(label)
        ax.set_ylabel("count")
    fig.tight_layout()
    fig.savefig(folder / "errors.png", dpi=80)
    plt.close(fig)
    return ["errors.png"]
