"""`igbench predict`: a trained run reads a split and writes predictions.jsonl in the scorer's format.

One line per sample, `{"id": ..., "program": ...}`, appended as each batch finishes (and flushed), so a
stopped run keeps what it wrote and the same command continues with the ids not yet in the file.
Decoding is greedy with a KV cache; in --numeric float the numeric head's values are written into the
placeholders (`{:+.3f}`).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import yaml

from igbench.dataset import load_task_split
from igbench.errors import UserError
from igbench.runs import CONFIG_FILE, latest_checkpoint, read_run
from igbench.score.predictions import append_predictions, todo_rows

WEIGHTS = "trainable.safetensors"


def generate_batch(model, pixel_values, encoder, tokenizer, config, use_cache: bool = True,
                   vision_tokens=None) -> list[str]:
    import torch

    from igbench.models.igllm import decode_prediction

    device = next(model.projector.parameters()).device
    prompt_ids = torch.tensor(encoder.prompt_ids, device=device)
    prompt_mask = torch.tensor(encoder.prompt_image_mask, device=device)
    on_device = lambda t: t.to(device) if t is not None else None  # noqa: E731
    tokens, values = model.generate(on_device(pixel_values), prompt_ids, prompt_mask, tokenizer.eos_token_id,
                                    tokenizer.pad_token_id, config.predict.max_new_tokens, use_cache=use_cache,
                                    vision_tokens=on_device(vision_tokens))
    return [decode_prediction(tokenizer, t, v, config) for t, v in zip(tokens, values)]


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(run folder, weights file) for a run folder or one of its checkpoints."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if (path / CONFIG_FILE).exists():
        run = path
        weights = path / "model" / WEIGHTS
        if not weights.exists():
            latest = latest_checkpoint(path)
            if latest is None:
                raise UserError(f"{path} holds no trained weights yet (no model/{WEIGHTS}, no checkpoints/step_*)")
            weights = latest / "model.safetensors"
    elif (path / "model.safetensors").exists() and (path.parent.parent / CONFIG_FILE).exists():
        run, weights = path.parent.parent, path / "model.safetensors"
    else:
        raise UserError(f"{path} is not an igbench run or checkpoint (no config.yaml)")
    return run, weights


def load_predictor(checkpoint: str | Path, overrides: list[str] = (), device: str | None = None):
    """The trained model of a run, its tokenizer, config and task, ready to decode."""
    import torch
    from safetensors.torch import load_file

    from igbench.config import load_config
    from igbench.models import igllm
    from igbench.models.igllm_config import IGLLMConfig
    from igbench.task import load_task

    run, weights = resolve_checkpoint(checkpoint)
    task_name = read_run(run)["task"]
    try:
        saved = yaml.safe_load((run / CONFIG_FILE).read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{run} has an unreadable config: {err}") from None
    config = load_config(IGLLMConfig, None, list(overrides), base=saved)
    task = load_task(task_name)
    model, tokenizer = igllm.build_model(config, task, run, for_training=False)
    state = load_file(str(weights))
    expected = set(igllm.trainable_state_dict(model))
    missing = expected - set(state)
    if missing:
        raise UserError(f"{weights} lacks {len(missing)} trained tensors (e.g. {sorted(missing)[0]}); "
                        "is it from another config?")
    model.load_state_dict(state, strict=False)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    image_size, num_image_tokens = igllm.vision_geometry(model, config)
    encoder = igllm.Encoder(config, task, tokenizer, image_size, num_image_tokens)
    return model, tokenizer, encoder, config, task


def split_of_task(data: str | Path, split: str, task):
    """The rows of a rendered split, refused in one line if the split is of another task than the run's."""
    data_task, rows = load_task_split(data, split)
    if data_task.name != task.name:
        raise UserError(f"the run was trained on task '{task.name}', {data} is '{data_task.name}'")
    return rows


def predict(checkpoint: str | Path, data: str | Path, split: str, out: str | Path, batch_size: int | None = None,
            limit: int | None = None, overrides: list[str] = (), progress: bool = True) -> dict:
    import torch
    from tqdm.auto import tqdm

    from igbench.models.igllm import PredictionSet, env_threads, uses_token_cache

    env_threads()
    model, tokenizer, encoder, config, task = load_predictor(checkpoint, overrides)
    rows = split_of_task(data, split, task)
    out = Path(out)
    ids = rows["id"]
    position = {sample_id: i for i, sample_id in enumerate(ids)}
    todo_ids, skipped = todo_rows([{"id": sample_id} for sample_id in ids], out, limit)
    todo = [position[r["id"]] for r in todo_ids]
    vision_tokens = None
    if todo and limit is None and uses_token_cache(config):
        # The frozen encoder is most of a CPU prediction's time: its tokens of the whole split are cached, so
        # every other run on the same encoder (and a rerun) reads them instead.
        from igbench.dataset import split_folder
        from igbench.models.igllm import cached_patch_tokens

        vision_tokens = cached_patch_tokens(model, encoder, rows, split_folder(data, split), config, progress)
        rows = rows.remove_columns(["image"])
    loader = torch.utils.data.DataLoader(PredictionSet(rows, encoder, todo, vision_tokens),
                                         batch_size=batch_size or config.predict.batch_size,
                                         collate_fn=PredictionSet.collate)
    bf16 = torch.cuda.is_available() and config.train.mixed_precision == "bf16"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    bar = tqdm(total=len(todo), desc=f"predict {split}", disable=not progress, unit="img", dynamic_ncols=True)
    written = 0
    with autocast:
        for batch in loader:
            programs = generate_batch(model, batch.get("pixel_values"), encoder, tokenizer, config,
                                      vision_tokens=batch.get("vision_tokens"))
            append_predictions(out, [{"id": i, "program": p} for i, p in zip(batch["ids"], programs)])
            written += len(programs)
            bar.update(len(programs))
    bar.close()
    return {"written": written, "skipped": skipped, "out": str(out)}
