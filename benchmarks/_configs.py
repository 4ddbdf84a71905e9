"""Benchmark model shapes shared by the scripts, so the same flags mean the same model everywhere."""

from __future__ import annotations

import argparse


def add_scaled_transformer_arguments(parser: argparse.ArgumentParser, text_length: int, frames: int) -> None:
    """The device, dtype and scaled-transformer flags read by ``scaled_5b_transformer_config`` (latent sizes)."""
    import torch

    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--text-dim", type=int, default=512)
    parser.add_argument("--text-length", type=int, default=text_length)
    parser.add_argument("--frames", type=int, default=frames, help="latent frames")
    parser.add_argument("--height", type=int, default=8, help="latent height")
    parser.add_argument("--width", type=int, default=8, help="latent width")


def scaled_5b_transformer_config(args: argparse.Namespace) -> dict:
    """A CogVideoX-5b-shaped transformer (RoPE, expert AdaLN, qk-norm) scaled down by the command-line flags."""
    return dict(
        num_attention_heads=args.heads,
        attention_head_dim=args.head_dim,
        in_channels=16,
        out_channels=16,
        time_embed_dim=512,
        text_embed_dim=args.text_dim,
        num_layers=args.layers,
        sample_frames=(args.frames - 1) * 4 + 1,
        sample_height=args.height,
        sample_width=args.width,
        max_text_seq_length=args.text_length,
        use_rotary_positional_embeddings=True,
    )


# The official transformers' configs (the keys that differ from the class defaults, which describe CogVideoX-2b).
OFFICIAL_TRANSFORMER_CONFIGS: dict[str, dict] = {
    "2b": dict(),
    "5b": dict(num_attention_heads=48, num_layers=42, use_rotary_positional_embeddings=True),
    "1.5-5b": dict(
        num_attention_heads=48,
        num_layers=42,
        use_rotary_positional_embeddings=True,
        sample_frames=81,
        sample_height=300,
        sample_width=300,
        patch_size_t=2,
        patch_bias=False,
    ),
}
# (num_frames, height, width) in pixels of the clip each variant is benchmarked at: the official default sizes.
OFFICIAL_VIDEO_SIZES: dict[str, tuple[int, int, int]] = {
    "2b": (49, 480, 720),
    "5b": (49, 480, 720),
    "1.5-5b": (81, 768, 1360),
}
