"""Train IG-LLM with Accelerate: `igbench train --model igllm` (or `accelerate launch -m igbench train`).

The file reads top to bottom: setup, data, model, optimizer and schedule, one `accelerator.prepare`,
resume, the loop (accumulate, clip, step, log, checkpoint, evaluate), the final save. A run folder
(igbench/runs.py):

    config.yaml                  the resolved config (preset + overrides), as trained
    tokenizer/  base/            the tokenizer; random-init base weights (only for models built from configs)
    checkpoints/step_000500/     accelerate save_state (trainable weights, optimizer, scheduler, RNG) + state.json
    model/trainable.safetensors  the final trained weights (projector, LoRA, heads)
    metrics.jsonl                one line per logged step and per evaluation
    eval.csv                     one row per evaluation: step, parse rate, count and attribute accuracies,
                                 position error, ... (the learning curve; rows past a resumed checkpoint dropped)
    eval/step_000500.jsonl       the val predictions of each evaluation (the scorer's format)
    logs/                        TensorBoard (and other trackers')
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import torch
import yaml

from igbench.config import to_dict
from igbench.dataset import load_task_split, split_folder
from igbench.errors import UserError
from igbench.files import replaced_atomically, write_text_atomic
from igbench.models.igllm_config import IGLLMConfig
from igbench.models.igllm_predict import generate_batch
from igbench.runs import CONFIG_FILE, STATE_FILE, check_resume, checkpoint_step, latest_checkpoint, mark_checkpoint, start_run
from igbench.score.predictions import write_predictions

# What --resume must keep: the model, the targets and the schedule (logging and evaluation may change).
FIXED_ON_RESUME = ("model", "prompt", "augment", "train.max_steps", "train.grad_accum",
                   "train.seed", "train.lr", "train.lr_projector", "train.lr_head", "train.warmup_ratio",
                   "train.train_samples")


def train(config: IGLLMConfig, data: str | Path, output: str | Path, resume: bool = False,
          progress: bool = True) -> dict:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
    from safetensors.torch import save_file
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    from igbench.models import igllm

    tc = config.train
    output = Path(output)

    # ---- setup: one Accelerator for devices, mixed precision, accumulation, trackers, checkpoints
    trackers = available_trackers(tc.trackers)
    accelerator = Accelerator(
        gradient_accumulation_steps=tc.grad_accum,
        mixed_precision=tc.mixed_precision,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=tc.seed),
        step_scheduler_with_optimizer=False,  # the schedule counts optimizer steps, whatever the process count
    )
    check_resume(output, config, resume, FIXED_ON_RESUME)
    check_global_batch(output, config, accelerator.num_processes)
    set_seed(tc.seed)
    igllm.env_threads()
    say = accelerator.print

    # ---- data
    task, train_rows = load_task_split(data, tc.train_split)
    val_rows = None
    if tc.eval_every:
        try:
            val_task, val_rows = load_task_split(data, tc.val_split)
        except UserError as err:
            say(f"igbench: no evaluation during training: {err}")
        else:
            if val_task.name != task.name:
                raise UserError(f"{tc.val_split} is from task '{val_task.name}', {tc.train_split} from '{task.name}'")

    # ---- model (the main process writes tokenizer and random-init base weights first, others read them)
    if accelerator.is_main_process:
        start_run(output, "igllm", config, task.name, data)
        model, tokenizer = igllm.build_model(config, task, output)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        model, tokenizer = igllm.build_model(config, task, output)
    image_size, num_image_tokens = igllm.vision_geometry(model, config)
    encoder = igllm.Encoder(config, task, tokenizer, image_size, num_image_tokens)
    vision_tokens = None
    if igllm.uses_token_cache(config):  # the main process fills the cache, the others read it
        folder = split_folder(data, tc.train_split)
        for turn in ("main", "others"):
            if accelerator.is_main_process == (turn == "main"):
                vision_tokens = igllm.cached_patch_tokens(accelerator.unwrap_model(model), encoder, train_rows, folder,
                                                          config, progress and accelerator.is_main_process)
            accelerator.wait_for_everyone()
        train_rows = train_rows.remove_columns(["image"])
    if tc.train_samples is not None:  # after the cache, which holds the whole split for every subset size
        train_rows = first_samples(train_rows, tc.train_samples, tc.train_split)
        vision_tokens = vision_tokens[:len(train_rows)] if vision_tokens is not None else None
    dataset = igllm.TrainingSet(train_rows, encoder, tc.seed, vision_tokens=vision_tokens)
    # Its own generator: starting an epoch's iterator draws a base seed, which from the global generator
    # would shift the dropout masks of a run resumed mid-epoch against an uninterrupted one.
    loader = torch.utils.data.DataLoader(dataset, batch_size=tc.batch_size, shuffle=True, drop_last=False,
                                         collate_fn=encoder.collate, num_workers=tc.num_workers,
                                         generator=torch.Generator().manual_seed(tc.seed))
    val_loader = None
    if val_rows is not None:
        val_set = igllm.PredictionSet(val_rows, encoder, list(range(min(tc.eval_samples, len(val_rows)))))
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.predict.batch_size,
                                                 collate_fn=igllm.PredictionSet.collate)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    say(f"igbench: {len(train_rows)} training samples, {num_image_tokens} image tokens, "
        f"{trainable:,} of {total:,} parameters trained")

    # ---- optimizer and schedule (stepped once per optimizer step, so a run resumes with another process count)
    optimizer = torch.optim.AdamW(igllm.parameter_groups(model, tc), betas=(0.9, 0.999))
    warmup = math.ceil(tc.warmup_ratio * tc.max_steps)
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, tc.max_steps)

    # ---- checkpoints hold only what is trained: the frozen encoder and LM are not copied every K steps
    def keep_trainable(models, weights, _output_dir):
        for i, m in enumerate(models):
            names = {n for n, p in accelerator.unwrap_model(m).named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in names}

    accelerator.register_save_state_pre_hook(keep_trainable)

    if val_loader is not None:
        model, optimizer, loader, scheduler, val_loader = accelerator.prepare(model, optimizer, loader, scheduler, val_loader)
    else:
        model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    # ---- resume: weights, optimizer, scheduler and RNG from the newest checkpoint; the step from state.json
    step = 0
    if resume:
        latest = latest_checkpoint(output)
        if latest is None:
            say(f"igbench: no checkpoint in {output / 'checkpoints'}; starting from step 0")
        else:
            accelerator.load_state(str(latest), strict=False)
            step = checkpoint_step(latest)
            if accelerator.is_main_process:  # what a crashed run logged past its checkpoint
                forget_after(output / "metrics.jsonl", step)
                forget_rows_after(output / EVAL_CSV, step)
            say(f"igbench: resumed from {latest} at step {step}")
    if trackers:
        accelerator.init_trackers("igbench", config=flat_hparams(config))

    # ---- the loop: micro-batches in order; an optimizer step every grad_accum of them
    batches_per_epoch = len(loader)
    micro = step * tc.grad_accum
    stop_at = min(tc.max_steps, tc.stop_after or tc.max_steps)
    bar = tqdm(total=tc.max_steps, initial=step, disable=not (progress and accelerator.is_local_main_process),
               desc="train", dynamic_ncols=True)
    window = {"loss": 0.0, "ce": 0.0, "mse": 0.0, "n": 0, "samples": 0, "tokens": 0, "t0": time.perf_counter()}
    last = {}
    model.train()
    while step < stop_at:
        epoch, skip = divmod(micro, batches_per_epoch)
        dataset.epoch = epoch
        loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        for batch in batches:
            with accelerator.accumulate(model):
                out = global_mean_loss(accelerator, model(**batch), config.model.numeric_loss_weight)
                accelerator.backward(out["loss"])
                if accelerator.sync_gradients and tc.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            micro += 1
            for key in ("loss", "ce", "mse"):
                window[key] += float(out[key].detach())
            window["n"] += 1
            window["samples"] += batch["input_ids"].shape[0]
            window["tokens"] += int(batch["attention_mask"].sum())
            if not accelerator.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == stop_at:
                last = log_window(accelerator, window, step, scheduler, output, bar)
            # evaluate before the checkpoint: a crash between the two re-runs the evaluation on resume
            if val_loader is not None and (step % tc.eval_every == 0 or step == tc.max_steps):
                evaluate(accelerator, model, val_loader, tokenizer, encoder, config, task, val_rows, output, step)
                model.train()
            if step % tc.save_every == 0 or step == stop_at:
                save_checkpoint(accelerator, output, step, tc.keep_checkpoints)
            if step >= stop_at:
                break
    bar.close()

    # ---- the final weights (only at the real end; a `stop_after` run leaves its checkpoint to resume)
    if step >= tc.max_steps and accelerator.is_main_process:
        (output / "model").mkdir(exist_ok=True)
        state = igllm.trainable_state_dict(accelerator.unwrap_model(model))
        with replaced_atomically(output / "model" / "trainable.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
        say(f"igbench: trained {step} steps; model in {output / 'model'}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"step": step, **last}


# ------------------------------------------------------------------------------------------- helpers


def check_global_batch(output: Path, config: IGLLMConfig, num_processes: int) -> None:
    """A resumed run keeps its global batch (per-process batch times processes), so it may resume on
    another process count."""
    latest = latest_checkpoint(output)
    if latest is None or not (output / CONFIG_FILE).exists():
        return
    before = yaml.safe_load((output / CONFIG_FILE).read_text()) or {}
    processes = json.loads((latest / STATE_FILE).read_text()).get("processes", 1)
    batch = (before.get("train") or {}).get("batch_size")
    if batch is None or batch * processes != config.train.batch_size * num_processes:
        raise UserError(f"--resume with a global batch of {config.train.batch_size} x {num_processes} process(es); "
                        f"the run has {batch} x {processes}: set train.batch_size so the products agree")


def first_samples(rows, n: int, split: str):
    """The split's first n samples (in id order: the scenes are independent draws, so the first n are a
    random subset, and smaller subsets lie inside larger ones)."""
    if not 0 < n <= len(rows):
        raise UserError(f"train.train_samples={n}: {split} has {len(rows)} samples")
    return rows.select(range(n))


def forget_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines(keepends=True)
            if line.strip() and json.loads(line).get("step", 0) <= step]
    write_text_atomic(path, "".join(keep))


EVAL_CSV = "eval.csv"


def append_row(path: Path, row: dict, columns: list[str]) -> None:
    """Append one row to a CSV (header `columns` first, when the file is new), as one flushed write: a
    crash leaves at most a partial last line, which `forget_rows_after` drops on resume. Columns are the
    header's; a value the header lacks is left out, one the row lacks (nothing parsed yet) is empty."""
    import csv
    import io
    import os

    new = not path.exists() or path.stat().st_size == 0
    header = list(columns) if new else next(csv.reader(open(path, newline="")))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow(row)
    with open(path, "a", newline="") as f:
        f.write(text.getvalue())
        f.flush()
        os.fsync(f.fileno())


