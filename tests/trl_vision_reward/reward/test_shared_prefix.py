"""Prefix-sharing attention equals ordinary causal attention over the prefix repeated for every row."""

import pytest
import torch

from trl_vision_reward.reward import shared_prefix as sp
from trl_vision_reward.reward.shared_prefix import _PREFIX_KV, shared_prefix_attention


class _Module(torch.nn.Module):
    layer_idx = 0


@pytest.mark.parametrize("kernel", ["fused", "explicit"])
@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (6, 2)])
def test_matches_sdpa_over_repeated_prefix(heads, kv_heads, kernel, monkeypatch):
    if kernel == "fused":
        assert sp._fused_kernel_available(torch.zeros(1))  # the CPU build has the log-sum-exp kernel
    else:
        monkeypatch.setattr(sp, "_fused_kernel_available", lambda query: False)
    g = torch.Generator().manual_seed(0)
    b, p, s, d = 3, 11, 5, 8
    q = torch.randn(b, heads, s, d, generator=g)
    pk, pv = torch.randn(1, kv_heads, p, d, generator=g), torch.randn(1, kv_heads, p, d, generator=g)
    k, v = torch.randn(b, kv_heads, s, d, generator=g), torch.randn(b, kv_heads, s, d, generator=g)

    token = _PREFIX_KV.set({0: (pk, pv)})
    try:
        out, _ = shared_prefix_attention(_Module(), q, k, v, None, scaling=d**-0.5)
    finally:
        _PREFIX_KV.reset(token)

    rep = heads // kv_heads
    full_k = torch.cat([pk.expand(b, -1, -1, -1), k], dim=2).repeat_interleave(rep, dim=1)
    full_v = torch.cat([pv.expand(b, -1, -1, -1), v], dim=2).repeat_interleave(rep, dim=1)
    mask = torch.ones(s, p + s, dtype=torch.bool).tril(diagonal=p)  # query i sees the prefix and suffix 0..i
    ref = torch.nn.functional.scaled_dot_product_attention(q, full_k, full_v, attn_mask=mask).transpose(1, 2)
    assert out.shape == (b, s, heads, d)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


def test_refuses_to_run_outside_the_context():
    x = torch.zeros(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="runs only inside shared_prefix"):
        shared_prefix_attention(_Module(), x, x, x, None)


def test_a_torch_build_without_the_log_sum_exp_kernel_falls_back_to_the_explicit_path(monkeypatch):
    def missing(*args, **kwargs):
        raise AttributeError("no such op")

    monkeypatch.setattr(sp, "_attend_with_lse", missing)
    sp._cpu_kernel_returns_lse.cache_clear()
    try:
        assert not sp._fused_kernel_available(torch.zeros(1))
    finally:
        sp._cpu_kernel_returns_lse.cache_clear()
