"""Native transformers-5 CogVLM2 and CogVLM2-Video: EVA2-CLIP-E vision tower, GLU adapter, Llama-3 with vision experts.

Read top to bottom: the vision tower turns each image (or video frame) into ``(grid/2)**2 + 2`` embeddings (boi, the
2x2-pooled patches, eoi), those embeddings replace the placeholder tokens whose ``token_type_ids`` are ``VISION``, and
every decoder layer sends each position through one of two experts - a *vision expert* (its own QKV, output
projection and MLP) for image positions and the *language expert* (the original Llama-3 weights) for everything else.
CogVLM2-Video has no vision expert (``config.vision_experts`` False, as the official ``CogVLMVideoForCausalLM``):
every position goes through the language expert, and the token types only set the positions.

Parameter names are those of the official Hub checkpoints, so ``THUDM/cogvlm2-llama3-chat-19B``,
``THUDM/cogvlm2-video-llama3-chat`` and ``THUDM/VisionReward-Video`` load without remote code and without renaming:

- ``model.embed_tokens``, ``model.layers.{i}.input_layernorm``, ``model.layers.{i}.post_attention_layernorm``,
  ``model.layers.{i}.self_attn.{vision,language}_expert_{query_key_value,dense}``,
  ``model.layers.{i}.mlp.{vision,language}_mlp.{gate,up,down}_proj`` (``language`` only in the video model),
  ``model.norm``, ``lm_head``
  (``VisionExpertAttention`` / ``VisionExpertMLP`` / ``CogVLMModel`` in ``modeling_cogvlm.py`` of the Hub repositories);
- ``model.vision.patch_embedding.{proj,cls_embedding,position_embedding}``,
  ``model.vision.transformer.layers.{i}.{input_layernorm,attention.query_key_value,attention.dense,mlp.fc1,mlp.fc2,
  post_attention_layernorm}``, ``model.vision.linear_proj.{linear_proj,norm1,dense_h_to_4h,gate_proj,dense_4h_to_h}``,
  ``model.vision.conv``, ``model.vision.boi``, ``model.vision.eoi`` (``visual.py`` of the same repositories; the full
  list is also spelled out by the ``state_dict()`` of the public cogvlm.cpp port and is checked in
  ``tests/trl_vision_reward/reward/cogvlm2/test_checkpoint_layout.py``).

Behaviour kept from the official code, each noted where it happens: the expert mask (a vision-typed position whose
successor is vision-typed - boi and patches, not eoi), the position ids (an image block advances the RoPE position by
three: boi, all patches, eoi - also in ``generate``, which rebuilds them every step as upstream), RoPE base 500000
with the half-split ("NeoX") rotation of ``FastRotaryEmbedding(interleaved=False)`` and its tables in the dtype of the
checkpoint's ``inv_freq`` buffer (``rope_inv_freq_dtype``), the post-norm EVA layers, and the RMSNorm that scales in
float32 before casting back.

Memory (parameter counts of the full-size configs, computed on the meta device; weights only - activations and the
KV cache come on top, see ``docs/cogvlm2.md``):

=========================  ==========  =========  ================================  ================================
model                      parameters  bf16       int8 (bnb): all / vision in bf16  nf4 (bnb): all / vision in bf16
=========================  ==========  =========  ================================  ================================
CogVLM2 image (1344 px)    19.50 B     36.3 GiB   19.2 GiB / 23.3 GiB               11.7 GiB / 17.6 GiB
CogVLM2-Video (224 px)     12.51 B     23.3 GiB   12.7 GiB / 16.8 GiB               8.0 GiB / 14.0 GiB
=========================  ==========  =========  ================================  ================================

(13.96 B parameters sit in the ``nn.Linear`` weights of the language model - 6.98 B in the video model, which has
no vision expert -, 4.46 B in those of the vision tower, 0.53 B in ``lm_head`` and 0.54-0.56 B elsewhere; bitsandbytes quantizes ``nn.Linear`` weights only and keeps ``lm_head``
in 16 bits; ``bitsandbytes_config`` builds the configs and ``weight_memory_bytes`` computes these figures.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel

from .configuration_cogvlm2 import (
    LANGUAGE_TOKEN_TYPE,
    VISION_TOKEN_TYPE,
    CogVLM2Config,
    CogVLM2VideoConfig,
    CogVLM2VisionConfig,
)

# transformers renamed the cache field of model outputs from `past_key_values` to `cache` during 5.x; write whichever
# the installed version declares so that `generate` finds it.
_CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


# ---------------------------------------------------------------------------------------------------------------------
# Token types: which positions are image positions, which expert they use, which RoPE position they get
# ---------------------------------------------------------------------------------------------------------------------


def vision_expert_mask(token_type_ids: torch.Tensor) -> torch.Tensor:
    """Positions processed by the vision expert: vision-typed and followed by a vision-typed position.

    That is boi and the patches of every image block; its eoi (last vision position) and all text go through the
    language expert. Same rule as ``get_expert_mask`` of the official ``modeling_cogvlm.py`` and as SAT's
    ``vision_expert_mask`` (``image_length + 1`` positions per image). The last position of the input has no known
    successor and is routed to the language expert, as upstream: never split an input inside an image block.
    """
    is_vision = token_type_ids == VISION_TOKEN_TYPE
    mask = torch.zeros_like(is_vision)
    mask[:, :-1] = is_vision[:, :-1] & is_vision[:, 1:]
    return mask


def build_position_ids(token_type_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """RoPE positions of CogVLM2: text advances by one, an image block by three (boi, all patches, eoi).

    ``[bos, boi, p, p, ..., p, eoi, "Question", ...]`` gets ``[0, 1, 2, 2, ..., 2, 3, 4, ...]``: the patches of one
    image share a position. Padding (``attention_mask == 0``) does not advance. Reproduces ``build_position_ids`` of
    the official ``modeling_cogvlm.py`` (and SAT's ``image_rope_mask`` rule in ``get_masks_and_position_ids``).
    """
    types = token_type_ids.clone()
    if attention_mask is not None:
        types[attention_mask == 0] = -1
    is_vision = types == VISION_TOKEN_TYPE
    is_language = types == LANGUAGE_TOKEN_TYPE
    # boi and eoi of each block count as text: first vision position after text, last one before text
    boundary = torch.zeros_like(is_vision)
    boundary[:, 1:] |= is_vision[:, 1:] & is_language[:, :-1]
    boundary[:, 0] |= is_vision[:, 0]
    boundary[:, :-1] |= is_vision[:, :-1] & is_language[:, 1:]
    boundary[:, -1] |= is_vision[:, -1]
    types[boundary] = LANGUAGE_TOKEN_TYPE
    is_vision = types == VISION_TOKEN_TYPE
    is_language = types == LANGUAGE_TOKEN_TYPE
    step = torch.zeros_like(types)
    step[:, 1:] = (is_language[:, 1:] | (is_vision[:, 1:] & is_language[:, :-1])).to(step.dtype)
    return step.cumsum(dim=-1)


@dataclass
class ExpertRouting:
    """Flat indices of the positions that go through the vision expert and through the language expert.

    Computed once per forward from ``vision_expert_mask`` and shared by every layer, so that each expert runs only on
    its own positions (as upstream) with one gather and one scatter per projection.
    """

    vision_index: torch.Tensor
    language_index: torch.Tensor

    @classmethod
    def from_mask(cls, vision_mask: torch.Tensor) -> ExpertRouting:
        flat = vision_mask.reshape(-1)
        return cls(flat.nonzero().squeeze(-1), (~flat).nonzero().squeeze(-1))

    @classmethod
    def language_only(cls, device: torch.device) -> ExpertRouting:
        """Every position through the language expert (CogVLM2-Video, which has no vision expert)."""
        empty = torch.empty(0, dtype=torch.long, device=device)
        return cls(empty, empty)

    def __call__(self, hidden_states: torch.Tensor, vision_expert: nn.Module, language_expert: nn.Module):
        if self.vision_index.numel() == 0:
            return language_expert(hidden_states)
        if self.language_index.numel() == 0:
            return vision_expert(hidden_states)
        flat = hidden_states.reshape(-1, hidden_states.shape[-1])
        vision_out = vision_expert(flat.index_select(0, self.vision_index))
        language_out = language_expert(flat.index_select(0, self.language_index)).to(vision_out.dtype)
        out = vision_out.new_empty(flat.shape[0], vision_out.shape[-1])
        out = out.index_copy(0, self.vision_index, vision_out).index_copy(0, self.language_index, language_out)
        return out.view(*hidden_states.shape[:-1], -1)


# ---------------------------------------------------------------------------------------------------------------------
# Vision tower: EVA2-CLIP-E (visual.py upstream; SAT EVA2CLIPModel with post-norm layers) and the GLU adapter
# ---------------------------------------------------------------------------------------------------------------------


class CogVLM2VisionPatchEmbedding(nn.Module):
    """Patchify with a strided conv, prepend the class token, add learned positions."""

    def __init__(self, config: CogVLM2VisionConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.hidden_size, config.patch_size, stride=config.patch_size)
        self.cls_embedding = nn.Parameter(torch.zeros(1, config.hidden_size))
        self.position_embedding = nn.Embedding(config.num_positions, config.hidden_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.proj(pixel_values).flatten(2).transpose(1, 2)
        cls = self.cls_embedding.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight.unsqueeze(0)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T * scaling + mask) v, with grouped key/value heads repeated; output (batch, len, heads, dim)."""
    groups = getattr(module, "num_key_value_groups", 1)
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    elif getattr(module, "is_causal", False) and query.shape[2] > 1:
        q_len, k_len = query.shape[2], key.shape[2]
        causal = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _attention_interface(config) -> Callable:
    return ALL_ATTENTION_FUNCTIONS.get_interface(config._attn_implementation, eager_attention_forward)


class CogVLM2VisionAttention(nn.Module):
    """Bidirectional multi-head attention over the patches; fused QKV laid out as (3, heads, head_dim).

    ``config`` is the model's top-level config, whose ``_attn_implementation`` selects the kernel for the whole model.
    """

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        vision_config = config.vision_config
        self.config = config
        self.num_heads = vision_config.num_heads
        self.head_dim = vision_config.hidden_size // vision_config.num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.query_key_value = nn.Linear(vision_config.hidden_size, 3 * vision_config.hidden_size)
        self.dense = nn.Linear(vision_config.hidden_size, vision_config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, _ = hidden_states.shape
        qkv = self.query_key_value(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        out, _ = _attention_interface(self.config)(
            self, query, key, value, None, scaling=self.scaling, dropout=0.0, is_causal=False
        )
        return self.dense(out.reshape(batch, length, -1))


class CogVLM2VisionMLP(nn.Module):
    def __init__(self, config: CogVLM2VisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class CogVLM2VisionLayer(GradientCheckpointingLayer):
    """Post-norm EVA layer: ``h = x + LN1(attn(x))``, ``out = h + LN2(mlp(h))`` (SAT ``NewLayerForward``)."""

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        vision_config = config.vision_config
        self.input_layernorm = nn.LayerNorm(vision_config.hidden_size, eps=vision_config.layer_norm_eps)
        self.attention = CogVLM2VisionAttention(config)
        self.mlp = CogVLM2VisionMLP(vision_config)
        self.post_attention_layernorm = nn.LayerNorm(vision_config.hidden_size, eps=vision_config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.input_layernorm(self.attention(hidden_states))
        return hidden_states + self.post_attention_layernorm(self.mlp(hidden_states))


class CogVLM2VisionTransformer(nn.Module):
    def __init__(self, config: CogVLM2Config):
        super().__init__()
        self.layers = nn.ModuleList([CogVLM2VisionLayer(config) for _ in range(config.vision_config.num_hidden_layers)])

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            hidden_states = layer(hidden_states)
        return hidden_states


class CogVLM2VisionAdapter(nn.Module):
    """GLU projection from the vision width to the language width (``GLU`` in visual.py and SAT's cogvlm2 model)."""

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        vision_width = config.vision_config.hidden_size
        self.linear_proj = nn.Linear(vision_width, config.hidden_size, bias=False)
        self.norm1 = nn.LayerNorm(config.hidden_size)
        self.act1 = nn.GELU()
        self.dense_h_to_4h = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.dense_4h_to_h = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.act1(self.norm1(self.linear_proj(hidden_states)))
        return self.dense_4h_to_h(F.silu(self.gate_proj(hidden_states)) * self.dense_h_to_4h(hidden_states))


class CogVLM2VisionModel(nn.Module):
    """Images (N, 3, S, S) -> language-width embeddings (N, (S/patch/2)**2 + 2, hidden): boi, pooled patches, eoi."""

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        vision_config = config.vision_config
        self.config = vision_config
        self.patch_embedding = CogVLM2VisionPatchEmbedding(vision_config)
        self.transformer = CogVLM2VisionTransformer(config)
        self.linear_proj = CogVLM2VisionAdapter(config)
        # 2x2 stride-2 conv pools neighbouring patches before the adapter (4x fewer tokens)
        self.conv = nn.Conv2d(vision_config.hidden_size, vision_config.hidden_size, kernel_size=2, stride=2)
        self.boi = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.eoi = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        expected = (self.config.in_channels, self.config.image_size, self.config.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must have shape (num_images, {expected[0]}, {expected[1]}, {expected[2]}) for this "
                f"checkpoint (vision_config.image_size={self.config.image_size}); got {tuple(pixel_values.shape)}. "
                "Use the CogVLM2 processor, which resizes images and frames to the model's size."
            )
        hidden_states = self.transformer(self.patch_embedding(pixel_values))[:, 1:]  # drop the class token
        batch, num_patches, width = hidden_states.shape
        grid = self.config.grid_size
        hidden_states = hidden_states.view(batch, grid, grid, width).permute(0, 3, 1, 2)
        hidden_states = self.conv(hidden_states).flatten(2).transpose(1, 2)
        hidden_states = self.linear_proj(hidden_states)
        boi = self.boi.expand(batch, -1, -1).to(hidden_states.dtype)
        eoi = self.eoi.expand(batch, -1, -1).to(hidden_states.dtype)
        return torch.cat([boi, hidden_states, eoi], dim=1)


# ---------------------------------------------------------------------------------------------------------------------
# Language model: Llama-3 with a vision expert next to every attention and MLP
# ---------------------------------------------------------------------------------------------------------------------


class CogVLM2RMSNorm(nn.Module):
    """RMSNorm that multiplies by the weight in float32 before casting back, as the official ``RMSNorm``."""

    def __init__(self, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        hidden_states = hidden_states * torch.rsqrt(hidden_states.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return (self.weight * hidden_states).to(input_dtype)


def rope_inv_freq(dim: int, base: float, device: torch.device | None = None) -> torch.Tensor:
    """``base**(-2i/dim)`` in float32: ``_compute_inv_freq`` of the official ``FastRotaryEmbedding``."""
    exponents = torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim
    return 1.0 / (base**exponents)


class CogVLM2RotaryEmbedding(nn.Module):
    """cos/sin of the RoPE angles ``position * inv_freq``, per position id, in the precision of the official tables.

    The official ``FastRotaryEmbedding(pos_idx_in_fp32=False)`` builds its tables in the dtype of its persistent
    ``inv_freq`` buffer: ``t = arange(seqlen, dtype=inv_freq.dtype)``, ``freqs = outer(t, inv_freq)``, ``cos(freqs)``,
    each rounded to that dtype (bfloat16 in the released checkpoints), then looks rows up by position id. With
    ``config.rope_inv_freq_dtype`` bfloat16 (or float16) and a forward in that dtype, the same roundings happen here
    (row ``p`` of the official table is exactly ``cos(round(round(p) * inv_freq))``). Otherwise - float32 forwards,
    or ``rope_inv_freq_dtype="float32"`` - angles are computed in float32 and cast once.

    ``official_inv_freq``: the checkpoint's stored buffer values when ``load_cogvlm2`` found them (used as stored);
    without it, the float32 frequencies rounded to the buffer's dtype, which is what a buffer saved in it holds.
    """

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        self.dim = config.head_dim
        self.base = float(config.rope_parameters["rope_theta"])
        self.config = config
        self.official_inv_freq: torch.Tensor | None = None  # not a buffer: the state dict stays the official one

    def inv_freq(self, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if dtype != torch.float32 and self.official_inv_freq is not None:
            return self.official_inv_freq.to(device=device, dtype=dtype)
        return rope_inv_freq(self.dim, self.base, device).to(dtype)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        table_dtype = getattr(torch, self.config.rope_inv_freq_dtype)  # read per call: load_cogvlm2 may switch it
        dtype = table_dtype if x.dtype == table_dtype else torch.float32
        freqs = position_ids[..., None].to(dtype) * self.inv_freq(x.device, dtype)
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos().to(x.dtype), angles.sin().to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    """Half-split rotation (``interleaved=False`` in SAT/flash-attn ``FastRotaryEmbedding``); cos/sin (B, L, dim).

    Computed in float32 and rounded once, as the official rotary kernel does with half-precision inputs.
    """
    cos, sin = cos.unsqueeze(1).float(), sin.unsqueeze(1).float()

    def rotate(x):
        x32 = x.float()
        return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)

    return rotate(q), rotate(k)


class CogVLM2VisionExpertAttention(nn.Module):
    """Grouped-query causal attention whose QKV and output projections are chosen per position (vision / language).

    The fused QKV output is laid out ``[q (heads * dim) | k (kv_heads * dim) | v (kv_heads * dim)]``, the split of
    ``VisionExpertAttention`` upstream and of SAT's ``query_key_value`` with ``stride=[heads, kv_heads, kv_heads]``.
    Only the vision QKV has a bias (``bias=True`` upstream; the language QKV comes from Llama-3 without one).
    Without ``config.vision_experts`` (CogVLM2-Video) only the language projections exist.
    """

    def __init__(self, config: CogVLM2Config, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_multi_query_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.is_causal = True
        qkv_size = config.hidden_size + 2 * self.head_dim * self.num_key_value_heads
        if config.vision_experts:
            self.vision_expert_query_key_value = nn.Linear(config.hidden_size, qkv_size, bias=True)
            self.vision_expert_dense = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        else:
            self.vision_expert_query_key_value = self.vision_expert_dense = None
        self.language_expert_query_key_value = nn.Linear(config.hidden_size, qkv_size, bias=False)
        self.language_expert_dense = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        routing: ExpertRouting,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        batch, length, _ = hidden_states.shape
        qkv = routing(hidden_states, self.vision_expert_query_key_value, self.language_expert_query_key_value)
        kv_width = self.num_key_value_heads * self.head_dim
        query, key, value = qkv.split([self.num_heads * self.head_dim, kv_width, kv_width], dim=-1)
        query = query.view(batch, length, -1, self.head_dim).transpose(1, 2)
        key = key.view(batch, length, -1, self.head_dim).transpose(1, 2)
        value = value.view(batch, length, -1, self.head_dim).transpose(1, 2)
        query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)
        out, _ = _attention_interface(self.config)(
            self, query, key, value, attention_mask, scaling=self.scaling, dropout=0.0
        )
        out = out.reshape(batch, length, -1)
        return routing(out, self.vision_expert_dense, self.language_expert_dense)


class CogVLM2MLP(nn.Module):
    """Gated MLP of Llama-3: ``down(silu(gate(x)) * up(x))``."""

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(hidden_states)) * self.up_proj(hidden_states))


class CogVLM2VisionExpertMLP(nn.Module):
    """The language MLP and, with ``config.vision_experts``, the vision MLP next to it."""

    def __init__(self, config: CogVLM2Config):
        super().__init__()
        self.language_mlp = CogVLM2MLP(config)
        self.vision_mlp = CogVLM2MLP(config) if config.vision_experts else None

    def forward(self, hidden_states: torch.Tensor, routing: ExpertRouting) -> torch.Tensor:
        return routing(hidden_states, self.vision_mlp, self.language_mlp)


class CogVLM2DecoderLayer(GradientCheckpointingLayer):
    def __init__(self, config: CogVLM2Config, layer_idx: int):
        super().__init__()
        self.self_attn = CogVLM2VisionExpertAttention(config, layer_idx)
        self.mlp = CogVLM2VisionExpertMLP(config)
        self.input_layernorm = CogVLM2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = CogVLM2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        routing: ExpertRouting,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        use_cache: bool = False,
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.self_attn(
            self.input_layernorm(hidden_states), routing, position_embeddings, attention_mask, cache=cache
        )
        hidden_states = residual + hidden_states
        return hidden_states + self.mlp(self.post_attention_layernorm(hidden_states), routing)


class CogVLM2PreTrainedModel(PreTrainedModel):
    config_class = CogVLM2Config
    base_model_prefix = "model"
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    # A decoder layer holds both experts and must stay on one device; so must a vision layer (post-norm residuals).
    _no_split_modules = ["CogVLM2DecoderLayer", "CogVLM2VisionLayer"]
    _skip_keys_device_placement = ["cache", "past_key_values"]
    _supports_sdpa = True
    # The official checkpoints may carry the persistent ``inv_freq`` buffer of the remote ``FastRotaryEmbedding``;
    # RoPE is computed on the fly here.
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]

    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, CogVLM2VisionModel):
            init.normal_(module.boi, std=std)
            init.normal_(module.eoi, std=std)
        elif isinstance(module, CogVLM2VisionPatchEmbedding):
            init.normal_(module.cls_embedding, std=std)


class CogVLM2Model(CogVLM2PreTrainedModel):
    """Vision tower + Llama-3 decoder with vision experts; returns the last hidden state (and the KV cache)."""

    def __init__(self, config: CogVLM2Config):
        super().__init__(config)
        padding_idx = (
            config.pad_token_id if config.pad_token_id is not None and config.pad_token_id < config.vocab_size else None
        )
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx)
        self.layers = nn.ModuleList([CogVLM2DecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = CogVLM2RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.vision = CogVLM2VisionModel(config)
        self.rotary_emb = CogVLM2RotaryEmbedding(config)
        self.gradient_checkpointing = False
        # (last RoPE position + 1) - (attended tokens) of the last prefill, per row: continues the compressed
        # positions of a cached prefix when a later call passes neither position_ids nor full-length token_type_ids
        # (the same device as Qwen2-VL's `rope_deltas`).
        self.rope_deltas: torch.Tensor | None = None
        self.post_init()

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(num_images, 3, S, S) -> (num_images, tokens_per_image, hidden)."""
        return self.vision(pixel_values.to(self.vision.patch_embedding.proj.weight.dtype))

    def _merge_vision_embeddings(self, inputs_embeds, pixel_values, token_type_ids):
        is_vision = token_type_ids == VISION_TOKEN_TYPE
        num_vision = int(is_vision.sum())
        if pixel_values is None:
            if num_vision:
                raise ValueError(
                    f"token_type_ids mark {num_vision} vision positions but no pixel_values were given; pass the "
                    "images (or frames) the prompt was built for"
                )
            return inputs_embeds
        features = self.get_image_features(pixel_values)
        if features.shape[0] * features.shape[1] != num_vision:
            per_image = self.config.vision_config.tokens_per_image
            raise ValueError(
                f"{features.shape[0]} image(s)/frame(s) give {features.shape[0] * per_image} vision embeddings "
                f"({per_image} each) but token_type_ids mark {num_vision} vision positions; build the inputs with "
                "the CogVLM2 processor so that every image has its block of placeholders"
            )
        features = features.reshape(-1, features.shape[-1]).to(inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(is_vision.unsqueeze(-1), features)

    def _position_ids(self, token_type_ids, full_token_type_ids, attention_mask, past_length, new_length, batch):
        """RoPE positions of the new tokens (see ``build_position_ids``) and, on a prefill, the row deltas."""
        if past_length == 0 or full_token_type_ids is not None:
            types = full_token_type_ids if full_token_type_ids is not None else token_type_ids
            usable = (
                attention_mask is not None and attention_mask.ndim == 2 and attention_mask.shape[-1] == types.shape[-1]
            )
            mask = attention_mask if usable else None
            positions = build_position_ids(types, mask)
            if past_length == 0:
                attended = mask.sum(-1) if mask is not None else torch.full_like(positions[:, 0], types.shape[-1])
                self.rope_deltas = (positions.max(-1).values + 1 - attended).unsqueeze(-1)
            return positions[:, -new_length:]
        if self.rope_deltas is None:
            raise ValueError(
                "Continuing from a cache needs the RoPE positions of the new tokens: pass position_ids, or "
                "token_type_ids covering the cached tokens as well, or run the prefix through this model first"
            )
        deltas = self.rope_deltas.to(token_type_ids.device)
        if deltas.shape[0] != batch:
            if batch % deltas.shape[0]:
                raise ValueError(
                    f"the cached prefix was run with batch size {deltas.shape[0]}, which does not divide the batch "
                    f"size {batch} of this call; pass position_ids explicitly"
                )
            deltas = deltas.repeat_interleave(batch // deltas.shape[0], dim=0)
        if (
            attention_mask is not None
            and attention_mask.ndim == 2
            and attention_mask.shape[-1] == past_length + new_length
        ):
            attended = attention_mask.long().cumsum(-1)[:, -new_length:] - 1
            return (attended + deltas).clamp(min=0)
        steps = torch.arange(past_length, past_length + new_length, device=deltas.device)
        return steps.unsqueeze(0) + deltas

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        past_key_values: Cache | None = None,
        mm_token_type_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""
        Args:
            input_ids: (batch, length) token ids; vision positions hold any id (the official code uses 128002).
            pixel_values: (num_images, 3, S, S) images or frames, in the order their blocks appear in the batch.
            token_type_ids: (batch, length) ``0`` text / ``1`` vision; may also cover the cached tokens
                (``past + length``), which gives exact positions without ``position_ids``. Defaults to all text.
            attention_mask: (batch, past + length) with 0 at padding.
            position_ids: (batch, length) RoPE positions; derived from the token types when omitted.
            cache / past_key_values: a transformers ``Cache`` (e.g. ``DynamicCache``) to read and extend.
            mm_token_type_ids: accepted for ``token_type_ids`` (the name transformers' generic multimodal code and
                the VisionReward processor use for "this position is an image token").
        """
        if cache is None:
            cache = past_key_values
        if token_type_ids is None:
            token_type_ids = mm_token_type_ids
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        batch, new_length = inputs_embeds.shape[:2]

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past_length = cache.get_seq_length() if cache is not None else 0

        full_token_type_ids = None
        if token_type_ids is None:
            token_type_ids = torch.full((batch, new_length), LANGUAGE_TOKEN_TYPE, device=inputs_embeds.device)
        elif past_length and token_type_ids.shape[-1] == past_length + new_length:
            full_token_type_ids, token_type_ids = token_type_ids, token_type_ids[:, -new_length:]
        if token_type_ids.shape != (batch, new_length):
            raise ValueError(
                f"token_type_ids must have shape (batch, length) = {(batch, new_length)} or cover the cached tokens "
                f"too ({(batch, past_length + new_length)}); got {tuple(token_type_ids.shape)}"
            )

        inputs_embeds = self._merge_vision_embeddings(inputs_embeds, pixel_values, token_type_ids)
        if position_ids is None:
            position_ids = self._position_ids(
                token_type_ids, full_token_type_ids, attention_mask, past_length, new_length, batch
            )
        elif past_length == 0:
            self.rope_deltas = None

        # Positions are compressed inside image blocks, so they are not handed to the mask builder (which would
        # read repeated positions as packed sequences); the mask depends on order and padding only.
        causal_mask = create_causal_mask(
            config=self.config, inputs_embeds=inputs_embeds, attention_mask=attention_mask, cache=cache
        )
        if self.config.vision_experts:
            routing = ExpertRouting.from_mask(vision_expert_mask(token_type_ids))
        else:  # CogVLM2-Video: token types still set the positions, but every position uses the language expert
            routing = ExpertRouting.language_only(inputs_embeds.device)
        position_embeddings = self.rotary_emb(inputs_embeds, position_ids)

        hidden_states = inputs_embeds
        all_hidden_states = () if output_hidden_states else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states = layer(
                hidden_states,
                routing=routing,
                position_embeddings=position_embeddings,
                attention_mask=causal_mask,
                cache=cache,
                use_cache=use_cache,
            )
        hidden_states = self.norm(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states,
            hidden_states=all_hidden_states,
            **{_CACHE_FIELD: cache if use_cache else None},
        )


class CogVLM2ForConditionalGeneration(CogVLM2PreTrainedModel, GenerationMixin):
    """CogVLM2 with its language-model head; generation keeps vision positions in the KV cache after the prefill."""

    _tied_weights_keys = {}

    def __init__(self, config: CogVLM2Config):
        super().__init__(config)
        self.model = CogVLM2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def get_decoder(self):
        return self.model

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.get_image_features(pixel_values)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        token_type_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_hidden_states: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        return_dict: bool | None = None,
        past_key_values: Cache | None = None,
        mm_token_type_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """Same inputs as ``CogVLM2Model.forward``; ``labels`` gives the shifted next-token loss (-100 ignored).

        Logits are returned in float32, as upstream (``logits = logits.float()``); ``logits_to_keep=k`` keeps the
        last ``k`` positions only (what ``generate`` asks for).
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            token_type_ids=token_type_ids if token_type_ids is not None else mm_token_type_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
        )
        hidden_states = outputs.last_hidden_state
        if isinstance(logits_to_keep, int):
            hidden_states = hidden_states[:, -logits_to_keep:] if logits_to_keep else hidden_states
        else:
            hidden_states = hidden_states[:, logits_to_keep]
        logits = self.lm_head(hidden_states).float()

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)

        output = CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            **{_CACHE_FIELD: getattr(outputs, _CACHE_FIELD)},
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        return output if return_dict else output.to_tuple()

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, **kwargs):
        """The inputs of one generation step, with CogVLM2's positions rather than ``generate``'s generic ones.

        ``generate`` would pass ``attention_mask.cumsum(-1) - 1`` and add one per step; CogVLM2 gives boi, all
        patches of an image and eoi three positions in all. As upstream (``prepare_inputs_for_generation`` of
        ``modeling_cogvlm.py``), the positions are rebuilt every step from the token types of the whole sequence and
        the attention mask (``build_position_ids``), and the new tokens' ones are passed on.
        """
        kwargs.pop("position_ids", None)
        attention_mask = kwargs.get("attention_mask")
        types = kwargs.get("token_type_ids")
        if types is None:
            types = kwargs.get("mm_token_type_ids")
        model_inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        new = model_inputs.get("input_ids")
        new_length = (new if new is not None else model_inputs["inputs_embeds"]).shape[1]
        if types is None:
            types = torch.full_like(input_ids, LANGUAGE_TOKEN_TYPE)
        usable = attention_mask is not None and attention_mask.ndim == 2 and attention_mask.shape == types.shape
        model_inputs["position_ids"] = build_position_ids(types, attention_mask if usable else None)[:, -new_length:]
        return model_inputs

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False, num_new_tokens=1):
        """Generated tokens are text: extend ``token_type_ids`` with LANGUAGE, as the official code does."""
        token_type_ids = model_kwargs.pop("token_type_ids", None)
        model_kwargs = super()._update_model_kwargs_for_generation(
            outputs, model_kwargs, is_encoder_decoder=is_encoder_decoder, num_new_tokens=num_new_tokens
        )
        if token_type_ids is not None:
            new = token_type_ids.new_full((token_type_ids.shape[0], num_new_tokens), LANGUAGE_TOKEN_TYPE)
            model_kwargs["token_type_ids"] = torch.cat([token_type_ids, new], dim=-1)
        return model_kwargs


class CogVLM2VideoForConditionalGeneration(CogVLM2ForConditionalGeneration):
    """CogVLM2-Video: the same network without vision experts (``CogVLM2VideoConfig.vision_experts`` is False, as in
    the official ``CogVLMVideoForCausalLM``); frames arrive as ``pixel_values`` (all frames of the batch, in order)."""

    config_class = CogVLM2VideoConfig


def weight_memory_bytes(config: CogVLM2Config, bits: int = 16, quantize_vision: bool = True) -> int:
    """Bytes the weights of ``config``'s model take at 16 bits or quantized by bitsandbytes to 8 or 4 bits.

    Counted on the meta device: int8 (LLM.int8) stores 1 byte per ``nn.Linear`` weight plus one float32 scale per
    output row; nf4 stores half a byte plus one float32 absmax per 64-weight block. ``lm_head``, embeddings, norms,
    convs, biases and ``boi``/``eoi`` stay at 16 bits, and so does the vision tower with ``quantize_vision=False``.
    """
    if bits not in (16, 8, 4):
        raise ValueError(f"bits must be 16, 8 or 4; got {bits}")
    model_class = CogVLM2VideoForConditionalGeneration if config.is_video else CogVLM2ForConditionalGeneration
    with torch.device("meta"):
        model = model_class(config)
    total = 0.0
    quantized = set()
    if bits < 16:
        for name, module in model.named_modules():
            if (
                isinstance(module, nn.Linear)
                and name != "lm_head"
                and (quantize_vision or not name.startswith("model.vision"))
            ):
                rows, numel = module.weight.shape[0], module.weight.numel()
                total += numel + 4 * rows if bits == 8 else numel / 2 + 4 * numel / 64
                quantized.add(f"{name}.weight")
    total += sum(2 * p.numel() for name, p in model.named_parameters() if name not in quantized)
    return int(total)


def bitsandbytes_config(bits: int, quantize_vision: bool = True, compute_dtype: torch.dtype = torch.bfloat16):
    """A ``BitsAndBytesConfig`` for 8-bit (LLM.int8) or 4-bit (nf4) loading of a CogVLM2 checkpoint.

    ``lm_head`` always stays in 16 bits; ``quantize_vision=False`` keeps the vision tower (``model.vision``) in
    ``compute_dtype`` too, at the memory cost in the module docstring.
    """
    from transformers import BitsAndBytesConfig

    skip = ["lm_head"] + ([] if quantize_vision else ["model.vision"])
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    if bits == 4:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=skip,
        )
    raise ValueError(f"bits must be 8 or 4; got {bits}")


__all__ = [
    "bitsandbytes_config",
    "weight_memory_bytes",
    "CogVLM2ForConditionalGeneration",
    "CogVLM2Model",
    "CogVLM2PreTrainedModel",
    "CogVLM2VideoForConditionalGeneration",
    "build_position_ids",
    "rope_inv_freq",
    "vision_expert_mask",
]