def forget_rows_after(path: Path, step: int) -> None:
    """Keep the header and the complete rows of steps up to `step` (a resumed run logs the rest again)."""
    import csv

    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if not lines:
        return
    width = len(next(csv.reader(lines[:1])))
    keep = [lines[0]] + [line for line in lines[1:] if line.endswith("\n")
                         and len(fields := next(csv.reader([line]))) == width and int(fields[0]) <= step]
    write_text_atomic(path, "".join(keep))


def save_checkpoint(accelerator, output: Path, step: int, keep: int) -> None:
    folder = output / "checkpoints" / f"step_{step:06d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        mark_checkpoint(folder, step, accelerator.num_processes)  # written last: marks it complete
        if keep:
            done = sorted(p for p in (output / "checkpoints").glob("step_*") if (p / STATE_FILE).exists())
            for old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def global_mean_loss(accelerator, out: dict, weight: float) -> dict:
    """The micro-batch's loss over all processes: CE summed over this process's answer tokens divided by
    the answer tokens of every process (the MSE likewise over numbers), times the process count since
    DDP averages gradients. So N processes with batches of B/N train as one process with batches of B,
    whatever each one's share of the tokens. One process: the model's own (token-mean) loss."""
    n = accelerator.num_processes
    if n == 1:
        return out
    counts = accelerator.reduce(torch.stack([out["n_tokens"], out["n_numbers"]]).to(torch.float64), reduction="sum")
    ce = n * out["ce_sum"] / counts[0].clamp(min=1)
    mse = n * out["mse_sum"] / counts[1].clamp(min=1)
    return {"loss": ce + weight * mse, "ce": ce.detach(), "mse": mse.detach()}


