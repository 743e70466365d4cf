"""IG-LLM (Kulits et al. 2024): a frozen vision encoder, a trained projector and a causal LM that writes
the scene program. Built on plain transformers + peft modules; the training loop is igbench/models/igllm_train.py.

    image ──► pad to square (encoder mean colour), resize ──► vision encoder (frozen), hidden state
          `vision.layer`, patch tokens ──► projector (linear | 2-layer MLP) ──► N image embeddings
    [BOS] prompt-before ─ N image embeddings ─ prompt-after ─ answer [EOS] ──► LM (LoRA or full)

With numeric='float' each number of the answer is one placeholder token; NumberHead reads the final
hidden state at the position that predicts a placeholder and regresses its value (loss CE + w * MSE).
"""
from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from igbench.errors import UserError
from igbench.models.igllm_config import IGLLMConfig, ModelConfig, VisionConfig
from igbench.models.imagenet_encoder import ImageNetEncoder, check_normalisation, is_imagenet_encoder
from igbench.models.numeric_head import NumberHead, ValueEmbedding
from igbench.models.prompting import (answer_text, format_target, ordered_objects, split_prompt,
                                      vocabulary_words)
from igbench.task import Task

IGNORE = -100
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# ------------------------------------------------------------------------------------------ tokenizer


def builtin_tokenizer(task: Task, config: IGLLMConfig):
    """A small offline tokenizer for models built from configs: every printable ASCII character, plus
    whole words of the task and prompt (a unigram model prefers the longest known pieces)."""
    import string

    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", config.model.number_token]
    chars = [c for c in string.printable if c not in "\x0b\x0c\r"]
    words = [w for w in vocabulary_words(task, config.prompt.template, config.prompt.answer)
             if len(w) > 1 and w not in specials]
    vocab = [(s, 0.0) for s in specials] + [(c, -10.0) for c in chars] + [(w, -1.0) for w in words]
    backend = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", unk_token="<unk>")


def load_tokenizer(config: IGLLMConfig, task: Task, saved: Path | None = None):
    """The run's tokenizer: a saved one (prediction), the built-in one, or the LM's own."""
    from transformers import AutoTokenizer

    if saved is not None:
        tokenizer = _from_pretrained(AutoTokenizer, saved, "tokenizer")
    elif config.model.lm.tokenizer == "builtin":
        tokenizer = builtin_tokenizer(task, config)
    else:
        source = config.model.lm.tokenizer or config.model.lm.name
        if source is None:
            raise UserError("model.lm.tokenizer must name a tokenizer (or 'builtin') when model.lm.name is null")
        tokenizer = _from_pretrained(AutoTokenizer, source, "tokenizer")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    if tokenizer.eos_token_id is None:
        raise UserError("the tokenizer has no end-of-sequence token")
    if config.model.numeric == "float":
        # Marked as a special token, so the text around it never merges with it. If it is already in the
        # vocabulary (the paper reuses an existing token) no new id is made.
        tokenizer.add_tokens([config.model.number_token], special_tokens=True)
    return tokenizer


