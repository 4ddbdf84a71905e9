"""SAT -> diffusers VAE conversion: a round trip through SAT names, and loud failures on unknown or missing keys."""

from __future__ import annotations

import re

import pytest
import torch

from diffusers_cogvideox import AutoencoderKLCogVideoX
from diffusers_cogvideox.conversion import StateDictMismatchError, convert_sat_vae
from diffusers_cogvideox.conversion.vae import vae_config
from diffusers_cogvideox.tiny import TINY_VAE_CONFIG


def to_sat_name(key: str, num_levels: int = 4) -> str:
    """diffusers -> SAT, written independently of the converter (the inverse of its mapping)."""
    key = key.replace("conv_shortcut.", "nin_shortcut.")
    key = re.sub(
        r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.", lambda m: f"{m[1]}.mid.block_{int(m[2]) + 1}.", key
    )
    key = re.sub(r"^encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", key)
    key = re.sub(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", key)
    key = re.sub(
        r"^decoder\.up_blocks\.(\d+)\.resnets\.", lambda m: f"decoder.up.{num_levels - 1 - int(m[1])}.block.", key
    )
    key = re.sub(
        r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.",
        lambda m: f"decoder.up.{num_levels - 1 - int(m[1])}.upsample.",
        key,
    )
    return key


@pytest.fixture(scope="module")
def model() -> AutoencoderKLCogVideoX:
    torch.manual_seed(0)
    return AutoencoderKLCogVideoX(**TINY_VAE_CONFIG).eval()


@pytest.fixture()
def sat_state_dict(model) -> dict[str, torch.Tensor]:
    sat = {to_sat_name(k): v.clone() for k, v in model.state_dict().items()}
    sat["loss.discriminator.blocks.0.weight"] = torch.zeros(2)  # training-only weights ship in the SAT file
    sat["loss.perceptual_loss.net.lin0.model.1.weight"] = torch.zeros(2)
    return sat


def test_sat_names_look_like_the_official_checkpoint(sat_state_dict):
    assert "decoder.up.0.block.1.norm2.conv_y.conv.weight" in sat_state_dict  # up.0 is the full-resolution level
    assert "decoder.up.3.upsample.conv.weight" in sat_state_dict
    assert "encoder.mid.block_2.conv1.conv.weight" in sat_state_dict
    assert "encoder.down.0.downsample.conv.bias" in sat_state_dict


def test_round_trip_restores_every_tensor(model, sat_state_dict):
    converted = convert_sat_vae(sat_state_dict, config=TINY_VAE_CONFIG)
    original = model.state_dict()
    assert set(converted) == set(original)
    assert all(torch.equal(converted[k], original[k]) for k in original)

    loaded = AutoencoderKLCogVideoX(**TINY_VAE_CONFIG).eval()
    loaded.load_state_dict(converted, strict=True)
    z = torch.randn(1, 4, 3, 2, 2)
    with torch.no_grad():
        assert torch.equal(loaded.decode(z).sample, model.decode(z).sample)


def test_wrapped_checkpoint_contents_are_unwrapped(sat_state_dict):
    converted = convert_sat_vae({"state_dict": sat_state_dict}, config=TINY_VAE_CONFIG)
    assert "decoder.up_blocks.3.resnets.1.norm2.conv_y.conv.weight" in converted


def test_input_is_not_modified(sat_state_dict):
    keys = list(sat_state_dict)
    convert_sat_vae(sat_state_dict, config=TINY_VAE_CONFIG)
    assert list(sat_state_dict) == keys


def test_unknown_and_missing_keys_are_listed(sat_state_dict):
    sat_state_dict["encoder.down.0.attn.0.q.weight"] = torch.zeros(1)  # no pattern knows it
    sat_state_dict["decoder.up.0.block.9.conv1.conv.weight"] = torch.zeros(1)  # a pattern, but no such resnet
    del sat_state_dict["decoder.conv_out.conv.bias"]
    with pytest.raises(StateDictMismatchError) as error:
        convert_sat_vae(sat_state_dict, config=TINY_VAE_CONFIG)
    message = str(error.value)
    assert "unknown keys (2)" in message and "missing keys (1)" in message
    assert "encoder.down.0.attn.0.q.weight" in message
    assert "decoder.up_blocks.3.resnets.9.conv1.conv.weight" in message
    assert "decoder.conv_out.conv.bias" in message
    assert isinstance(error.value, ValueError)


def test_wrong_shapes_are_listed(sat_state_dict):
    sat_state_dict["encoder.conv_in.conv.weight"] = torch.zeros(1, 1, 1, 1, 1)
    with pytest.raises(
        StateDictMismatchError, match=re.escape("encoder.conv_in.conv.weight: expected [8, 3, 3, 3, 3]")
    ):
        convert_sat_vae(sat_state_dict, config=TINY_VAE_CONFIG)


def test_tiny_checkpoint_against_the_official_architecture_fails(sat_state_dict):
    """Without ``config`` the official VAE is expected; a tiny one must not slip through."""
    with pytest.raises(StateDictMismatchError, match="wrong shapes"):
        convert_sat_vae(sat_state_dict, "5b")


def test_variant_configs():
    assert vae_config("2b") == {"scaling_factor": 1.15258426}
    assert vae_config("5b-i2v") == {"scaling_factor": 0.7}
    assert vae_config("1.5-5b-i2v") == {"scaling_factor": 0.7, "invert_scale_latents": True}
    with pytest.raises(ValueError, match=re.escape("unknown CogVideoX variant '3b'; expected one of")):
        vae_config("3b")
