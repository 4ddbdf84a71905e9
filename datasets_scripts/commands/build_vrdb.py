"""``vr-datasets build-vrdb``: media folder + annotations -> validated, split VisionRewardDB Parquet with a card."""

from __future__ import annotations

import argparse

from diffusers_cogvideox.checks import float_range


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--media-dir", required=True, help="folder the annotations' file names are relative to")
    parser.add_argument("--annotations", required=True, help="annotations as .json (a list) or .jsonl")
    parser.add_argument("--modality", choices=["image", "video"], required=True)
    parser.add_argument("--out", required=True, help="output folder (data/*.parquet, README.md, rejects.jsonl)")
    parser.add_argument(
        "--media",
        choices=["embedded", "external"],
        default="embedded",
        help="embed media bytes in the Parquet shards, or keep relative paths and copy the files",
    )
    parser.add_argument(
        "--fractions", type=float_range(0, 1), nargs=3, default=[0.9, 0.05, 0.05], metavar=("TRAIN", "VAL", "TEST")
    )
    parser.add_argument("--salt", default="", help="changes the hash-based split assignment (default: none)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier build in --out (only the files it wrote)"
    )


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.visionrewarddb import build_visionrewarddb

    result = build_visionrewarddb(
        args.media_dir,
        args.annotations,
        args.modality,
        args.out,
        media=args.media,
        fractions=args.fractions,
        salt=args.salt,
        overwrite=args.overwrite,
    )
    print(f"wrote {sum(result.split_sizes.values())} rows {result.split_sizes} to {args.out}")
    if result.rejects:
        print(f"rejected {len(result.rejects)} rows (see {args.out}/rejects.jsonl): {result.reject_reasons}")
    return 0
