"""Native CogVLM2 and CogVLM2-Video backbones (transformers 5, no remote code) and the SAT conversion of VisionReward-Image.

``import trl_vision_reward`` (and so this package) registers the classes with the transformers Auto classes under
``model_type`` ``cogvlm2`` and ``cogvlm2_video``: ``AutoConfig``, ``AutoModelForImageTextToText``,
``AutoModelForCausalLM``, ``AutoProcessor`` and ``AutoImageProcessor`` (see ``..auto_registration``: no modeling code
is imported for that). Folders saved by these classes (or written by ``convert_sat_checkpoint``) then load through
the Auto classes.

The official Hub folders (``THUDM/cogvlm2-llama3-chat-19B``, ``THUDM/cogvlm2-video-llama3-chat``,
``THUDM/VisionReward-Video``) have no ``model_type`` and an ``auto_map`` pointing at remote code, so ``AutoConfig``
cannot resolve them without executing that code. Load them with ``load_cogvlm2`` (or the model classes directly),
which reads ``architectures`` and never needs ``trust_remote_code``::

    from trl_vision_reward.reward.cogvlm2 import load_cogvlm2
    model = load_cogvlm2("THUDM/VisionReward-Video", dtype=torch.bfloat16, device_map="auto")
    processor = load_cogvlm2_processor("THUDM/VisionReward-Video")
"""

from __future__ import annotations

import json
import os
import re
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from transformers import PreTrainedConfig

from ..auto_registration import register_auto_classes
from .configuration_cogvlm2 import (
    LANGUAGE_TOKEN_TYPE,
    OFFICIAL_VIDEO_ARCHITECTURE,
    VISION_TOKEN_TYPE,
    CogVLM2Config,
    CogVLM2VideoConfig,
    CogVLM2VisionConfig,
)

if TYPE_CHECKING:
    from .processing_cogvlm2 import CogVLM2Processor

