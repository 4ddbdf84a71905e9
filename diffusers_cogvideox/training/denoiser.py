"""Calling diffusers denoisers in training: family detection, CogVideoX RoPE tables per grid, one forward, LoRA I/O.

Shared by the SFT trainer here and the MPO trainer (``trl_vision_reward.mpo.trainer``). The LoRA file is diffusers'
``pytorch_lora_weights.safetensors`` layout (keys under ``transformer.`` / ``unet.``, the ``LoraConfig`` in the
metadata), so ``pipe.load_lora_weights(folder)`` of this package and of diffusers both read it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
LORA_METADATA_KEY = "lora_adapter_metadata"  # diffusers' safetensors metadata key for the LoraConfig
FULL_WEIGHT_NAME = "diffusion_pytorch_model.safetensors"


def base_model(model: nn.Module) -> nn.Module:
    """The denoiser under DDP / FSDP / DeepSpeed / PEFT wrappers (for its config and class)."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        get_base = getattr(model, "get_base_model", None)
        if callable(get_base) and get_base() is not model:
            model = get_base()
            continue
        return model


def denoiser_kind(model: nn.Module) -> str:
    """``"unet"`` (``UNet2DConditionModel``) or ``"cogvideox"`` (``CogVideoXTransformer3DModel``), from the model."""
    base = base_model(model)
    name = type(base).__name__
    config = getattr(base, "config", {})
    if "UNet2DConditionModel" in name or ("cross_attention_dim" in config and "block_out_channels" in config):
        return "unet"
    if "CogVideoX" in name or ("patch_size" in config and "text_embed_dim" in config):
        return "cogvideox"
    raise TypeError(
        f"cannot tell how to call a {name}: the trainers drive CogVideoXTransformer3DModel and UNet2DConditionModel "
        "denoisers; set the config's denoiser_type='cogvideox' or 'unet' if yours has one of their forward signatures"
    )


def config_get(config: Any, key: str, default: Any = None) -> Any:
    return config.get(key, default) if isinstance(config, Mapping) else getattr(config, key, default)


class RotaryCache:
    """CogVideoX 3D RoPE tables per latent grid, built once by ``rotary_embeddings_for_video``."""

    def __init__(self):
        self.tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, config: Any, latents: torch.Tensor, vae_scale_factor_spatial: int = 8):
        from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video

        _, frames, _, h, w = latents.shape
        key = (frames, h, w, latents.device)
        if key not in self.tables:
            self.tables[key] = rotary_embeddings_for_video(
                config,
                h * vae_scale_factor_spatial,
                w * vae_scale_factor_spatial,
                frames,
                vae_scale_factor_spatial,
                latents.device,
            )
        return self.tables[key]


def denoise(
    model: nn.Module,
    kind: str,
    noisy: torch.Tensor,
    timesteps: torch.Tensor,
    cond: Mapping[str, torch.Tensor],
    rope=None,
) -> torch.Tensor:
    """One denoiser forward with the keyword arguments its family expects; returns the raw prediction."""
    if kind == "cogvideox":
        config = base_model(model).config
        x = noisy if "image_latents" not in cond else torch.cat([noisy, cond["image_latents"]], dim=2)
        kwargs = {}
        if config_get(config, "use_rotary_positional_embeddings", False) and rope is not None:
            kwargs["image_rotary_emb"] = rope(config, noisy)
        if config_get(config, "ofs_embed_dim", None):  # CogVideoX1.5 I2V: the official pipeline's ofs = 2.0
            kwargs["ofs"] = torch.full((x.shape[0],), 2.0, device=x.device, dtype=x.dtype)
        return model(
            hidden_states=x,
            encoder_hidden_states=cond["prompt_embeds"],
            timestep=timesteps,
            return_dict=False,
            **kwargs,
        )[0]
    if kind == "unet":
        added = None
        if "pooled_prompt_embeds" in cond:
            added = {"text_embeds": cond["pooled_prompt_embeds"], "time_ids": cond["add_time_ids"]}
        return model(
            noisy, timesteps, encoder_hidden_states=cond["prompt_embeds"], added_cond_kwargs=added, return_dict=False
        )[0]
    raise ValueError(f"denoiser kind must be 'cogvideox' or 'unet'; got {kind!r}")


# ---------------------------------------------------------------------------------------------------------------------
# LoRA


