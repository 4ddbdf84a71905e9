"""Tiny random components built locally, with no download: the embedded default and the test fixtures.

Everything here has random weights. It exists so that the CLI, the quickstart and the tests run on a machine with no
Hub access; the outputs are noise, and every entry point that uses these says so.
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch

TINY_TEXT_DIM = 32
TINY_MAX_TEXT_LENGTH = 16

_CORPUS = [
    "a panda playing a guitar in a bamboo forest, cinematic lighting",
    "dance monkey",
    "a cat sleeping on a red sofa next to a window at sunset",
    "the quick brown fox jumps over the lazy dog",
    "an astronaut riding a horse on the moon, high quality, detailed",
    "waves crash on a rocky beach while seagulls fly overhead",
    "abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'\"-()",
]


@lru_cache(maxsize=1)
def _unigram_vocab(vocab_size: int = 160) -> tuple[tuple[str, float], ...]:
    from tokenizers import SentencePieceUnigramTokenizer

    trainer = SentencePieceUnigramTokenizer()
    trainer.train_from_iterator(
        _CORPUS * 8,
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    return tuple((piece, score) for piece, score in json.loads(trainer.to_str())["model"]["vocab"])


def tiny_t5_tokenizer():
    """A T5 (SentencePiece-unigram) tokenizer trained in milliseconds on a fixed corpus; deterministic."""
    from transformers import T5Tokenizer

    return T5Tokenizer(vocab=list(_unigram_vocab()), extra_ids=0)


def tiny_t5_encoder(d_model: int = TINY_TEXT_DIM, seed: int = 0):
    """A 2-layer random ``T5EncoderModel`` whose hidden size matches the tiny transformers' ``text_embed_dim``."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(_unigram_vocab()),
        d_model=d_model,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    torch.manual_seed(seed)
    return T5EncoderModel(config).eval()
