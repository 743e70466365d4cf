"""The cnn-set network, its Hungarian-matched loss, training loop and prediction (torch; imported lazily).

With `model.backbone` (imagenet-vgg16, imagenet-alexnet) the network reads a frozen pretrained encoder's
feature map instead of pixels; the encoder's features of the training split are computed once through the
feature cache (igbench.models.feature_cache), so training steps run only the trained layers.

Run folder: config.yaml, run.yaml, metrics.jsonl (one line per logged step), checkpoint.pt (model,
optimizer and step, for --resume), model.safetensors (the final weights).
"""
from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from igbench.dataset import load_rows, split_fingerprint
from igbench.runs import check_resume, check_task, open_run, start_run
from igbench.score.predictions import append_predictions, todo_rows
from igbench.baselines.cnn_set_config import NAME, CnnSetConfig
from igbench.errors import UserError
from igbench.files import replaced_atomically
from igbench.models.feature_cache import cached_features
from igbench.models.imagenet_encoder import ImageNetEncoder
from igbench.metrics.lpips import IMAGENET_MEAN, IMAGENET_STD

# What --resume must keep (logging, checkpoint frequency and threads may change).
FIXED_ON_RESUME = ("model", "loss", "train.steps", "train.batch_size", "train.lr", "train.weight_decay",
                   "train.warmup_steps", "train.seed", "train.train_split")

WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.pt"


# ------------------------------------------------------------------------------------------ the network


class Layout:
    """Where each quantity sits in a slot's output vector, for a task."""

    def __init__(self, task):
        if task.kind == "pose":
            raise UserError(f"cnn-set predicts positions and CLEVR-style yaw; task '{task.name}' needs 3-D rotations")
        self.attrs = {name: list(decl.values) for name, decl in task.categorical.items()}
        self.periods = {shape: math.radians(deg) for shape, deg in (task.spec.get("rotation_period_deg") or {}).items()}
        self.has_rotation = "rotation" in task.numeric
        self.loc_arity = task.numeric["loc"].arity  # (x, y, z); (x, y) on a 2-D canvas
        offset = 1  # existence logit first
        self.slices = {}
        for name, values in self.attrs.items():
            self.slices[name] = slice(offset, offset + len(values))
            offset += len(values)
        self.slices["loc"] = slice(offset, offset + self.loc_arity)
        offset += self.loc_arity
        self.slices["rot"] = slice(offset, offset + 2)
        self.size = offset + 2


class FrozenBackbone:
    """A frozen ImageNet encoder as cnn-set's input: uint8 images (B, 3, H, W) -> feature maps (B, C, h, w).
    Not a submodule of CnnSet, so its weights stay out of checkpoints and model.safetensors."""

    def __init__(self, config: CnnSetConfig):
        m = config.model
        self.encoder = ImageNetEncoder(m.backbone, m.backbone_layer)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.no_grad():
            probe = self(torch.zeros(1, 3, m.height, m.width, dtype=torch.uint8))
        self.channels, self.size = probe.shape[1], tuple(probe.shape[-2:])
        self.recipe = {"for": "cnn-set feature maps", "encoder": m.backbone, "layer": self.encoder.config.layer,
                       "width": m.width, "height": m.height, "preprocess": "bilinear resize"}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.encoder((images.float() / 255.0 - self.mean) / self.std).feature_map


