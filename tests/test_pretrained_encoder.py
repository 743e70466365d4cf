"""The pretrained ImageNet encoder (the weights LPIPS ships), the feature cache, `--numeric`, and
validation curves: real weights, real renders, real training."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from igllm_support import cli, read_jsonl, tiny_dataset

from igbench.errors import UserError
from igbench.metrics.lpips import IMAGENET_MEAN, IMAGENET_STD, LAYERS, build_lpips, load_weights
from igbench.models.feature_cache import cached_features
from igbench.models.imagenet_encoder import ImageNetEncoder, check_normalisation

TRAIN_N = 32


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory, train_n=TRAIN_N, val_n=8, num_objects=(1, 3))


def random_image(w, h, seed=0):
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("name, net, tap", [("imagenet-vgg16", "vgg", 3), ("imagenet-alexnet", "alex", 4)])
def test_encoder_holds_the_shipped_weights_and_computes_the_features_lpips_compares(name, net, tap):
    from igbench.models.igllm import ImageProcessor

    encoder = ImageNetEncoder(name)
    flax = load_weights(net)["VGG16_0/Conv_0/kernel" if net == "vgg" else "AlexNet_0/Conv_0/kernel"]
    assert torch.equal(encoder.backbone.convs[0], torch.from_numpy(flax.copy()).permute(3, 2, 0, 1))
    assert not any(p.requires_grad for p in encoder.parameters())
    image = random_image(64, 64)
    pixels = ImageProcessor(64, IMAGENET_MEAN, IMAGENET_STD)(image)[None]  # IG-LLM's preprocessing
    x = torch.from_numpy(np.asarray(image, np.float32) / 255.0).permute(2, 0, 1)[None]
    lpips = build_lpips(net)
    reference = lpips.features((2 * x - 1 - lpips.shift) / lpips.scale)[tap]  # LPIPS's own normalisation
    out = encoder(pixels)
    torch.testing.assert_close(out.feature_map, reference, rtol=1e-4, atol=1e-4)
    assert out.last_hidden_state.shape == (1, reference.shape[2] * reference.shape[3], reference.shape[1])
    assert encoder.config.hidden_size == reference.shape[1]
    assert float(reference.abs().sum()) > 0


def test_encoder_refuses_unknown_layers_and_foreign_normalisation():
    with pytest.raises(UserError, match="relu4_3"):
        ImageNetEncoder("imagenet-vgg16", "relu4_4")
    with pytest.raises(UserError, match="did you mean"):
        ImageNetEncoder("imagenet-vgg61")
    early = ImageNetEncoder("imagenet-vgg16", "relu2_2")
    assert early(torch.zeros(1, 3, 32, 32)).feature_map.shape == (1, 128, 16, 16)
    assert LAYERS["vgg"].index("relu2_2") == 3
    with pytest.raises(UserError, match="image_mean"):
        check_normalisation("imagenet-vgg16", [0.481, 0.458, 0.408], [0.269, 0.261, 0.276], "model.vision")


@pytest.mark.blender
def test_igllm_refuses_the_imagenet_encoder_with_clip_normalisation(data, tmp_path):
    code = cli("train", "--model", "igllm", "--data", str(data), "--config", "tiny-vgg16", "--output",
               str(tmp_path / "run"), "--quiet", "model.vision.image_mean=[0.48,0.45,0.40]")
    assert code == 2


@pytest.mark.blender
def test_feature_cache_returns_a_fresh_forward_pass_and_invalidates_on_size_or_split(data, tmp_path):
    from igbench.dataset import load_task_split, split_folder
    from igbench.models.igllm import ImageProcessor, patch_tokens
    from igbench.models.igllm_config import VisionConfig

    encoder = ImageNetEncoder("imagenet-vgg16")
    spec = VisionConfig(name="imagenet-vgg16")
    calls = []

    def features_of(split, size):
        _, rows = load_task_split(data, split)
        process = ImageProcessor(size, IMAGENET_MEAN, IMAGENET_STD)
        images = torch.stack([process(image) for image in rows["image"]])

        def encode(batch):
            calls.append(len(batch))
            return patch_tokens(encoder, batch, spec)

        recipe = {"encoder": "imagenet-vgg16", "layer": "relu4_3", "image_size": size}
        cached = cached_features(encoder, encode, recipe, split_folder(data, split), list(rows["id"]),
                                 lambda: (images[i:i + 8] for i in range(0, len(images), 8)), folder=tmp_path)
        with torch.no_grad():
            return cached, patch_tokens(encoder, images, spec)

    first, fresh = features_of("train", 32)
    assert torch.equal(first, fresh) and first.shape == (TRAIN_N, 16, 512)
    assert sum(calls) == TRAIN_N and len(list(tmp_path.glob("*.safetensors"))) == 1
    again, _ = features_of("train", 32)
    assert torch.equal(again, fresh) and sum(calls) == TRAIN_N  # read, not recomputed
    bigger, fresh_bigger = features_of("train", 64)
    assert sum(calls) == 2 * TRAIN_N and bigger.shape == (TRAIN_N, 64, 512) and torch.equal(bigger, fresh_bigger)
    val, fresh_val = features_of("val", 32)
    assert sum(calls) == 2 * TRAIN_N + 8 and torch.equal(val, fresh_val)
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.blender
def test_feature_cache_leaves_no_entry_when_the_computation_dies(data, tmp_path):
    from igbench.dataset import split_folder

    encoder = ImageNetEncoder("imagenet-alexnet")

    def batches():
        yield torch.zeros(2, 3, 64, 64)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_features(encoder, lambda b: encoder(b).feature_map, {"layer": "relu5"}, split_folder(data, "train"),
                        ["a", "b", "c"], batches, folder=tmp_path)
    assert [p.suffix for p in tmp_path.iterdir()] == [".lock"]  # no entry, no temporary: only the lock


@pytest.mark.blender
def test_a_second_process_asking_for_an_entry_being_computed_waits_and_reads_it(data, tmp_path):
    import threading

    from igbench.dataset import split_folder

    encoder = ImageNetEncoder("imagenet-alexnet")
    inside, release, calls = threading.Event(), threading.Event(), []

    def slow_encode(batch):  # the first computation, held until the second is waiting
        inside.set()
        release.wait(60)
        return torch.ones(len(batch), 2)

    def counted_encode(batch):
        calls.append(len(batch))
        return torch.zeros(len(batch), 2)

    def ask(encode, out):
        out.append(cached_features(encoder, encode, {"layer": "relu5"}, split_folder(data, "train"), ["a", "b"],
                                   lambda: iter([torch.zeros(2, 3, 8, 8)]), folder=tmp_path))

    first, second = [], []
    one = threading.Thread(target=ask, args=(slow_encode, first))
    one.start()
    assert inside.wait(60)
    two = threading.Thread(target=ask, args=(counted_encode, second))
    two.start()
    two.join(0.5)
    assert two.is_alive() and not list(tmp_path.glob("*.safetensors"))  # waiting its turn, not computing
    release.set()
    one.join(60), two.join(60)
    assert calls == [] and torch.equal(second[0], first[0]) and torch.equal(first[0], torch.ones(2, 2))


@pytest.mark.blender
@pytest.mark.train
@pytest.mark.parametrize("head", ["slots", "cells"])
def test_cnn_set_on_the_frozen_encoder_learns_32_scenes(data, tmp_path, monkeypatch, head):
    # cells: one cell carries a whole object, and the objects' centres must fall in cells apart (stride 8)
    width, lr, size = ("[16]", "1e-3", "96x64") if head == "slots" else ("[64]", "3e-3", "192x128")
    monkeypatch.setenv("IGBENCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert cli("train", "--model", "cnn-set", "--data", str(data), "--output", str(run), "--quiet",
               "model.backbone=imagenet-vgg16", f"model.channels={width}", "model.hidden=256", "train.steps=120",
               "train.batch_size=16", "train.warmup_steps=10", f"model.head={head}", f"train.lr={lr}",
               f"model.width={size.split('x')[0]}", f"model.height={size.split('x')[1]}",
               "train.log_every=20") == 0
    assert len(list((tmp_path / "cache" / "features").glob("*.safetensors"))) == 1
    assert (run / "model.safetensors").stat().st_size < 20e6  # the frozen backbone is not saved
    losses = [line["loss"] for line in read_jsonl(run / "metrics.jsonl")]
    assert losses[-1] < 0.3 * losses[0]
    preds = tmp_path / "train.jsonl"
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--out", str(preds)) == 0
    assert cli("score", str(preds), "--data", str(data.parent), "--out", str(tmp_path / "scores")) == 0
    result = json.loads((tmp_path / "scores" / "scores.json").read_text())
    metrics = next(iter(result["results"].values()))
    counts = [len(row["objects"]) for row in _rows(data, "train")]
    chance = max(counts.count(n) for n in set(counts)) / len(counts)  # always guessing the commonest count
    assert metrics["count_acc"] > chance + 0.2, (metrics["count_acc"], chance)


def _rows(data, split):
    from igbench.dataset import load_rows

    return load_rows(data, split, columns=["id", "task", "objects"])[1]


@pytest.mark.blender
@pytest.mark.train
def test_igllm_on_the_cached_encoder_learns_and_logs_resume_safe_validation_curves(data, tmp_path, monkeypatch):
    monkeypatch.setenv("IGBENCH_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    common = ["train", "--model", "igllm", "--data", str(data), "--config", "tiny-vgg16", "--output", str(run),
              "--quiet", "--numeric", "float", "train.max_steps=30", "train.eval_every=10", "train.eval_samples=4",
              "train.save_every=20", "predict.max_new_tokens=40", "train.trackers=[]"]
    assert cli(*common, "train.stop_after=20") == 0
    assert "numeric: float" in (run / "config.yaml").read_text()
    assert len(list((tmp_path / "cache" / "features").glob("*.safetensors"))) == 1
    csv_path = run / "eval.csv"
    header = csv_path.read_text().splitlines()[0].split(",")
    for column in ("step", "parse_rate", "count_acc", "attr_acc_color", "loc_l2_mean"):
        assert column in header
    with open(csv_path, "a") as f:  # what a run that crashed after its step-20 checkpoint may have left
        f.write("30" + ",0" * (len(header) - 1) + "\n40,0.5")
    assert cli(*common, "--resume") == 0
    steps = [int(line.split(",")[0]) for line in csv_path.read_text().splitlines()[1:]]
    assert steps == [10, 20, 30]
    losses = [line["loss"] for line in read_jsonl(run / "metrics.jsonl") if "loss" in line]
    assert losses[-1] < 0.75 * losses[0]
    # Prediction reads the frozen encoder's tokens of the split through the cache too: one new entry, read
    # again (not rewritten) by the next prediction; --limit decodes from the pixels and caches nothing.
    entries = lambda: {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "features").glob("*.safetensors")}  # noqa: E731
    before = entries()
    predicted = []
    for name in ("a", "b"):
        assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "val", "--quiet",
                   "--out", str(tmp_path / f"{name}.jsonl")) == 0
        predicted.append(read_jsonl(tmp_path / f"{name}.jsonl"))
        assert len(entries()) == len(before) + 1 and set(before.items()) < set(entries().items())
    cached = entries()
    assert cli("predict", "--checkpoint", str(run), "--data", str(data), "--split", "val", "--quiet", "--limit", "3",
               "--out", str(tmp_path / "pixels.jsonl")) == 0
    assert entries() == cached
    assert predicted[0] == predicted[1] and len(predicted[0]) == 8
    assert read_jsonl(tmp_path / "pixels.jsonl") == predicted[0][:3]  # the same programs from pixels
    # The diagnosis of the trained run: the probe of its cached features and its use of the image.
    assert cli("probe", "--checkpoint", str(run), "--data", str(data), "--n", "6", "--json", str(tmp_path / "p.json"),
               "--quiet") == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert sorted(k for k in report["features"] if k != "split") == ["color", "material", "shape", "size"]
    assert report["features"]["color"]["objects"] == sum(len(r["objects"]) for r in _rows(data, "train"))
    assert all(0 <= v["probe_acc"] <= 1 for k, v in report["features"].items() if k != "split")
    use = report["image_use"]
    assert use["samples"] == 6 and use["color"]["tokens"] == sum(len(r["objects"]) for r in _rows(data, "val")[:6])


@pytest.mark.blender
@pytest.mark.train
def test_a_training_subset_is_the_splits_first_samples_and_reuses_the_whole_splits_cache(data, tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("IGBENCH_CACHE", str(tmp_path / "cache"))
    def train(name, *overrides):
        return cli("train", "--model", "igllm", "--data", str(data), "--config", "tiny-vgg16", "--output",
                   str(tmp_path / name), "train.max_steps=2", "train.eval_every=0", "train.trackers=[]", *overrides)

    assert train("all") == 0
    entries = lambda: {p: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "features").glob("*.safetensors")}  # noqa: E731
    cache = entries()
    assert len(cache) == 1 and f"igbench: {TRAIN_N} training samples" in capsys.readouterr().out
    assert train("some", "train.train_samples=5") == 0
    assert "igbench: 5 training samples" in capsys.readouterr().out
    assert entries() == cache  # the same entry, not written again
    assert train("more", f"train.train_samples={TRAIN_N + 1}") == 2
    assert f"train.train_samples={TRAIN_N + 1}: train has {TRAIN_N} samples" in capsys.readouterr().err


@pytest.mark.blender
def test_numeric_flag_overrides_the_preset_and_refuses_contradictions(data, tmp_path, capsys):
    from igbench.cli.train import with_numeric
    from igbench.config import load_config
    from igbench.models.igllm_config import IGLLMConfig

    config = load_config(IGLLMConfig, "tiny", with_numeric("igllm", "float", ["train.max_steps=3"]))
    assert config.model.numeric == "float" and config.train.max_steps == 3
    assert load_config(IGLLMConfig, "tiny", with_numeric("igllm", None, [])).model.numeric == "char"
    assert with_numeric("igllm", "char", ["model.numeric=char"])[-1] == "model.numeric=char"
    base = ["train", "--data", str(data), "--output", str(tmp_path / "r"), "--quiet"]
    assert cli(*base, "--numeric", "float", "model.numeric=char") == 2
    assert "disagrees" in capsys.readouterr().err
    assert cli(*base, "--model", "cnn-set", "--numeric", "float") == 2
    assert "applies to --model igllm" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli(*base, "--numeric", "decimal")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'decimal'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
