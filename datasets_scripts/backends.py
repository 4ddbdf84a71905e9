"""Samplers and scorers for the generate-and-score job (they live beside their models; named here for the jobs).

- :mod:`diffusers_cogvideox.sampling`: ``load_pipeline``, ``PipelineSampler`` and ``is_tiny``;
- :mod:`trl_vision_reward.reward.sample_scorer`: ``load_vision_reward`` and ``VisionRewardSampleScorer``.
"""

from diffusers_cogvideox.sampling import TINY, PipelineSampler, is_tiny, load_pipeline
from trl_vision_reward.reward.sample_scorer import VisionRewardSampleScorer, load_vision_reward

__all__ = ["TINY", "PipelineSampler", "VisionRewardSampleScorer", "is_tiny", "load_pipeline", "load_vision_reward"]