def coordinate_planes(h: int, w: int) -> torch.Tensor:
    """(1, 2, h, w): x and y from -1 to 1 (CoordConv's extra input planes)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([xs, ys])[None]


HEADS = ("slots", "cells")


def check_model_config(config: CnnSetConfig) -> None:
    m = config.model
    if m.backbone_layer and not m.backbone:
        raise UserError("model.backbone_layer needs model.backbone (imagenet-vgg16 or imagenet-alexnet)")
    if m.head not in HEADS:
        raise UserError(f"model.head must be one of {', '.join(HEADS)}, got {m.head!r}")


class CnnSet(nn.Module):
    def __init__(self, config: CnnSetConfig, layout: Layout, backbone: FrozenBackbone | None = None):
        super().__init__()
        m = config.model
        self.config, self.layout = m, layout
        extra = 2 if m.coord_channels else 0
        if backbone is not None:  # features of a frozen encoder: a 1x1 convolution reads each cell
            c_in = m.channels[-1]
            self.encoder = nn.Sequential(nn.Conv2d(backbone.channels + extra, c_in, 1), nn.GroupNorm(8, c_in),
                                         nn.ReLU(inplace=True))
            h, w = backbone.size
        else:
            blocks, c_in = [], 3 + extra
            for c_out in m.channels:
                blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(8, c_out), nn.ReLU(inplace=True)]
                for _ in range(m.convs_per_block - 1):
                    blocks += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            self.encoder = nn.Sequential(*blocks)
            h, w = m.height, m.width
            for _ in m.channels:
                h, w = (h + 1) // 2, (w + 1) // 2
        self.grid = (h, w)
        if m.head == "cells":  # coordinate planes again: a cell's position tells where on the ground it looks
            convs, c = [], c_in + 2
            for _ in range(m.cell_convs):
                convs += [nn.Conv2d(c, c_in, 3, padding=1), nn.GroupNorm(8, c_in), nn.ReLU(inplace=True)]
                c = c_in
            self.head = nn.Sequential(*convs, nn.Conv2d(c, layout.size, 1))
            with torch.no_grad():  # start every cell at existence 0.01, as objects are rare (CenterNet's prior)
                self.head[-1].bias[0] = -math.log(99.0)
            self.register_buffer("cell_coords", coordinate_planes(h, w), persistent=False)
        else:
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c_in * h * w, m.hidden), nn.ReLU(inplace=True),
                                      nn.Linear(m.hidden, m.slots * layout.size))
        grid_h, grid_w = (h, w) if backbone is not None else (m.height, m.width)
        self.register_buffer("coords", coordinate_planes(grid_h, grid_w), persistent=False)
        self.reads_features = backbone is not None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] (or, with a backbone, its feature maps) -> (B, K, slot vector);
        with head=cells K is the number of cells, in row-major order."""
        x = images if self.reads_features else images - 0.5
        if self.config.coord_channels:
            x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], dim=1)
        if self.config.head == "cells":
            features = self.encoder(x)
            features = torch.cat([features, self.cell_coords.expand(x.shape[0], -1, -1, -1)], dim=1)
            return self.head(features).flatten(2).transpose(1, 2)
        flat, first, relu, last = self.head
        p = self.config.dropout
        hidden = relu(first(F.dropout(flat(self.encoder(x)), p, self.training)))
        return last(F.dropout(hidden, p, self.training)).view(x.shape[0], self.config.slots, self.layout.size)


# ---------------------------------------------------------------------------------------------- data


def encode_images(rows: list[dict], width: int, height: int) -> torch.Tensor:
    from PIL import Image

    out = np.empty((len(rows), height, width, 3), dtype=np.uint8)
    for i, row in enumerate(rows):
        image = row["image"]
        data = image["bytes"] if isinstance(image, dict) else image
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            if img.size != (width, height):
                img = img.resize((width, height), Image.BILINEAR)
            out[i] = np.asarray(img)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # uint8 (N, 3, H, W)


