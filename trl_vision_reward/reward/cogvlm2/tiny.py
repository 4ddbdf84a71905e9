"""Tiny random CogVLM2 and CogVLM2-Video built locally (no download): shapes of the real ones, sizes of a toy.

Random weights: useful for tests and for exercising the code paths, never for scores. The tokenizer is a byte-level
BPE trained in milliseconds on a fixed corpus with the Llama-3 special tokens (``<|begin_of_text|>``,
``<|end_of_text|>``, ``<|reserved_special_token_0|>``) in the bos / eos / pad roles the real ids 128000-128002 play.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from .configuration_cogvlm2 import CogVLM2Config, CogVLM2VideoConfig

TINY_IMAGE_SIZE = 28  # 4x4 patches of 7 px -> 2x2 pooled -> 4 + boi + eoi = 6 positions per image
TINY_PATCH_SIZE = 7

_CORPUS = [
    "Question: Is the image clear? Short answer: yes",
    "Question: Is there a man in the video? Answer: no",
    "Does the image show a panda playing a guitar in a bamboo forest?",
    "Is the lighting natural, are the colors harmonious, is the composition balanced?",
    "yes no Yes No 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:!?'\"-()",
]
_SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]


@lru_cache(maxsize=2)
def _tokenizer_json(vocab_size: int = 320) -> str:
    from ..tiny import checklist_texts, train_byte_level_bpe

    corpus = _CORPUS * 4
    if vocab_size > 320:  # more merges: learn the checklists' words too, so questions split word by word
        corpus += checklist_texts() * 4
    return train_byte_level_bpe(corpus, vocab_size, _SPECIAL_TOKENS).to_str()


def tiny_cogvlm2_tokenizer(vocab_size: int = 320):
    """Deterministic byte-level BPE tokenizer; bos=0, eos=1, pad=2. A ``vocab_size`` above 320 also trains on the
    VisionReward checklists (benchmarks: questions tokenized about as coarsely as by Llama-3's tokenizer)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token=_SPECIAL_TOKENS[0],
        eos_token=_SPECIAL_TOKENS[1],
        pad_token=_SPECIAL_TOKENS[2],
    )


def tiny_cogvlm2_config(video: bool = False, **overrides) -> CogVLM2Config:
    """A 2-layer language model (4 heads, 2 key/value heads) over a 2-layer vision tower, both 64 wide.

    Widths are multiples of 64 so that bitsandbytes' 4-bit blocks (64 weights) fit every linear layer.
    """
    tokenizer = tiny_cogvlm2_tokenizer()
    kwargs = dict(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_heads=4,
            image_size=TINY_IMAGE_SIZE,
            patch_size=TINY_PATCH_SIZE,
        ),
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_multi_query_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    kwargs.update(overrides)
    return (CogVLM2VideoConfig if video else CogVLM2Config)(**kwargs)


def tiny_cogvlm2_model(video: bool = False, seed: int = 0, **overrides):
    """Random tiny model in eval mode (float32, SDPA attention)."""
    from .modeling_cogvlm2 import CogVLM2ForConditionalGeneration, CogVLM2VideoForConditionalGeneration

    config = tiny_cogvlm2_config(video=video, **overrides)
    torch.manual_seed(seed)
    model_class = CogVLM2VideoForConditionalGeneration if video else CogVLM2ForConditionalGeneration
    return model_class(config).eval()


def tiny_cogvlm2_processor(video: bool = False, **kwargs):
    from .processing_cogvlm2 import CogVLM2ImageProcessor, CogVLM2Processor

    image_processor = CogVLM2ImageProcessor(image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, is_video=video)
    return CogVLM2Processor(image_processor, tiny_cogvlm2_tokenizer(), **kwargs)


__all__ = ["tiny_cogvlm2_config", "tiny_cogvlm2_model", "tiny_cogvlm2_processor", "tiny_cogvlm2_tokenizer"]
