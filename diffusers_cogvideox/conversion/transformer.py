"""SAT (SwissArmyTransformer) CogVideoX transformer checkpoints -> diffusers-format state dicts.

The official SAT checkpoints keep the transformer under ``model.diffusion_model.``: SAT's ``BaseTransformer``
(``transformer.layers.{i}.attention.query_key_value``, ``.dense``, ``.mlp.dense_h_to_4h``/``dense_4h_to_h``,
``input_layernorm``, ``post_attention_layernorm``, ``transformer.final_layernorm``) plus mixins:
``mixins.patch_embed`` (``proj``, ``text_proj``), ``mixins.pos_embed`` (RoPE tables ``freqs_sin``/``freqs_cos``; the
fixed 2b sin-cos table or the learned 5b-I2V table as ``pos_embedding``), ``mixins.adaln_layer``
(``adaLN_modulations.{i}.1`` with 12 modulation vectors per layer, ``query_layernorm_list``/``key_layernorm_list``)
and ``mixins.final_layer`` (``norm_final``, ``linear``, ``adaLN_modulation.1``); ``time_embed.{0,2}`` and, for
CogVideoX1.5-5B-I2V, ``ofs_embed.{0,2}``.

Every SAT key is mapped explicitly (no substring renaming), so an unknown or missing key fails with a list of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .keys import check_state_dict_keys

SAT_PREFIX = "model.diffusion_model."

_COMMON = dict(
    activation_fn="gelu-approximate",
    attention_bias=True,
    attention_head_dim=64,
    dropout=0.0,
    flip_sin_to_cos=True,
    freq_shift=0,
    max_text_seq_length=226,
    norm_elementwise_affine=True,
    norm_eps=1e-5,
    out_channels=16,
    patch_size=2,
    spatial_interpolation_scale=1.875,
    temporal_compression_ratio=4,
    temporal_interpolation_scale=1.0,
    text_embed_dim=4096,
    time_embed_dim=512,
    timestep_activation_fn="silu",
)
_V1_5 = dict(sample_frames=81, sample_height=300, sample_width=300, patch_size_t=2, patch_bias=False)

# The transformer configs of the official Hub checkpoints, by variant name.
TRANSFORMER_CONFIGS: dict[str, dict[str, Any]] = {
    "2b": dict(_COMMON, num_layers=30, num_attention_heads=30, in_channels=16, sample_frames=49, sample_height=60,
               sample_width=90, use_rotary_positional_embeddings=False),
    "5b": dict(_COMMON, num_layers=42, num_attention_heads=48, in_channels=16, sample_frames=49, sample_height=60,
               sample_width=90, use_rotary_positional_embeddings=True),
    "5b-i2v": dict(_COMMON, num_layers=42, num_attention_heads=48, in_channels=32, sample_frames=49, sample_height=60,
                   sample_width=90, use_rotary_positional_embeddings=True, use_learned_positional_embeddings=True),
    "1.5-5b": dict(_COMMON, **_V1_5, num_layers=42, num_attention_heads=48, in_channels=16,
                   use_rotary_positional_embeddings=True),
    "1.5-5b-i2v": dict(_COMMON, **_V1_5, num_layers=42, num_attention_heads=48, in_channels=32, ofs_embed_dim=512,
                       use_rotary_positional_embeddings=True),
}  # fmt: skip


def transformer_config(variant_or_config: str | Mapping[str, Any]) -> dict[str, Any]:
    """The transformer config for a variant name (``2b``, ``5b``, ``5b-i2v``, ``1.5-5b``, ``1.5-5b-i2v``) or a config."""
    if isinstance(variant_or_config, str):
        if variant_or_config not in TRANSFORMER_CONFIGS:
            raise ValueError(
                f"unknown CogVideoX variant {variant_or_config!r}; expected one of {sorted(TRANSFORMER_CONFIGS)}"
            )
        return dict(TRANSFORMER_CONFIGS[variant_or_config])
    return {k: v for k, v in dict(variant_or_config).items() if not k.startswith("_")}


def unwrap_sat_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensor dict of a SAT checkpoint file's contents (``{"module": ...}``, ``{"state_dict": ...}``, ...)."""
    for wrapper in ("module", "state_dict", "model"):
        inner = checkpoint.get(wrapper) if isinstance(checkpoint, Mapping) else None
        if isinstance(inner, Mapping) and all(isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner)
    return dict(checkpoint)


