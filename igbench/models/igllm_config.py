"""The typed config of an IG-LLM run (no torch here: the CLI validates configs before loading anything).

Sections: `model` (what is built), `prompt`, `augment` (what the targets look like), `train`, `predict`.
Presets live in igbench/configs/*.yaml; see docs/igllm.md for every key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass
class VisionConfig:
    name: Optional[str] = "openai/clip-vit-large-patch14-336"  # HF name or local folder
    config: Optional[dict] = None  # when name is null: kwargs of AutoConfig.for_model (random init)
    layer: int = -2  # which hidden state: -2 is the penultimate layer
    drop_cls: bool = True  # keep patch features only
    # imagenet-vgg16 / imagenet-alexnet (igbench.models.imagenet_encoder): which ReLU layer's cells are the
    # patch tokens (null: relu4_3 / relu5); `layer` and `drop_cls` do not apply to them.
    feature_layer: Optional[str] = None
    image_size: Optional[int] = None  # null: the encoder config's image_size
    image_mean: list[float] = field(default_factory=lambda: list(CLIP_MEAN))
    image_std: list[float] = field(default_factory=lambda: list(CLIP_STD))
    # Beyond the paper, which freezes a pretrained CLIP: train the encoder too (at the projector's learning
    # rate). For encoders initialised at random (the tiny preset), whose frozen features carry little.
    train: bool = False
    # Added to the projected patch tokens: "sincos2d" is a fixed 2-D sine-cosine code of each token's cell
    # (row, column) on the square token grid. CLIP's patch tokens carry their position (ViT position
    # embeddings); a conv layer's cells carry little, and the LM's rotary positions only say how far back a
    # token is, so without it finding "the object at x" is left to the encoder's padding artefacts.
    position_embedding: Literal["none", "sincos2d"] = "none"


@dataclass
class LMConfig:
    name: Optional[str] = "lmsys/vicuna-7b-v1.3"  # HF name or local folder
    config: Optional[dict] = None  # when name is null: kwargs of AutoConfig.for_model (random init)
    tokenizer: Optional[str] = None  # null: the LM's own; "builtin": igbench's small offline tokenizer
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # dtype of the frozen weights


@dataclass
class LoraSettings:
    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: str = "all-linear"


@dataclass
class ModelConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    lm: LMConfig = field(default_factory=LMConfig)
    projector: Literal["linear", "mlp2"] = "linear"
    finetune: Literal["lora", "full"] = "lora"
    lora: LoraSettings = field(default_factory=LoraSettings)
    numeric: Literal["char", "float"] = "char"
    number_token: str = "<num>"  # the placeholder in --numeric float (added to the tokenizer if absent)
    numeric_loss_weight: float = 1.0  # w in CE + w * MSE
    value_embedding: bool = False  # beyond the paper: feed each number's value back into the next steps
    gradient_checkpointing: bool = False


@dataclass
class PromptConfig:
    template: str = "USER: {image}\nWhat Python Blender code could be used to produce the scene? ASSISTANT: "
    answer: str = "The scene can be produced with:\n```python\n{code}\n```"


@dataclass
class AugmentConfig:
    shuffle_attributes: bool = True
    synonyms: bool = True
    left_to_right: bool = True  # objects sorted by pixel x (off: the dataset's order)
    # Each call writes its numbers (loc, rotation) before its categorical attributes, as Pix2Seq writes a
    # box before its class: the model says where an object is, then reads what is there.
    numbers_first: bool = False


@dataclass
class TrainConfig:
    max_steps: int = 40000  # optimizer steps
    batch_size: int = 4  # per device, per micro-batch
    grad_accum: int = 1
    lr: float = 2e-5  # LoRA (or the whole LM when finetune=full)
    lr_projector: float = 2e-5
    lr_head: float = 2e-4  # numeric head and value embedding
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    max_grad_norm: float = 1.0
    mixed_precision: Literal["no", "bf16", "fp16"] = "bf16"
    max_length: int = 2048
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    save_every: int = 1000  # checkpoint (accelerate save_state) every K steps
    keep_checkpoints: int = 2  # older checkpoints are deleted; 0 keeps all
    eval_every: int = 1000  # val evaluation every K steps; 0 turns it off (also logged to eval.csv)
    eval_samples: int = 64  # how many val samples each evaluation decodes
    train_split: str = "train"
    train_samples: Optional[int] = None  # train on the split's first N samples (data-efficiency curves); null: all
    val_split: str = "val"
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])
    # A frozen encoder's patch tokens of the training split are computed once and cached
    # (igbench.models.feature_cache); each step then runs only the projector, the LM and the heads.
    feature_cache: bool = True
    stop_after: Optional[int] = None  # stop (with a checkpoint) at this step without changing the schedule


@dataclass
class PredictConfig:
    batch_size: int = 8
    max_new_tokens: int = 1024


@dataclass
class IGLLMConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
