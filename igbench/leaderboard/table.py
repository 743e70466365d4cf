"""results/README.md and results/benchmark.png from results/<model>/<task>/{scores.json,row.json}."""
from __future__ import annotations

import datetime as _dt
import json
import platform
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from igbench.files import write_text_atomic
from igbench.formats import metric_value
from igbench.task import load_task

@dataclass(frozen=True)
class Layout:
    """What the table shows for one kind of task. Columns are (label, key in a split's results, format)."""
    headline: list       # one ID and one OOD column each
    more: list           # the second table: `ID / OOD` in one cell
    plot: list           # (title, key) panels of benchmark.png
    matching: str        # how the parameter metrics match predictions to the reference
    position: tuple      # (label, key, format) of the position error: the data-efficiency curves' measure


IMAGE_MORE = [("SSIM", "ssim", "{:.3f}"), ("LPIPS", "lpips", "{:.3f}"), ("mask IoU", "mask_iou", "{:.3f}")]

CLEVR = Layout(
    headline=[("F1@0.5 ↑", "f1@0.5", "{:.3f}"), ("count acc ↑", "count_acc", "{:.3f}"),
              ("color acc ↑", "attr_acc.color", "{:.3f}"), ("loc L2 ↓", "loc_l2_mean", "{:.3f}"),
              ("PSNR ↑", "psnr", "{:.2f}")],
    more=[("parse rate", "parse_rate", "{:.3f}"), ("AP@0.5", "ap@0.5", "{:.3f}"), ("F1@0.25", "f1@0.25", "{:.3f}"),
          ("shape acc", "attr_acc.shape", "{:.3f}"), ("material acc", "attr_acc.material", "{:.3f}"),
          ("size acc", "attr_acc.size", "{:.3f}"), ("yaw err °", "rot_err_deg_mean", "{:.1f}")] + IMAGE_MORE,
    plot=[("F1@0.5 (higher is better)", "f1@0.5"), ("color accuracy", "attr_acc.color"),
          ("position error L2 (lower is better)", "loc_l2_mean")],
    matching="Hungarian matching on 3-D position; F1 and AP need all four attributes right and the position "
             "within 0.5",
    position=("loc L2", "loc_l2_mean", "{:.3f}"))

DOT2D = Layout(
    headline=[("parse rate ↑", "parse_rate", "{:.3f}"), ("pos err px ↓", "pos_err_px_mean", "{:.2f}"),
              ("median px ↓", "pos_err_px_median", "{:.2f}"), ("PSNR ↑", "psnr", "{:.2f}")],
    more=[("count acc", "count_acc", "{:.3f}"), ("pos err (canvas units)", "pos_err_mean", "{:.4f}")] + IMAGE_MORE,
    plot=[("mean position error, px (lower is better)", "pos_err_px_mean"),
          ("median position error, px (lower is better)", "pos_err_px_median")],
    matching="Hungarian matching on 2-D position; errors in pixels of the rendered canvas",
    position=("pos err px", "pos_err_px_mean", "{:.2f}"))

POSE = Layout(
    headline=[("rot err ° ↓", "rot_err_deg_mean", "{:.1f}"), ("ADD(-S)@0.1d ↑", "add_adds_recall@0.1d", "{:.3f}"),
              ("MSSD AR ↑", "mssd_ar", "{:.3f}"), ("MSPD AR ↑", "mspd_ar", "{:.3f}"), ("PSNR ↑", "psnr", "{:.2f}")],
    more=[("parse rate", "parse_rate", "{:.3f}"), ("count acc", "count_acc", "{:.3f}"),
          ("object acc", "attr_acc.object", "{:.3f}"), ("rot recall@10°", "rot_recall@10", "{:.3f}"),
          ("trans err", "trans_err_mean", "{:.3f}")] + IMAGE_MORE,
    plot=[("rotation error ° (lower is better)", "rot_err_deg_mean"), ("MSSD AR (higher is better)", "mssd_ar")],
    matching="Hungarian matching on position; BOP's symmetry-aware pose errors",
    position=("trans err", "trans_err_mean", "{:.3f}"))

LAYOUTS = {"scene_set": CLEVR, "canvas": DOT2D, "pose": POSE}  # by the task's kind


def shown_columns(layout: Layout, results: list[dict]) -> Layout:
    """The layout without the table columns no row has a value for (the image metrics of a scale scored
    without re-rendering)."""
    def has(column) -> bool:
        return any(metric_value(split, column[1]) is not None for result in results for split in result.values())

    if not results:
        return layout
    return dataclasses.replace(layout, headline=[c for c in layout.headline if has(c)],
                               more=[c for c in layout.more if has(c)])


