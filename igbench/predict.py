"""`igbench predict`: a trained run reads a split and writes predictions.jsonl in the scorer's format.

One line per sample, `{"id": ..., "program": ...}`, appended as each batch finishes (and flushed), so a
stopped run keeps what it wrote and the same command continues with the ids not yet in the file.
Decoding is greedy with a KV cache; in --numeric float the numeric head's values are written into the
placeholders (`{:+.3f}`).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from igbench.errors import UserError

WEIGHTS = "trainable.safetensors"


def generate_batch(model, pixel_values, encoder, tokenizer, config, use_cache: bool = True) -> list[str]:
    import torch

    from igbench.models.igllm import decode_prediction

    device = next(model.projector.parameters()).device
    prompt_ids = torch.tensor(encoder.prompt_ids, device=device)
    prompt_mask = torch.tensor(encoder.prompt_image_mask, device=device)
    tokens, values = model.generate(pixel_values.to(device), prompt_ids, prompt_mask, tokenizer.eos_token_id,
                                    tokenizer.pad_token_id, config.predict.max_new_tokens, use_cache=use_cache)
    return [decode_prediction(tokenizer, t, v, config) for t, v in zip(tokens, values)]


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path]:
    """(run folder, weights file) for a run folder or one of its checkpoints."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if (path / "config.yaml").exists():
        run = path
        weights = path / "model" / WEIGHTS
        if not weights.exists():
            from igbench.train import latest_checkpoint

            latest = latest_checkpoint(path)
            if latest is None:
                raise UserError(f"{path} holds no trained weights yet (no model/{WEIGHTS}, no checkpoints/step_*)")
            weights = latest / "model.safetensors"
    elif (path / "model.safetensors").exists() and (path.parent.parent / "config.yaml").exists():
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
    try:
        saved = yaml.safe_load((run / "config.yaml").read_text())
        task_name = yaml.safe_load((run / "run.yaml").read_text())["task"] if (run / "run.yaml").exists() else "clevr"
    except (yaml.YAMLError, KeyError, TypeError) as err:
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


def predict(checkpoint: str | Path, data: str | Path, split: str, out: str | Path, batch_size: int | None = None,
            limit: int | None = None, overrides: list[str] = (), progress: bool = True) -> dict:
    import torch
    from tqdm.auto import tqdm

    from igbench.models.igllm import PredictionSet, env_threads
    from igbench.train import load_rows

    env_threads()
    model, tokenizer, encoder, config, task = load_predictor(checkpoint, overrides)
    data_task, rows = load_rows(data, split)
    if data_task.name != task.name:
        raise UserError(f"the run was trained on task '{task.name}', {data} is '{data_task.name}'")
    out = Path(out)
    done = already_predicted(out)
    ids = rows["id"]
    todo = [i for i, sample_id in enumerate(ids) if sample_id not in done]
    if limit is not None:
        todo = [i for i in todo if i < limit]
    loader = torch.utils.data.DataLoader(PredictionSet(rows, encoder, todo), batch_size=batch_size or config.predict.batch_size,
                                         collate_fn=PredictionSet.collate)
    out.parent.mkdir(parents=True, exist_ok=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if torch.cuda.is_available() and config.train.mixed_precision == "bf16" else _nullcontext()
    bar = tqdm(total=len(todo), desc=f"predict {split}", disable=not progress, unit="img", dynamic_ncols=True)
    written = 0
    with open(out, "a") as f, autocast:
        for batch in loader:
            programs = generate_batch(model, batch["pixel_values"], encoder, tokenizer, config)
            for sample_id, program in zip(batch["ids"], programs):
                f.write(json.dumps({"id": sample_id, "program": program}) + "\n")
            f.flush()
            written += len(programs)
            bar.update(len(programs))
    bar.close()
    return {"written": written, "skipped": len(done), "out": str(out)}


def already_predicted(out: Path) -> set[str]:
    """Ids already in the output file. A last line cut off by a crash is dropped from the file."""
    if not out.exists():
        return set()
    done, good = set(), []
    lines = out.read_text().splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            done.add(record["id"])
            good.append(line if line.endswith("\n") else line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            if number == len(lines):  # an unfinished last line: rewrite without it
                break
            raise UserError(f"{out} line {number} is not a prediction; remove the file or choose another --out") from None
    if len(good) != len(lines) or (lines and not lines[-1].endswith("\n")):
        out.write_text("".join(good))
    return done


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
