"""Tiny randomly initialised vision-language models of real architectures, built offline and saved with
`save_pretrained` (weights, config, tokenizer, image processor, chat template), so that
`AutoModelForImageTextToText` / `AutoProcessor` and `transformers serve` load them like any Hub model.
They exercise the pretrained-VLM path without network access; their answers mean nothing.

- `llava`: CLIP vision tower + Llama decoder (LlavaForConditionalGeneration, LlavaProcessor).
- `idefics3`: Idefics3 vision tower + pixel shuffle + Llama decoder (the SmolVLM architecture).

The tokenizer is byte-level BPE without merges (every byte one token), so any prompt encodes and any
answer decodes, with the special tokens each processor needs.

    igbench train --model vlm --data data/clevr --output runs/tiny-llava model.path=tiny-random:llava
"""
from __future__ import annotations

from pathlib import Path

ARCHITECTURES = ("llava", "idefics3")
PREFIX = "tiny-random:"  # model.path=tiny-random:<architecture> builds one into the run folder

# One chat template for both: user turns hold text and image parts; the generation prompt opens the
# assistant turn. Idefics3's processor expands each <image> into its own image-token block.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def byte_tokenizer(extra_special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", *extra_special]
    alphabet = ByteLevel.alphabet()
    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(alphabet):
        vocab[char] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>",
                                        eos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": specials[4:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _text_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)


def build_llava(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = byte_tokenizer(["<image>"])
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=_text_config(tokenizer),
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                               tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE, image_token="<image>")
    return _save(LlavaForConditionalGeneration(config), processor, folder, seed)


def build_idefics3(folder: Path, seed: int = 0) -> Path:
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tokenizer = byte_tokenizer(["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"])
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "image_size": 32, "patch_size": 8}
    config = Idefics3Config(vision_config=vision, text_config=_text_config(tokenizer).to_dict(), scale_factor=2,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                            pad_token_id=tokenizer.pad_token_id)
    image_processor = Idefics3ImageProcessor(do_image_splitting=False, size={"longest_edge": 32},
                                             max_image_size={"longest_edge": 32})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4,
                                  chat_template=CHAT_TEMPLATE)
    return _save(Idefics3ForConditionalGeneration(config), processor, folder, seed)


def _save(model, processor, folder: Path, seed: int) -> Path:
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():  # wide random weights (norms left at 1): the answer changes with the image
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0.0, 1.0)
    model.generation_config.do_sample = False
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build(architecture: str, folder: Path, seed: int = 0) -> Path:
    """Build the tiny random `architecture` (one of ARCHITECTURES) into `folder`."""
    return {"llava": build_llava, "idefics3": build_idefics3}[architecture](Path(folder), seed)
