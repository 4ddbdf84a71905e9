"""``vision-reward fit-weights``: stage 2, non-negative checklist weights from scored samples and preference pairs.

Inputs: scored samples (one row per image/video: an id and the per-question ``probabilities`` and/or ``answers`` in
checklist order, as ``vision-reward score`` writes them) and pairs (``chosen``/``rejected`` ids, or
``first``/``second``/``label`` with 1, -1, 0). Outputs in ``--output-dir``: ``weights.json`` (every question's fitted
weight, the fit's statistics) and ``checklist.json`` (the checklist with the new weights, near-zero questions dropped),
ready for ``VisionRewardConfig`` / ``Checklist.from_dict``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samples", required=True, help="Scored samples: JSON/JSONL/Parquet file, dataset folder or Hub id."
    )
    parser.add_argument(
        "--pairs", required=True, help="Preference pairs: JSON/JSONL/Parquet file, dataset folder or Hub id."
    )
    parser.add_argument(
        "--checklist", default="image", help="'image', 'video' or a checklist/config JSON (default: image)."
    )
    parser.add_argument(
        "--full", action="store_true", help="With image/video: the full question list, not the select list."
    )
    parser.add_argument("--output-dir", required=True, help="Where weights.json and checklist.json go.")
    parser.add_argument(
        "--features",
        choices=["answers", "soft"],
        default="answers",
        help="answers: official +1/-1 features from hard answers; soft: expected features from P(yes).",
    )
    parser.add_argument(
        "--id-field", default=None, help="Sample id field (default: the first of id, source, internal_id)."
    )
    parser.add_argument("--answers-field", default="answers")
    parser.add_argument(
        "--probabilities-field", default=None, help="Per-question P(yes) (default: p_yes or probabilities)."
    )
    parser.add_argument(
        "--alignment-field", default=None, help="Per-sample alignment probability (image, e.g. VQAScore)."
    )
    parser.add_argument("--split", default=None, help="Split of a dataset folder / Hub dataset.")
    parser.add_argument("--method", choices=["gd", "sgd"], default="gd")
    parser.add_argument("--max-epochs", type=int, default=5000)
    parser.add_argument("--tol", type=float, default=1e-7)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--drop-below",
        type=float,
        default=1e-4,
        help="Drop questions whose weight is below this fraction of the largest weight; negative keeps all.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier run of this command wrote to --output-dir (nothing else is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from trl_vision_reward.reward.regression import apply_weights, checklist_features, fit_checklist_weights

    from ._data import (
        ID_FIELDS,
        PROBABILITY_FIELDS,
        index_by_id,
        load_checklist,
        load_records,
        pick_field,
        resolve_pairs,
        sample_matrix,
    )
    from ._output import claim_output_dir

    checklist = load_checklist(args.checklist, full=args.full)
    samples = load_records(args.samples, split=args.split)
    pairs = load_records(args.pairs, split=args.split)
    id_field = pick_field(samples, args.id_field, ID_FIELDS, args.samples, "sample id")
    index = index_by_id(samples, id_field, args.samples)
    first, second, labels = resolve_pairs(pairs, index, args.pairs)
    with claim_output_dir(
        args, "vision-reward fit-weights", [args.samples, args.pairs, args.checklist]
    ) as folder:  # an earlier output is deleted once this one is written
        n = len(checklist)
        probabilities = None
        has_probabilities = args.probabilities_field or any(f in samples[0] for f in PROBABILITY_FIELDS)
        if args.features == "soft" or has_probabilities:
            field = pick_field(samples, args.probabilities_field, PROBABILITY_FIELDS, args.samples, "probabilities")
            probabilities = sample_matrix(samples, field, n, args.samples)
        alignment = None
        if args.alignment_field:
            alignment = [float(row[args.alignment_field]) for row in samples]
        if args.features == "soft":
            features = checklist_features(checklist, probabilities=probabilities, soft=True, alignment=alignment)
        else:
            answers = sample_matrix(samples, args.answers_field, n, args.samples, binary=True)
            features = checklist_features(checklist, answers=answers, probabilities=probabilities, alignment=alignment)

        fit = fit_checklist_weights(
            features,
            first,
            second,
            labels,
            method=args.method,
            max_epochs=args.max_epochs,
            tol=args.tol,
            l2=args.l2,
            seed=args.seed,
            feature_names=checklist.texts,
        )
        drop = None if args.drop_below < 0 else args.drop_below
        new_checklist = apply_weights(checklist, fit.weights, drop_below=drop)

        out = Path(args.output_dir)
        result = fit.to_dict()
        result.pop("loss_history")
        result.update(
            checklist=checklist.name,
            num_samples=len(samples),
            num_pairs=len(first),
            features=args.features,
            kept_questions=len(new_checklist),
            coef=[float(w) for w in fit.weights],
            intercept=[0.0],
        )
        folder.write_json("weights.json", result)
        folder.write_json("checklist.json", new_checklist.to_dict())
    kept = int(np.sum(fit.weights > 0))
    print(
        f"fitted {n} weights on {len(first)} pairs in {fit.epochs} epochs (converged: {fit.converged}); "
        f"training accuracy {100 * fit.accuracy:.1f}%, {kept} non-zero, {len(new_checklist)} questions kept"
    )
    print(f"wrote {out / 'weights.json'} and {out / 'checklist.json'}")
    return 0
