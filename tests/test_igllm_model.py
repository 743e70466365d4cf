"""IG-LLM pieces on a CPU: targets and prompts, the tokenizer, configs, decoding with a KV cache, a step."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from igbench.config import load_config
from igbench.errors import UserError
from igbench.generators.clevr import sample
from igbench.models.igllm_config import IGLLMConfig
from igbench.models.prompting import fill_numbers, format_target, ordered_objects
from igbench.program import parse
from igbench.scene import objects_row
from igbench.task import load_task
from igllm_support import cli, tiny_dataset

TASK = load_task("clevr")


def sampled_row(index: int, seed: int = 7) -> dict:
    """A dataset-like row from the real sampler: objects with pixel coordinates from the real camera."""
    scene = sample(TASK, "train", index, seed + index)
    objects = []
    for obj in scene.program:
        row = objects_row(obj, TASK)
        row["pixel_coords"] = scene.camera.project([obj.loc])[0].tolist()
        objects.append(row)
    return {"id": scene.id, "objects": objects}


def test_target_lists_objects_left_to_right_and_parses_back():
    row = sampled_row(0)
    objects = ordered_objects(row, TASK)
    xs = [o["pixel_coords"][0] for o in sorted(row["objects"], key=lambda o: o["pixel_coords"][0])]
    assert xs == sorted(xs) and len(objects) >= 3
    text, values = format_target(objects, TASK)
    assert values == []
    back = parse(text, TASK)
    assert [o.attrs for o in back] == [o.attrs for o in objects]
    for got, want in zip(back, objects):
        assert np.allclose(got.loc, want.loc, atol=5e-4)


def test_augmentations_vary_the_text_but_not_the_program():
    row = sampled_row(1)
    objects = ordered_objects(row, TASK)
    canonical = parse(format_target(objects, TASK)[0], TASK)
    texts = set()
    for seed in range(30):
        text, _ = format_target(objects, TASK, np.random.default_rng(seed), shuffle_attributes=True, synonyms=True)
        texts.add(text)
        assert parse(text, TASK) == canonical
    assert len(texts) > 20
    joined = "\n".join(texts)
    assert any(s in joined for s in ("'ball'", "'block'", "'big'", "'tiny'", "'shiny'", "'matte'", "'metallic'"))
    assert not all(t.split("(")[1].startswith("shape=") for t in texts)  # the keyword order changes


def test_float_targets_hold_one_placeholder_per_number():
    objects = ordered_objects(sampled_row(2), TASK)
    text, values = format_target(objects, TASK, numeric="float", number_token="<num>")
    expected = sum(len(v) for o in objects for v in o.numbers.values())
    assert text.count("<num>") == len(values) == expected
    assert fill_numbers(text, values, "<num>") == format_target(objects, TASK)[0]
    assert fill_numbers("a=<num>, b=<num>", [1.0], "<num>") == "a=+1.000, b=<num>"  # no value is made up


def test_numbers_first_writes_where_before_what_and_keeps_the_program():
    objects = ordered_objects(sampled_row(3), TASK)
    text, _ = format_target(objects, TASK, numbers_first=True)
    assert all(line.startswith("add(loc=(") for line in text.splitlines())
    assert parse(text, TASK) == parse(format_target(objects, TASK)[0], TASK)
    template, values = format_target(objects, TASK, numeric="float", numbers_first=True)
    assert fill_numbers(template, values, "<num>") == text  # the values follow the placeholders' new order


def test_builtin_tokenizer_round_trips_programs():
    from igbench.models.igllm import builtin_tokenizer

    config = load_config(IGLLMConfig, "tiny", [])
    tokenizer = builtin_tokenizer(TASK, config)
    text, _ = format_target(ordered_objects(sampled_row(3), TASK), TASK, np.random.default_rng(0), True, True)
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 2  # whole words, not characters
    assert tokenizer.unk_token_id not in ids


def test_config_errors_name_the_key():
    with pytest.raises(UserError, match=r"unknown config key 'train.max_step' \(did you mean 'train.max_steps'\?\)"):
        load_config(IGLLMConfig, "tiny", ["train.max_step=3"])
    with pytest.raises(UserError, match="must be an integer"):
        load_config(IGLLMConfig, "tiny", ["train.max_steps=ten"])
    with pytest.raises(UserError, match="must be one of char, float"):
        load_config(IGLLMConfig, "tiny", ["model.numeric=text"])
    with pytest.raises(UserError, match=r"unknown config 'tinny' \(did you mean 'tiny'\?\)"):
        load_config(IGLLMConfig, "tinny", [])
    config = load_config(IGLLMConfig, "igllm-7b", ["model.numeric=char"])
    assert (config.model.lora.r, config.model.lora.alpha, config.model.lora.dropout) == (128, 256, 0.05)
    assert (config.train.lr, config.train.lr_projector, config.train.lr_head) == (2e-5, 2e-5, 2e-4)
    assert config.model.vision.name == "openai/clip-vit-large-patch14-336" and config.model.vision.layer == -2


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli("train", "--data", str(tmp_path), "--config", "tiny", "train.bogus=1") == 2
    assert cli("train", "--model", "igllmm", "--data", str(tmp_path)) == 2
    assert cli("train", "--data", str(tmp_path / "nowhere"), "--config", "tiny", "--output", str(tmp_path / "r")) == 2
    assert cli("predict", "--checkpoint", str(tmp_path), "--data", str(tmp_path)) == 2
    # a dataset without the needed columns
    from datasets import Dataset

    folder = tmp_path / "clevr" / "train" / "data"
    folder.mkdir(parents=True)
    Dataset.from_dict({"id": ["clevr/train/000000"], "note": ["x"]}).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    assert cli("train", "--data", str(tmp_path / "clevr"), "--config", "tiny", "--output", str(tmp_path / "r2")) == 2
    # a model name that cannot be loaded offline
    assert cli("train", "--data", str(tmp_path / "clevr"), "--config", "tiny", "--output", str(tmp_path / "r3"),
               "model.lm.name=no-such-org/no-such-model-xyz") == 2
    err = capsys.readouterr().err.strip().splitlines()
    mine = [line for line in err if line.startswith("igbench: error:")]
    assert len(mine) == 6, err
    assert "did you mean 'train.max_steps'" not in mine[0] and "unknown config key 'train.bogus'" in mine[0]
    assert "did you mean 'igllm'" in mine[1]
    assert "not an igbench run" in mine[3]
    assert "lacks the columns task, image, objects" in mine[4]


def test_light_modules_import_neither_torch_nor_bpy():
    code = ("import igbench.cli.train, igbench.cli.predict, igbench.models, igbench.models.igllm_run, "
            "igbench.models.prompting, igbench.config, sys; "
            "print(sorted(m for m in ('torch', 'bpy', 'transformers') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    code = "import igbench.models.igllm_train, igbench.models.igllm_predict, igbench.models.igllm, sys; print('bpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


# ------------------------------------------------------------------------------------- with torch


def tiny_model(overrides=()):
    import torch

    from igbench.models import igllm

    torch.manual_seed(0)
    config = load_config(IGLLMConfig, "tiny", list(overrides))
    model, tokenizer = igllm.build_model(config, TASK)
    size, n_image = igllm.vision_geometry(model, config)
    return model, tokenizer, igllm.Encoder(config, TASK, tokenizer, size, n_image), config


@pytest.mark.parametrize("overrides", [["model.numeric=char"], ["model.numeric=float", "model.value_embedding=true"]])
def test_cached_greedy_decoding_matches_recomputing_everything(overrides):
    import torch

    model, tokenizer, encoder, config = tiny_model(overrides)
    model.eval()
    if model.value_embed is not None:  # its output layer starts at zero; make it matter
        torch.nn.init.normal_(model.value_embed.net[2].weight, std=0.5)
    pixels = torch.randn(3, 3, encoder.images.size, encoder.images.size)
    prompt = torch.tensor(encoder.prompt_ids)
    mask = torch.tensor(encoder.prompt_image_mask)
    number_id = encoder.number_id
    args = (pixels, prompt, mask, tokenizer.eos_token_id, tokenizer.pad_token_id, 25)
    if number_id is not None:  # a random LM rarely writes the placeholder: swap it with its favourite token
        tokens, _ = model.generate(*args)
        favourite = max(set(sum(tokens, [])), key=sum(tokens, []).count)
        with torch.no_grad():
            weight = model.lm_head.weight
            weight[[favourite, number_id]] = weight[[number_id, favourite]]
    fast_tokens, fast_values = model.generate(*args, use_cache=True)
    slow_tokens, slow_values = model.generate(*args, use_cache=False)
    assert fast_tokens == slow_tokens
    assert all(len(t) > 0 for t in fast_tokens)
    assert len(set(map(tuple, fast_tokens))) > 1  # the image matters
    if number_id is not None:
        assert sum(len(v) for v in fast_values) > 0
        for a, b in zip(fast_values, slow_values):
            assert np.allclose(a, b, atol=1e-4)


@pytest.mark.blender
@pytest.mark.train
@pytest.mark.parametrize("finetune, train_vision", [("lora", False), ("full", False), ("full", True)])
def test_training_steps_lower_the_loss_on_a_fixed_batch(finetune, train_vision, tmp_path_factory):
    import torch

    from igbench.models import igllm
    from igbench.dataset import load_task_split

    _, rows = load_task_split(tiny_dataset(tmp_path_factory), "train")
    model, tokenizer, encoder, config = tiny_model([f"model.finetune={finetune}", "model.numeric=float",
                                                    f"model.vision.train={str(train_vision).lower()}"])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("vision.") for n in trained) == train_vision
    vision_before = [p.detach().clone() for p in model.vision.parameters()]
    assert any("lora_" in n for n in trained) == (finetune == "lora")
    assert any(n.startswith("number_head.") for n in trained) and any(n.startswith("projector.") for n in trained)
    batch = encoder.collate([igllm.TrainingSet(rows, encoder, 0)[i] for i in range(4)])
    optimizer = torch.optim.AdamW(igllm.parameter_groups(model, config.train))

    def loss_now():
        model.eval()
        with torch.no_grad():
            return float(model(**batch)["loss"])

    losses = [loss_now()]
    for _ in range(5):
        model.train()
        out = model(**batch)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss_now())
        assert float(out["mse"]) > 0  # the numeric head takes part
    assert losses[1] < losses[0], losses  # one step already helps
    assert losses[-1] < 0.9 * losses[0], losses
    moved = any(not torch.equal(a, b) for a, b in zip(vision_before, model.vision.parameters()))
    assert moved == train_vision


def test_grid_position_code_gives_each_cell_its_own_code_shared_along_its_row_and_column():
    import torch

    from igbench.models.igllm import grid_position_code

    code = grid_position_code(16, 8)  # a 4x4 grid, 4 channels per axis
    assert len({tuple(row.tolist()) for row in code}) == 16
    grid = code.reshape(4, 4, 8)
    assert torch.equal(grid[:, 0, :4], grid[:, 3, :4])  # the row half does not change along a row
    assert torch.equal(grid[0, :, 4:], grid[3, :, 4:])  # the column half does not change down a column
    assert torch.equal(grid[1, 2, :4], grid[2, 1, 4:])  # both axes use the same code
    with pytest.raises(UserError, match="square token grid"):
        grid_position_code(15, 8)


def test_sincos2d_tells_the_lm_where_each_image_token_lies():
    import torch

    without, *_ = tiny_model()
    model, _, encoder, _ = tiny_model(["model.vision.position_embedding=sincos2d"])
    pixels = torch.zeros(1, 3, encoder.images.size, encoder.images.size)
    with torch.no_grad():
        tokens = model.image_features(pixels).shape[1]
        width = without.vision.config.hidden_size
        same_everywhere = torch.ones(1, tokens, width)  # as cached patch tokens: every cell sees the same
        plain, placed = (m.image_features(None, same_everywhere)[0] for m in (without, model))
    assert torch.allclose(plain, plain[0].expand_as(plain))
    assert len({tuple(token.round(decimals=4).tolist()) for token in placed}) == tokens


def test_probe_finds_each_objects_token_and_separates_signal_from_noise():
    import torch

    from igbench.models.igllm_probe import linear_probe_accuracy, token_cell

    # 240x160 padded to 240x240 (40 px above and below), read as 15x15 tokens of 16 px
    assert token_cell(0, 0, 240, 160, 15) == 2 * 15 + 0
    assert token_cell(239, 159, 240, 160, 15) == 12 * 15 + 14
    assert token_cell(120, 80, 240, 160, 15) == 7 * 15 + 7
    assert token_cell(240, 160, 240, 160, 15) == 12 * 15 + 14  # a centre on the border stays in the grid
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (800,), generator=generator)
    noise = torch.rand(800, 32, generator=generator)
    signal = noise.clone()
    signal[torch.arange(800), labels] += 3.0  # the class shows in one channel
    train = torch.arange(800) < 600
    assert linear_probe_accuracy(signal, labels, train) > 0.95
    assert linear_probe_accuracy(noise, labels, train) < 0.4


def test_probe_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert cli("probe", "--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path)) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert cli("probe", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--n", "0") == 2
    assert "--n must be positive" in capsys.readouterr().err