def assign_cells(pixels: np.ndarray, depths: np.ndarray, image_size: tuple[int, int], grid: tuple[int, int],
                 sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Each object's cell of an h x w grid over a W x H image, and the grid's closeness to the objects.

    pixels (n, 2) are the objects' projected centres (x right, y down, in pixels) and depths (n,) their
    distances along the optical axis. An object takes the cell its centre falls in; if a nearer object took
    it first, the free cell of the 3x3 around it whose centre is closest to its own (-1 if all are taken).
    closeness (h * w,) is max over objects of exp(-d^2 / (2 sigma^2)), d the distance in cells from a
    cell's centre to the object's centre: it softens the existence loss next to an object."""
    (width, height), (h, w) = image_size, grid
    centre = np.stack([pixels[:, 0] / width * w, pixels[:, 1] / height * h], axis=-1).reshape(-1, 2)
    cells = np.full(len(centre), -1, dtype=np.int64)
    taken = set()
    for k in np.argsort(depths, kind="stable"):
        cx, cy = centre[k]
        col, row = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
        options = [(r, c) for r in range(row - 1, row + 2) for c in range(col - 1, col + 2)
                   if 0 <= r < h and 0 <= c < w and r * w + c not in taken]
        if (row, col) in options:
            options = [(row, col)]
        if options:
            r, c = min(options, key=lambda rc: (rc[1] + 0.5 - cx) ** 2 + (rc[0] + 0.5 - cy) ** 2)
            cells[k] = r * w + c
            taken.add(r * w + c)
    ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    d2 = (xs.reshape(-1, 1) - centre[:, 0]) ** 2 + (ys.reshape(-1, 1) - centre[:, 1]) ** 2
    closeness = np.exp(-d2 / (2 * sigma ** 2)).max(axis=1) if len(centre) else np.zeros(h * w)
    return cells, closeness


def encode_targets(rows: list[dict], layout: Layout, loc_scale: float, slots: int,
                   grid: tuple[int, int] | None = None, sigma: float = 1.0) -> list[dict]:
    """Per row: attribute indices, positions / loc_scale, yaw (sin, cos) and its mask, the object count; with
    a `grid` (head=cells) also each object's cell and the grid's closeness to the objects (assign_cells)."""
    targets = []
    for row in rows:
        objects = row["objects"]
        if len(objects) > slots:
            raise UserError(f"{row['id']} has {len(objects)} objects, more than model.slots={slots}")
        attrs = {name: torch.tensor([values.index(o[name]) for o in objects], dtype=torch.long)
                 for name, values in layout.attrs.items()}
        loc = torch.tensor([list(o["loc"]) for o in objects], dtype=torch.float32).reshape(-1, layout.loc_arity) / loc_scale
        rot = torch.zeros(len(objects), 2)
        rot_mask = torch.zeros(len(objects), dtype=torch.bool)
        for k, o in enumerate(objects):
            period = layout.periods.get(o.get("shape"))
            if period and o.get("has_rotation", True) and o.get("rotation") is not None:
                angle = float(o["rotation"][0]) * 2 * math.pi / period
                rot[k] = torch.tensor([math.sin(angle), math.cos(angle)])
                rot_mask[k] = True
        target = {"attrs": attrs, "loc": loc, "rot": rot, "rot_mask": rot_mask, "n": len(objects)}
        if grid is not None:
            camera = row["camera"]
            pixels = np.array([o["pixel_coords"] for o in objects], dtype=np.float64).reshape(-1, 3)
            cells, closeness = assign_cells(pixels[:, :2], pixels[:, 2], (camera["width"], camera["height"]), grid, sigma)
            target["cells"] = torch.as_tensor(cells)
            target["closeness"] = torch.as_tensor(closeness, dtype=torch.float32)
        targets.append(target)
    return targets


# ---------------------------------------------------------------------------------------------- loss


def match(logp: dict, exist_logp: np.ndarray, loc: np.ndarray, target: dict, layout: Layout, loss_cfg):
    """Hungarian matching of one image's K slots to its n objects: (slot indices, object indices).
    logp: attribute name -> (K, C) log-probabilities; exist_logp (K,); loc (K, arity); numpy arrays."""
    from scipy.optimize import linear_sum_assignment

    n = target["n"]
    if n == 0:
        return np.zeros(0, int), np.zeros(0, int)
    cost = -loss_cfg.exist * np.repeat(exist_logp[:, None], n, axis=1)
    for name in layout.attrs:
        cost = cost - loss_cfg.attrs * logp[name][:, target["attrs_np"][name]]
    cost = cost + loss_cfg.loc * np.abs(loc[:, None, :] - target["loc_np"][None]).sum(-1)
    return linear_sum_assignment(cost)


def object_terms(outputs: torch.Tensor, logp: dict, pairs: list[tuple[int, np.ndarray, np.ndarray]],
                 targets: list[dict], layout: Layout):
    """Cross-entropy on attributes, L1 on position and MSE on the normalised yaw (sin, cos), each a mean over
    the (image b, output slot s, object o) pairs given as (b, slots, objects) per image."""
    zero = outputs.sum() * 0
    if not pairs:
        return zero, zero, zero
    bi = torch.cat([torch.full((len(slots),), b) for b, slots, _ in pairs])
    si = torch.cat([torch.as_tensor(slots) for _, slots, _ in pairs])
    objs = [(targets[b], torch.as_tensor(o)) for b, _, o in pairs]
    matched = outputs[bi, si]
    attrs = sum((F.nll_loss(logp[name][bi, si], torch.cat([t["attrs"][name][o] for t, o in objs]))
                 for name in layout.attrs), zero)
    loc = F.l1_loss(matched[:, layout.slices["loc"]], torch.cat([t["loc"][o] for t, o in objs]),
                    reduction="none").sum(-1).mean()
    mask = torch.cat([t["rot_mask"][o] for t, o in objs])
    rot = zero
    if mask.any():
        pred_rot = F.normalize(matched[mask][:, layout.slices["rot"]], dim=-1, eps=1e-6)
        rot = F.mse_loss(pred_rot, torch.cat([t["rot"][o] for t, o in objs])[mask], reduction="none").sum(-1).mean()
    return attrs, loc, rot


def total_loss(exist, attrs, loc, rot, loss_cfg) -> tuple[torch.Tensor, dict]:
    total = loss_cfg.exist * exist + loss_cfg.attrs * attrs + loss_cfg.loc * loc + loss_cfg.rotation * rot
    parts = {k: float(v.detach()) for k, v in (("exist", exist), ("attrs", attrs), ("loc", loc), ("rot", rot))}
    return total, parts


def set_loss(outputs: torch.Tensor, targets: list[dict], layout: Layout, loss_cfg) -> tuple[torch.Tensor, dict]:
    """DETR-style loss of a batch (B, K, D) (head=slots): match, then BCE on existence for every slot and the
    object terms (object_terms) for the matched slots."""
    B, K, _ = outputs.shape
    logp = {name: F.log_softmax(outputs[..., layout.slices[name]], dim=-1) for name in layout.attrs}
    with torch.no_grad():
        logp_np = {name: v.numpy() for name, v in logp.items()}
        exist_np = F.logsigmoid(outputs[..., 0]).numpy()
        loc_np = outputs[..., layout.slices["loc"]].numpy()
    pairs = []
    exist_target = torch.zeros(B, K)
    for b, target in enumerate(targets):
        if "attrs_np" not in target:
            target["attrs_np"] = {n: v.numpy() for n, v in target["attrs"].items()}
            target["loc_np"] = target["loc"].numpy()
        slots, objs = match({n: v[b] for n, v in logp_np.items()}, exist_np[b], loc_np[b], target, layout, loss_cfg)
        if len(slots):
            pairs.append((b, slots, objs))
            exist_target[b, torch.as_tensor(slots)] = 1.0
    attrs, loc, rot = object_terms(outputs, logp, pairs, targets, layout)
    weights = torch.where(exist_target > 0, 1.0, loss_cfg.empty_weight)
    exist = F.binary_cross_entropy_with_logits(outputs[..., 0], exist_target, weight=weights, reduction="sum") / B
    return total_loss(exist, attrs, loc, rot, loss_cfg)


def cell_loss(outputs: torch.Tensor, targets: list[dict], layout: Layout, loss_cfg) -> tuple[torch.Tensor, dict]:
    """The loss of a batch (B, cells, D) (head=cells). Existence: CenterNet's focal loss, with p a cell's
    existence probability and g its closeness to the objects (assign_cells),

        pos: -(1 - p)^2 log p        neg: -(1 - g)^4 p^2 log(1 - p)

    summed over cells and divided by the number of objects; the object terms (object_terms) at each
    object's own cell."""
    logits = outputs[..., 0]
    positive = torch.zeros_like(logits)
    pairs = []
    for b, target in enumerate(targets):
        cells = target["cells"].numpy()
        found = np.flatnonzero(cells >= 0)
        if len(found):
            pairs.append((b, cells[found], found))
            positive[b, torch.as_tensor(cells[found])] = 1.0
    closeness = torch.stack([t["closeness"] for t in targets])
    p = torch.sigmoid(logits)
    pos = -((1 - p) ** 2 * F.logsigmoid(logits) * positive).sum()
    neg = -((1 - closeness) ** 4 * p ** 2 * F.logsigmoid(-logits) * (1 - positive)).sum()
    exist = (pos + neg) / positive.sum().clamp(min=1.0)
    logp = {name: F.log_softmax(outputs[..., layout.slices[name]], dim=-1) for name in layout.attrs}
    attrs, loc, rot = object_terms(outputs, logp, pairs, targets, layout)
    return total_loss(exist, attrs, loc, rot, loss_cfg)


# ---------------------------------------------------------------------------------------------- decode


def kept_outputs(outputs: torch.Tensor, config: CnnSetConfig, grid: tuple[int, int]) -> torch.Tensor:
    """(B, K) bool: the outputs read as objects. head=slots: existence above predict.threshold. head=cells:
    also a local maximum of existence over its 3x3 cells, and among the `slots` most likely of the image."""
    probs = torch.sigmoid(outputs[..., 0])
    keep = probs > config.predict.threshold
    if config.model.head == "cells":
        maps = probs.view(-1, 1, *grid)
        keep &= (maps == F.max_pool2d(maps, 3, stride=1, padding=1)).flatten(1)
        ranked = torch.where(keep, probs, torch.full_like(probs, -1.0)).argsort(dim=1, descending=True)
        top = torch.zeros_like(keep).scatter_(1, ranked[:, :config.model.slots], True)
        keep &= top
    return keep


def decode(outputs: torch.Tensor, layout: Layout, config: CnnSetConfig, task, grid: tuple[int, int]) -> list:
    from igbench.program import Obj, Program

    programs = []
    probs = torch.sigmoid(outputs[..., 0])
    keep = kept_outputs(outputs, config, grid)
    for b in range(outputs.shape[0]):
        objects = []
        for k in keep[b].nonzero().flatten().tolist():
            slot = outputs[b, k]
            attrs = {name: values[int(slot[layout.slices[name]].argmax())] for name, values in layout.attrs.items()}
            loc = (slot[layout.slices["loc"]] * config.model.loc_scale).tolist()
            numbers = {"loc": tuple(float(v) for v in loc)}
            period = layout.periods.get(attrs.get("shape"))
            if period and layout.has_rotation:
                s, c = slot[layout.slices["rot"]].tolist()
                numbers["rotation"] = (math.atan2(s, c) * period / (2 * math.pi),)
            objects.append((float(probs[b, k]), Obj(attrs, numbers)))
        programs.append(Program([obj for _, obj in objects]))
    return programs


# ---------------------------------------------------------------------------------------------- train


def _threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)


