"""Tiny random Qwen2-VL backbones built locally with no download: the CLI's embedded default and the test fixtures.

The weights are random, so scores are noise; everything that uses these says so. What is real: the model class
(``Qwen2VLForConditionalGeneration``), its image processor (the torchvision backend when installed, else the PIL one),
and a byte-level BPE tokenizer trained here with the ``tokenizers`` library that has the special tokens Qwen2-VL needs
and single-token ``yes``/``no``/`` yes``/`` no``. They are bundled as a :class:`VisionRewardProcessor` (videos are
shown as their sampled frames), which needs no video decoder in the processor.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TINY_PATCH = 14  # Qwen2-VL patch size; 2x2 patches merge into one visual token (28x28 pixels per token)

# A small Qwen2-VL-style chat template (ChatML with vision markers); the scorer uses its own prompt template.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def checklist_texts() -> list[str]:
    """Every question of the full image and video checklists: the words a tiny tokenizer should learn."""
    from .checklist import Checklist

    return [text for modality in ("image", "video") for text in Checklist.load(modality, select=False).texts]


def train_byte_level_bpe(corpus: list[str], vocab_size: int, special_tokens: list[str]):
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 / Llama-3 / Qwen2 style) trained on ``corpus`` in
    milliseconds; deterministic for a given corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def _corpus() -> list[str]:
    texts = checklist_texts()
    texts += [
        "Question: Short answer: yes no Yes No yes. no. answer yes answer no",
        "user assistant system You are a helpful assistant.",
        "Answer yes or no. Answer yes or no.",
        "assistant\nuser\nassistant\n",
        "a panda playing a guitar in a bamboo forest, cinematic lighting. a cat on a red sofa at sunset.",
        "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:!?'\"-()[]",
    ]
    return texts * 4 + ["yes no " * 50, " yes no" * 50]


@lru_cache(maxsize=2)
def _tokenizer_json(vocab_size: int) -> str:
    tok = train_byte_level_bpe(_corpus(), vocab_size, list(SPECIAL_TOKENS))
    for word in ("yes", "no", " yes", " no"):
        ids = tok.encode(word).ids
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer must encode {word!r} as one token; got {ids}")
    return tok.to_str()


def tiny_qwen2_vl_tokenizer(vocab_size: int = 512):
    """A Qwen2-VL-compatible fast tokenizer trained in well under a second on a fixed corpus; deterministic."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=32768,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def tiny_qwen2_vl_image_processor(image_size: int = 56, max_image_size: int = 112):
    """A Qwen2-VL image processor whose images cover [image_size**2, max_image_size**2] pixels, i.e. 4 to 16 visual
    tokens per image (28x28 pixels per token). Uses the torchvision backend when installed, else the PIL one."""
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        from transformers import Qwen2VLImageProcessor as ImageProcessor
    else:
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor
    size = {"shortest_edge": image_size * image_size, "longest_edge": max_image_size * max_image_size}
    return ImageProcessor(size=size, patch_size=TINY_PATCH, merge_size=2, temporal_patch_size=2)


def tiny_qwen2_vl_processor(
    vocab_size: int = 512, image_size: int = 56, max_image_size: int = 112, max_frames: int = 24
):
    """A :class:`VisionRewardProcessor` (tiny tokenizer + Qwen2-VL image processor, ``qwen2_vl`` prompt template)."""
    from .processing_vision_reward import VisionRewardProcessor

    return VisionRewardProcessor(
        tiny_qwen2_vl_image_processor(image_size, max_image_size),
        tiny_qwen2_vl_tokenizer(vocab_size),
        prompt_template="qwen2_vl",
        max_frames=max_frames,
        chat_template=TINY_CHAT_TEMPLATE,
    )


def tiny_qwen2_vl_config(
    tokenizer=None,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 64,
    vision_depth: int = 1,
    vision_embed_dim: int = 16,
    vision_num_heads: int = 2,
    **text_kwargs: Any,
):
    """A ``Qwen2VLConfig`` sized for tests (defaults) or for CPU benchmarks (pass larger sizes)."""
    from transformers import Qwen2VLConfig

    tokenizer = tokenizer or tiny_qwen2_vl_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = hidden_size // num_attention_heads
    # mrope sections split head_dim / 2 rotary frequencies over (temporal, height, width)
    half = head_dim // 2
    mrope = [half - 2 * (half // 3), half // 3, half // 3]
    text_config = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **text_kwargs,
    )
    vision_config = dict(
        depth=vision_depth,
        embed_dim=vision_embed_dim,
        hidden_size=hidden_size,
        num_heads=vision_num_heads,
        mlp_ratio=2,
        patch_size=TINY_PATCH,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    return Qwen2VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def tiny_qwen2_vl(
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    image_size: int = 56,
    max_image_size: int = 112,
    vocab_size: int = 512,
    **config_kwargs: Any,
):
    """``(model, processor)``: a random ``Qwen2VLForConditionalGeneration`` and a :class:`VisionRewardProcessor` for
    it (tokenizer + image processor + prompt template), built offline. ``config_kwargs`` go to
    :func:`tiny_qwen2_vl_config` (pass larger sizes for benchmarks); a larger ``vocab_size`` (up to the ~900 merges
    the corpus allows) tokenizes the checklist about as coarsely as a real LLM tokenizer does."""
    from transformers import Qwen2VLForConditionalGeneration

    processor = tiny_qwen2_vl_processor(vocab_size=vocab_size, image_size=image_size, max_image_size=max_image_size)
    config = tiny_qwen2_vl_config(processor.tokenizer, **config_kwargs)
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).to(dtype).eval()
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    return model, processor


def tiny_vision_reward(modality: str = "image", seed: int = 0, select: bool = True, **config_kwargs: Any):
    """``(model, processor)``: a :class:`VisionRewardModel` on a tiny random Qwen2-VL with the official checklist."""
    from .checklist import Checklist
    from .modeling_vision_reward import VisionRewardModel

    backbone, backbone_processor = tiny_qwen2_vl(seed=seed, **config_kwargs)
    checklist = Checklist.load(modality, select=select)
    model = VisionRewardModel.from_backbone(backbone, checklist)
    processor = backbone_processor
    return model, processor


def save_tiny_vision_reward(path: str | Path, modality: str = "image", seed: int = 0, select: bool = True) -> Path:
    """Write a tiny random VisionReward scorer as a Hub-like folder (config, safetensors, processor files)."""
    model, processor = tiny_vision_reward(modality, seed=seed, select=select)
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def tiny_world_scorer_folder() -> Path:
    """The shipped tiny-world VisionReward-Video scorer (a tiny CogVLM2-Video trained with ``train-sft`` and
    ``fit-weights`` on the tiny world's procedural judgments and preferences; see ``datasets_scripts.tiny_world``)."""
    from diffusers_cogvideox.tiny import shipped_folder

    return shipped_folder("trl_vision_reward", "tiny_world_scorer", "config.json", "scorer")
