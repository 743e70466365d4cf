"""`--model vlm`: any Hugging Face `AutoModelForImageTextToText` + `AutoProcessor` with a chat template,
asked for the scene program of each image (igbench.models.vlm_run has the loop and the prompt).

    igbench predict --model vlm --checkpoint Qwen/Qwen2.5-VL-7B-Instruct --data data/clevr --split ood \\
        --out preds.jsonl [predict.k_shot=3 predict.refine_rounds=2 ...]

`--checkpoint` is a Hub id, a local folder, or a run folder written by `igbench train --model vlm`.
Decoding is batched (left padding) and greedy unless `predict.do_sample=true` (then seeded per sample
batch); on a GPU the weights load in bfloat16 with `device_map="auto"`, on a CPU in float32.
"""
from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

from igbench.dataset import load_rows
from igbench.errors import UserError
from igbench.files import atomic_folder
from igbench.models.vlm_run import Answer, VLMConfig, load_config, run_predictions
from igbench.runs import RUN_FILE, check_resume, open_run, start_run

NAME = "vlm"
CONFIG_CLASS = VLMConfig
DEFAULT_CONFIG = "vlm"
FIXED_ON_RESUME = ("model",)  # a run records one model; resuming may change only predict.*
TINY_FOLDER = "model"  # where `model.path=tiny-random:ARCH` builds its model inside the run folder


class LocalVLM:
    """A pretrained VLM in this process."""

    def __init__(self, path: str, config: VLMConfig, progress: bool = True):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging

        if not progress:  # --quiet: no weight-loading bars or notices, only igbench's own lines
            logging.disable_progress_bar()
            logging.set_verbosity_error()

        cuda = torch.cuda.is_available()
        self.config = config
        self.identity = {"model_kind": NAME, "model": path}
        processor = _load(AutoProcessor, path, "processor")
        if not hasattr(processor, "image_processor"):
            raise UserError(f"{path} is not a vision-language model (its processor reads no images)")
        if not getattr(processor, "chat_template", None):
            raise UserError(f"{path} has no chat template; igbench asks VLMs through their chat template")
        kwargs = {"dtype": torch.bfloat16, "device_map": "auto"} if cuda else {"dtype": torch.float32}
        self.model = _load(AutoModelForImageTextToText, path, "model", **kwargs).eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = next(self.model.parameters()).device

    def answer(self, conversations: list[list[dict]], ids: list[str]) -> list[Answer]:
        import torch

        messages = [[_hf_message(m, sample_id) for m in c] for c, sample_id in zip(conversations, ids)]
        p = self.config.predict
        try:
            inputs = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                        return_dict=True, return_tensors="pt",
                                                        processor_kwargs={"padding": True})
        except (ValueError, TypeError, OSError, RuntimeError) as err:
            raise UserError(f"the processor rejects the input of {ids[0] if len(ids) == 1 else ids}: "
                            f"{_first_line(err)}") from None
        inputs = inputs.to(self.device)
        kwargs = {"max_new_tokens": p.max_new_tokens, "do_sample": p.do_sample, "pad_token_id": self.tokenizer.pad_token_id}
        if p.do_sample:
            kwargs.update(temperature=p.temperature, top_p=p.top_p)
            torch.manual_seed(int(hashlib.sha256(f"{p.seed}/{ids[0]}".encode()).hexdigest()[:8], 16))
        tick = time.perf_counter()
        with torch.inference_mode():
            sequences = self.model.generate(**inputs, **kwargs)
        seconds = (time.perf_counter() - tick) / len(ids)
        generated = sequences[:, inputs["input_ids"].shape[1]:].tolist()
        texts = self.processor.batch_decode(generated, skip_special_tokens=True)
        tokens_in = inputs["attention_mask"].sum(dim=1).tolist()
        return [Answer(text, int(n_in), _answer_length(ids_out, self.tokenizer), seconds)
                for text, n_in, ids_out in zip(texts, tokens_in, generated)]

    def close(self) -> None:
        pass