def train(config: CnnSetConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    tc = config.train
    if tc.steps < 1 or tc.batch_size < 1:
        raise UserError("train.steps and train.batch_size must be at least 1")
    check_model_config(config)
    output = Path(output)
    columns = ["id", "task", "image", "objects"] + (["camera"] if config.model.head == "cells" else [])
    task, rows, folder = load_rows(data, tc.train_split, columns=columns)
    check_resume(output, config, resume, FIXED_ON_RESUME)
    start_run(output, NAME, config, task.name, data, {"train_fingerprint": split_fingerprint(folder)})
    _threads(tc.threads)
    torch.manual_seed(tc.seed)
    layout = Layout(task)
    backbone = FrozenBackbone(config) if config.model.backbone else None
    model = CnnSet(config, layout, backbone)
    images = encode_images(rows, config.model.width, config.model.height)
    if backbone is not None:  # the network's inputs are the frozen encoder's features, computed once
        size = tc.batch_size
        images = cached_features(backbone.encoder, backbone, backbone.recipe, folder, [r["id"] for r in rows],
                                 lambda: (images[i:i + size] for i in range(0, len(images), size)), progress=progress)
    cells = config.model.head == "cells"
    targets = encode_targets(rows, layout, config.model.loc_scale, config.model.slots,
                             grid=model.grid if cells else None, sigma=config.loss.cell_sigma)
    loss_of = cell_loss if cells else set_loss
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)

    def lr_at(step):  # linear warmup, cosine decay to 0
        if step < tc.warmup_steps:
            return (step + 1) / tc.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - tc.warmup_steps) / max(1, tc.steps - tc.warmup_steps)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    step = 0
    generator = torch.Generator().manual_seed(tc.seed)
    if resume and (output / CHECKPOINT).exists():
        state = torch.load(output / CHECKPOINT, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        step = state["step"]
    n = len(rows)
    print(f"igbench: cnn-set: {n} training images, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{tc.steps} steps of batch {tc.batch_size}") if progress else None
    bar = tqdm(total=tc.steps, initial=step, desc="train cnn-set", disable=not progress, dynamic_ncols=True)
    order, cursor = torch.randperm(n, generator=generator), 0
    window, t0, last = [], time.perf_counter(), {}
    model.train()
    while step < tc.steps:
        if cursor + tc.batch_size > n and cursor > 0:
            order, cursor = torch.randperm(n, generator=generator), 0
        idx = order[cursor:cursor + tc.batch_size]
        cursor += tc.batch_size
        batch = images[idx] if backbone is not None else images[idx].float() / 255.0
        outputs = model(batch)
        loss, parts = loss_of(outputs, [targets[i] for i in idx.tolist()], layout, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        window.append({"loss": float(loss.detach()), **parts})
        if step % tc.log_every == 0 or step == tc.steps:
            last = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            last.update(step=step, lr=scheduler.get_last_lr()[0], seconds=time.perf_counter() - t0)
            with open(output / "metrics.jsonl", "a") as f:
                f.write(json.dumps(last) + "\n")
            bar.set_postfix(loss=f"{last['loss']:.3f}")
            window = []
        if step % tc.save_every == 0 and step < tc.steps:
            with replaced_atomically(output / CHECKPOINT) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "generator": generator.get_state(), "step": step}, tmp)
    bar.close()
    with replaced_atomically(output / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    return {"step": step, "loss": last.get("loss")}


# ---------------------------------------------------------------------------------------------- predict


def load_model(checkpoint) -> tuple:
    from safetensors.torch import load_file

    from igbench.task import load_task

    run, config, info = open_run(checkpoint, NAME, CnnSetConfig)
    check_model_config(config)
    if not (run / WEIGHTS).exists():
        raise UserError(f"{run} holds no trained weights ({WEIGHTS}); finish training it first")
    task = load_task(info["task"])
    layout = Layout(task)
    backbone = FrozenBackbone(config) if config.model.backbone else None
    model = CnnSet(config, layout, backbone)
    model.load_state_dict(load_file(str(run / WEIGHTS)))
    return model.eval(), config, layout, task, backbone


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    from tqdm.auto import tqdm

    from igbench.program import format_program

    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    _, config, info = open_run(checkpoint, NAME, CnnSetConfig, overrides)
    model, _, layout, task, backbone = load_model(checkpoint)
    data_task, rows, _ = load_rows(data, split, columns=["id", "task", "image"])
    check_task(info, data_task, data)
    todo, skipped = todo_rows(rows, Path(out), limit)
    size = batch_size or config.predict.batch_size
    _threads(config.train.threads)
    written = 0
    with torch.no_grad(), tqdm(total=len(todo), desc=f"predict {split}", disable=not progress, unit="img") as bar:
        for start in range(0, len(todo), size):
            chunk = todo[start:start + size]
            images = encode_images(chunk, config.model.width, config.model.height)
            inputs = backbone(images) if backbone is not None else images.float() / 255.0
            programs = decode(model(inputs), layout, config, task, model.grid)
            append_predictions(Path(out), [
                {"id": r["id"], "program": format_program(p, task, precision=config.predict.precision)}
                for r, p in zip(chunk, programs)])
            written += len(chunk)
            bar.update(len(chunk))
    return {"written": written, "skipped": skipped, "out": str(out)}
