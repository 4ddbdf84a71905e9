"""``vision-reward evaluate``: preference accuracy with ties (tau) and without ties (diff), and judgment accuracy.

Preference: scored samples (id + a total ``score``, or per-question ``answers``/``probabilities`` that the checklist
turns into a score) and one or more pair files (``first``/``second``/``label`` with 1, -1, 0 for ties, or
``chosen``/``rejected``). Judgment: annotated records (VisionRewardDB-style ``annotation``) whose labels are compared
with the samples' per-question probabilities (matched by id). Writes ``report.json`` and ``report.md`` and prints the
table.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samples", required=True, help="Scored samples: JSON/JSONL/Parquet file, dataset folder or Hub id."
    )
    parser.add_argument(
        "--pairs",
        action="append",
        default=[],
        help="Preference pairs (repeatable; NAME=PATH names the benchmark, default: the file stem).",
    )
    parser.add_argument("--annotations", default=None, help="Annotated records for judgment accuracy (matched by id).")
    parser.add_argument(
        "--checklist", default="image", help="'image', 'video' or a checklist/config JSON (default: image)."
    )
    parser.add_argument(
        "--full", action="store_true", help="With image/video: the full question list, not the select list."
    )
    parser.add_argument(
        "--score",
        choices=["field", "official", "soft"],
        default="field",
        help="field: use --score-field; official: checklist rule on hard answers; soft: on P(yes).",
    )
    parser.add_argument("--score-field", default="score")
    parser.add_argument(
        "--id-field", default=None, help="Sample id field (default: the first of id, source, internal_id)."
    )
    parser.add_argument("--annotation-id-field", default="internal_id")
    parser.add_argument("--answers-field", default="answers")
    parser.add_argument(
        "--probabilities-field", default=None, help="Per-question P(yes) (default: p_yes or probabilities)."
    )
    parser.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="Fixed tie threshold for tau; default: tie calibration (the best threshold).",
    )
    parser.add_argument("--split", default=None, help="Split of a dataset folder / Hub dataset.")
    parser.add_argument("--output-dir", required=True, help="Where report.json and report.md go.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier run of this command wrote to --output-dir (nothing else is deleted)",
    )


def _scores(args, checklist, samples):
    import numpy as np

    from ._data import PROBABILITY_FIELDS, pick_field, sample_matrix

    if args.score == "field":
        values = []
        for row_no, row in enumerate(samples):
            if args.score_field not in row:
                raise ValueError(
                    f"{args.samples}: row {row_no} has no {args.score_field!r} field; pass --score official/soft to "
                    f"compute it from per-question answers; its keys are {sorted(row)}"
                )
            values.append(float(row[args.score_field]))
        return np.asarray(values)
    from trl_vision_reward.reward.scoring_rule import official_score, soft_score

    field = pick_field(samples, args.probabilities_field, PROBABILITY_FIELDS, args.samples, "probabilities")
    probabilities = sample_matrix(samples, field, len(checklist), args.samples)
    if args.score == "soft":
        return soft_score(checklist, probabilities).numpy()
    answers = sample_matrix(samples, args.answers_field, len(checklist), args.samples, binary=True)
    return official_score(checklist, answers, probabilities).numpy()


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from diffusers_cogvideox.errors import UsageError
    from trl_vision_reward.reward.evaluation import EvaluationReport, judgment_accuracy, preference_accuracy
    from trl_vision_reward.reward.labels import label_records, labeled_questions

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

    if not args.pairs and not args.annotations:
        raise UsageError("evaluate: give --pairs (preference accuracy) and/or --annotations (judgment accuracy)")
    checklist = load_checklist(args.checklist, full=args.full)
    samples = load_records(args.samples, split=args.split)
    id_field = pick_field(samples, args.id_field, ID_FIELDS, args.samples, "sample id")
    index = index_by_id(samples, id_field, args.samples)
    pair_files = [spec.rpartition("=")[2] for spec in args.pairs or []]
    with claim_output_dir(
        args, "vision-reward evaluate", [args.samples, args.annotations, *pair_files]
    ) as folder:  # an earlier output is deleted once this one is written
        report = EvaluationReport(metadata={"checklist": checklist.name, "samples": len(samples), "score": args.score})

        if args.pairs:
            scores = _scores(args, checklist, samples)
            for spec in args.pairs:
                name, _, path = spec.rpartition("=") if "=" in spec else (Path(spec).stem, "", spec)
                pairs = load_records(path, split=args.split)
                first, second, labels = resolve_pairs(pairs, index, path)
                margins = scores[np.asarray(first)] - scores[np.asarray(second)]
                report.preference[name] = preference_accuracy(labels, margins, epsilon=args.epsilon)

        if args.annotations:
            annotated = load_records(args.annotations, split=args.split)
            labelled = {q.text for q in labeled_questions(checklist.modality)}
            columns = [q.index for q in checklist.questions if q.text in labelled]
            if not columns:
                raise ValueError(f"checklist {checklist.name!r} has no question that annotations can label")
            texts = [checklist.questions[i].text for i in columns]
            field = pick_field(samples, args.probabilities_field, PROBABILITY_FIELDS, args.samples, "probabilities")
            probabilities = np.asarray(sample_matrix(samples, field, len(checklist), args.samples))
            predictions, labels = [], []
            for row_no, (record, record_labels) in enumerate(
                zip(annotated, label_records(annotated, checklist.modality, questions=texts))
            ):
                key = str(record.get(args.annotation_id_field, record_labels.record_id))
                if key not in index:
                    raise ValueError(
                        f"{args.annotations}: row {row_no} (id {key!r}) has no scored sample in {args.samples} "
                        f"(matched on {args.annotation_id_field!r} = {id_field!r})"
                    )
                predictions.append(probabilities[index[key], columns])
                labels.append(list(record_labels.labels))
            report.judgment = judgment_accuracy(
                predictions, labels, [checklist.questions[i].dimension for i in columns], questions=texts
            )

        out = folder.root
        table = report.format_table()
        folder.write_text("report.json", report.to_json() + "\n")
        folder.write_text("report.md", table + "\n")
    print(table)
    print(f"wrote {out / 'report.json'} and {out / 'report.md'}")
    return 0
