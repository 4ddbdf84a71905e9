"""VisionReward on the transformers API, its training, and MPO (multi-objective Diffusion-DPO) on the TRL pattern.

Public names are resolved lazily so that importing the package does not import torch-heavy modules.
"""

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    # name: module (relative). Each area adds its public names here.
}

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trl_vision_reward' has no attribute {name!r}; it exports {sorted(_EXPORTS)}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
