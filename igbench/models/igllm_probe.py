"""`igbench probe RUN --data DIR`: why an IG-LLM run does (not) read the scenes, in two measurements.

1. **Do the frozen encoder's tokens carry the attributes?** For every object of the probed split, the patch
   token of the cell its centre falls in; a linear classifier per attribute (softmax regression on
   log(1 + x), standardised) trained on the first 75% of the images and scored on the rest. High accuracy
   here and low accuracy in the model's predictions puts the limit in the LM, not the features.
2. **Does the trained LM use the image?** Teacher-forced accuracy of each attribute's value token (the
   argmax at the position that predicts it) with each sample's own image, with another sample's image (the
   batch rolled by one) and with a blank one. Accuracy that barely changes without the right image means the
   LM learned the programs' statistics, not to look.

Both read a scene task's rows (objects with `pixel_coords`); the first reuses the run's feature cache.
"""
from __future__ import annotations

from pathlib import Path

from igbench.errors import UserError


def token_cell(x: float, y: float, width: int, height: int, grid: int) -> int:
    """Row-major index of the token whose cell holds pixel (x, y) of a width x height image that IG-LLM pads
    to a square (centred, as igbench.models.igllm.ImageProcessor) and reads as a grid x grid token map."""
    side = max(width, height)
    column = (x + (side - width) // 2) * grid / side
    row = (y + (side - height) // 2) * grid / side
    clamp = lambda v: min(max(int(v), 0), grid - 1)  # noqa: E731  (centres on the border)
    return clamp(row) * grid + clamp(column)


def linear_probe_accuracy(features, labels, train, steps: int = 300, lr: float = 1e-2) -> float:
    """Held-out accuracy of a softmax regression fitted on `features[train]` (full batch, Adam), scored on
    the other rows. features: (n, d) float tensor; labels: (n,) int tensor; train: (n,) bool tensor."""
    import torch

    x = torch.log1p(features.float().clamp(min=0))
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    x = (x - mean) / std
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], int(labels.max()) + 1)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(head(x[train]), labels[train]).backward()
        optimiser.step()
    with torch.no_grad():
        return (head(x[~train]).argmax(1) == labels[~train]).float().mean().item()


def _scene_rows(task, rows):
    if task.kind != "scene_set" or "camera" not in rows.column_names:
        raise UserError(f"igbench probe reads scene tasks (objects with pixel_coords); '{task.name}' is {task.kind}")
    return rows


def feature_probe(model, encoder, config, task, rows, split_folder: Path, progress: bool = True) -> dict:
    """Per attribute: linear-probe accuracy at each object's cell, the majority class's share, n objects."""
    import numpy as np
    import torch

    from igbench.models.igllm import cached_patch_tokens

    tokens = cached_patch_tokens(model, encoder, rows, split_folder, config, progress=progress)
    grid = int(round(tokens.shape[1] ** 0.5))
    cut = int(0.75 * len(rows))
    features, image_of, values = [], [], {name: [] for name in task.categorical}
    for i, (objects, camera) in enumerate(zip(rows["objects"], rows["camera"])):
        width, height = camera["width"], camera["height"]
        for obj in objects:
            x, y = obj["pixel_coords"][:2]
            features.append(tokens[i, token_cell(x, y, width, height, grid)])
            image_of.append(i)
            for name in values:
                values[name].append(obj.get(name))
    if not features or cut < 1 or cut == len(rows):
        raise UserError(f"igbench probe needs a split with objects in at least 2 images (got {len(rows)})")
    features, train = torch.stack(features), torch.tensor(np.array(image_of) < cut)
    report = {}
    for name, column in values.items():
        has = torch.tensor([v is not None for v in column])  # objects without this attribute are left out
        names = sorted({v for v in column if v is not None})
        if len(names) < 2:
            continue
        labels = torch.tensor([names.index(v) for v in column if v is not None])
        held_out = ~train[has]
        majority = np.bincount(labels[held_out].numpy()).max() / max(int(held_out.sum()), 1)
        report[name] = {"probe_acc": linear_probe_accuracy(features[has], labels, train[has]),
                        "majority": float(majority), "objects": int(has.sum())}
    return report


