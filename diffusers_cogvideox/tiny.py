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

# Tiny ``CogVideoXTransformer3DModel`` configs, one per official variant (same switches, toy sizes). Latents have 4
# channels (8 for image-to-video: noise + image latent). Learned positions (5b-i2v) only take the grid they were made
# for: 3 latent frames (9 video frames) of 4 x 4 latents (32 x 32 pixels).
_TINY_TRANSFORMER_COMMON = dict(
    num_attention_heads=2,
    attention_head_dim=16,  # RoPE splits the head into t/h/w parts: a multiple of 16
    in_channels=4,
    out_channels=4,
    time_embed_dim=16,
    text_embed_dim=TINY_TEXT_DIM,
    max_text_seq_length=TINY_MAX_TEXT_LENGTH,
    num_layers=1,
    sample_frames=9,
    sample_height=4,
    sample_width=4,
    patch_size=2,
    temporal_compression_ratio=4,
)
TINY_TRANSFORMER_CONFIGS: dict[str, dict] = {
    "2b": dict(_TINY_TRANSFORMER_COMMON),
    "5b": dict(_TINY_TRANSFORMER_COMMON, use_rotary_positional_embeddings=True),
    "5b-i2v": dict(
        _TINY_TRANSFORMER_COMMON,
        in_channels=8,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    ),
    "1.5-5b": dict(
        _TINY_TRANSFORMER_COMMON,
        sample_frames=17,
        sample_height=16,
        sample_width=16,
        patch_size_t=2,
        patch_bias=False,
        use_rotary_positional_embeddings=True,
    ),
    "1.5-5b-i2v": dict(
        _TINY_TRANSFORMER_COMMON,
        in_channels=8,
        sample_frames=17,
        sample_height=16,
        sample_width=16,
        patch_size_t=2,
        patch_bias=False,
        ofs_embed_dim=16,  # added to the timestep embedding, so it equals time_embed_dim
        use_rotary_positional_embeddings=True,
    ),
}

# Tiny ``AutoencoderKLCogVideoX`` configs: the official block layout (4 down / 4 up blocks, 8x spatial and 4x temporal
# compression) at toy widths. ``TINY_VAE_CONFIG`` has 4 latent channels, matching the tiny transformers;
# ``TINY_VAE_CONFIG_16`` has the official 16.
TINY_VAE_CONFIG: dict = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("CogVideoXDownBlock3D",) * 4,
    up_block_types=("CogVideoXUpBlock3D",) * 4,
    block_out_channels=(8, 8, 8, 8),
    latent_channels=4,
    layers_per_block=1,
    norm_num_groups=2,
    temporal_compression_ratio=4,
)
TINY_VAE_CONFIG_16: dict = dict(TINY_VAE_CONFIG, block_out_channels=(16, 16, 16, 16), latent_channels=16)

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
    vocab = json.loads(trainer.to_str())["model"]["vocab"]
    # the trainer's order of pieces with equal scores (and the last digits of scores) vary between processes:
    # specials first, then pieces by score rounded to 4 places and by text, so every process gets the same ids
    specials, pieces = vocab[:3], vocab[3:]
    pieces = sorted(((piece, round(score, 4)) for piece, score in pieces), key=lambda item: (-item[1], item[0]))
    return tuple((piece, score) for piece, score in [*specials, *pieces])


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


# ----------------------------------------------------------------------------------------------------------------------
# Tiny pipelines: the embedded default of `cogvideox generate` and the pipeline test fixtures
# ----------------------------------------------------------------------------------------------------------------------

PIPELINE_CLASS_NAMES = {
    "t2v": "CogVideoXPipeline",
    "i2v": "CogVideoXImageToVideoPipeline",
    "v2v": "CogVideoXVideoToVideoPipeline",
}
IMAGE_TO_VIDEO_VARIANTS = ("5b-i2v", "1.5-5b-i2v")


def _default_variant(variant: str | None, kind: str) -> str:
    if kind not in PIPELINE_CLASS_NAMES:
        raise ValueError(f"kind must be one of {sorted(PIPELINE_CLASS_NAMES)}; got {kind!r}")
    variant = variant or ("5b-i2v" if kind == "i2v" else "2b")
    if variant not in TINY_TRANSFORMER_CONFIGS:
        raise ValueError(f"variant must be one of {sorted(TINY_TRANSFORMER_CONFIGS)}; got {variant!r}")
    if (kind == "i2v") != (variant in IMAGE_TO_VIDEO_VARIANTS):
        needed = "an image-to-video" if kind == "i2v" else "a text-to-video"
        raise ValueError(f"kind={kind!r} needs {needed} variant; got {variant!r}")
    return variant


