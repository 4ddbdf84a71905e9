"""``vr-datasets pairs``: scored samples -> MPO preference pairs (Parquet + card with admission statistics)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scored", required=True, help="a generate-score output folder (or Parquet folder/file)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--kind", choices=["mpo", "dpo"], default="mpo")
    parser.add_argument("--granularity", choices=["dimension", "sub_dimension", "question"], default="dimension")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="minimum total-score gap (default: the paper's 0.6 / 0.5 / 0.4 by granularity, 0.8 for dpo)",
    )
    parser.add_argument("--tolerance", type=float, default=0.0, help="dominance slack per entry (0 = exact)")
    parser.add_argument("--max-pairs-per-prompt", type=int, default=None)
    parser.add_argument(
        "--scores",
        choices=["official", "soft"],
        default="official",
        help="official hard-answer scores (the paper) or soft P(yes)-based scores",
    )
    parser.add_argument("--modality", choices=["image", "video"], default="video")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier run of this command wrote to --out (deleted once the new output is written)",
    )


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.mpo_pairs import build_pairs, write_pairs
    from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS, PairRule

    threshold = args.threshold
    if threshold is None:
        threshold = PAPER_THRESHOLDS["dpo" if args.kind == "dpo" else args.granularity]
    rule = PairRule(args.kind, args.granularity, threshold, args.tolerance, args.max_pairs_per_prompt)
    pairs, stats = build_pairs(args.scored, rule, scores=args.scores)
    write_pairs(pairs, stats, args.out, modality=args.modality, source=args.scored, overwrite=args.overwrite)
    print(stats)
    return 0
