"""SAT -> diffusers conversion of the transformer: a round trip through a synthetic SAT checkpoint, and strict keys.

The SAT checkpoint is synthesised from a diffusers-format model by the inverse mapping written out below from the
SAT model code (``sat/dit_video_concat.py`` in THUDM/CogVideo), independently of the converter under test.
"""

from __future__ import annotations

import pytest
import torch
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel as Reference

from diffusers_cogvideox import cli
from diffusers_cogvideox.conversion import (
    TRANSFORMER_CONFIGS,
    StateDictMismatchError,
    check_state_dict_keys,
    convert_sat_transformer,
)
from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video
from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS

PREFIX = "model.diffusion_model."


def to_sat(diffusers_state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """diffusers-format state dict -> the key layout of an official SAT checkpoint (prefix included)."""
    d = dict(diffusers_state)
    sat = {}

    def move(ours: str, theirs: str) -> None:
        for p in ("weight", "bias"):
            if f"{ours}.{p}" in d:
                sat[f"{theirs}.{p}"] = d.pop(f"{ours}.{p}")

    move("time_embedding.linear_1", "time_embed.0")
    move("time_embedding.linear_2", "time_embed.2")
    move("ofs_embedding.linear_1", "ofs_embed.0")
    move("ofs_embedding.linear_2", "ofs_embed.2")
    move("patch_embed.proj", "mixins.patch_embed.proj")
    move("patch_embed.text_proj", "mixins.patch_embed.text_proj")
    if "patch_embed.pos_embedding" in d:
        sat["mixins.pos_embed.pos_embedding"] = d.pop("patch_embed.pos_embedding")
    for i in range(num_layers):
        ours, theirs = f"transformer_blocks.{i}", f"transformer.layers.{i}"
        move(f"{ours}.norm1.norm", f"{theirs}.input_layernorm")
        move(f"{ours}.norm2.norm", f"{theirs}.post_attention_layernorm")
        move(f"{ours}.attn1.to_out.0", f"{theirs}.attention.dense")
        move(f"{ours}.ff.net.0.proj", f"{theirs}.mlp.dense_h_to_4h")
        move(f"{ours}.ff.net.2", f"{theirs}.mlp.dense_4h_to_h")
        move(f"{ours}.attn1.norm_q", f"mixins.adaln_layer.query_layernorm_list.{i}")
        move(f"{ours}.attn1.norm_k", f"mixins.adaln_layer.key_layernorm_list.{i}")
        for p in ("weight", "bias"):
            q, k, v = (d.pop(f"{ours}.attn1.to_{x}.{p}") for x in "qkv")
            sat[f"{theirs}.attention.query_key_value.{p}"] = torch.cat([q, k, v])
            # SAT: 12 vectors = (shift, scale, gate) x (attention, MLP) for video, then the same for text.
            attention = d.pop(f"{ours}.norm1.linear.{p}").chunk(2)  # video (shift, scale, gate), text (...)
            mlp = d.pop(f"{ours}.norm2.linear.{p}").chunk(2)
            sat[f"mixins.adaln_layer.adaLN_modulations.{i}.1.{p}"] = torch.cat(
                [attention[0], mlp[0], attention[1], mlp[1]]
            )
    move("norm_final", "transformer.final_layernorm")
    move("norm_out.norm", "mixins.final_layer.norm_final")
    move("norm_out.linear", "mixins.final_layer.adaLN_modulation.1")
    move("proj_out", "mixins.final_layer.linear")
    assert not d, f"inverse mapping left keys behind: {sorted(d)}"
    return {PREFIX + key: value for key, value in sat.items()}


def add_recomputed_sat_tensors(sat: dict, config: dict) -> dict:
    """Tensors real SAT checkpoints carry that diffusers recomputes: RoPE tables, the fixed 2b sin-cos table."""
    sat = dict(sat)
    if config.get("use_rotary_positional_embeddings"):
        sat[PREFIX + "mixins.pos_embed.freqs_sin"] = torch.zeros(10, config["attention_head_dim"])
        sat[PREFIX + "mixins.pos_embed.freqs_cos"] = torch.zeros(10, config["attention_head_dim"])
    else:
        sat[PREFIX + "mixins.pos_embed.pos_embedding"] = torch.zeros(1, 10, 32)
    return sat


def random_reference(config: dict) -> Reference:
    torch.manual_seed(0)
    model = Reference(**config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    return model


@pytest.mark.parametrize("variant", list(TINY_TRANSFORMER_CONFIGS))
def test_round_trip_gives_the_same_weights_and_outputs(variant):
    config = dict(TINY_TRANSFORMER_CONFIGS[variant], num_layers=2)
    reference = random_reference(config)
    sat = add_recomputed_sat_tensors(to_sat(reference.state_dict(), 2), config)

    converted = convert_sat_transformer({"module": sat}, config)

    expected = reference.state_dict()
    assert converted.keys() == expected.keys()
    for key in expected:
        assert torch.equal(converted[key], expected[key]), key
    ours = CogVideoXTransformer3DModel(**config).eval()
    ours.load_state_dict(converted, strict=True)
    frames = 2 if config.get("patch_size_t") else 3
    inputs = dict(
        hidden_states=torch.randn(1, frames, config["in_channels"], 4, 4),
        encoder_hidden_states=torch.randn(1, 16, 32),
        timestep=torch.tensor([321]),
    )
    if config.get("use_rotary_positional_embeddings"):
        inputs["image_rotary_emb"] = rotary_embeddings_for_video(config, 32, 32, frames)
    if config.get("ofs_embed_dim"):
        inputs["ofs"] = torch.tensor([2.0])
    with torch.no_grad():
        assert (ours(**inputs).sample - reference(**inputs).sample).abs().max().item() <= 1e-5


@pytest.mark.parametrize("variant", list(TRANSFORMER_CONFIGS))
def test_official_variants_convert_at_full_size(variant):
    """Full-size key sets and shapes, on the meta device (no memory): every SAT key maps, none is left over."""
    config = TRANSFORMER_CONFIGS[variant]
    with torch.device("meta"):
        expected = Reference(**config).state_dict()
    sat = add_recomputed_sat_tensors(to_sat(expected, config["num_layers"]), config)
    converted = convert_sat_transformer(sat, variant)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in expected.items()}


def test_official_key_counts():
    counts = {variant: len(convert_sat_transformer.__globals__["diffusers_transformer_shapes"](config))
              for variant, config in TRANSFORMER_CONFIGS.items()}  # fmt: skip
    assert counts == {"2b": 736, "5b": 1024, "5b-i2v": 1025, "1.5-5b": 1024, "1.5-5b-i2v": 1028}


def test_unknown_and_missing_keys_are_listed():
    config = dict(TINY_TRANSFORMER_CONFIGS["5b"], num_layers=2)
    sat = to_sat(Reference(**config).state_dict(), 2)
    del sat[PREFIX + "transformer.layers.1.attention.dense.weight"]
    sat[PREFIX + "mixins.lora.layers.0.weight"] = torch.zeros(1)
    with pytest.raises(StateDictMismatchError) as info:
        convert_sat_transformer(sat, config)
    message = str(info.value)
    assert message.startswith("SAT transformer checkpoint (variant custom config; keys shown without")
    assert "unknown keys (1):\n    mixins.lora.layers.0.weight" in message
    assert "missing keys (1):\n    transformer.layers.1.attention.dense.weight" in message


def test_a_checkpoint_of_another_variant_is_refused_with_its_keys():
    config_2b = dict(TINY_TRANSFORMER_CONFIGS["2b"], num_layers=2)
    sat = to_sat(Reference(**config_2b).state_dict(), 2)
    missing = r"missing keys \(4\):\n    ofs_embed.0.bias\n    ofs_embed.0.weight\n    ofs_embed.2.bias\n    ofs_embed.2.weight$"
    with pytest.raises(StateDictMismatchError, match=missing):
        convert_sat_transformer(sat, dict(config_2b, ofs_embed_dim=16))
    wrong = r"wrong shapes \(1\):\n    mixins.patch_embed.proj.weight: expected \[32, 8, 2, 2\], found \[32, 4, 2, 2\]$"
    with pytest.raises(StateDictMismatchError, match=wrong):
        convert_sat_transformer(sat, dict(config_2b, in_channels=8))


def test_unknown_variant_names_the_accepted_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown CogVideoX variant '3b'; expected one of \['1.5-5b', '1.5-5b-i2v', '2b', '5b', '5b-i2v'\]",
    ):
        convert_sat_transformer({}, "3b")


