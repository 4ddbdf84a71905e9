"""Offline test fixtures in one place: tiny tokenizers, text encoders, configs and Hub-like folders.

Nothing here downloads. Package-level builders (``diffusers_cogvideox.tiny`` and friends) hold the parts that the
embedded defaults also use; this module adds what only tests need.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from diffusers_cogvideox.tiny import tiny_t5_encoder, tiny_t5_tokenizer  # noqa: F401  (re-exported for tests)


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