@dataclass(frozen=True)
class _Rule:
    """How one SAT tensor becomes diffusers tensors: copied, or cut into row blocks."""

    sat_key: str
    targets: tuple[str, ...]
    kind: str = "copy"  # "copy" | "qkv" (thirds: q, k, v) | "expert_adaln" (12 modulation vectors -> norm1, norm2)


def _rules(config: Mapping[str, Any], diffusers_keys: set[str]) -> list[_Rule]:
    rules = [
        _Rule(f"time_embed.{sat}.{p}", (f"time_embedding.linear_{ours}.{p}",))
        for sat, ours in ((0, 1), (2, 2))
        for p in ("weight", "bias")
    ]
    if config.get("ofs_embed_dim"):
        rules += [
            _Rule(f"ofs_embed.{sat}.{p}", (f"ofs_embedding.linear_{ours}.{p}",))
            for sat, ours in ((0, 1), (2, 2))
            for p in ("weight", "bias")
        ]
    rules += [_Rule(f"mixins.patch_embed.proj.{p}", (f"patch_embed.proj.{p}",)) for p in ("weight", "bias")]
    rules += [_Rule(f"mixins.patch_embed.text_proj.{p}", (f"patch_embed.text_proj.{p}",)) for p in ("weight", "bias")]
    if config.get("use_learned_positional_embeddings"):
        rules.append(_Rule("mixins.pos_embed.pos_embedding", ("patch_embed.pos_embedding",)))
    for i in range(config["num_layers"]):
        sat, ours = f"transformer.layers.{i}", f"transformer_blocks.{i}"
        for p in ("weight", "bias"):
            rules += [
                _Rule(f"{sat}.input_layernorm.{p}", (f"{ours}.norm1.norm.{p}",)),
                _Rule(f"{sat}.post_attention_layernorm.{p}", (f"{ours}.norm2.norm.{p}",)),
                _Rule(
                    f"{sat}.attention.query_key_value.{p}",
                    (f"{ours}.attn1.to_q.{p}", f"{ours}.attn1.to_k.{p}", f"{ours}.attn1.to_v.{p}"),
                    "qkv",
                ),
                _Rule(f"{sat}.attention.dense.{p}", (f"{ours}.attn1.to_out.0.{p}",)),
                _Rule(f"{sat}.mlp.dense_h_to_4h.{p}", (f"{ours}.ff.net.0.proj.{p}",)),
                _Rule(f"{sat}.mlp.dense_4h_to_h.{p}", (f"{ours}.ff.net.2.{p}",)),
                _Rule(
                    f"mixins.adaln_layer.adaLN_modulations.{i}.1.{p}",
                    (f"{ours}.norm1.linear.{p}", f"{ours}.norm2.linear.{p}"),
                    "expert_adaln",
                ),
                _Rule(f"mixins.adaln_layer.query_layernorm_list.{i}.{p}", (f"{ours}.attn1.norm_q.{p}",)),
                _Rule(f"mixins.adaln_layer.key_layernorm_list.{i}.{p}", (f"{ours}.attn1.norm_k.{p}",)),
            ]
    for p in ("weight", "bias"):
        rules += [
            _Rule(f"transformer.final_layernorm.{p}", (f"norm_final.{p}",)),
            _Rule(f"mixins.final_layer.norm_final.{p}", (f"norm_out.norm.{p}",)),
            _Rule(f"mixins.final_layer.linear.{p}", (f"proj_out.{p}",)),
            _Rule(f"mixins.final_layer.adaLN_modulation.1.{p}", (f"norm_out.linear.{p}",)),
        ]
    # Parameters a config leaves out (no patch-conv bias with patch_bias=False, no affine norms) have no SAT key either.
    return [rule for rule in rules if all(target in diffusers_keys for target in rule.targets)]


