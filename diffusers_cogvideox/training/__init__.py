"""Fine-tuning CogVideoX: the SFT config and trainer, buckets, stages, latent precompute and the shared diffusion math.

Heavy modules load on first use, so importing the noising math does not import ``transformers.Trainer``.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CogVideoXSFTConfig": ".config",
    "CogVideoXSFTTrainer": ".trainer",
    "CachedLatentDataset": ".data",
    "ClipFrameDataset": ".data",
    "Stage": ".stages",
    "StageSchedule": ".stages",
    "Bucket": ".buckets",
    "StagedBucketBatchSampler": ".buckets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffusers_cogvideox.training' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