def fmt(v, spec: str) -> str:
    return "–" if v is None else spec.format(v)


def write_table(config, scale: str, results: Path, fingerprints: dict, render_commands: list[str],
                log: Path | None = None) -> Path:
    results = Path(results)
    task = config.task
    id_split, ood_split = (config.eval_splits + [None, None])[:2]
    rows = []
    for entry in config.models:
        folder = results / entry.row / task
        if (folder / "scores.json").exists():
            rows.append((entry.row, json.loads((folder / "scores.json").read_text()),
                         json.loads((folder / "row.json").read_text()) if (folder / "row.json").exists() else {}))
    lines = [f"# igbench benchmark: {task}, scale `{scale}`", ""]
    if config.preface.strip():
        lines += [" ".join(config.preface.split()), ""]
    lines += [f"Generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} by "
              f"`make benchmark scale={scale}` (`python -m igbench.leaderboard.run --scale {scale}`) on "
              f"{platform.machine()} with {_cpu_count()} CPU cores.", ""]
    task_spec = load_task(task)
    layout = shown_columns(LAYOUTS[task_spec.kind], [scores.get("results", {}) for _, scores, _ in rows])
    splits = ", ".join(f"{s} {n}" for s, n in config.splits.items())
    rendered = (f"{config.render.samples} Cycles samples (denoised)" if task_spec.renderer == "blender"
                else f"drawn by igbench's {task_spec.renderer} renderer")
    lines += [f"**Data**: {splits} images at {config.render.resolution}, {rendered}, seed {config.render.seed}. "
              + config.splits_note.strip(), ""]
    lines += ["Fingerprints (sha256 over shard names and contents):", ""]
    lines += [f"- `{s}`: `{fp}`" for s, fp in fingerprints.items()] + [""]
    if render_commands:
        lines += ["Rendered with:", "", "```"] + render_commands + ["```", ""]
    lines += ["## Models: ID | OOD", "",
              f"Every metric has an ID and an OOD column. Parameter metrics as in docs/metrics.md ({layout.matching}); "
              + (_image_metrics_note(config.score) if config.score.render else "scored without re-rendering "
                 "(`score.render: false`), so no image metrics."), ""]
    header = "| model | " + " | ".join(f"{label} ID | {label} OOD" for label, _, _ in layout.headline) + " |"
    lines += [header, "|---|" + "--:|" * (2 * len(layout.headline))]
    for name, scores, _ in rows:
        res = scores.get("results", {})
        a, b = res.get(f"{task}/{id_split}", {}), res.get(f"{task}/{ood_split}", {})
        cells = [f"{fmt(metric_value(a, key), spec)} | {fmt(metric_value(b, key), spec)}" for _, key, spec in layout.headline]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    shown = {r[0] for r in rows}
    # once per entry of the scale: the rows made from one entry's `seeds` share its note
    notes = list(dict.fromkeys(f"- **{m.group or m.row}**: {' '.join(m.note.split())}"
                               for m in config.models if m.note and m.row in shown))
    lines += [""] + notes if notes else []
    pending = [m.row for m in config.models if m.row not in shown]
    if pending:
        lines += ["", f"**Not run yet**: {', '.join(pending)} (the same `make benchmark scale={scale}` resumes "
                  "where it stopped)."]
    lines += ["", f"More metrics, `ID / OOD` ({id_split}: n = {_n(rows, task, id_split)}, {ood_split}: "
              f"n = {_n(rows, task, ood_split)}):", ""]
    lines += ["| model | " + " | ".join(label for label, _, _ in layout.more) + " |", "|---|" + "--:|" * len(layout.more)]
    for name, scores, _ in rows:
        res = scores.get("results", {})
        a, b = res.get(f"{task}/{id_split}", {}), res.get(f"{task}/{ood_split}", {})
        lines.append(f"| {name} | " + " | ".join(f"{fmt(metric_value(a, k), spec)} / {fmt(metric_value(b, k), spec)}"
                                               for _, k, spec in layout.more) + " |")
    lines.append("")
    oracle = next((r[1]["results"] for r in rows if r[0] == "oracle"), {})
    floor = [v.get("psnr") for v in oracle.values() if v.get("psnr") is not None]
    if floor and min(floor) < 40:
        lines += [f"**Warning**: the oracle re-renders to only {min(floor):.1f} dB PSNR. Re-rendering the reference "
                  "program with the same settings and seed reproduces the reference (≈ 90 dB) unless the executor "
                  "changed after the data was rendered: the image metrics of every row carry that offset (parameter "
                  "metrics do not). Render the data again with this igbench version for consistent image metrics.", ""]
    lines += _seeds_section(config, rows, task, id_split, ood_split, layout)
    efficiency = _data_efficiency(config, rows, task, id_split, ood_split, layout.position)
    lines += _data_efficiency_section(config, efficiency, layout.position, id_split, ood_split)
    lines += _targets_section(config, rows, task, id_split, ood_split)
    refine_rows = _refine_section(config, results, task, id_split, ood_split)
    lines += refine_rows
    lines += _cost_section(config, log, complete=not pending)
    lines += ["## Provenance", "",
              "Every row's exact commands, resolved config and data fingerprints are in "
              "`results/<model>/<task>/row.json`; its scores (with 95% bootstrap intervals and failure counts) "
              "in `scores.json`.", ""]
    for name, scores, row in rows:
        lines.append(f"### {name}")
        lines.append("")
        lines.append("```")
        lines += row.get("commands", [])
        lines.append("```")
        config_text = row.get("config", "").strip()
        if config_text:
            lines += ["<details><summary>config</summary>", "", "```yaml", config_text, "```", "", "</details>"]
        lines.append(f"predictions sha256 `{scores.get('predictions_sha256')}`, reference fingerprint "
                     f"`{scores.get('reference', {}).get('fingerprint')}`, igbench {scores.get('igbench_version')} "
                     f"({scores.get('git')})")
        lines.append("")
    path = results / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    plot = _plot(rows, task, id_split, ood_split, layout.plot, results / "benchmark.png")
    if plot:
        lines.insert(lines.index("## Models: ID | OOD"), "![ID vs OOD](benchmark.png)\n")
    if _plot_data_efficiency(efficiency, layout.position, id_split, ood_split, results / "data_efficiency.png"):
        lines.insert(lines.index("## Data efficiency") + 1, "\n![data efficiency](data_efficiency.png)")
    curves = _learning_curves(config, results / "learning_curves.png")
    if curves:
        lines.insert(lines.index("## Provenance"), "## Learning curves\n\nValidation during training, on each "
                     "run's `train.val_split` (each row's `RUN/eval.csv`):\n\n![learning curves](learning_curves.png)\n")
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _n(rows, task, split):
    return next((r[1]["results"].get(f"{task}/{split}", {}).get("n") for r in rows), "–")


