"""TeaCache-style step caching: off at threshold 0, skipping steps at large thresholds, reset between videos."""

from __future__ import annotations

import diffusers
import pytest
import torch

from diffusers_cogvideox.caching import TeaCacheConfig, apply_teacache, remove_teacache, teacache_stats
from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS, tiny_components, tiny_pipeline


def run(pipe, steps: int = 8, **kwargs):
    kwargs = dict(prompt="dance monkey", num_frames=9, height=16, width=16, num_inference_steps=steps,
                  output_type="pt", generator=torch.Generator().manual_seed(0)) | kwargs  # fmt: skip
    return pipe(**kwargs).frames


@pytest.fixture(scope="module")
def pipe():
    pipe = tiny_pipeline("5b", "t2v")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def uncached(pipe):
    return run(pipe)


@pytest.fixture
def cached(pipe):
    def enable(config: TeaCacheConfig):
        pipe.enable_step_cache(config)
        return pipe

    yield enable
    if teacache_stats(pipe.transformer) is not None:
        pipe.disable_step_cache()


def test_threshold_zero_is_identical_to_no_caching(cached, uncached):
    pipe = cached(TeaCacheConfig(threshold=0.0))
    assert torch.equal(run(pipe), uncached)
    assert pipe.step_cache_stats.calls == [[True] * 8]


def test_large_threshold_skips_steps_but_not_the_first_and_last(cached, uncached):
    pipe = cached(TeaCacheConfig(threshold=1e9))
    frames = run(pipe)
    (decisions,) = pipe.step_cache_stats.calls
    assert decisions == [True] + [False] * 6 + [True]
    assert torch.isfinite(frames).all() and frames.shape == uncached.shape
    assert (frames - uncached).abs().max() > 0


def test_more_threshold_skips_more(pipe, uncached):
    skipped = []
    for threshold in (0.0, 0.05, 0.5, 1e9):
        pipe.enable_step_cache(threshold=threshold)
        run(pipe)
        skipped.append(pipe.step_cache_stats.skipped)
        pipe.disable_step_cache()
    assert skipped == sorted(skipped) and skipped[0] == 0 and skipped[-1] == 6


def test_warmup_steps_always_run(cached):
    pipe = cached(TeaCacheConfig(threshold=1e9, warmup_steps=3, compute_last_step=False))
    run(pipe)
    assert pipe.step_cache_stats.calls == [[True] * 3 + [False] * 5]


def test_state_resets_between_videos(cached):
    pipe = cached(TeaCacheConfig(threshold=0.3))
    first, second = run(pipe), run(pipe)
    assert torch.equal(first, second)
    calls = pipe.step_cache_stats.calls
    assert len(calls) == 2 and calls[0] == calls[1]


def test_disabling_restores_the_uncached_model(pipe, uncached):
    pipe.enable_step_cache(threshold=1e9)
    run(pipe)
    pipe.disable_step_cache()
    assert pipe.step_cache_stats is None
    assert torch.equal(run(pipe), uncached)


def test_cfg_batch_caches_one_residual_per_sample(cached):
    pipe = cached(TeaCacheConfig(threshold=1e9))
    run(pipe, steps=3)
    head = pipe.transformer.transformer_blocks[0]._diffusers_hook.get_hook("cogvideox_teacache_head")
    assert head.state_manager._state_cache == {}  # reset at the end of the call
    seen = {}

    def spy(p, step, timestep, tensors):
        state = head.state_manager._state_cache["cond_uncond"]
        seen[step] = state.residual[0].shape[0]
        return {}

    run(pipe, steps=3, callback_on_step_end=spy)
    assert seen == {0: 2, 1: 2, 2: 2}  # [uncond; cond] in one batch


def test_timestep_embedding_indicator_with_the_authors_polynomial(cached, uncached):
    config = TeaCacheConfig(threshold=0.2, indicator="timestep_embedding")
    pipe = cached(config)
    assert config.rescale(pipe.transformer.config) is not None
    frames = run(pipe)
    assert torch.isfinite(frames).all()


def test_a_single_block_transformer_is_head_and_tail():
    assert TINY_TRANSFORMER_CONFIGS["2b"]["num_layers"] == 1
    pipe = tiny_pipeline("2b", "t2v")
    pipe.set_progress_bar_config(disable=True)
    expected = run(pipe, steps=4)
    pipe.enable_step_cache(threshold=0.0)
    assert torch.equal(run(pipe, steps=4), expected)


def test_works_on_a_deeper_transformer_and_outside_cache_context():
    config = dict(TINY_TRANSFORMER_CONFIGS["5b"], num_layers=3)
    transformer = diffusers.CogVideoXTransformer3DModel(**config).eval()
    inputs = dict(
        hidden_states=torch.randn(2, 3, 4, 4, 4),
        encoder_hidden_states=torch.randn(2, 16, 32),
        timestep=torch.tensor([999, 999]),
        return_dict=False,
    )
    with torch.no_grad():
        expected = transformer(**inputs)[0]
        apply_teacache(transformer, TeaCacheConfig(threshold=1e9, num_inference_steps=3))
        first = transformer(**inputs)[0]
        second = transformer(**dict(inputs, timestep=torch.tensor([998, 998])))[0]
    assert torch.allclose(first, expected, atol=1e-6)
    assert teacache_stats(transformer).calls == [[True, False]]  # no step index given: calls are counted
    assert second.shape == expected.shape
    remove_teacache(transformer)


def test_cannot_enable_twice(cached):
    pipe = cached(TeaCacheConfig())
    with pytest.raises(ValueError, match="already enabled"):
        pipe.enable_step_cache()


def test_config_errors():
    with pytest.raises(ValueError, match="indicator must be one of"):
        TeaCacheConfig(indicator="residual")
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        TeaCacheConfig(threshold=-1)


def test_diffusers_cache_hooks_run_through_our_pipeline():
    """Our pipelines wrap each transformer call in ``cache_context``, so diffusers' own cache techniques work too."""
    from diffusers.hooks import FirstBlockCacheConfig

    from diffusers_cogvideox import CogVideoXPipeline, CogVideoXTransformer3DModel

    components = tiny_components("5b")
    torch.manual_seed(0)  # FirstBlockCache needs a head and a tail block
    components["transformer"] = CogVideoXTransformer3DModel(**dict(TINY_TRANSFORMER_CONFIGS["5b"], num_layers=2))
    pipe = CogVideoXPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    expected = run(pipe, steps=4)
    pipe.transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))
    assert torch.allclose(run(pipe, steps=4), expected, atol=1e-6)
