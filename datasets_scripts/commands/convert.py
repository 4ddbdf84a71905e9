"""``vr-datasets convert``: Pick-a-Pic v2 / HPDv2 / ImageRewardDB records -> the common pair format (Parquet)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from datasets_scripts.converters import FORMATS

    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--input", required=True, nargs="+", help=".json / .jsonl / .parquet files of source records")
    parser.add_argument("--image-root", default=None, help="folder that relative image paths are resolved against")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier run of this command wrote to --out (deleted once the new output is written)",
    )


def _records(paths: list[str]):
    from datasets_scripts.files import read_records

    for path in paths:
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            yield from pq.read_table(path).to_pylist()
        else:
            yield from read_records(path)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from datasets_scripts.converters import SOURCE_DATASETS, convert, pairs_to_dataset
    from datasets_scripts.files import write_jsonl
    from datasets_scripts.visionrewarddb import write_parquet
    from diffusers_cogvideox.outputs import OutputFolder
    from hub_cards.dataset_cards import render_converted_pairs_card

    pairs, rejects = convert(_records(args.input), args.format)
    out = Path(args.out)
    folder = OutputFolder.claim(
        out, "vr-datasets convert", inputs=[*args.input, args.image_root], overwrite=args.overwrite
    )
    with folder:  # an earlier conversion is deleted once this one is written; a failure puts it back
        write_jsonl(folder.path("rejects.jsonl"), rejects)
        if pairs:
            ds = pairs_to_dataset(pairs, args.image_root)
            write_parquet(ds, folder.path("data/train-00000-of-00001.parquet"))
            card = render_converted_pairs_card(
                source_format=args.format,
                source_dataset=SOURCE_DATASETS[args.format],
                num_pairs=len(ds),
                statistics={"pairs": len(ds), "rejected records": len(rejects)},
                features=ds.features,
            )
            with folder.atomic("README.md") as tmp:
                card.save(tmp)
    print(f"{len(pairs)} pairs, {len(rejects)} rejected records -> {out}")
    return 0
