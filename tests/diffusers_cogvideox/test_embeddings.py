"""Positional grids: equal, bit for bit, to what diffusers' reference CogVideoX code computes."""

import types

import pytest
import torch
from diffusers.models import embeddings as reference
from diffusers.pipelines.cogvideo.pipeline_cogvideox import CogVideoXPipeline

from diffusers_cogvideox.models.embeddings import (
    apply_rope,
    joint_sincos_3d,
    rope_axis_dims,
    rotary_embeddings_for_video,
    sincos_3d,
)

CONFIG_1_0 = dict(patch_size=2, patch_size_t=None, sample_height=60, sample_width=90, attention_head_dim=64)
CONFIG_1_5 = dict(patch_size=2, patch_size_t=2, sample_height=300, sample_width=300, attention_head_dim=64)


def reference_rotary(config: dict, height: int, width: int, num_frames: int):
    """The reference pipeline method, called unbound on a stub holding just what it reads."""
    stub = types.SimpleNamespace(
        vae_scale_factor_spatial=8, transformer=types.SimpleNamespace(config=types.SimpleNamespace(**config))
    )
    return CogVideoXPipeline._prepare_rotary_positional_embeddings(stub, height, width, num_frames, torch.device("cpu"))


@pytest.mark.parametrize("config", [CONFIG_1_0, CONFIG_1_5], ids=["1.0-linspace", "1.5-slice"])
@pytest.mark.parametrize(
    "height, width, num_frames",
    [(480, 720, 13), (720, 480, 13), (768, 1360, 22), (480, 720, 7), (320, 320, 1), (16, 32, 3)],
)
def test_rotary_embeddings_for_video_equal_reference_pipeline(config, height, width, num_frames):
    expected_cos, expected_sin = reference_rotary(config, height, width, num_frames)
    cos, sin = rotary_embeddings_for_video(config, height, width, num_frames)
    assert cos.dtype == sin.dtype == torch.float32
    assert torch.equal(cos, expected_cos) and torch.equal(sin, expected_sin)


def test_rotary_embeddings_for_video_reads_a_config_object():
    config = types.SimpleNamespace(**CONFIG_1_0)
    cos, _ = rotary_embeddings_for_video(config, 480, 720, 13)
    assert cos.shape == (13 * 30 * 45, 64)


def test_rotary_rejects_sizes_off_the_token_grid():
    with pytest.raises(
        ValueError, match=r"multiples of 16 \(vae_scale_factor_spatial=8 x patch_size=2\); got height=488"
    ):
        rotary_embeddings_for_video(CONFIG_1_0, 488, 720, 13)


def test_rotary_1_5_rejects_grids_beyond_the_table():
    config = dict(CONFIG_1_5, sample_height=20, sample_width=20)  # a 10 x 10 table
    with pytest.raises(ValueError, match=r"patch grid 11x10 .* exceeds .* 10x10"):
        rotary_embeddings_for_video(config, 176, 160, 2)


def test_rope_head_dim_must_split_into_even_parts():
    assert rope_axis_dims(64) == (16, 24, 24)
    with pytest.raises(ValueError, match="multiple of 16 .* got attention_head_dim=8"):
        rope_axis_dims(8)


def test_apply_rope_equals_reference():
    x = torch.randn(2, 3, 40, 32)
    cos, sin = rotary_embeddings_for_video(dict(CONFIG_1_0, attention_head_dim=32), 64, 80, 2)
    assert torch.equal(apply_rope(x, cos, sin), reference.apply_rotary_emb(x, (cos, sin)))


@pytest.mark.parametrize("spatial, frames", [((45, 30), 13), ((4, 6), 3), ((5, 5), 1)])
def test_sincos_3d_equals_reference(spatial, frames):
    expected = reference.get_3d_sincos_pos_embed(64, spatial, frames, 1.875, 1.0)
    assert torch.equal(sincos_3d(64, spatial[1], spatial[0], frames, 1.875, 1.0), expected)


def test_joint_sincos_3d_has_zero_text_slots():
    table = joint_sincos_3d(32, 4, 6, 3, text_length=5, spatial_scale=1.875, temporal_scale=1.0)
    assert table.shape == (1, 5 + 3 * 4 * 6, 32)
    assert torch.count_nonzero(table[:, :5]) == 0
    assert torch.equal(table[0, 5:], sincos_3d(32, 4, 6, 3, 1.875, 1.0).flatten(0, 1))
