"""AutoencoderKLCogVideoX: a drop-in for diffusers' class, equal outputs on the same weights, clear input errors."""

from __future__ import annotations

import re

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX as ReferenceVAE

from diffusers_cogvideox import AutoencoderKLCogVideoX
from diffusers_cogvideox.models import autoencoder_kl_cogvideox as vae_module
from diffusers_cogvideox.models.autoencoder_kl_cogvideox import decoded_num_frames, frame_batches
from diffusers_cogvideox.tiny import TINY_VAE_CONFIG, TINY_VAE_CONFIG_16

ATOL = 1e-5


def _perturbed_reference(config: dict) -> ReferenceVAE:
    torch.manual_seed(0)
    reference = ReferenceVAE(**config).eval()
    with torch.no_grad():  # move the weights off their init so that nothing cancels by accident
        g = torch.Generator().manual_seed(0)
        for _, p in sorted(reference.named_parameters()):
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return reference


@pytest.fixture(scope="module")
def pair() -> tuple[AutoencoderKLCogVideoX, ReferenceVAE]:
    reference = _perturbed_reference(TINY_VAE_CONFIG)
    ours = AutoencoderKLCogVideoX(**TINY_VAE_CONFIG).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


def _video(frames: int, batch: int = 1, height: int = 16, width: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(frames)
    return torch.rand(batch, 3, frames, height, width, generator=g) * 2 - 1


def _latents(frames: int, batch: int = 1, height: int = 2, width: int = 2, channels: int = 4) -> torch.Tensor:
    return torch.randn(batch, channels, frames, height, width, generator=torch.Generator().manual_seed(frames))


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


# ---------------------------------------------------------------------------------------------- the frame schedule


def test_frame_batches_put_the_remainder_in_the_first_batch():
    assert frame_batches(13, 2) == [(0, 3), (3, 5), (5, 7), (7, 9), (9, 11), (11, 13)]
    assert frame_batches(49, 8) == [(0, 9), (9, 17), (17, 25), (25, 33), (33, 41), (41, 49)]
    assert frame_batches(1, 8) == [(0, 1)]
    assert frame_batches(5, 8) == [(0, 5)]
    assert frame_batches(1, 2) == [(0, 1)]


def test_decoded_num_frames_keeps_an_odd_first_frame_single():
    assert [decoded_num_frames(n, 2) for n in (1, 2, 3)] == [1, 8, 9]
    assert sum(decoded_num_frames(e - s, 2) for s, e in frame_batches(13, 2)) == 49


# ---------------------------------------------------------------------------------------------- drop-in compatibility


def test_parameters_buffers_and_config_match_the_reference(pair):
    ours, reference = pair
    theirs = reference.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.items()}
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(ours.config) == public(reference.config)
    assert ours._supports_gradient_checkpointing


def test_official_architecture_has_the_436_official_keys():
    with torch.device("meta"):
        assert len(AutoencoderKLCogVideoX().state_dict()) == 436