def _answer_length(token_ids: list[int], tokenizer) -> int:
    """Tokens the model wrote: up to and including the first end-of-sequence token (padding excluded)."""
    eos = tokenizer.eos_token_id
    return token_ids.index(eos) + 1 if eos in token_ids else len(token_ids)


def _hf_message(message: dict, sample_id: str) -> dict:
    from PIL import Image, UnidentifiedImageError

    content = []
    for part in message["content"]:
        if part["type"] == "image":
            try:
                with Image.open(io.BytesIO(part["png"])) as img:
                    content.append({"type": "image", "image": img.convert("RGB")})
            except UnidentifiedImageError:
                raise UserError(f"the processor rejects the image of {sample_id}: not an image file PIL can read") from None
            except (OSError, ValueError) as err:
                raise UserError(f"the processor rejects the image of {sample_id}: {_first_line(err)}") from None
        else:
            content.append(part)
    return {"role": message["role"], "content": content}


def _load(cls, path: str, what: str, **kwargs):
    try:
        return cls.from_pretrained(path, **kwargs)
    except OSError as err:
        where = "a local folder without a model" if Path(path).is_dir() else "no local folder, and not on the Hub or its cache (offline?)"
        raise UserError(f"cannot load a VLM {what} from '{path}': {where} ({_first_line(err)[:160]})") from None
    except (ValueError, KeyError) as err:
        raise UserError(f"'{path}' is not a vision-language model that {cls.__name__} loads: {_first_line(err)[:200]}") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def resolve(checkpoint: str, overrides) -> tuple[str, VLMConfig, dict | None]:
    """(model path, config, run.yaml or None): a run folder from `igbench train --model vlm` brings its saved
    config, the task it was made for, and the tiny model built into it."""
    from igbench.models.tiny_vlm import PREFIX

    run = Path(checkpoint)
    if not (run / RUN_FILE).exists():
        return checkpoint, load_config(overrides), None
    run, config, info = open_run(run, NAME, VLMConfig, overrides)
    path = config.model.path
    if path.startswith(PREFIX):
        return str(run / TINY_FOLDER), config, info
    return (str(run / path) if (run / path).exists() else path), config, info


def predict(checkpoint, data, split, out, batch_size=None, limit=None, overrides=(), progress=True) -> dict:
    path, config, info = resolve(str(checkpoint), overrides)
    if batch_size:
        config.predict.batch_size = batch_size
    backend = LocalVLM(path, config, progress)
    return run_predictions(backend, config, data, split, out, limit, progress, run_info=info)


def train(config: VLMConfig, data, output, resume: bool = False, progress: bool = True) -> dict:
    """Nothing to learn: records the model and settings in a run folder, so that the leaderboard (and
    `igbench predict --checkpoint RUN`) treats a pretrained VLM like any trained model;
    `model.path=tiny-random:ARCH` builds that tiny random model into RUN/model first."""
    from igbench.models import tiny_vlm

    output = Path(output)
    task, _, _ = load_rows(data, "train", columns=["id", "task"])
    if not config.model.path:
        raise UserError("--model vlm needs model.path=<Hub id or folder>")
    check_resume(output, config, resume, FIXED_ON_RESUME)
    if config.model.path.startswith(tiny_vlm.PREFIX):
        architecture = config.model.path[len(tiny_vlm.PREFIX):]
        if architecture not in tiny_vlm.ARCHITECTURES:
            raise UserError(f"unknown tiny architecture '{architecture}'; choose one of {', '.join(tiny_vlm.ARCHITECTURES)}")
        if not (output / TINY_FOLDER).exists():
            with atomic_folder(output / TINY_FOLDER, "the tiny model folder") as folder:
                tiny_vlm.build(architecture, folder)
    start_run(output, NAME, config, task.name, data)
    return {"step": 0, "loss": None}
