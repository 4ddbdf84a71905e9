"""SAT CogVideoX VAE checkpoints (``vae/3d-vae.pt``) -> diffusers-format ``AutoencoderKLCogVideoX`` state dicts.

SAT's ``ContextParallelEncoder3D`` / ``ContextParallelDecoder3D`` name things the latent-diffusion way:
``{encoder,decoder}.conv_in``, ``encoder.down.{i}.block.{j}`` (``norm1``, ``conv1``, ``norm2``, ``conv2``,
``nin_shortcut``), ``encoder.down.{i}.downsample``, ``{encoder,decoder}.mid.block_{1,2}``, ``decoder.up.{i}.block.{j}``
and ``decoder.up.{i}.upsample`` - where ``up.{i}`` is the level at resolution ``i``, i.e. diffusers'
``up_blocks.{n - 1 - i}`` - and ``norm_out`` / ``conv_out``. The GAN and perceptual losses (``loss.*``) are dropped.

Every SAT key is matched by one explicit pattern; the result must have exactly the keys and shapes of the model, so
unknown or missing keys fail with a list of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .keys import check_state_dict_keys
from .transformer import unwrap_sat_checkpoint

# The VAE of every official checkpoint has the same architecture (diffusers' defaults); they differ in how the
# pipelines scale latents.
VAE_CONFIGS: dict[str, dict[str, Any]] = {
    "2b": dict(scaling_factor=1.15258426),
    "5b": dict(scaling_factor=0.7),
    "5b-i2v": dict(scaling_factor=0.7),
    "1.5-5b": dict(scaling_factor=0.7, invert_scale_latents=True),
    "1.5-5b-i2v": dict(scaling_factor=0.7, invert_scale_latents=True),
}

DROPPED_PREFIXES = ("loss.",)  # training-only: discriminator and LPIPS weights


def vae_config(variant: str) -> dict[str, Any]:
    """Constructor arguments of ``AutoencoderKLCogVideoX`` for an official variant (``"2b"``, ``"5b"``, ...)."""
    if variant not in VAE_CONFIGS:
        raise ValueError(f"unknown CogVideoX variant {variant!r}; expected one of {sorted(VAE_CONFIGS)}")
    return dict(VAE_CONFIGS[variant])


def _resnet(rest: str) -> str:
    return "conv_shortcut." + rest[len("nin_shortcut.") :] if rest.startswith("nin_shortcut.") else rest


def _rename(key: str, num_levels: int) -> str | None:
    """The diffusers name of one SAT VAE key, or ``None`` if no pattern knows it."""
    if m := re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out|norm_out)\.(.+)", key):
        return key
    if m := re.fullmatch(r"(encoder|decoder)\.mid\.block_([12])\.(.+)", key):
        return f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}.{_resnet(m[3])}"
    if m := re.fullmatch(r"encoder\.down\.(\d+)\.block\.(\d+)\.(.+)", key):
        return f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{_resnet(m[3])}"
    if m := re.fullmatch(r"encoder\.down\.(\d+)\.downsample\.(.+)", key):
        return f"encoder.down_blocks.{m[1]}.downsamplers.0.{m[2]}"
    if m := re.fullmatch(r"decoder\.up\.(\d+)\.block\.(\d+)\.(.+)", key):
        return f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.resnets.{m[2]}.{_resnet(m[3])}"
    if m := re.fullmatch(r"decoder\.up\.(\d+)\.upsample\.(.+)", key):
        return f"decoder.up_blocks.{num_levels - 1 - int(m[1])}.upsamplers.0.{m[2]}"
    return None


def expected_vae_shapes(config: Mapping[str, Any]) -> dict[str, torch.Size]:
    """Parameter names and shapes of ``AutoencoderKLCogVideoX(**config)``, built on the meta device (no memory)."""
    from ..models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX

    with torch.device("meta"):
        model = AutoencoderKLCogVideoX(**config)
    return {key: value.shape for key, value in model.state_dict().items()}


def convert_sat_vae(
    state_dict: Mapping[str, Any], variant: str | None = None, *, config: Mapping[str, Any] | None = None
) -> dict[str, torch.Tensor]:
    """Rename a SAT VAE state dict (or checkpoint file contents) to diffusers' ``AutoencoderKLCogVideoX`` keys.

    Args:
        state_dict: the tensors of ``3d-vae.pt`` (wrappers such as ``{"state_dict": ...}`` are unwrapped).
        variant: the official variant the checkpoint belongs to; only selects the config to check against.
        config: constructor arguments of the target model, for non-official architectures (default: the official
            VAE, i.e. ``vae_config(variant)``).

    Returns:
        A new state dict that ``AutoencoderKLCogVideoX(**config).load_state_dict(..., strict=True)`` accepts.

    Raises:
        StateDictMismatchError: (a ``ValueError``) listing unknown keys, missing keys and wrong shapes.
    """
    if config is None:
        config = vae_config(variant or "5b")
    num_levels = len(config.get("block_out_channels", (128, 256, 256, 512)))
    converted: dict[str, Any] = {}
    unmatched: list[str] = []
    for key, value in unwrap_sat_checkpoint(state_dict).items():
        if key.startswith(DROPPED_PREFIXES):
            continue
        new_key = _rename(key, num_levels)
        if new_key is None:
            unmatched.append(key)
        else:
            converted[new_key] = value
    found = {**converted, **{key: None for key in unmatched}}  # SAT names nobody knows are reported as they are
    check_state_dict_keys(found, expected_vae_shapes(config), what=f"SAT VAE checkpoint ({variant or 'config'})")
    return converted