def test_check_state_dict_keys_limits_long_listings():
    with pytest.raises(StateDictMismatchError, match=r"(?s)missing keys \(5\):\n    a0\n    a1\n    \.\.\. and 3 more"):
        check_state_dict_keys({}, [f"a{i}" for i in range(5)], what="x", limit=2)


def test_cli_writes_a_hub_layout_transformer_folder(tmp_path, monkeypatch):
    config = dict(TINY_TRANSFORMER_CONFIGS["5b-i2v"], num_layers=2)
    monkeypatch.setitem(TRANSFORMER_CONFIGS, "5b-i2v", config)  # the CLI's variant table, shrunk to the tiny model
    reference = random_reference(config)
    checkpoint = tmp_path / "mp_rank_00_model_states.pt"
    torch.save({"module": add_recomputed_sat_tensors(to_sat(reference.state_dict(), 2), config)}, checkpoint)

    assert (
        cli.main(["convert", "--variant", "5b-i2v", "--transformer", str(checkpoint), "--out", str(tmp_path / "out")])
        == 0
    )

    assert (tmp_path / "out" / "transformer" / "config.json").is_file()
    assert (tmp_path / "out" / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    loaded, info = Reference.from_pretrained(tmp_path / "out", subfolder="transformer", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_cli_reports_mismatched_keys_and_writes_nothing(tmp_path, capsys):
    checkpoint = tmp_path / "transformer.safetensors"
    from safetensors.torch import save_file

    save_file({PREFIX + "time_embed.0.weight": torch.zeros(2, 2)}, str(checkpoint))
    code = cli.main(["convert", "--variant", "2b", "--transformer", str(checkpoint), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert "cogvideox convert: SAT transformer checkpoint (variant 2b;" in err
    assert "missing keys (555):" in err and "wrong shapes (1):\n    time_embed.0.weight: expected [512, 1920]" in err
    assert not (tmp_path / "out" / "transformer").exists()


def vae_to_sat(diffusers_state: dict[str, torch.Tensor], num_levels: int) -> dict[str, torch.Tensor]:
    """diffusers ``AutoencoderKLCogVideoX`` names -> SAT ``3d-vae.pt`` names (``up.{i}`` counts from the bottom)."""
    import re

    sat = {"loss.discriminator.main.0.weight": torch.zeros(1)}  # training-only weights real checkpoints carry
    for key, value in diffusers_state.items():
        key = key.replace("conv_shortcut.", "nin_shortcut.").replace("mid_block.resnets.0.", "mid.block_1.")
        key = key.replace("mid_block.resnets.1.", "mid.block_2.")
        key = re.sub(r"down_blocks\.(\d+)\.resnets\.", r"down.\1.block.", key)
        key = re.sub(r"down_blocks\.(\d+)\.downsamplers\.0\.", r"down.\1.downsample.", key)
        key = re.sub(r"up_blocks\.(\d+)\.resnets\.", lambda m: f"up.{num_levels - 1 - int(m[1])}.block.", key)
        key = re.sub(r"up_blocks\.(\d+)\.upsamplers\.0\.", lambda m: f"up.{num_levels - 1 - int(m[1])}.upsample.", key)
        sat[key] = value
    return sat


def test_cli_converts_transformer_and_vae_together(tmp_path, monkeypatch):
    from diffusers import AutoencoderKLCogVideoX as ReferenceVAE

    from diffusers_cogvideox.conversion import vae as vae_conversion
    from diffusers_cogvideox.tiny import TINY_VAE_CONFIG

    config = dict(TINY_TRANSFORMER_CONFIGS["2b"], num_layers=1)
    vae_config = dict(TINY_VAE_CONFIG, scaling_factor=1.15258426)
    monkeypatch.setitem(TRANSFORMER_CONFIGS, "2b", config)
    monkeypatch.setitem(vae_conversion.VAE_CONFIGS, "2b", vae_config)
    reference, reference_vae = random_reference(config), ReferenceVAE(**vae_config)
    torch.save({"module": add_recomputed_sat_tensors(to_sat(reference.state_dict(), 1), config)}, tmp_path / "t.pt")
    levels = len(vae_config["block_out_channels"])
    torch.save({"state_dict": vae_to_sat(reference_vae.state_dict(), levels)}, tmp_path / "vae.pt")

    argv = ["convert", "--variant", "2b", "--transformer", str(tmp_path / "t.pt"), "--vae", str(tmp_path / "vae.pt")]
    assert cli.main([*argv, "--out", str(tmp_path / "out"), "--dtype", "fp16"]) == 0

    from safetensors.torch import load_file

    for part, model_class, source in (("transformer", Reference, reference), ("vae", ReferenceVAE, reference_vae)):
        stored = load_file(str(tmp_path / "out" / part / "diffusion_pytorch_model.safetensors"))
        loaded, info = model_class.from_pretrained(
            tmp_path / "out", subfolder=part, torch_dtype=torch.float16, output_loading_info=True
        )
        assert info["missing_keys"] == [] and info["unexpected_keys"] == [], part
        for key, value in source.state_dict().items():
            assert stored[key].dtype == torch.float16, key
            assert torch.equal(loaded.state_dict()[key], value.half()), key


def test_cli_unpickles_python_objects_only_when_trusted(tmp_path, monkeypatch, capsys):
    import argparse

    config = dict(TINY_TRANSFORMER_CONFIGS["5b"], num_layers=1)
    monkeypatch.setitem(TRANSFORMER_CONFIGS, "5b", config)
    sat = add_recomputed_sat_tensors(to_sat(Reference(**config).state_dict(), 1), config)
    torch.save({"module": sat, "args": argparse.Namespace(mode="inference")}, tmp_path / "ckpt.pt")
    argv = ["convert", "--variant", "5b", "--transformer", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "out")]

    assert cli.main(argv) == 1
    assert "holds Python objects besides tensors, which are not loaded by default" in capsys.readouterr().err
    assert cli.main([*argv, "--trust-checkpoint"]) == 0
    assert (tmp_path / "out" / "transformer" / "config.json").is_file()