def target_verdict(target, scores: dict, baseline: dict) -> tuple[bool, bool]:
    """(reached, interval clear): whether the point estimate reaches the target, and whether the row's 95%
    interval lies wholly on the good side of the baseline's (above it for at_least, below for at_most)."""
    v = metric_value(scores, target.metric)
    if v is None:
        return False, False
    reached = v >= target.at_least if target.at_least is not None else v <= target.at_most
    ci, base_ci = scores.get("ci95", {}).get(target.metric), baseline.get("ci95", {}).get(target.metric)
    if not ci or not base_ci:
        return reached, False
    clear = ci[0] > base_ci[1] if target.at_least is not None else ci[1] < base_ci[0]
    return reached, clear


def _targets_section(config, rows, task: str, id_split, ood_split) -> list[str]:
    """The scale's targets against its best learned row per metric (not oracle, not the baseline), on ID."""
    if not config.targets or not rows:
        return []
    results = {name: scores.get("results", {}) for name, scores, _ in rows}
    lines = ["## Targets", "",
             f"On `{id_split}` (`{ood_split}` beside it), for the best learned row of each metric; the interval is "
             "the 95% bootstrap interval, and *clear* means it does not overlap the baseline's.", "",
             f"| metric | target | best row | {id_split} [95% CI] | {ood_split} | baseline {id_split} [95% CI] | reached | clear of baseline |",
             "|---|---|---|---|---|---|---|---|"]
    every = None
    for target in config.targets:
        higher = target.at_least is not None
        learned = [n for n in results if n not in ("oracle", target.baseline)
                   and metric_value(results[n].get(f"{task}/{id_split}", {}), target.metric) is not None]
        met = {n for n in learned if target_verdict(target, results[n].get(f"{task}/{id_split}", {}),
                                                    results.get(target.baseline, {}).get(f"{task}/{id_split}", {}))[0]}
        every = met if every is None else every & met
        goal = f"≥ {target.at_least}" if higher else f"≤ {target.at_most}"
        if not learned:
            lines.append(f"| {target.metric} | {goal} | – | – | – | – | – | – |")
            continue
        pick = (max if higher else min)(learned, key=lambda n: metric_value(results[n][f"{task}/{id_split}"], target.metric))
        a, b = results[pick][f"{task}/{id_split}"], results[pick].get(f"{task}/{ood_split}", {})
        base = results.get(target.baseline, {}).get(f"{task}/{id_split}", {})
        reached, clear = target_verdict(target, a, base)
        lines.append(f"| {target.metric} | {goal} | {pick} | {_with_ci(a, target.metric)} | "
                     f"{fmt(metric_value(b, target.metric), '{:.3f}')} | {target.baseline}: {_with_ci(base, target.metric)} | "
                     f"{'yes' if reached else 'no'} | {'yes' if clear else 'no'} |")
    lines += ["", f"Rows reaching every target: {', '.join(sorted(every)) if every else 'none'}.", ""]
    return lines