def sat_keys_recomputed(config: Mapping[str, Any]) -> list[str]:
    """SAT keys that hold values diffusers recomputes (RoPE and fixed sin-cos tables, unused token embeddings)."""
    keys = ["mixins.pos_embed.freqs_sin", "mixins.pos_embed.freqs_cos", "transformer.position_embeddings.weight",
            "transformer.word_embeddings.weight"]  # fmt: skip
    if not config.get("use_learned_positional_embeddings"):
        keys.append("mixins.pos_embed.pos_embedding")
    return keys


def diffusers_transformer_shapes(config: Mapping[str, Any]) -> dict[str, torch.Size]:
    """Key -> shape of the diffusers-format state dict of a config (built on the meta device: no memory)."""
    from ..models.transformer_cogvideox import CogVideoXTransformer3DModel

    with torch.device("meta"):
        model = CogVideoXTransformer3DModel(**config)
    return {key: tensor.shape for key, tensor in model.state_dict().items()}


def _expert_adaln_split(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # SAT order: shift, scale, gate (attention), shift, scale, gate (MLP), then the same six for text.
    # diffusers: norm1 = attention (video shift, scale, gate, text shift, scale, gate); norm2 = the MLP ones.
    chunks = tensor.chunk(12, dim=0)
    return torch.cat(chunks[0:3] + chunks[6:9]), torch.cat(chunks[3:6] + chunks[9:12])


def convert_sat_transformer(
    state_dict: Mapping[str, Any], variant_or_config: str | Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """Convert an official SAT CogVideoX transformer state dict to the diffusers format.

    Args:
        state_dict: the SAT checkpoint contents (``torch.load`` of ``mp_rank_00_model_states.pt``; a ``{"module":
            ...}`` wrapper is unwrapped), keys with or without the ``model.diffusion_model.`` prefix.
        variant_or_config: ``"2b"``, ``"5b"``, ``"5b-i2v"``, ``"1.5-5b"``, ``"1.5-5b-i2v"`` or a transformer config.

    Returns:
        A state dict that ``CogVideoXTransformer3DModel(**config).load_state_dict(..., strict=True)`` accepts; tensors
        keep their dtype.

    Raises:
        StateDictMismatchError: listing the SAT keys that are unknown, missing or of the wrong shape for this variant.
    """
    config = transformer_config(variant_or_config)
    sat = {k.removeprefix(SAT_PREFIX): v for k, v in unwrap_sat_checkpoint(state_dict).items()}
    shapes = diffusers_transformer_shapes(config)
    rules = _rules(config, set(shapes))

    expected_sat = {}
    for rule in rules:
        target_shapes = [shapes[t] for t in rule.targets]
        expected_sat[rule.sat_key] = (sum(s[0] for s in target_shapes), *target_shapes[0][1:])
    name = variant_or_config if isinstance(variant_or_config, str) else "custom config"
    check_state_dict_keys(
        sat,
        expected_sat,
        what=f"SAT transformer checkpoint (variant {name}; keys shown without {SAT_PREFIX!r})",
        optional=sat_keys_recomputed(config),
    )

    converted: dict[str, torch.Tensor] = {}
    for rule in rules:
        tensor = sat[rule.sat_key]
        if rule.kind == "qkv":
            parts = tensor.chunk(3, dim=0)
        elif rule.kind == "expert_adaln":
            parts = _expert_adaln_split(tensor)
        else:
            parts = (tensor,)
        for target, part in zip(rule.targets, parts, strict=True):
            converted[target] = part.contiguous()
    check_state_dict_keys(converted, shapes, what="converted diffusers transformer state dict")
    return converted
