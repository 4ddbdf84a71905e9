"""Native CogVLM2 and CogVLM2-Video backbones (transformers 5, no remote code) and the SAT conversion of VisionReward-Image.

Importing this package registers the classes with the transformers Auto classes under ``model_type`` ``cogvlm2`` and
``cogvlm2_video``: ``AutoConfig``, ``AutoModelForImageTextToText``, ``AutoModelForCausalLM``, ``AutoProcessor`` and
``AutoImageProcessor``. Folders saved by these classes (or written by ``convert_sat_checkpoint``) then load through the
Auto classes.

The official Hub folders (``THUDM/cogvlm2-llama3-chat-19B``, ``THUDM/cogvlm2-video-llama3-chat``,
``THUDM/VisionReward-Video``) have no ``model_type`` and an ``auto_map`` pointing at remote code, so ``AutoConfig``
cannot resolve them without executing that code. Load them with ``load_cogvlm2`` (or the model classes directly),
which reads ``architectures`` and never needs ``trust_remote_code``::

    from trl_vision_reward.reward.cogvlm2 import load_cogvlm2
    model = load_cogvlm2("THUDM/VisionReward-Video", dtype=torch.bfloat16, device_map="auto")
    processor = load_cogvlm2_processor("THUDM/VisionReward-Video")
"""

from __future__ import annotations

import os

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    PreTrainedConfig,
)

from .configuration_cogvlm2 import (
    LANGUAGE_TOKEN_TYPE,
    OFFICIAL_VIDEO_ARCHITECTURE,
    VISION_TOKEN_TYPE,
    CogVLM2Config,
    CogVLM2VideoConfig,
    CogVLM2VisionConfig,
)
from .modeling_cogvlm2 import (
    CogVLM2ForConditionalGeneration,
    CogVLM2Model,
    CogVLM2PreTrainedModel,
    CogVLM2VideoForConditionalGeneration,
    bitsandbytes_config,
    build_position_ids,
    vision_expert_mask,
    weight_memory_bytes,
)
from .processing_cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor


def _register() -> None:
    for config_class, model_class in (
        (CogVLM2Config, CogVLM2ForConditionalGeneration),
        (CogVLM2VideoConfig, CogVLM2VideoForConditionalGeneration),
    ):
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModelForImageTextToText.register(config_class, model_class, exist_ok=True)
        AutoModelForCausalLM.register(config_class, model_class, exist_ok=True)
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": CogVLM2ImageProcessor}, exist_ok=True)
        AutoProcessor.register(config_class, CogVLM2Processor, exist_ok=True)


_register()


def is_video_config(config_dict: dict) -> bool:
    """Whether a config.json (official or ours) describes CogVLM2-Video."""
    if config_dict.get("model_type") in (CogVLM2Config.model_type, CogVLM2VideoConfig.model_type):
        return config_dict["model_type"] == CogVLM2VideoConfig.model_type
    return OFFICIAL_VIDEO_ARCHITECTURE in (config_dict.get("architectures") or [])


def load_cogvlm2(pretrained_model_name_or_path: str | os.PathLike, strict: bool = True, **kwargs):
    """Load an official CogVLM2 / CogVLM2-Video / VisionReward-Video checkpoint, or one saved by this package.

    Picks the image or video class from ``architectures`` (``CogVLMForCausalLM`` / ``CogVLMVideoForCausalLM``) or
    ``model_type``; ``kwargs`` go to ``from_pretrained`` (``dtype``, ``device_map``, ``quantization_config``, ...).
    With ``strict`` (default) a checkpoint whose tensors do not match the model - missing, unknown or misshapen
    names - raises, listing them, instead of leaving randomly initialised weights behind.
    """
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
    return model


def load_cogvlm2_processor(
    pretrained_model_name_or_path: str | os.PathLike, tokenizer=None, **kwargs
) -> CogVLM2Processor:
    """The processor of a checkpoint: its saved ``processor_config.json`` if any, else one built from ``config.json``
    (image size, patch size, image or video) and the folder's tokenizer - or ``tokenizer`` (a path, id or object;
    VisionReward-Image uses ``meta-llama/Meta-Llama-3-8B-Instruct``'s)."""
    from transformers import AutoTokenizer
    from transformers.utils import cached_file

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
    "vision_expert_mask",
    "weight_memory_bytes",
]