def spread(values: list) -> tuple[float, float]:
    """(mean, sample standard deviation) of the values, the deviation 0 for a single value:
    s = sqrt(sum((v - mean)^2) / (n - 1))."""
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0


def _cost_section(config, log: Path | None, complete: bool) -> list[str]:
    """Minutes per kind of step and the wall-clock total of the commands behind the results, from the step log."""
    from igbench.leaderboard.cost import cost_summary, read_log

    entries = read_log(log) if log is not None else []
    if not entries:
        return []
    cost = cost_summary(entries)
    lines = ["## Cost", "", f"The commands behind these results, on this machine ({_cpu_count()} CPU cores; "
             f"`{Path(log).name}`: every run of every step, interrupted and repeated ones too):", "",
             "| step | minutes |", "|---|--:|"]
    lines += [f"| {kind} | {seconds / 60:.1f} |" for kind, seconds in cost["seconds_by_kind"].items()]
    lines += [f"| **sum of the {cost['steps']} steps** | **{cost['sum_seconds'] / 60:.1f}** |", ""]
    wall = cost["wall_seconds"]
    if wall is None:
        lines += ["Wall-clock time: not on record (steps logged before start times were).", ""]
        return lines
    text = f"Wall-clock time with `jobs={cost['jobs']}`: **{wall / 3600:.2f} h** (the steps' running time; pauses between resumed runs not counted)"
    if not complete:
        text += ", so far: rows are still to run"
    elif config.budget_hours is not None:
        verdict = "within" if wall <= config.budget_hours * 3600 else "**over**"
        text += f", {verdict} the scale's budget of {config.budget_hours:g} h"
    return lines + [text + ".", ""]


def _image_metrics_note(score) -> str:
    which = ("each predicted program" if score.render_limit is None else
             f"the predicted programs of the first {score.render_limit} samples of each split (`score.render_limit`; "
             "the same samples for every row, parameter metrics on all)")
    return f"image metrics re-render {which} with the reference's camera, lights, seed and settings."


