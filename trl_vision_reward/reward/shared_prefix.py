"""Prefix-sharing attention: many question suffixes attend to ONE copy of the media prefix's KV cache.

Repeating the prefix cache across the question batch (``Cache.batch_repeat_interleave``) works for every backbone but
copies ``questions x prefix`` keys and values and concatenates them again in every layer; at hundreds to thousands of
visual tokens that memory traffic dominates the suffix pass. Here the prefix keys/values stay at batch size 1 and are
broadcast inside the attention product instead (no copy), registered through transformers' ``AttentionInterface``::

    softmax([q K_prefix^T, q K_suffix^T + causal] * scale) @ [V_prefix; V_suffix]

with every question's rows against the single prefix copy in one batched product. On CPU both parts run in PyTorch's
fused attention kernel and are merged through their log-sum-exps (no score matrix is materialised); elsewhere the
scores are materialised and share one max and one normaliser.

The suffix rows are right-padded; causal attention keeps padding invisible to every real token, so no mask is needed.
Used for backbones whose attention layers dispatch through ``AttentionInterface`` (the transformers models, e.g. the
Qwen2-VL family); :func:`supports_shared_prefix` says whether a backbone qualifies, otherwise the scorer repeats the
cache.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.cache_utils import DynamicLayer

ATTENTION_NAME = "vision_reward_shared_prefix"
_PREFIX_KV: ContextVar[dict[int, tuple[torch.Tensor, torch.Tensor]] | None] = ContextVar("_PREFIX_KV", default=None)


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query (B, H, S, d); key/value: the suffix's own (B, Hkv, S, d); the prefix's (1, Hkv, P, d) come from the context.
    Returns (B, S, H, d) like every transformers attention function."""
    prefix = _PREFIX_KV.get()
    if prefix is None or module.layer_idx not in prefix:
        raise RuntimeError(f"{ATTENTION_NAME} attention runs only inside shared_prefix(...)")
    if kwargs.get("sliding_window") or kwargs.get("softcap") or kwargs.get("s_aux") is not None:
        raise NotImplementedError(f"{ATTENTION_NAME} does not implement sliding windows, soft-capping or sinks")
    pk, pv = prefix[module.layer_idx]
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    if dropout and module.training:
        out = _explicit_softmax(query, key, value, pk, pv, scale, dropout)
    elif _fused_kernel_available(query):
        out = _fused_parts(query, key, value, pk, pv, scale)
    else:
        out = _explicit_softmax(query, key, value, pk, pv, scale, 0.0)
    return out.transpose(1, 2).contiguous(), None


def _fused_kernel_available(query: torch.Tensor) -> bool:
    return query.device.type == "cpu" and _cpu_kernel_returns_lse()


@functools.lru_cache(maxsize=1)
def _cpu_kernel_returns_lse() -> bool:
    """The log-sum-exp comes from a private ATen op: check once, on a tiny input, that it exists and returns what
    this module expects, and fall back to the explicit path on any other PyTorch build."""
    try:
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, 1, 3, 4, generator=g) for _ in range(3))
        out, lse = _attend_with_lse(q, k, v, 0.5, causal=False)
        scores = (q @ k.transpose(-1, -2)) * 0.5
        return torch.allclose(lse, scores.logsumexp(-1), atol=1e-5) and torch.allclose(
            out, scores.softmax(-1) @ v, atol=1e-5
        )
    except Exception:
        return False