def log_window(accelerator, window: dict, step: int, scheduler, output: Path, bar) -> dict:
    totals = torch.tensor([window["loss"], window["ce"], window["mse"], window["n"], window["samples"], window["tokens"]],
                          dtype=torch.float64, device=accelerator.device)
    totals = accelerator.reduce(totals, reduction="sum")
    seconds = max(time.perf_counter() - window["t0"], 1e-9)
    n = max(float(totals[3]), 1.0)
    record = {"step": step, "loss": float(totals[0]) / n, "ce": float(totals[1]) / n, "mse": float(totals[2]) / n,
              "lr": scheduler.get_last_lr()[0], "samples_per_s": float(totals[4]) / seconds,
              "tokens_per_s": float(totals[5]) / seconds}
    accelerator.log({f"train/{k}": v for k, v in record.items() if k != "step"}, step=step)
    if accelerator.is_main_process:
        with open(output / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    bar.set_postfix(loss=f"{record['loss']:.4f}", sps=f"{record['samples_per_s']:.1f}", tps=f"{record['tokens_per_s']:.0f}")
    window.update(loss=0.0, ce=0.0, mse=0.0, n=0, samples=0, tokens=0, t0=time.perf_counter())
    return record


def evaluate(accelerator, model, val_loader, tokenizer, encoder, config, task, val_rows, output: Path, step: int) -> dict:
    """Decode the first `eval_samples` val samples on all processes, gather, score on the main one."""
    model.eval()
    unwrapped = accelerator.unwrap_model(model)
    ids, texts = [], []
    for batch in val_loader:
        with accelerator.autocast():
            programs = generate_batch(unwrapped, batch["pixel_values"], encoder, tokenizer, config)
        # per batch: at the last one, gather_for_metrics drops the samples repeated to even out processes
        ids.extend(accelerator.gather_for_metrics(batch["ids"], use_gather_object=True))
        texts.extend(accelerator.gather_for_metrics(programs, use_gather_object=True))
    metrics = {}
    if accelerator.is_main_process:
        predictions = [{"id": i, "program": t} for i, t in zip(ids, texts)]
        write_predictions(output / "eval" / f"step_{step:06d}.jsonl", predictions)
        by_id = {r: k for k, r in enumerate(val_rows["id"])}
        references = [{"id": p["id"], "objects": val_rows[by_id[p["id"]]]["objects"]} for p in predictions]
        metrics = score_programs(predictions, references, task)
        with open(output / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "eval": metrics}) + "\n")
        columns = ["step", *HEADLINE, *(f"attr_acc_{name}" for name in task.categorical)]
        append_row(output / EVAL_CSV, {"step": step, **metrics}, columns)
        accelerator.print(f"igbench: step {step} val: " + ", ".join(
            f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    accelerator.log({f"val/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=step)
    accelerator.wait_for_everyone()
    return metrics


HEADLINE = ("parse_rate", "count_acc", "count_abs_err", "loc_l2_mean", "loc_l2_median", "rot_err_deg_mean",
            "precision@0.5", "recall@0.5", "f1@0.5", "ap@0.5", "pos_err_mean")


def score_programs(predictions: list[dict], references: list[dict], task) -> dict:
    """Parse rate and headline metrics of predictions against dataset rows (id, objects), through the
    scorer (`igbench.score.score_predictions`, parameters only, no re-rendering)."""
    from igbench.score.api import score_predictions

    scores = score_predictions(predictions, references, bootstrap=0, progress=False)
    metrics = {}
    for result in scores["results"].values():
        for key in HEADLINE:
            if isinstance(result.get(key), (int, float)):
                metrics[key] = float(result[key])
        for name, value in (result.get("attr_acc") or {}).items():
            if isinstance(value, (int, float)):
                metrics[f"attr_acc_{name}"] = float(value)
    return metrics


def available_trackers(names: list[str]) -> list[str]:
    """The requested trackers that are installed (TensorBoard by default); the others are skipped."""
    import importlib.util

    modules = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml",
               "aim": "aim", "clearml": "clearml", "dvclive": "dvclive", "swanlab": "swanlab", "trackio": "trackio"}
    found = []
    for name in names:
        if name not in modules:
            from igbench.errors import did_you_mean
            raise UserError(f"unknown tracker '{name}'{did_you_mean(name, modules)}")
        if importlib.util.find_spec(modules[name]) is not None:
            found.append(name)
    return found


def flat_hparams(config: IGLLMConfig) -> dict:
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        else:
            flat[prefix.rstrip(".")] = value if isinstance(value, (int, float, str, bool)) else str(value)

    walk("", to_dict(config))
    return flat