def _seeds_section(config, rows, task: str, id_split, ood_split, layout) -> list[str]:
    """Rows trained on several seeds (a model entry's `seeds`): each metric's mean ± standard deviation over
    the seeds scored so far, and its range."""
    groups: dict[str, list[str]] = {}
    for entry in config.models:
        if entry.group:
            groups.setdefault(entry.group, []).append(entry.row)
    results = {name: scores.get("results", {}) for name, scores, _ in rows}
    groups = {g: [r for r in members if r in results] for g, members in groups.items()}
    groups = {g: members for g, members in groups.items() if members}
    if not groups:
        return []
    lines = ["## Across seeds", "",
             "Rows trained once per seed: each metric's mean ± standard deviation over the seeds, and [min, max]. "
             "Each seed's own 95% bootstrap interval (over the split's samples) is in its row's scores.json.", "",
             "| model | seeds | " + " | ".join(f"{label} {split}" for label, _, _ in layout.headline
                                             for split in (id_split, ood_split)) + " |",
             "|---|--:|" + "--:|" * (2 * len(layout.headline))]
    for group, members in groups.items():
        cells = []
        for _, key, spec in layout.headline:
            for split in (id_split, ood_split):
                values = [metric_value(results[m].get(f"{task}/{split}", {}), key) for m in members]
                values = [v for v in values if v is not None]
                if not values:
                    cells.append("–")
                    continue
                mean, sd = spread(values)
                cells.append(f"{spec.format(mean)} ± {spec.format(sd)} [{spec.format(min(values))}, {spec.format(max(values))}]")
        lines.append(f"| {group} | {len(members)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _data_efficiency(config, rows, task: str, id_split, ood_split, position) -> dict:
    """curve -> train size -> split -> (position error, its 95% interval or None) of each of its rows scored so
    far (one per seed), with the scale's `curve_points` read from their results folders."""
    results = {name: scores.get("results", {}) for name, scores, _ in rows}
    points = [(entry.curve, entry.train_size, results[entry.row]) for entry in config.models
              if entry.curve and entry.row in results]
    for point in config.curve_points:
        path = Path(point.results) / task / "scores.json"
        if path.exists():
            points.append((point.curve, point.train_size, json.loads(path.read_text()).get("results", {})))
    curves: dict = {}
    for curve, size, result in points:
        per_split = curves.setdefault(curve, {}).setdefault(size, {id_split: [], ood_split: []})
        for split in (id_split, ood_split):
            split_result = result.get(f"{task}/{split}", {})
            v = metric_value(split_result, position[1])
            if v is not None:
                per_split[split].append((v, split_result.get("ci95", {}).get(position[1])))
    return {curve: dict(sorted(by_size.items())) for curve, by_size in curves.items()}


def _data_efficiency_section(config, curves: dict, position, id_split, ood_split) -> list[str]:
    """The position error against the number of training samples (a model entry's `train_sizes`): the
    mean over the seeds of each size (± their standard deviation when there are several), or one seed's value
    with its 95% bootstrap interval."""
    if not curves:
        return []
    sizes = sorted({n for by_size in curves.values() for n in by_size})
    label, _, spec = position

    def cell(measured: list) -> str:
        if not measured:
            return "–"
        if len(measured) == 1:
            value, ci = measured[0]
            return spec.format(value) + (f" [{spec.format(ci[0])}, {spec.format(ci[1])}]" if ci else "")
        mean, sd = spread([value for value, _ in measured])
        return f"{spec.format(mean)} ± {spec.format(sd)}"

    lines = ["## Data efficiency", "",
             f"Mean {label} (lower is better), `{id_split} / {ood_split}`, against the number of training samples "
             "(the train split's first N; the same steps for every N). One seed: its value [95% bootstrap "
             "interval]; several: mean ± standard deviation over them.", ""]
    if config.curve_points:
        lines += [f"- {point.curve}, N = {point.train_size:,}: the row in `{point.results}`, trained with the same "
                  "commands on that many samples, not trained again here." for point in config.curve_points] + [""]
    lines += ["| model | " + " | ".join(f"N = {n:,}" for n in sizes) + " |", "|---|" + "--:|" * len(sizes)]
    for curve, by_size in curves.items():
        cells = [f"{cell(by_size[n][id_split])} / {cell(by_size[n][ood_split])}" if n in by_size else "–" for n in sizes]
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    return lines + [""]


def _error_bar(measured: list) -> tuple:
    """(value, error below, error above) of one curve point, as its table cell gives it: one seed's value and
    its 95% bootstrap interval (none without one), or the mean ± standard deviation over several seeds."""
    if len(measured) == 1:
        value, ci = measured[0]
        return (value, value - ci[0], ci[1] - value) if ci else (value, 0.0, 0.0)
    mean, sd = spread([value for value, _ in measured])
    return mean, sd, sd


def _plot_data_efficiency(curves: dict, position, id_split, ood_split, path: Path) -> bool:
    if not curves:
        return False
    plt = _pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), sharey=True)
    for ax, split in zip(axes, (id_split, ood_split)):
        for curve, by_size in curves.items():
            points = [(n, *_error_bar(by_size[n][split])) for n in by_size if by_size[n][split]]
            if points:
                n, value, below, above = zip(*points)
                ax.errorbar(n, value, yerr=[below, above], marker="o", capsize=3, label=curve)
        ax.set_xscale("log")
        sizes = sorted({n for by_size in curves.values() for n in by_size})
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=8)
        ax.minorticks_off()
        ax.set_title(f"{split}: {position[0]} (lower is better)", fontsize=10)
        ax.set_xlabel("training samples", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(plt, fig, path)
    return True


def _with_ci(result: dict, key: str) -> str:
    v, ci = metric_value(result, key), result.get("ci95", {}).get(key)
    return fmt(v, "{:.3f}") + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _refine_section(config, results: Path, task: str, id_split, ood_split) -> list[str]:
    lines = []
    for entry in config.refine:
        folder = results / f"{entry.name}+{entry.base}" / task
        if not (folder / "scores.json").exists():
            continue
        after = json.loads((folder / "scores.json").read_text())["results"]
        before = json.loads((folder / "base_scores.json").read_text())["results"]
        row = json.loads((folder / "row.json").read_text())
        if not lines:
            lines += ["## render-compare: refining predictions by re-rendering", "",
                      "Scored on the refined samples only (the first `limit` of each split), against the base "
                      "model's own predictions of the same samples. Cost: Blender renders per scene (budget "
                      "included the render of the prediction as given and of the result) and wall-clock seconds "
                      "per scene on this machine.", "",
                      "| base | split | n | loc L2 before → after | F1@0.5 before → after | F1@0.25 before → after "
                      "| yaw err ° before → after | image loss before → after | renders / scene | s / scene |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
        for split in (id_split, ood_split):
            key = f"{task}/{split}"
            if key not in after:
                continue
            a, b, st = after[key], before[key], row["refine"].get(key, {})
            pair = lambda k, spec: f"{fmt(metric_value(b, k), spec)} → {fmt(metric_value(a, k), spec)}"  # noqa: E731
            lines.append(f"| {entry.base} | {split} | {a['n']} | {pair('loc_l2_mean', '{:.3f}')} | "
                         f"{pair('f1@0.5', '{:.3f}')} | {pair('f1@0.25', '{:.3f}')} | {pair('rot_err_deg_mean', '{:.1f}')} | "
                         f"{fmt(st.get('image_loss_before'), '{:.5f}')} → {fmt(st.get('image_loss_after'), '{:.5f}')} | "
                         f"{fmt(st.get('renders_mean'), '{:.1f}')} | {fmt(st.get('seconds_mean'), '{:.1f}')} |")
    if lines:
        lines += ["", "Commands: see `results/render-compare+<base>/<task>/row.json`.", ""]
    return lines


def _pyplot():
    """matplotlib.pyplot on the file-only backend, or None where matplotlib is not installed (no plots)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot(rows, task, id_split, ood_split, metrics: list, path: Path) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    if not rows:
        return False
    import numpy as np

    names = [r[0] for r in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2))
    x = np.arange(len(names))
    for ax, (title, key) in zip(axes, metrics):
        for offset, split, colour in ((-0.2, id_split, "#4477aa"), (0.2, ood_split, "#ee6677")):
            vals = [metric_value(r[1]["results"].get(f"{task}/{split}", {}), key) for r in rows]
            ax.bar(x + offset, [np.nan if v is None else v for v in vals], 0.4, label=f"{split}", color=colour)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x, names, rotation=20, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    _save(plt, fig, path)
    return True


# (title, eval.csv columns: the first a run has is plotted; scene tasks log loc_l2, canvas tasks pos_err)
CURVES = [("parse rate", ("parse_rate",)), ("count accuracy", ("count_acc",)), ("colour accuracy", ("attr_acc_color",)),
          ("position error (lower is better)", ("loc_l2_mean", "pos_err_mean"))]


def read_eval_csv(path: Path) -> dict[str, list]:
    """A run's eval.csv as column -> values (floats; None where a value is empty: nothing parsed yet)."""
    import csv

    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    columns = records[0].keys() if records else []
    return {c: [float(r[c]) if r[c] not in ("", None) else None for r in records] for c in columns}


def _learning_curves(config, path: Path) -> bool:
    """Plot every row's validation curves (RUNS/<row>/eval.csv) into `path`; False if no row has one."""
    curves = {}
    for entry in config.models:
        csv_path = Path(config.runs) / entry.row / "eval.csv"
        if csv_path.exists():
            columns = read_eval_csv(csv_path)
            if columns.get("step"):
                curves[entry.row] = columns
    if not curves:
        return False
    plt = _pyplot()
    if plt is None:
        return False
    def filled(columns, key) -> bool:
        return any(v is not None for v in columns.get(key, []))

    # dot2d logs no colour: a panel no run has is left out
    panels = [(title, keys) for title, keys in CURVES if any(filled(c, k) for c in curves.values() for k in keys)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 3.0), squeeze=False)
    axes = axes[0]
    for ax, (title, keys) in zip(axes, panels):
        for name, columns in curves.items():
            key = next((k for k in keys if filled(columns, k)), keys[0])
            points = [(s, v) for s, v in zip(columns["step"], columns.get(key, [])) if v is not None]
            if points:
                ax.plot(*zip(*points), marker=".", label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    _save(plt, fig, path)
    return True


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0