def tiny_vae_config(variant: str = "2b") -> dict:
    """The tiny VAE config with the variant's latent scaling (2b: 1.15258426, others 0.7; 1.5 inverts I2V scaling)."""
    config = dict(TINY_VAE_CONFIG)
    config["scaling_factor"] = 1.15258426 if variant == "2b" else 0.7
    config["invert_scale_latents"] = variant.startswith("1.5")
    return config


def tiny_scheduler_config(variant: str = "2b") -> dict:
    """The official repos' ``CogVideoXDDIMScheduler`` config (``snr_shift_scale`` 3.0 for 2b, 1.0 otherwise)."""
    return dict(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing="trailing",
        snr_shift_scale=3.0 if variant == "2b" else 1.0,
    )


def tiny_components(variant: str = "2b", seed: int = 0, library: str = "diffusers_cogvideox") -> dict:
    """Random tiny ``tokenizer, text_encoder, vae, transformer, scheduler`` for ``variant``.

    ``library="diffusers"`` builds diffusers' transformer and VAE classes instead of this package's (same weights
    layout): that is how the Hub-layout folders below are written.
    """
    from diffusers import CogVideoXDDIMScheduler

    if library == "diffusers":
        from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
    else:
        from .models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX
        from .models.transformer_cogvideox import CogVideoXTransformer3DModel
    torch.manual_seed(seed)
    transformer = CogVideoXTransformer3DModel(**TINY_TRANSFORMER_CONFIGS[variant]).eval()
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLCogVideoX(**tiny_vae_config(variant)).eval()
    return dict(
        tokenizer=tiny_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(seed=seed + 2),
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(**tiny_scheduler_config(variant)),
    )


def tiny_pipeline(variant: str | None = None, kind: str = "t2v", seed: int = 0):
    """A random tiny pipeline of this package: ``kind`` is t2v, i2v or v2v; ``variant`` defaults to 2b (5b-i2v for
    i2v). Random weights: the output is noise."""
    import diffusers_cogvideox

    variant = _default_variant(variant, kind)
    return getattr(diffusers_cogvideox, PIPELINE_CLASS_NAMES[kind])(**tiny_components(variant, seed))


def save_tiny_hub_folder(path, variant: str | None = None, kind: str = "t2v", seed: int = 0):
    """Write a random tiny pipeline laid out like the official Hub repo of ``variant``: ``model_index.json`` naming
    diffusers' classes (``CogVideoXPipeline`` for the text-to-video repos, ``CogVideoXImageToVideoPipeline`` for the
    I2V ones), and ``scheduler/``, ``text_encoder/``, ``tokenizer/``, ``transformer/``, ``vae/``. Returns the path."""
    import diffusers

    variant = _default_variant(variant, kind)
    pipeline_class = "CogVideoXImageToVideoPipeline" if kind == "i2v" else "CogVideoXPipeline"
    pipe = getattr(diffusers, pipeline_class)(**tiny_components(variant, seed, library="diffusers"))
    pipe.save_pretrained(path)
    return path


# ----------------------------------------------------------------------------------------------------------------------
# The trained tiny world: the embedded default (weights shipped with the package, see datasets_scripts.tiny_world)
# ----------------------------------------------------------------------------------------------------------------------

TINY_WORLD_RESOLUTION = dict(num_frames=9, height=32, width=32)
TINY_WORLD_STEPS = 10  # DDIM steps the trained tiny world is sampled with


def shipped_folder(package: str, name: str, marker: str, what: str):
    """``<package>/assets/<name>``, a model folder shipped as package data; raises (naming the rebuild command) if the
    installation lacks it, i.e. ``marker`` is not in it."""
    from importlib.resources import files
    from pathlib import Path

    folder = Path(str(files(package) / "assets" / name))
    if not (folder / marker).is_file():
        raise FileNotFoundError(
            f"the trained tiny-world {what} is missing from this installation (expected {name}/ in {package}/assets); "
            "rebuild it with `vr-datasets train-tiny-world`, or use model='random'"
        )
    return folder


def tiny_world_folder():
    """The shipped tiny-world pipeline, laid out like a Hub repo (``model_index.json``, ``transformer/``, ``vae/``,
    ``text_encoder/``, ``tokenizer/``, ``scheduler/``)."""
    return shipped_folder("diffusers_cogvideox", "tiny_world", "model_index.json", "pipeline")


def tiny_world_pipeline():
    """The trained tiny-world text-to-video pipeline (9 frames of 32 x 32 at 8 fps; prompts like
    "a red circle on a grey background")."""
    from .pipelines.pipeline_cogvideox import CogVideoXPipeline

    return CogVideoXPipeline.from_pretrained(tiny_world_folder())
