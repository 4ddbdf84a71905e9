"""``mpo-train`` on the embedded bases: the default trains the shipped tiny world's transformer (its LoRA loads into
``cogvideox generate``), ``random`` the random tiny one; each card says which it was."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from diffusers_cogvideox import cli as cogvideox_cli
from diffusers_cogvideox import tiny
from tests.fixtures import synthetic_mpo_pairs
from trl_vision_reward.mpo.cli import main
from trl_vision_reward.mpo.data import write_pair_folder
from trl_vision_reward.mpo.trainer import LORA_WEIGHT_NAME

TRAIN = "--max_steps 2 --per_device_train_batch_size 2 --lora_r 4 --lora_alpha 4 --report_to none --use_cpu true "
TRAIN += "--save_strategy no --logging_steps 1"


def _shipped(name: str) -> dict:
    return json.loads((tiny.tiny_world_folder() / name / "config.json").read_text())


def _train(tmp_path, model: str | None, latent_shape, text_shape):
    pairs = synthetic_mpo_pairs(4, latent_shape=latent_shape, text_shape=text_shape)
    write_pair_folder(tmp_path / "pairs", [dict(pairs[i]) for i in range(4)])
    argv = ([] if model is None else ["--model_name_or_path", model]) + [
        "--dataset_name", str(tmp_path / "pairs"), "--output_dir", str(tmp_path / "run"), *TRAIN.split(),
    ]  # fmt: skip
    assert main(argv) == 0
    return load_file(str(tmp_path / "run" / LORA_WEIGHT_NAME)), (tmp_path / "run" / "README.md").read_text()


def _adapted_modules(weights: dict) -> dict[str, torch.Size]:
    """``module path -> lora_A shape`` of a saved adapter (keys ``transformer.<module>.lora_A.weight``)."""
    return {
        key.removeprefix("transformer.").removesuffix(".lora_A.weight"): value.shape
        for key, value in weights.items()
        if key.endswith(".lora_A.weight")
    }


def test_default_trains_the_tiny_world_transformer_and_generate_applies_the_lora(tmp_path, monkeypatch, capsys):
    config = _shipped("transformer")
    latent_shape = (3, config["in_channels"], config["sample_height"], config["sample_width"])  # 9 frames: 3 latent
    weights, card = _train(tmp_path, None, latent_shape, (config["max_text_seq_length"], config["text_embed_dim"]))

    world = tiny.tiny_world_pipeline().transformer
    modules = dict(world.named_modules())
    adapted = _adapted_modules(weights)
    assert adapted and all(name in modules for name in adapted)
    assert all(shape == (4, modules[name].in_features) for name, shape in adapted.items())
    layers = {int(name.split(".")[1]) for name in adapted if name.startswith("transformer_blocks.")}
    assert layers == set(range(config["num_layers"])) and config["num_layers"] != 1  # the world's, not the random one
    assert any(key.endswith("lora_B.weight") and value.abs().sum() > 0 for key, value in weights.items())

    assert "Random weights" not in card and "tiny world" in card
    assert "tiny_world_pipeline()" in card and 'pipe.load_lora_weights("run")' in card

    built = {}
    original = tiny.tiny_world_pipeline

    def spy():
        built["pipe"] = original()
        return built["pipe"]

    monkeypatch.setattr(tiny, "tiny_world_pipeline", spy)
    out = tmp_path / "clip.mp4"
    argv = ["generate", "--lora", str(tmp_path / "run"), "--steps", "2", "--out", str(out)]
    assert cogvideox_cli.main(argv) == 0 and out.stat().st_size > 0
    loaded = {
        name.removesuffix(".lora_B.cli.weight"): p.detach()
        for name, p in built["pipe"].transformer.named_parameters()
        if name.endswith(".lora_B.cli.weight")
    }
    saved = {
        k.removeprefix("transformer.").removesuffix(".lora_B.weight"): v for k, v in weights.items() if "lora_B" in k
    }
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_random_trains_the_random_tiny_transformer_and_the_card_says_so(tmp_path):
    config = tiny.TINY_TRANSFORMER_CONFIGS["2b"]
    weights, card = _train(tmp_path, "random", (2, config["in_channels"], 4, 4), (16, config["text_embed_dim"]))
    layers = {int(n.split(".")[1]) for n in _adapted_modules(weights) if n.startswith("transformer_blocks.")}
    assert layers == set(range(config["num_layers"]))
    assert "Random weights" in card and "random tiny CogVideoX" in card and "tiny_pipeline()" in card