def _attend_with_lse(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused attention that also returns each row's log-sum-exp (the public SDPA does not), so two partial softmaxes
    over disjoint key sets can be merged exactly."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, scale=scale)


def _fused_parts(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, pk: torch.Tensor, pv: torch.Tensor, scale: float
) -> torch.Tensor:
    """Two fused kernels - every question row against the ONE prefix copy, each suffix causally against itself - merged
    by their log-sum-exps: softmax over [prefix, suffix] = w_p * softmax_p + w_s * softmax_s, w = exp(lse_part - lse)."""
    b, h, s, d = query.shape
    hkv = key.shape[1]
    rep = h // hkv
    # group query heads by their key/value head (head = kv_head * rep + j, the repeat_kv layout): all rows of all
    # questions become one long query sequence per kv head
    rows = query.reshape(b, hkv, rep * s, d).transpose(0, 1).reshape(1, hkv, b * rep * s, d)
    out_p, lse_p = _attend_with_lse(rows, pk, pv, scale, causal=False)
    out_p = out_p.reshape(hkv, b, rep * s, d).transpose(0, 1).reshape(b, h, s, d)
    lse_p = lse_p.reshape(hkv, b, rep * s).transpose(0, 1).reshape(b, h, s)
    out_s, lse_s = _attend_with_lse(
        query, key.repeat_interleave(rep, dim=1), value.repeat_interleave(rep, dim=1), scale, causal=True
    )
    lse = torch.logaddexp(lse_p, lse_s)
    w_p = torch.exp(lse_p - lse).unsqueeze(-1)
    w_s = torch.exp(lse_s - lse).unsqueeze(-1)
    return (out_p.float() * w_p + out_s.float() * w_s).to(query.dtype)


def _explicit_softmax(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    pk: torch.Tensor,
    pv: torch.Tensor,
    scale: float,
    dropout: float,
) -> torch.Tensor:
    """Any device: the scores are materialised, with one shared max and normaliser over the two key sets."""
    b, h, s, d = query.shape
    hkv = key.shape[1]
    rep = h // hkv
    q = (query * scale).reshape(b, hkv, rep * s, d)
    # prefix part: all rows of all questions against the ONE prefix copy, as a single (Hkv, B*rep*S, P) product
    q_rows = q.transpose(0, 1).reshape(hkv, b * rep * s, d)
    scores_prefix = torch.bmm(q_rows, pk[0].transpose(-1, -2)).view(hkv, b, rep * s, -1).transpose(0, 1)
    scores_suffix = torch.matmul(q, key.transpose(-1, -2))  # (B, Hkv, rep*S, S)
    future = torch.ones(s, s, dtype=torch.bool, device=query.device).triu(1).repeat(rep, 1)
    scores_suffix = scores_suffix.masked_fill(future, float("-inf"))
    # one softmax over [prefix, suffix] without concatenating: shared max, two exponentials, one normaliser
    top = torch.maximum(scores_prefix.amax(-1, keepdim=True), scores_suffix.amax(-1, keepdim=True))
    exp_prefix = torch.exp(scores_prefix - top)
    exp_suffix = torch.exp(scores_suffix - top)
    norm = exp_prefix.sum(-1, keepdim=True) + exp_suffix.sum(-1, keepdim=True)
    if dropout:
        exp_prefix = torch.nn.functional.dropout(exp_prefix, p=dropout)
        exp_suffix = torch.nn.functional.dropout(exp_suffix, p=dropout)
    out_prefix = torch.bmm(exp_prefix.transpose(0, 1).reshape(hkv, b * rep * s, -1), pv[0])
    out = out_prefix.view(hkv, b, rep * s, d).transpose(0, 1) + torch.matmul(exp_suffix, value)
    return (out / norm).reshape(b, h, s, d)


AttentionInterface.register(ATTENTION_NAME, shared_prefix_attention)


class _SuffixOnlyLayer(DynamicLayer):
    """A (shallow) copy of a prefix cache layer that keeps reporting the prefix length but hands attention only the
    new (suffix) keys/values instead of concatenating them to the prefix."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        return key_states, value_states


def _suffix_only(layer: DynamicLayer) -> _SuffixOnlyLayer:
    view = copy.copy(layer)
    view.__class__ = _SuffixOnlyLayer
    return view


def supports_shared_prefix(backbone: torch.nn.Module, cache: Any) -> bool:
    """Whether ``backbone`` can run its suffix pass with :func:`shared_prefix_attention` over ``cache``."""
    can_set = getattr(backbone, "_can_set_attn_implementation", None)
    layers = getattr(cache, "layers", None)
    if not callable(can_set) or not layers or type(cache).__name__ != "DynamicCache":
        return False
    try:
        ok = bool(can_set())
    except Exception:
        return False
    return ok and all(
        getattr(layer, "keys", None) is not None and not getattr(layer, "is_sliding", False) for layer in layers
    )


def _decoder_attention(config: Any) -> dict[str, str]:
    """The attention implementation of the language model only - the top config and, for composite models, its
    ``text_config`` - keyed as ``set_attn_implementation`` takes them; the vision tower (which does not run in the
    suffix pass) keeps its own."""
    keys = {"": config}
    if "text_config" in getattr(config, "sub_configs", {}) and getattr(config, "text_config", None) is not None:
        keys["text_config"] = config.text_config
    return {key: sub._attn_implementation for key, sub in keys.items()}


@contextlib.contextmanager
def shared_prefix(backbone: torch.nn.Module, prefix_cache: Any) -> Iterator[Any]:
    """Within this block the backbone attends through :func:`shared_prefix_attention`; yields the cache to pass to the
    suffix forward. The backbone's own attention implementation is restored afterwards."""
    previous = _decoder_attention(backbone.config)
    kv = {i: (layer.keys, layer.values) for i, layer in enumerate(prefix_cache.layers)}
    cache = copy.copy(prefix_cache)
    cache.layers = [_suffix_only(layer) for layer in prefix_cache.layers]
    token = _PREFIX_KV.set(kv)
    backbone.set_attn_implementation({key: ATTENTION_NAME for key in previous})
    try:
        yield cache
    finally:
        backbone.set_attn_implementation(previous)
        _PREFIX_KV.reset(token)