def _from_pretrained(cls, source, what: str, **kwargs):
    try:
        return cls.from_pretrained(str(source), **kwargs)
    except (OSError, ValueError, EnvironmentError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load {what} '{source}' (offline, or not a model folder): {first}") from None


# ------------------------------------------------------------------------------------------- images


class ImageProcessor:
    """PIL image -> normalised tensor: pad to a square with the mean colour, resize, normalise."""

    def __init__(self, size: int, mean, std):
        self.size = int(size)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)

    def __call__(self, image) -> torch.Tensor:
        from PIL import Image

        image = image.convert("RGB")
        w, h = image.size
        side = max(w, h)
        fill = tuple(int(round(255 * m)) for m in self.mean)
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(image, ((side - w) // 2, (side - h) // 2))
        canvas = canvas.resize((self.size, self.size), Image.BICUBIC)
        array = (np.asarray(canvas, np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


# -------------------------------------------------------------------------------------------- model


class IGLLM(nn.Module):
    def __init__(self, vision: nn.Module, lm: nn.Module, config: ModelConfig, number_token_id: int | None):
        super().__init__()
        self.config = config
        self.vision = vision.requires_grad_(config.vision.train)
        if not config.vision.train:
            self.vision.eval()
        self.lm = lm
        vision_width = vision.config.hidden_size
        width = lm.get_input_embeddings().weight.shape[1]
        if config.projector == "linear":
            self.projector = nn.Linear(vision_width, width)
        else:
            self.projector = nn.Sequential(nn.Linear(vision_width, width), nn.GELU(), nn.Linear(width, width))
        self.number_token_id = number_token_id
        self.number_head = NumberHead(width) if config.numeric == "float" else None
        self.value_embed = ValueEmbedding(width) if config.numeric == "float" and config.value_embedding else None

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.config.vision.train:
            self.vision.eval()  # frozen: no dropout, whatever the mode
        return self

    @property
    def decoder(self):
        return self.lm.get_decoder()

    @property
    def lm_head(self):
        return self.lm.get_output_embeddings()

    def image_features(self, pixel_values: torch.Tensor | None, vision_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Projected image embeddings, from the pixels or from the frozen encoder's cached patch tokens."""
        if vision_tokens is None:
            with torch.set_grad_enabled(self.config.vision.train and torch.is_grad_enabled()):
                vision_tokens = patch_tokens(self.vision, pixel_values, self.config.vision)
        weight = next(self.projector.parameters())
        features = self.projector(vision_tokens.to(weight.dtype))
        if self.config.vision.position_embedding == "sincos2d":
            features = features + grid_position_code(features.shape[1], features.shape[2]).to(features)
        return features

    def embed(self, input_ids, image_mask, pixel_values, number_values=None, number_mask=None, vision_tokens=None):
        table = self.lm.get_input_embeddings()
        embeds = table(input_ids)
        features = self.image_features(pixel_values, vision_tokens).to(embeds.dtype)
        embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), features.reshape(-1, features.shape[-1]))
        if self.value_embed is not None and number_values is not None and number_mask is not None and number_mask.any():
            extra = torch.zeros_like(embeds)
            extra[number_mask] = self.value_embed(number_values).to(embeds.dtype)
            embeds = embeds + extra
        return embeds

    def forward(self, input_ids, attention_mask, labels, image_mask, pixel_values=None, number_values=None,
                vision_tokens=None, **_):
        """Loss of a batch: cross-entropy over answer tokens (+ w * MSE of the numbers). The image comes as
        pixels or, for a frozen encoder, as its cached patch tokens (igbench.models.feature_cache)."""
        number_in = (input_ids == self.number_token_id) & (labels != IGNORE) if self.number_head is not None else None
        embeds = self.embed(input_ids, image_mask, pixel_values, number_values, number_in, vision_tokens)
        hidden = self.decoder(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        logits = self.lm_head(hidden)
        ce_sum = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE,
                                 reduction="sum")
        n_tokens = (targets != IGNORE).sum()
        mse_sum, n_numbers = torch.zeros((), device=ce_sum.device), torch.zeros((), dtype=torch.long, device=ce_sum.device)
        if self.number_head is not None:
            at = targets == self.number_token_id
            if at.any():
                predicted = self.number_head(hidden[at]).float()
                mse_sum, n_numbers = ((predicted - number_values.float()) ** 2).sum(), at.sum()
            else:  # keep the head in the graph so every process reduces the same parameters
                mse_sum = 0.0 * self.number_head(hidden[:, :1]).sum()
        ce, mse = ce_sum / n_tokens.clamp(min=1), mse_sum / n_numbers.clamp(min=1)
        loss = ce + self.config.numeric_loss_weight * mse
        # The sums and counts let a trainer on several processes normalise by the counts of all of them.
        return {"loss": loss, "ce": ce.detach(), "mse": mse.detach(), "ce_sum": ce_sum, "n_tokens": n_tokens,
                "mse_sum": mse_sum, "n_numbers": n_numbers}

    @torch.no_grad()
    def generate(self, pixel_values, prompt_ids, prompt_image_mask, eos_id: int, pad_id: int,
                 max_new_tokens: int, use_cache: bool = True,
                 vision_tokens=None) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy decoding of a batch (all prompts have the same length, so nothing is padded). Returns
        each sample's generated ids (up to, not including, EOS) and the numeric head's values in order.
        The images come as pixels or as a frozen encoder's cached patch tokens (pixel_values None)."""
        batch = (pixel_values if pixel_values is not None else vision_tokens).shape[0]
        ids = prompt_ids.unsqueeze(0).expand(batch, -1)
        mask = prompt_image_mask.unsqueeze(0).expand(batch, -1)
        embeds = self.embed(ids, mask, pixel_values, vision_tokens=vision_tokens)
        table = self.lm.get_input_embeddings()
        cache = _new_cache(self.lm.config) if use_cache else None
        out = self.decoder(inputs_embeds=embeds, **_cache_kwargs(cache))
        hidden = out.last_hidden_state[:, -1]
        done = torch.zeros(batch, dtype=torch.bool, device=embeds.device)
        tokens: list[list[int]] = [[] for _ in range(batch)]
        values: list[list[float]] = [[] for _ in range(batch)]
        for _ in range(max_new_tokens):
            token = self.lm_head(hidden).argmax(-1)
            token = torch.where(done, torch.full_like(token, pad_id), token)
            number_value = None
            if self.number_head is not None:
                is_number = (token == self.number_token_id) & ~done
                number_value = self.number_head(hidden).float()
                for i in torch.nonzero(is_number).flatten().tolist():
                    values[i].append(float(number_value[i]))
            done_before = done.clone()
            done |= token == eos_id
            for i in torch.nonzero(~done).flatten().tolist():
                tokens[i].append(int(token[i]))
            if done.all():
                break
            step = table(token).unsqueeze(1)
            if self.value_embed is not None:
                gate = ((token == self.number_token_id) & ~done_before).to(step.dtype).unsqueeze(-1)
                step = step + (self.value_embed(number_value) * gate).unsqueeze(1).to(step.dtype)
            if use_cache:
                out = self.decoder(inputs_embeds=step, **_cache_kwargs(cache))
            else:  # the reference path: recompute the whole sequence (tests check both agree)
                embeds = torch.cat([embeds, step], dim=1)
                out = self.decoder(inputs_embeds=embeds, use_cache=False)
            hidden = out.last_hidden_state[:, -1]
        return tokens, values


@functools.lru_cache(maxsize=8)
def grid_position_code(num_tokens: int, width: int) -> torch.Tensor:
    """(num_tokens, width) fixed 2-D sine-cosine code of the cells of a square token grid, row-major.

    The first half of the channels codes the row, the second the column, each as
    [sin(p * f_k), cos(p * f_k)] with p the cell index and f_k = 10000^(-k / (width / 4)), k < width / 4
    (the Transformer's code per axis, as MAE's 2-D embedding)."""
    side = math.isqrt(num_tokens)
    if side * side != num_tokens or width % 4:
        raise UserError(f"model.vision.position_embedding=sincos2d needs a square token grid and an LM width "
                        f"divisible by 4 (got {num_tokens} tokens, width {width})")
    quarter = width // 4
    freqs = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    cells = torch.arange(side, dtype=torch.float64)
    angles = cells[:, None] * freqs[None, :]  # (side, quarter)
    code = torch.cat([angles.sin(), angles.cos()], dim=1)  # (side, width / 2)
    rows = code[:, None, :].expand(side, side, width // 2)
    columns = code[None, :, :].expand(side, side, width // 2)
    return torch.cat([rows, columns], dim=2).reshape(num_tokens, width).float()


def _new_cache(config):
    from transformers import DynamicCache

    return DynamicCache(config=config)


def _cache_kwargs(cache) -> dict:
    """The decoder's arguments for a KV cache (transformers 5 names it `cache`), or for none."""
    return {"use_cache": False} if cache is None else {"cache": cache, "use_cache": True}


# ------------------------------------------------------------------------------------------ building


def _silence_transformers():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # per-file load/save bars would interleave with igbench's own bar
    logging.getLogger("peft").setLevel(logging.ERROR)


def patch_tokens(vision: nn.Module, pixel_values: torch.Tensor, spec: VisionConfig) -> torch.Tensor:
    """(B, N, width) patch tokens of the encoder: the cells of an ImageNet encoder's chosen layer, or an HF
    encoder's hidden state `spec.layer` (without its CLS token when `spec.drop_cls`)."""
    pixel_values = pixel_values.to(next(vision.parameters()).dtype)
    if isinstance(vision, ImageNetEncoder):
        return vision(pixel_values).last_hidden_state
    hidden = vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states[spec.layer]
    return hidden[:, 1:] if spec.drop_cls else hidden


def load_vision(config: ModelConfig, base_dir: Path | None) -> nn.Module:
    """The vision encoder: an ImageNet encoder (igbench.models.imagenet_encoder), a saved random-init
    encoder of a run, a pretrained one, or one from a config."""
    from transformers import AutoConfig, AutoModel

    spec = config.vision
    if is_imagenet_encoder(spec.name):
        check_normalisation(spec.name, spec.image_mean, spec.image_std, "model.vision")
        return ImageNetEncoder(spec.name, spec.feature_layer)
    if spec.feature_layer is not None:
        raise UserError(f"model.vision.feature_layer applies to the ImageNet encoders (imagenet-vgg16, "
                        f"imagenet-alexnet); {spec.name or 'this encoder'} reads model.vision.layer")
    if spec.name is None and base_dir is not None and (base_dir / "vision").exists():
        model = _from_pretrained(AutoModel, base_dir / "vision", "vision encoder")
    elif spec.name is not None:
        model = _from_pretrained(AutoModel, spec.name, "vision encoder")
    elif spec.config:
        model = AutoModel.from_config(_auto_config(AutoConfig, spec.config, "model.vision.config"))
    else:
        raise UserError("model.vision needs a name (HF name or folder) or a config")
    if hasattr(model, "vision_model") and hasattr(model, "text_model"):  # e.g. a whole CLIP: keep its tower
        model = model.vision_model
    return model


def load_lm(config: ModelConfig, tokenizer, base_dir: Path | None) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = config.lm
    dtype = DTYPES[spec.dtype]
    if spec.name is None and base_dir is not None and (base_dir / "lm").exists():
        model = _from_pretrained(AutoModelForCausalLM, base_dir / "lm", "language model", dtype=dtype)
    elif spec.name is not None:
        model = _from_pretrained(AutoModelForCausalLM, spec.name, "language model", dtype=dtype)
    elif spec.config:
        kwargs = dict(spec.config)
        kwargs.setdefault("vocab_size", len(tokenizer))
        kwargs.setdefault("pad_token_id", tokenizer.pad_token_id)
        kwargs.setdefault("bos_token_id", tokenizer.bos_token_id)
        kwargs.setdefault("eos_token_id", tokenizer.eos_token_id)
        model = AutoModelForCausalLM.from_config(_auto_config(AutoConfig, kwargs, "model.lm.config")).to(dtype)
    else:
        raise UserError("model.lm needs a name (HF name or folder) or a config")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    return model


def _auto_config(auto_config, kwargs: dict, key: str):
    kwargs = dict(kwargs)
    model_type = kwargs.pop("model_type", None)
    if model_type is None:
        raise UserError(f"{key} needs a model_type (e.g. clip_vision_model, llama)")
    try:
        return auto_config.for_model(model_type, **kwargs)
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{key}: {str(err).splitlines()[0]}") from None


def build_model(config: IGLLMConfig, task: Task, run_dir: Path | None = None, for_training: bool = True):
    """The model and its tokenizer. `run_dir` holds a run's saved tokenizer and random-init base weights
    (prediction, resume); when training starts fresh they are written there first."""
    _silence_transformers()
    m = config.model
    saved_tok = run_dir / "tokenizer" if run_dir is not None and (run_dir / "tokenizer").exists() else None
    tokenizer = load_tokenizer(config, task, saved_tok)
    base_dir = run_dir / "base" if run_dir is not None else None
    vision = load_vision(m, base_dir)
    lm = load_lm(m, tokenizer, base_dir)
    if run_dir is not None and for_training:
        run_dir.mkdir(parents=True, exist_ok=True)
        if saved_tok is None:
            tokenizer.save_pretrained(run_dir / "tokenizer")
        if m.vision.name is None and not (base_dir / "vision").exists():
            vision.save_pretrained(base_dir / "vision")
        if m.lm.name is None and not (base_dir / "lm").exists():
            lm.save_pretrained(base_dir / "lm")
    number_id = None
    if m.numeric == "float":
        number_id = tokenizer.convert_tokens_to_ids(m.number_token)
        if number_id is None or number_id == tokenizer.unk_token_id:
            raise UserError(f"the number token '{m.number_token}' is not one token of the tokenizer")
    if m.gradient_checkpointing and for_training:
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        lm.config.use_cache = False
    if m.finetune == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=m.lora.r, lora_alpha=m.lora.alpha, lora_dropout=m.lora.dropout,
                          target_modules=m.lora.target_modules, bias="none", task_type="CAUSAL_LM")
        lm = get_peft_model(lm, lora)
    else:
        lm.requires_grad_(True)
        lm.get_input_embeddings().requires_grad_(False)  # as the paper: embeddings stay frozen
    model = IGLLM(vision, lm, m, number_id)
    if m.vision.position_embedding != "none":  # a grid it cannot code fails here, not after the feature cache
        grid_position_code(vision_geometry(model, config)[1], lm.get_input_embeddings().weight.shape[1])
    for param in model.parameters():  # trained parameters in float32, whatever the frozen weights are
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model, tokenizer


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def parameter_groups(model: IGLLM, train_config) -> list[dict]:
    groups = {"projector": [], "head": [], "lm": []}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith(("projector.", "vision.")):
            groups["projector"].append(param)
        elif name.startswith(("number_head.", "value_embed.")):
            groups["head"].append(param)
        else:
            groups["lm"].append(param)
    lrs = {"projector": train_config.lr_projector, "head": train_config.lr_head, "lm": train_config.lr}
    return [{"params": params, "lr": lrs[name], "weight_decay": train_config.weight_decay, "name": name}
            for name, params in groups.items() if params]


# --------------------------------------------------------------------------------------------- data


class Encoder:
    """Turns dataset rows into model inputs: prompt + image slots + answer ids, labels, numbers."""

    def __init__(self, config: IGLLMConfig, task: Task, tokenizer, image_size: int, num_image_tokens: int):
        self.config = config
        self.task = task
        self.tokenizer = tokenizer
        self.images = ImageProcessor(image_size, config.model.vision.image_mean, config.model.vision.image_std)
        before, after = split_prompt(config.prompt.template)
        ids_before = tokenizer(before, add_special_tokens=False).input_ids
        ids_after = tokenizer(after, add_special_tokens=False).input_ids
        bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
        fill = tokenizer.pad_token_id
        self.prompt_ids = bos + ids_before + [fill] * num_image_tokens + ids_after
        self.prompt_image_mask = [False] * (len(bos) + len(ids_before)) + [True] * num_image_tokens + [False] * len(ids_after)
        self.number_id = tokenizer.convert_tokens_to_ids(config.model.number_token) if config.model.numeric == "float" else None

    def target(self, row: dict, rng=None) -> tuple[str, list[float]]:
        aug = self.config.augment
        objects = ordered_objects(row, self.task, aug.left_to_right)
        shuffle, synonyms = (aug.shuffle_attributes, aug.synonyms) if rng is not None else (False, False)
        code, values = format_target(objects, self.task, rng, shuffle, synonyms, self.config.model.numeric,
                                     self.config.model.number_token, numbers_first=aug.numbers_first)
        return answer_text(code, self.config.prompt.answer), values

    def training_example(self, row: dict, rng) -> dict:
        text, values = self.target(row, rng)
        answer = self.tokenizer(text, add_special_tokens=False).input_ids + [self.tokenizer.eos_token_id]
        if self.number_id is not None and answer.count(self.number_id) != len(values):
            raise UserError("the tokenizer splits the number token; choose another model.number_token")
        ids = self.prompt_ids + answer
        labels = [IGNORE] * len(self.prompt_ids) + answer
        max_length = self.config.train.max_length
        if len(ids) > max_length:  # cut the answer; keep only the numbers whose placeholder survives
            ids, labels = ids[:max_length], labels[:max_length]
            if self.number_id is not None:
                values = values[: ids[len(self.prompt_ids):].count(self.number_id)]
        example = {"input_ids": ids, "labels": labels, "image_mask": self.prompt_image_mask + [False] * len(answer),
                   "number_values": values}
        if "image" in row:  # rows without images come with cached patch tokens (TrainingSet)
            example["pixel_values"] = self.images(row["image"])
        return example

    def collate(self, examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        pad = self.tokenizer.pad_token_id

        def padded(key, fill):
            return torch.tensor([e[key][:width] + [fill] * (width - len(e[key])) for e in examples])

        batch = {
            "input_ids": padded("input_ids", pad),
            "labels": padded("labels", IGNORE),
            "image_mask": padded("image_mask", False),
            "attention_mask": torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples]),
            "number_values": torch.tensor([v for e in examples for v in e["number_values"]], dtype=torch.float32),
        }
        for key in ("pixel_values", "vision_tokens"):
            if key in examples[0]:
                batch[key] = torch.stack([e[key] for e in examples])
        return batch


class TrainingSet(torch.utils.data.Dataset):
    """Rows of a split, encoded on the fly. Augmentations draw from a generator seeded by
    (seed, epoch, index), so a resumed run sees exactly the samples an uninterrupted one would.
    `vision_tokens` (N, tokens, width): the frozen encoder's cached output per row, given instead of images
    (then `rows` need no image column)."""

    def __init__(self, rows, encoder: Encoder, seed: int, augment: bool = True, vision_tokens=None):
        self.rows = rows
        self.encoder = encoder
        self.seed = seed
        self.augment = augment
        self.epoch = 0
        self.vision_tokens = vision_tokens

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        example = self.encoder.training_example(self.rows[index], rng)
        if self.vision_tokens is not None:
            example["vision_tokens"] = self.vision_tokens[index]
        return example


class PredictionSet(torch.utils.data.Dataset):
    """The rows to decode, as pixels, or as the frozen encoder's cached patch tokens of the whole split
    (`vision_tokens`, (N, tokens, width) in the rows' order; the rows then need no image column)."""

    def __init__(self, rows, encoder: Encoder, indices: list[int] | None = None, vision_tokens=None):
        self.rows = rows
        self.encoder = encoder
        self.indices = list(range(len(rows))) if indices is None else list(indices)
        self.vision_tokens = vision_tokens

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        row = self.rows[index]
        if self.vision_tokens is not None:
            return {"id": row["id"], "vision_tokens": self.vision_tokens[index]}
        return {"id": row["id"], "pixel_values": self.encoder.images(row["image"])}

    @staticmethod
    def collate(examples):
        key = "vision_tokens" if "vision_tokens" in examples[0] else "pixel_values"
        return {"ids": [e["id"] for e in examples], key: torch.stack([e[key] for e in examples])}


def cached_patch_tokens(model: IGLLM, encoder: Encoder, rows, split_folder: Path, config: IGLLMConfig,
                        progress: bool = False, batch_size: int = 32, cache: Path | None = None) -> torch.Tensor:
    """(N, tokens, width) frozen-encoder patch tokens of every row, in order, through the feature cache."""
    from igbench.models.feature_cache import cached_features

    spec = config.model.vision
    vision = model.vision
    device = next(vision.parameters()).device
    recipe = {"for": "igllm patch tokens", "encoder": spec.name or "from config",
              "layer": vision.config.layer if isinstance(vision, ImageNetEncoder) else [spec.layer, spec.drop_cls],
              "image_size": encoder.images.size, "image_mean": encoder.images.mean.tolist(),
              "image_std": encoder.images.std.tolist(), "preprocess": "pad to square, bicubic resize"}

    def batches():
        for start in range(0, len(rows), batch_size):
            images = rows[start:start + batch_size]["image"]
            yield torch.stack([encoder.images(image) for image in images])

    def encode(pixels):
        return patch_tokens(vision, pixels.to(device), spec)

    return cached_features(vision, encode, recipe, split_folder, list(rows["id"]), batches, cache, progress)


def vision_geometry(model: IGLLM, config: IGLLMConfig) -> tuple[int, int]:
    """(image size, number of image tokens) of the encoder."""
    vcfg = model.vision.config
    size = config.model.vision.image_size or getattr(vcfg, "image_size", None)
    if size is None:
        raise UserError("model.vision.image_size must be set for this encoder")
    with torch.no_grad():
        probe = torch.zeros(1, 3, size, size, device=next(model.vision.parameters()).device)
        tokens = patch_tokens(model.vision, probe, config.model.vision)
    return int(size), int(tokens.shape[1])


def decode_prediction(tokenizer, token_ids: list[int], values: list[float], config: IGLLMConfig) -> str:
    """Generated ids -> program text, numeric-head values written into the placeholders."""
    from igbench.models.prompting import fill_numbers

    text = tokenizer.decode(token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    for special in (tokenizer.pad_token, tokenizer.bos_token):
        if special and special != config.model.number_token:
            text = text.replace(special, "")
    if config.model.numeric == "float":
        text = fill_numbers(text, values, config.model.number_token)
    return text


def uses_token_cache(config: IGLLMConfig) -> bool:
    """Whether runs of this config read the encoder's patch tokens through the feature cache: a frozen
    encoder, and train.feature_cache on."""
    return config.train.feature_cache and not config.model.vision.train


def env_threads() -> None:
    """Keep CPU runs polite on shared machines unless the user chose a thread count."""
    if "OMP_NUM_THREADS" not in os.environ and not torch.cuda.is_available():
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
