"""Offline test fixtures in one place: tiny tokenizers, text encoders, configs and Hub-like folders.

Nothing here downloads. Package-level builders (``diffusers_cogvideox.tiny`` and friends) hold the parts that the
embedded defaults also use; this module adds what only tests need.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from diffusers_cogvideox.tiny import tiny_t5_encoder, tiny_t5_tokenizer  # noqa: F401  (re-exported for tests)
from trl_vision_reward.reward.tiny import (  # noqa: F401  (re-exported for tests)
    save_tiny_vision_reward,
    tiny_qwen2_vl,
    tiny_qwen2_vl_config,
    tiny_qwen2_vl_processor,
    tiny_qwen2_vl_tokenizer,
    tiny_vision_reward,
)


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synthetic_mpo_pairs(n: int = 32, seed: int = 0, latent_shape=(2, 4, 4, 4), text_shape=(16, 32)):
    """Latent preference pairs with a learnable preference (MPO trainer tests), as a ``datasets.Dataset``.

    Chosen latents are ``+pattern + noise`` and rejected ``-pattern + noise``, with one fixed ``pattern`` (so pairs
    drawn with different seeds share the preference) and a random text embedding per prompt. ``latent_shape`` is
    ``[F, C, H, W]`` for CogVideoX or ``[C, H, W]`` for UNets.
    """
    import datasets

    pattern = torch.randn(latent_shape, generator=torch.Generator().manual_seed(12345))
    g = torch.Generator().manual_seed(seed)
    rows = [
        {
            "prompt": f"synthetic prompt {seed}-{i}",
            "chosen_latents": (pattern + 0.3 * torch.randn(latent_shape, generator=g)).numpy(),
            "rejected_latents": (-pattern + 0.3 * torch.randn(latent_shape, generator=g)).numpy(),
            "prompt_embeds": torch.randn(text_shape, generator=g).numpy(),
        }
        for i in range(n)
    ]
    return datasets.Dataset.from_list(rows)
