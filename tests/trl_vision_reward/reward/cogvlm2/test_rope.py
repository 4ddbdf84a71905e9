"""RoPE tables: the official bfloat16 construction bit for bit, the float32 switch, and reading the checkpoint's buffer."""

import pytest
import torch
import torch.nn.functional as F

from trl_vision_reward.reward.cogvlm2 import load_cogvlm2, rope_inv_freq
from trl_vision_reward.reward.cogvlm2.modeling_cogvlm2 import CogVLM2RotaryEmbedding
from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_config

from .test_checkpoint_layout import write_official_checkpoint


def official_tables(inv_freq_buffer, position_ids, dtype):
    """``FastRotaryEmbedding(pos_idx_in_fp32=False)``: a table over arange(max + 1) in the buffer's dtype, rows by id."""
    seqlen = int(position_ids.max()) + 1
    t = torch.arange(seqlen, device=inv_freq_buffer.device, dtype=inv_freq_buffer.dtype)
    freqs = torch.einsum("i,j->ij", t, inv_freq_buffer)
    cos, sin = torch.cos(freqs).to(dtype), torch.sin(freqs).to(dtype)
    return F.embedding(position_ids, cos), F.embedding(position_ids, sin)


def positions():
    # compressed CogVLM2 positions (an image block is three) up to the video model's 2048, and a row past 256 where
    # bfloat16 no longer holds every integer
    first = torch.tensor([0, 1, 2, 2, 2, 3, 4, 5] + list(range(6, 262)))
    second = torch.arange(2048 - first.numel(), 2048)
    return torch.stack([first, second])


def rotary(dtype_name, head_dim=128):
    config = tiny_cogvlm2_config(hidden_size=head_dim * 4, rope_inv_freq_dtype=dtype_name)
    return CogVLM2RotaryEmbedding(config), config


def test_bfloat16_tables_equal_the_official_construction_bit_for_bit():
    module, config = rotary("bfloat16")
    buffer = rope_inv_freq(config.head_dim, 500000.0).to(torch.bfloat16)
    x = torch.zeros(1, dtype=torch.bfloat16)
    cos, sin = module(x, positions())
    official_cos, official_sin = official_tables(buffer, positions(), torch.bfloat16)
    half = config.head_dim // 2
    assert cos.dtype == torch.bfloat16
    assert torch.equal(cos[..., :half], official_cos) and torch.equal(cos[..., half:], official_cos)
    assert torch.equal(sin[..., :half], official_sin) and torch.equal(sin[..., half:], official_sin)


def test_float32_switch_gives_float32_angles_and_differs_from_the_official_tables():
    module, config = rotary("float32")
    cos, _ = module(torch.zeros(1, dtype=torch.bfloat16), positions())
    angles = positions()[..., None].double() * rope_inv_freq(config.head_dim, 500000.0).double()
    reference = angles.float().cos().to(torch.bfloat16)
    assert torch.equal(cos[..., : config.head_dim // 2], reference)
    buffer = rope_inv_freq(config.head_dim, 500000.0).to(torch.bfloat16)
    official_cos, _ = official_tables(buffer, positions(), torch.bfloat16)
    assert (cos[..., : config.head_dim // 2].float() - official_cos.float()).abs().max() > 0.1


def test_float32_forward_keeps_float32_angles_whatever_the_buffer_dtype():
    official, _ = rotary("bfloat16")
    exact, _ = rotary("float32")
    x = torch.zeros(1)
    assert torch.equal(official(x, positions())[0], exact(x, positions())[0])


@pytest.mark.parametrize("rope_tables", ["checkpoint", "float32"])
def test_load_reads_the_checkpoint_buffer_dtype_and_values(tmp_path, rope_tables):
    write_official_checkpoint(tmp_path, video=True, with_inv_freq=True)
    model = load_cogvlm2(tmp_path, rope_tables=rope_tables)
    rotary_emb = model.model.rotary_emb
    if rope_tables == "checkpoint":
        assert model.config.rope_inv_freq_dtype == "bfloat16"
        assert rotary_emb.official_inv_freq.dtype == torch.bfloat16
        cos, _ = rotary_emb(torch.zeros(1, dtype=torch.bfloat16), positions())
        official_cos, _ = official_tables(rotary_emb.official_inv_freq, positions(), torch.bfloat16)
        assert torch.equal(cos[..., : model.config.head_dim // 2], official_cos)
    else:
        assert model.config.rope_inv_freq_dtype == "float32"


def test_a_checkpoint_without_the_buffer_keeps_float32_tables(tmp_path):
    write_official_checkpoint(tmp_path)
    assert load_cogvlm2(tmp_path).config.rope_inv_freq_dtype == "float32"
    with pytest.raises(ValueError, match="rope_tables must be 'checkpoint' or 'float32'"):
        load_cogvlm2(tmp_path, rope_tables="bf16")


def test_bfloat16_model_with_official_tables_runs_generate(tmp_path):
    """End to end in bfloat16: the official tables feed attention, and generation still equals the stepwise forward."""
    from trl_vision_reward.reward.cogvlm2.tiny import tiny_cogvlm2_processor

    from .conftest import media_inputs
    from .test_generation import step_by_step

    write_official_checkpoint(tmp_path, video=True, with_inv_freq=True)
    model = load_cogvlm2(tmp_path, dtype=torch.bfloat16).eval()
    processor = tiny_cogvlm2_processor(video=True)
    inputs = media_inputs(processor, True, ["Question: Is it clear? Answer:"])
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    expected, _ = step_by_step(model, inputs, steps=3)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False, eos_token_id=None, pad_token_id=2)
    assert torch.equal(out, expected)