def test_reference_checkpoint_folder_loads_with_no_missing_or_unexpected_keys(tmp_path):
    config = dict(TINY_VAE_CONFIG_16, scaling_factor=0.7, invert_scale_latents=True)
    reference = _perturbed_reference(config)
    reference.save_pretrained(tmp_path / "vae")  # the Hub layout: <repo>/vae/{config.json, *.safetensors}

    ours, info = AutoencoderKLCogVideoX.from_pretrained(tmp_path, subfolder="vae", output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert ours.config.invert_scale_latents is True
    assert ours.config.scaling_factor == 0.7
    z = _latents(3, channels=16)
    with torch.no_grad():
        assert _max_diff(ours.decode(z).sample, reference.decode(z).sample) <= ATOL


# ---------------------------------------------------------------------------------------------- equal outputs


@pytest.mark.parametrize("frames", [1, 9, 17, pytest.param(49, marks=pytest.mark.slow)])
def test_encode_matches_reference(pair, frames):
    ours, reference = pair
    x = _video(frames)
    with torch.no_grad():
        expected = reference.encode(x).latent_dist
        got = ours.encode(x).latent_dist
    assert got.mean.shape == (1, 4, (frames - 1) // 4 + 1, 2, 2)
    assert _max_diff(got.mean, expected.mean) <= ATOL
    assert _max_diff(got.std, expected.std) <= ATOL


@pytest.mark.parametrize(
    "latent_frames, frames", [(1, 1), (3, 9), (4, 16), (5, 17), pytest.param(13, 49, marks=pytest.mark.slow)]
)
def test_decode_matches_reference(pair, latent_frames, frames):
    ours, reference = pair
    z = _latents(latent_frames)
    with torch.no_grad():
        expected = reference.decode(z).sample
        got = ours.decode(z).sample
    assert got.shape == (1, 3, frames, 16, 16)
    assert _max_diff(got, expected) <= ATOL


def test_forward_matches_reference_and_returns_tuples_on_request(pair):
    ours, reference = pair
    x = _video(9)
    with torch.no_grad():
        expected = reference(x).sample
        assert _max_diff(ours(x).sample, expected) <= ATOL
        (video,) = ours(x, return_dict=False)
        (posterior,) = ours.encode(x, return_dict=False)
        (decoded,) = ours.decode(posterior.mode(), return_dict=False)
    assert _max_diff(video, expected) <= ATOL
    assert _max_diff(decoded, expected) <= ATOL


def test_sampled_posterior_uses_the_generator(pair):
    ours, reference = pair
    x = _video(5)
    with torch.no_grad():
        expected = reference(x, sample_posterior=True, generator=torch.Generator().manual_seed(3)).sample
        got = ours(x, sample_posterior=True, generator=torch.Generator().manual_seed(3)).sample
    assert _max_diff(got, expected) <= ATOL


def test_slicing_matches_reference(pair):
    ours, reference = pair
    x, z = _video(9, batch=2), _latents(3, batch=2)
    with torch.no_grad():
        expected_mean = reference.encode(x).latent_dist.mean
        expected_video = reference.decode(z).sample
    ours.enable_slicing()
    try:
        with torch.no_grad():
            assert _max_diff(ours.encode(x).latent_dist.mean, expected_mean) <= ATOL
            assert _max_diff(ours.decode(z).sample, expected_video) <= ATOL
    finally:
        ours.disable_slicing()


@pytest.mark.parametrize("slicing", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_tiling_matches_reference(pair, slicing):
    """Small tiles force 2 x 2 overlapping tiles (blended both ways) on tiny inputs."""
    ours, reference = pair
    tiles = dict(
        tile_sample_min_height=32,
        tile_sample_min_width=32,
        tile_overlap_factor_height=1 / 4,
        tile_overlap_factor_width=1 / 4,
    )
    x, z = _video(5, batch=2, height=40, width=40), _latents(3, batch=2, height=5, width=5)
    for model in (ours, reference):
        model.enable_tiling(**tiles)
        if slicing:
            model.enable_slicing()
    try:
        with torch.no_grad():
            expected_mean = reference.encode(x).latent_dist.mean
            expected_video = reference.decode(z).sample
            got_mean = ours.encode(x).latent_dist.mean
            got_video = ours.decode(z).sample
    finally:
        for model in (ours, reference):
            model.disable_tiling()
            model.disable_slicing()
    assert got_mean.shape == (2, 4, 2, 5, 5) and got_video.shape == (2, 3, 9, 40, 40)
    assert _max_diff(got_mean, expected_mean) <= ATOL
    assert _max_diff(got_video, expected_video) <= ATOL


def test_tiling_off_again_gives_the_untiled_result(pair):
    ours, _ = pair
    z = _latents(1, height=5, width=5)
    with torch.no_grad():
        untiled = ours.decode(z).sample
        ours.enable_tiling(32, 32, 1 / 4, 1 / 4)
        tiled = ours.decode(z).sample
        ours.disable_tiling()
        again = ours.decode(z).sample
    assert _max_diff(untiled, again) == 0
    assert _max_diff(untiled, tiled) > 0  # tiles change the result (by design), so tiling really happened


def test_piecewise_inference_path_matches_reference(pair, monkeypatch):
    """Large activations are normalised group by group and convolved a few frames at a time, in place; forcing that
    path on tiny tensors (batch 2, so PyTorch would pick oneDNN for the whole tensors) must not change a number."""
    ours, reference = pair
    monkeypatch.setattr(vae_module, "SPLIT_MIN_NUMEL", 0)
    x, z = _video(9, batch=2), _latents(5, batch=2)
    with torch.no_grad():
        assert _max_diff(ours.encode(x).latent_dist.mean, reference.encode(x).latent_dist.mean) <= ATOL
        assert _max_diff(ours.decode(z).sample, reference.decode(z).sample) <= ATOL


def test_gradients_match_reference_with_and_without_checkpointing(pair):
    """With autograd on (training through the VAE) the outputs and gradients equal the reference's."""
    ours, reference = pair
    z = _latents(3)
    expected_z = z.clone().requires_grad_(True)
    reference.decode(expected_z).sample.square().mean().backward()
    for checkpointing in (False, True):
        if checkpointing:
            ours.enable_gradient_checkpointing()
        ours.zero_grad()
        got_z = z.clone().requires_grad_(True)
        ours.train()
        video = ours.decode(got_z).sample
        video.square().mean().backward()
        ours.eval()
        assert _max_diff(got_z.grad, expected_z.grad) <= 1e-6
        name = "decoder.up_blocks.3.resnets.0.conv1.conv.weight"
        got_grad = dict(ours.named_parameters())[name].grad
        assert _max_diff(got_grad, dict(reference.named_parameters())[name].grad) <= 1e-5
    ours.disable_gradient_checkpointing()
    reference.zero_grad()
    ours.zero_grad()


def test_frozen_vae_takes_the_inference_path_without_no_grad(pair):
    ours, reference = pair
    z = _latents(3)
    ours.requires_grad_(False)
    try:
        video = ours.decode(z).sample  # autograd is on, but nothing can receive a gradient
    finally:
        ours.requires_grad_(True)
    assert not video.requires_grad
    with torch.no_grad():
        assert _max_diff(video, reference.decode(z).sample) <= ATOL


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, tensor, message",
    [
        (
            "encode",
            torch.zeros(1, 3, 16, 16),
            "the video must be a 5D tensor (batch, channels, frames, height, width); got shape (1, 3, 16, 16)",
        ),
        (
            "encode",
            torch.zeros(1, 4, 9, 16, 16),
            "the video must have 3 channels (config.in_channels) in dim 1 of (batch, channels, frames, height, "
            "width); got shape (1, 4, 9, 16, 16)",
        ),
        (
            "encode",
            torch.zeros(1, 3, 8, 16, 16),
            "the causal VAE encodes 1 + 4*k frames (1, 5, 9, ...); got 8. Other counts drop frames or merge the "
            "first frame into the next latent.",
        ),
        (
            "encode",
            torch.zeros(1, 3, 9, 20, 16),
            "video height and width must be multiples of 8; got 20x16",
        ),
        (
            "decode",
            torch.zeros(1, 3, 4, 2, 2),
            "latents must have 4 channels (config.latent_channels) in dim 1 of (batch, channels, frames, height, "
            "width); got shape (1, 3, 4, 2, 2)",
        ),
        (
            "decode",
            torch.zeros(1, 4, 2, 2),
            "latents must be a 5D tensor (batch, channels, frames, height, width); got shape (1, 4, 2, 2)",
        ),
        (
            "decode",
            torch.zeros(1, 4, 0, 2, 2),
            "latents must have at least one frame; got shape (1, 4, 0, 2, 2)",
        ),
    ],
)
def test_bad_input_raises_naming_the_accepted_values(pair, call, tensor, message):
    ours, _ = pair
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(ours, call)(tensor)


def test_latents_in_transformer_layout_are_rejected(pair):
    """(B, F, C, H, W) latents - the transformer's layout - would otherwise be decoded as garbage."""
    ours, _ = pair
    with pytest.raises(ValueError, match=re.escape("must have 4 channels")):
        ours.decode(torch.zeros(1, 3, 4, 2, 2))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tile_sample_min_height=4), "tile_sample_min_height must be an integer >= 8 (one latent); got 4"),
        (dict(tile_overlap_factor_width=1.0), "tile_overlap_factor_width must be in (0, 1)"),
        (dict(tile_sample_min_height=8, tile_overlap_factor_height=0.5), "tiles at least one latent apart"),
    ],
)
def test_bad_tiling_settings_raise(kwargs, message):
    vae = AutoencoderKLCogVideoX(**TINY_VAE_CONFIG)
    with pytest.raises(ValueError, match=re.escape(message)):
        vae.enable_tiling(**kwargs)
    assert not vae.use_tiling