def lora_layers(model: nn.Module) -> list[nn.Module]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def is_sharded(model: nn.Module) -> bool:
    """Whether FSDP manages ``model``'s parameters (FSDP1 wrappers, or FSDP2's DTensor parameters)."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.tensor import DTensor

    return any(isinstance(m, FullyShardedDataParallel) for m in model.modules()) or any(
        isinstance(p, DTensor) for p in model.parameters()
    )


@contextlib.contextmanager
def adapters_disabled(model: nn.Module, sharded: bool | None = None) -> Iterator[None]:
    """Run ``model`` as its base weights: every LoRA layer bypassed (the reference policy of LoRA training).

    Uses PEFT's public ``enable_adapters`` per layer, restoring each LoRA weight's ``requires_grad`` afterwards (the
    switch freezes them). Under FSDP (``sharded``, detected when None) ``requires_grad`` of the flattened, sharded
    parameters may not change mid-step, so there PEFT's per-layer flag is set directly (private: docs/private_apis.md).
    """
    layers = lora_layers(model)
    if not layers:
        raise RuntimeError("adapters_disabled: the model has no LoRA layers; use reference_mode='frozen_copy'")
    sharded = is_sharded(model) if sharded is None else sharded
    previous = [layer.disable_adapters for layer in layers]
    grads = [(p, p.requires_grad) for layer in layers for p in layer.parameters()]
    for layer in layers:
        if sharded:
            layer._disable_adapters = True  # FSDP forbids the requires_grad change; the flag behind disable_adapters
        else:
            layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer, disabled in zip(layers, previous):
            if sharded:
                layer._disable_adapters = disabled
            else:
                layer.enable_adapters(not disabled)
        if not sharded:
            for p, flag in grads:
                p.requires_grad_(flag)


def add_lora(model: nn.Module, args: Any) -> Any:
    """Freeze ``model`` and attach a trainable LoRA adapter "default" (diffusers' ``add_adapter`` when available).

    ``args`` is any config with ``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_target_modules`` and
    ``lora_init_weights`` (``MPOConfig``, ``CogVideoXSFTConfig``).
    """
    from diffusers.loaders import PeftAdapterMixin
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.lora_target_modules),
        init_lora_weights=True if args.lora_init_weights.lower() in ("true", "default") else args.lora_init_weights,
    )
    model.requires_grad_(False)
    if isinstance(model, PeftAdapterMixin):  # diffusers models: their own adapter bookkeeping
        model.add_adapter(config)
    else:
        inject_adapter_in_model(config, model)
        model.peft_config = {"default": config}
    for name, param in model.named_parameters():  # LoRA weights train in fp32 even on a bf16/fp16 base
        if "lora_" in name:
            param.data = param.data.float()
    return config


def lora_state_dict(
    model: nn.Module, prefix: str, state_dict: Mapping[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """LoRA weights in diffusers' format: PEFT names without the adapter name, under ``prefix.`` (``transformer``/``unet``)."""
    from peft.utils import get_peft_model_state_dict

    weights = get_peft_model_state_dict(
        model, state_dict=dict(state_dict) if state_dict is not None else None, adapter_name="default"
    )
    return {f"{prefix}.{k}": v.detach().to("cpu").contiguous() for k, v in weights.items()}


def lora_card_info(lora_config: Any) -> dict[str, Any]:
    """The adapter facts a model card states: rank, alpha, target modules and the weight file's name."""
    return {
        "rank": lora_config.r,
        "alpha": lora_config.lora_alpha,
        "target_modules": sorted(lora_config.target_modules),
        "weights": LORA_WEIGHT_NAME,
    }


def save_lora_weights(output_dir: str, weights: Mapping[str, torch.Tensor], lora_config: Any, prefix: str) -> str:
    """Write ``pytorch_lora_weights.safetensors`` with diffusers' own ``save_lora_weights`` (CogVideoX's loader for a
    ``transformer``, Stable Diffusion's for a ``unet``): its key layout and the LoraConfig metadata that lets
    ``load_lora_weights`` restore alpha != rank exactly. ``weights`` are keyed ``prefix.<peft name>``."""
    from diffusers.loaders import CogVideoXLoraLoaderMixin, StableDiffusionLoraLoaderMixin

    if any(not k.startswith(f"{prefix}.") for k in weights):
        raise ValueError(f"LoRA weights must all be under '{prefix}.'; got {sorted(weights)[:3]}...")
    layers = {k[len(prefix) + 1 :]: v for k, v in weights.items()}
    metadata = None
    if lora_config is not None:
        metadata = lora_config.to_dict() if hasattr(lora_config, "to_dict") else dict(lora_config)
    if prefix == "transformer":
        CogVideoXLoraLoaderMixin.save_lora_weights(
            output_dir, transformer_lora_layers=layers, weight_name=LORA_WEIGHT_NAME,
            transformer_lora_adapter_metadata=metadata,
        )  # fmt: skip
    elif prefix == "unet":
        StableDiffusionLoraLoaderMixin.save_lora_weights(
            output_dir, unet_lora_layers=layers, weight_name=LORA_WEIGHT_NAME, unet_lora_adapter_metadata=metadata
        )
    else:
        raise ValueError(f"LoRA weights are saved for a 'transformer' or a 'unet'; got prefix {prefix!r}")
    return os.path.join(output_dir, LORA_WEIGHT_NAME)


def load_lora_weights_into(model: nn.Module, path: str, prefix: str) -> None:
    """Load our ``pytorch_lora_weights.safetensors`` back into the model's "default" adapter (resume); strict on keys."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(path)
    stripped = {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + ".")}
    if len(stripped) != len(weights):
        raise ValueError(f"{path}: expected every key under '{prefix}.'; found {sorted(weights)[:3]}...")
    result = set_peft_model_state_dict(model, stripped, adapter_name="default")
    unexpected = getattr(result, "unexpected_keys", [])
    expected = set(lora_state_dict(model, prefix))
    if unexpected or len(expected) != len(weights):
        raise ValueError(
            f"{path}: LoRA weights do not match the model's adapter (unexpected {unexpected[:3]}, {len(weights)} vs {len(expected)} tensors)"
        )