def image_use(model, encoder, tokenizer, task, rows, batch_size: int = 16) -> dict:
    """Per attribute, teacher-forced accuracy of its value tokens with the own / another / a blank image."""
    import torch

    value_ids = {name: sorted({tokenizer(v, add_special_tokens=False).input_ids[0] for v in decl.values})
                 for name, decl in task.categorical.items()}
    hits = {(name, how): [0, 0] for name in value_ids for how in ("own", "other", "blank")}
    device = next(model.projector.parameters()).device
    for start in range(0, len(rows), batch_size):
        batch = encoder.collate([encoder.training_example(rows[i], None)
                                 for i in range(start, min(start + batch_size, len(rows)))])
        pixels = batch["pixel_values"]
        targets = batch["labels"][:, 1:].to(device)
        for how, images in (("own", pixels), ("other", pixels.roll(1, 0)), ("blank", torch.zeros_like(pixels))):
            with torch.no_grad():
                embeds = model.embed(batch["input_ids"].to(device), batch["image_mask"].to(device), images.to(device))
                hidden = model.decoder(inputs_embeds=embeds,
                                       attention_mask=batch["attention_mask"].to(device)).last_hidden_state[:, :-1]
                guess = model.lm_head(hidden).argmax(-1)
            for name, ids in value_ids.items():
                at = torch.isin(targets, torch.tensor(ids, device=device))
                hits[name, how][0] += int((guess[at] == targets[at]).sum())
                hits[name, how][1] += int(at.sum())
    return {name: {how: (hits[name, how][0] / hits[name, how][1] if hits[name, how][1] else None)
                   for how in ("own", "other", "blank")} | {"tokens": hits[name, "own"][1]}
            for name in value_ids}


def probe(run: str | Path, data: str | Path, split: str = "val", features_split: str = "train",
          n: int = 64, progress: bool = True) -> dict:
    from igbench.dataset import split_folder
    from igbench.models.igllm import env_threads
    from igbench.models.igllm_predict import load_predictor, split_of_task

    env_threads()
    model, tokenizer, encoder, config, task = load_predictor(run, device="cpu")
    report = {"run": str(run)}
    if config.model.vision.train:
        report["features"] = "skipped: the run trains its encoder, so its tokens are not frozen features"
    else:
        rows = _scene_rows(task, split_of_task(data, features_split, task))
        report["features"] = {"split": features_split,
                              **feature_probe(model, encoder, config, task, rows, split_folder(data, features_split),
                                                progress)}
    rows = _scene_rows(task, split_of_task(data, split, task))
    rows = rows.select(range(min(n, len(rows))))
    report["image_use"] = {"split": split, "samples": len(rows), **image_use(model, encoder, tokenizer, task, rows)}
    return report


def format_report(report: dict) -> str:
    lines = [f"igbench probe {report['run']}"]
    features = report["features"]
    if isinstance(features, str):
        lines.append(f"frozen features: {features}")
    else:
        lines.append(f"frozen features on {features['split']}: linear probe at each object's cell "
                     "(held-out images; majority class in brackets)")
        lines += [f"  {name:<10} {v['probe_acc']:.3f} ({v['majority']:.3f}), {v['objects']} objects"
                  for name, v in features.items() if name != "split"]
    use = report["image_use"]
    lines.append(f"the LM's use of the image on {use['split']} ({use['samples']} samples): teacher-forced "
                 "accuracy of each attribute with its own image / another sample's / a blank one")
    fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
    lines += [f"  {name:<10} {fmt(v['own'])} / {fmt(v['other'])} / {fmt(v['blank'])}, {v['tokens']} tokens"
              for name, v in use.items() if name not in ("split", "samples")]
    return "\n".join(lines)
