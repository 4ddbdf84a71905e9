"""Bucket policy, the staged bucket sampler, stage schedules and the shared diffusion math."""

import pytest
import torch

from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS
from diffusers_cogvideox.training.buckets import (
    Bucket,
    StagedBucketBatchSampler,
    assign_bucket,
    check_bucket,
    frame_indices,
    parse_bucket,
    resize_and_crop,
)
from diffusers_cogvideox.training.stages import StageSchedule, parse_stages

BUCKETS = [parse_bucket(b) for b in ("9x32x32", "17x32x48", "1x32x32")]


def test_assign_bucket_picks_the_closest_aspect_among_buckets_short_enough():
    assert assign_bucket(20, 64, 96, BUCKETS) == (Bucket(17, 32, 48), None)
    assert assign_bucket(20, 64, 64, BUCKETS) == (Bucket(9, 32, 32), None)
    assert assign_bucket(12, 64, 96, BUCKETS)[0] is None  # 17 frames do not fit, 9x32x32 distorts by 50%
    assert assign_bucket(12, 64, 96, BUCKETS, max_aspect_change=0.6)[0] == Bucket(9, 32, 32)
    assert assign_bucket(1, 40, 40, BUCKETS) == (Bucket(1, 32, 32), None)


def test_assign_bucket_rejects_with_a_reason():
    bucket, reason = assign_bucket(5, 32, 32, BUCKETS)
    assert bucket is None and "shorter than the smallest bucket (9 frames)" in reason
    bucket, reason = assign_bucket(20, 32, 128, BUCKETS)
    assert bucket is None and "aspect ratio 128x32 fits no bucket" in reason


def test_frames_and_resize_follow_the_official_rules():
    assert frame_indices(20, 9) == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    video = torch.rand(3, 3, 40, 90)
    out = resize_and_crop(video, 32, 48)
    assert out.shape == (3, 3, 32, 48)


def test_check_bucket_names_what_the_transformer_accepts():
    with pytest.raises(ValueError, match="frames must be 4k\\+1"):
        check_bucket(parse_bucket("8x32x32"), TINY_TRANSFORMER_CONFIGS["2b"])
    with pytest.raises(ValueError, match="multiples of 16"):
        check_bucket(parse_bucket("9x40x32"), TINY_TRANSFORMER_CONFIGS["2b"])
    with pytest.raises(ValueError, match="learned positional embeddings for 9x32x32 only"):
        check_bucket(parse_bucket("9x32x48"), TINY_TRANSFORMER_CONFIGS["5b-i2v"])
    check_bucket(parse_bucket("9x32x32"), TINY_TRANSFORMER_CONFIGS["5b-i2v"])


def test_sampler_is_deterministic_one_bucket_per_batch_and_stage_ordered():
    stage_buckets = [{"9x32x32": [0, 1, 2], "17x32x48": [3, 4]}, {"9x32x32": [5, 6, 7, 8]}]
    make = lambda seed: StagedBucketBatchSampler(stage_buckets, [3, 2], [2, 2], batches_per_step=2, seed=seed)  # noqa: E731
    batches = list(make(0))
    assert len(batches) == len(make(0)) == 10 and batches == list(make(0)) and batches != list(make(1))
    owner = {i: (s, b) for s, buckets in enumerate(stage_buckets) for b, rows in buckets.items() for i in rows}
    for k, batch in enumerate(batches):
        assert len({owner[i] for i in batch}) == 1  # one stage and one bucket
        assert owner[batch[0]][0] == (0 if k < 6 else 1)


def test_image_ratio_sets_the_share_of_image_batches():
    sampler = StagedBucketBatchSampler(
        [{"1x32x32": list(range(50)), "9x32x32": list(range(50, 60))}], [400], [1], image_ratio=[0.25]
    )
    images = sum(b[0] < 50 for b in sampler)
    assert 70 < images < 130  # 25% of 400


def test_stage_schedule_steps_and_learning_rates():
    stages = parse_stages(
        [
            {"name": "low", "buckets": ["9x32x32"], "max_steps": 4, "learning_rate": 1e-3, "warmup_steps": 2},
            {"name": "high", "buckets": ["9x32x48"], "num_epochs": 1, "learning_rate": 5e-4, "lr_shape": "cosine"},
        ]
    )
    schedule = StageSchedule(stages, [4, stages[1].steps_for(8, 2)])
    assert schedule.steps == [4, 4] and schedule.total_steps == 8
    assert [schedule.stage_at(s) for s in (0, 3, 4, 7)] == [(0, 0), (0, 3), (1, 0), (1, 3)]
    lrs = [schedule.lr_multiplier(s, 1e-3) for s in range(8)]
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.0, 1.0]) and lrs[4] == pytest.approx(0.5) and lrs[7] < lrs[5]


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"buckets": ["9x32x32"]}, "exactly one of max_steps or num_epochs"),
        ({"buckets": [], "max_steps": 1}, "at least one"),
        ({"buckets": ["9x32"], "max_steps": 1}, "FRAMESxHEIGHTxWIDTH"),
        ({"buckets": ["9x32x32"], "max_steps": 1, "resolution": 3}, "unknown keys \\['resolution'\\]"),
    ],
)
def test_bad_stages_raise_naming_the_problem(stage, message):
    with pytest.raises(ValueError, match=message):
        parse_stages([stage])


def test_mpo_uses_the_shared_diffusion_math_and_denoiser_code():
    from diffusers_cogvideox.training import denoiser, diffusion
    from trl_vision_reward.mpo import losses, trainer

    assert losses.noisy_and_target is diffusion.noisy_and_target
    assert losses.sample_timesteps_explicit_uniform is diffusion.sample_timesteps_explicit_uniform
    assert trainer.denoise is denoiser.denoise and trainer.save_lora_weights is denoiser.save_lora_weights
