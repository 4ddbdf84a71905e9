"""``cogvideox convert``: official SAT checkpoints -> a diffusers-layout folder (``transformer/``, ``vae/``).

    cogvideox convert --variant 5b --transformer transformer/1000/mp_rank_00_model_states.pt --vae vae/3d-vae.pt \
        --out CogVideoX-5b-converted --dtype bf16

Each part is written with ``save_pretrained`` (safetensors + ``config.json``) into its sub-folder, the layout of the Hub
repositories, so ``CogVideoXTransformer3DModel.from_pretrained(out, subfolder="transformer")`` loads it. The text
encoder, tokenizer and scheduler are not part of the SAT checkpoints and are not written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

VARIANTS = ("2b", "5b", "5b-i2v", "1.5-5b", "1.5-5b-i2v")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "keep": None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, choices=VARIANTS, help="which official model the checkpoint is")
    parser.add_argument("--transformer", type=Path, help="SAT transformer checkpoint (.pt / .safetensors)")
    parser.add_argument("--vae", type=Path, help="SAT VAE checkpoint (.pt / .safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (gets transformer/ and vae/)")
    parser.add_argument(
        "--dtype", choices=list(DTYPES), default="keep", help="store the weights in this dtype (default: as found)"
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle arbitrary objects in .pt files (SAT training checkpoints hold some); only for files you trust",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier conversion wrote to --out (deleted once the new one is saved; nothing else)",
    )


def load_checkpoint(path: Path, trust: bool = False) -> dict:
    """Tensors of a checkpoint file; ``.pt`` files are read with ``weights_only`` unless ``trust`` is set."""
    import pickle

    import torch

    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=not trust)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} holds Python objects besides tensors, which are not loaded by default; if you trust the file, "
            f"pass --trust-checkpoint ({error})"
        ) from error


def run(args: argparse.Namespace) -> int:
    import sys

    from ..errors import UsageError
    from ..outputs import OutputFolder

    if args.transformer is None and args.vae is None:
        raise UsageError("give --transformer, --vae or both")
    for path in (args.vae, args.transformer):
        if path is not None and not path.is_file():
            raise FileNotFoundError(2, "checkpoint not found", str(path))
    folder = OutputFolder.claim(
        args.out,
        "cogvideox convert",
        inputs=[args.transformer, args.vae],
        overwrite=args.overwrite,
        reserved=("transformer", "vae"),  # save_pretrained replaces files there
    )
    try:
        with folder:  # an earlier conversion is deleted once this one is saved; a failure puts it back
            convert(args)
            folder.record_new()
        return 0
    except (ValueError, FileNotFoundError) as error:  # mismatched keys, wrong variant, unreadable file: say which
        print(f"cogvideox convert: {error}", file=sys.stderr)
        return 1


def convert(args: argparse.Namespace) -> int:
    from ..conversion import convert_sat_transformer, transformer_config
    from ..conversion.vae import convert_sat_vae, vae_config

    dtype_name = DTYPES[args.dtype]
    vae = None
    if args.vae is not None:  # the small part first, so that its key errors show before the long transformer work
        print(f"converting the {args.variant} VAE from {args.vae}")
        vae = convert_sat_vae(load_checkpoint(args.vae, args.trust_checkpoint), args.variant)
    if args.transformer is not None:
        print(f"converting the {args.variant} transformer from {args.transformer}")
        converted = convert_sat_transformer(load_checkpoint(args.transformer, args.trust_checkpoint), args.variant)
        save_pretrained_from_state_dict(
            "transformer", converted, transformer_config(args.variant), args.out, dtype_name
        )
        del converted
    if vae is not None:
        save_pretrained_from_state_dict("vae", vae, vae_config(args.variant), args.out, dtype_name)
    return 0


def save_pretrained_from_state_dict(
    part: str, state_dict: dict, config: dict, out: Path, dtype_name: str | None
) -> None:
    """``save_pretrained`` of our ``part`` model (``transformer`` / ``vae``) holding ``state_dict``, into ``out/part``."""
    import torch
    from accelerate import init_empty_weights

    if part == "transformer":
        from ..models.transformer_cogvideox import CogVideoXTransformer3DModel as model_class
    else:
        from ..models.autoencoder_kl_cogvideox import AutoencoderKLCogVideoX as model_class

    if dtype_name is not None:
        dtype = getattr(torch, dtype_name)
        state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    with init_empty_weights():  # no second copy of the weights: the converted tensors are assigned in place
        model = model_class(**config)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.save_pretrained(out / part, safe_serialization=True)
    print(f"wrote {out / part}")
