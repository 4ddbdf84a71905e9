"""CogVideoX on the diffusers API: checkpoint-compatible models, pipelines and tools.

Classes are resolved lazily so that ``import diffusers_cogvideox`` stays cheap and so that
``model_index.json`` entries naming this package resolve through ``getattr``.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CogVideoXTransformer3DModel": ".models.transformer_cogvideox",
    "AutoencoderKLCogVideoX": ".models.autoencoder_kl_cogvideox",
    "CogVideoXPipeline": ".pipelines.pipeline_cogvideox",
    "CogVideoXImageToVideoPipeline": ".pipelines.pipeline_cogvideox_image2video",
    "CogVideoXVideoToVideoPipeline": ".pipelines.pipeline_cogvideox_video2video",
    "CogVideoXPipelineOutput": ".pipelines.pipeline_output",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffusers_cogvideox' has no attribute {name!r}; it exports {__all__}")
    value = getattr(import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