# Modeling and processing are imported on first use (both pull in torch-heavy transformers modules).
_LAZY = {
    "CogVLM2ForConditionalGeneration": ".modeling_cogvlm2",
    "CogVLM2Model": ".modeling_cogvlm2",
    "CogVLM2PreTrainedModel": ".modeling_cogvlm2",
    "CogVLM2VideoForConditionalGeneration": ".modeling_cogvlm2",
    "bitsandbytes_config": ".modeling_cogvlm2",
    "build_position_ids": ".modeling_cogvlm2",
    "rope_inv_freq": ".modeling_cogvlm2",
    "vision_expert_mask": ".modeling_cogvlm2",
    "weight_memory_bytes": ".modeling_cogvlm2",
    "CogVLM2ImageProcessor": ".processing_cogvlm2",
    "CogVLM2Processor": ".processing_cogvlm2",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


register_auto_classes()


def is_video_config(config_dict: dict) -> bool:
    """Whether a config.json (official or ours) describes CogVLM2-Video."""
    if config_dict.get("model_type") in (CogVLM2Config.model_type, CogVLM2VideoConfig.model_type):
        return config_dict["model_type"] == CogVLM2VideoConfig.model_type
    return OFFICIAL_VIDEO_ARCHITECTURE in (config_dict.get("architectures") or [])


def load_cogvlm2(
    pretrained_model_name_or_path: str | os.PathLike,
    strict: bool = True,
    rope_tables: Literal["checkpoint", "float32"] = "checkpoint",
    **kwargs,
):
    """Load an official CogVLM2 / CogVLM2-Video / VisionReward-Video checkpoint, or one saved by this package.

    Picks the image or video class from ``architectures`` (``CogVLMForCausalLM`` / ``CogVLMVideoForCausalLM``) or
    ``model_type``; ``kwargs`` go to ``from_pretrained`` (``dtype``, ``device_map``, ``quantization_config``, ...).
    With ``strict`` (default) a checkpoint whose tensors do not match the model - missing, unknown or misshapen
    names - raises, listing them, instead of leaving randomly initialised weights behind.

    ``rope_tables="checkpoint"`` (default) reads the official ``rotary_emb.inv_freq`` buffer when the checkpoint
    stores one and builds the RoPE cos/sin tables in its dtype from its values, as the official remote code does
    (bit for bit in a bfloat16 forward when the buffer is bfloat16: the numerics the released weights were run and
    evaluated with). ``"float32"`` computes the angles in float32 instead (exact RoPE, slightly different logits).
    """
    if rope_tables not in ("checkpoint", "float32"):
        raise ValueError(f"rope_tables must be 'checkpoint' or 'float32'; got {rope_tables!r}")
    from .modeling_cogvlm2 import CogVLM2ForConditionalGeneration, CogVLM2VideoForConditionalGeneration

    hub_kwargs = {key: kwargs[key] for key in ("revision", "token", "cache_dir", "local_files_only") if key in kwargs}
    config_dict, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    model_class = (
        CogVLM2VideoForConditionalGeneration if is_video_config(config_dict) else CogVLM2ForConditionalGeneration
    )
    if strict:  # report misshapen tensors by name below rather than through transformers' generic error
        kwargs.setdefault("ignore_mismatched_sizes", True)
    model, info = model_class.from_pretrained(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
    problems = {key: sorted(info.get(key) or []) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if strict and any(problems.values()):
        details = "; ".join(f"{key.replace('_', ' ')}: {names}" for key, names in problems.items() if names)
        raise ValueError(
            f"{pretrained_model_name_or_path} does not match {model_class.__name__} ({details}). Is it a CogVLM2 "
            "checkpoint in the official layout? Pass strict=False to load anyway."
        )
    if rope_tables == "float32":
        model.config.rope_inv_freq_dtype = "float32"
    else:
        stored = stored_rope_inv_freq(pretrained_model_name_or_path, **hub_kwargs)
        if stored is not None:
            model.config.rope_inv_freq_dtype = str(stored.dtype).removeprefix("torch.")
            model.model.rotary_emb.official_inv_freq = stored
    return model


def stored_rope_inv_freq(pretrained_model_name_or_path: str | os.PathLike, **hub_kwargs) -> torch.Tensor | None:
    """The first ``rotary_emb.inv_freq`` buffer a safetensors checkpoint stores (as stored), or None.

    The official remote code registers one persistent buffer per layer, all equal; its dtype is the checkpoint's
    (bfloat16 in the released ones), and it sets the precision of the official RoPE tables.
    """
    from safetensors import safe_open
    from transformers.utils import cached_file

    def resolve(name):
        return cached_file(
            pretrained_model_name_or_path, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs
        )

    index = resolve("model.safetensors.index.json")
    if index is not None:
        weight_map = json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"]
    else:
        single = resolve("model.safetensors")
        if single is None:
            return None
        with safe_open(single, "pt") as handle:
            weight_map = dict.fromkeys(handle.keys(), "model.safetensors")
    names = sorted((k for k in weight_map if k.endswith("rotary_emb.inv_freq")), key=_layer_order)
    if not names:
        return None
    with safe_open(resolve(weight_map[names[0]]), "pt") as handle:
        return handle.get_tensor(names[0])


def _layer_order(name: str) -> tuple[int, str]:
    match = re.search(r"layers\.(\d+)\.", name)
    return (int(match.group(1)) if match else -1, name)


def load_cogvlm2_processor(
    pretrained_model_name_or_path: str | os.PathLike, tokenizer=None, **kwargs
) -> CogVLM2Processor:
    """The processor of a checkpoint: its saved ``processor_config.json`` if any, else one built from ``config.json``
    (image size, patch size, image or video) and the folder's tokenizer - or ``tokenizer`` (a path, id or object;
    VisionReward-Image uses ``meta-llama/Meta-Llama-3-8B-Instruct``'s)."""
    from transformers import AutoTokenizer
    from transformers.utils import cached_file

    from .processing_cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor

    hub_kwargs = {key: kwargs[key] for key in ("revision", "token", "cache_dir", "local_files_only") if key in kwargs}
    saved = cached_file(
        pretrained_model_name_or_path,
        "processor_config.json",
        _raise_exceptions_for_missing_entries=False,
        **hub_kwargs,
    )
    if saved is not None and tokenizer is None:
        return CogVLM2Processor.from_pretrained(pretrained_model_name_or_path, **kwargs)
    config_dict, _ = PreTrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
    video = is_video_config(config_dict)
    vision = CogVLM2VisionConfig(**config_dict.get("vision_config", {"image_size": 224 if video else 1344}))
    image_processor = CogVLM2ImageProcessor(image_size=vision.image_size, patch_size=vision.patch_size, is_video=video)
    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer or pretrained_model_name_or_path, **hub_kwargs)
    return CogVLM2Processor(image_processor, tokenizer, max_num_frames=config_dict.get("max_num_frames", 24))


__all__ = [
    "LANGUAGE_TOKEN_TYPE",
    "VISION_TOKEN_TYPE",
    "CogVLM2Config",
    "CogVLM2ForConditionalGeneration",
    "CogVLM2ImageProcessor",
    "CogVLM2Model",
    "CogVLM2PreTrainedModel",
    "CogVLM2Processor",
    "CogVLM2VideoConfig",
    "CogVLM2VideoForConditionalGeneration",
    "CogVLM2VisionConfig",
    "bitsandbytes_config",
    "build_position_ids",
    "is_video_config",
    "load_cogvlm2",
    "load_cogvlm2_processor",
    "stored_rope_inv_freq",
    "vision_expert_mask",
    "weight_memory_bytes",
]