def test_bad_block_types_raise():
    with pytest.raises(ValueError, match=re.escape("down_block_types must all be 'CogVideoXDownBlock3D'")):
        AutoencoderKLCogVideoX(**dict(TINY_VAE_CONFIG, down_block_types=("DownEncoderBlock2D",) * 4))
    with pytest.raises(ValueError, match=re.escape("up_block_types needs one entry per block_out_channels entry (4)")):
        AutoencoderKLCogVideoX(**dict(TINY_VAE_CONFIG, up_block_types=("CogVideoXUpBlock3D",) * 3))


# ---------------------------------------------------------------------------------------------- whole-clip encoding


def _sat_style_whole_clip(reference: ReferenceVAE, x: torch.Tensor):
    """The official SAT encoder's normalisation: one encoder call over all frames, so every GroupNorm takes its
    statistics over the whole clip (diffusers' class with one frame batch as long as the clip)."""
    previous = reference.num_sample_frames_batch_size
    reference.num_sample_frames_batch_size = x.shape[2]
    try:
        with torch.no_grad():
            return reference.encode(x).latent_dist
    finally:
        reference.num_sample_frames_batch_size = previous


@pytest.mark.parametrize("frames, batch", [(17, 1), (25, 2)])
def test_streamed_whole_clip_encode_equals_the_sat_style_whole_clip_pass(pair, frames, batch):
    ours, reference = pair
    x = _video(frames, batch=batch)
    expected = _sat_style_whole_clip(reference, x)
    with torch.no_grad():
        batched = ours.encode(x).latent_dist.mean
        ours.enable_whole_clip_encoding()
        try:
            streamed = ours.encode(x).latent_dist
            ours.enable_whole_clip_encoding(streamed=False)
            one_pass = ours.encode(x).latent_dist.mean
        finally:
            ours.disable_whole_clip_encoding()
        assert _max_diff(ours.encode(x).latent_dist.mean, batched) == 0  # the batched mode is back
    assert _max_diff(streamed.mean, expected.mean) <= ATOL
    assert _max_diff(streamed.std, expected.std) <= ATOL
    assert _max_diff(one_pass, expected.mean) <= ATOL
    assert _max_diff(batched, expected.mean) > 100 * ATOL  # per-batch statistics really differ


def test_streamed_whole_clip_encode_runs_the_encoder_on_frame_batches(pair, monkeypatch):
    ours, _ = pair
    seen = []
    conv_in = ours.encoder.conv_in
    original = type(conv_in).forward
    monkeypatch.setattr(conv_in, "forward", lambda x, *a, **k: seen.append(x.shape[2]) or original(conv_in, x, *a, **k))
    ours.enable_whole_clip_encoding()
    try:
        with torch.no_grad():
            ours.encode(_video(33))
    finally:
        ours.disable_whole_clip_encoding()
    assert max(seen) == 9  # 33 frames as 9 + 8 + 8 + 8, never the whole clip
    assert sum(seen) % 33 == 0 and sum(seen) > 33  # whole passes over the clip, one per statistics gathering


def test_whole_clip_encode_with_autograd_is_one_pass_with_gradients(pair):
    ours, reference = pair
    x = _video(17).requires_grad_(True)
    expected = _sat_style_whole_clip(reference, x.detach())
    ours.enable_whole_clip_encoding()
    try:
        got = ours.encode(x).latent_dist.mean
    finally:
        ours.disable_whole_clip_encoding()
    got.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert _max_diff(got.detach(), expected.mean) <= ATOL
