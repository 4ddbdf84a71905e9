"""``vr-datasets filter``: score every clip (motion, stills, cuts, sharpness, text, aesthetic, negative labels), then
keep the clips that pass the thresholds.

Scores are computed once per clip (resumable, shardable with ``accelerate launch``); rerun the same command with other
thresholds to re-apply them without rescoring (``--rescore`` is never needed: scores do not depend on thresholds).
A threshold is a number, a percentile of the job's scores (``p10``) or ``none``. Rules and units:
:mod:`datasets_scripts.video_data.filter`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clips", required=True, help="a clip dataset folder (e.g. split output), a video folder or .txt"
    )
    parser.add_argument("--out", required=True, help="job folder: shards/, then data/, clips/, rejects.*, rules.json")
    scoring = parser.add_argument_group("scoring (fixed for a job folder)")
    scoring.add_argument("--analysis-width", type=int, default=256)
    scoring.add_argument("--num-samples", type=int, default=8, help="frame positions scored per clip")
    scoring.add_argument("--cut-threshold", type=float, default=27.0)
    scoring.add_argument("--text-detector", default="morphological", help="'morphological' or package.module:callable")
    scoring.add_argument("--aesthetic-model", default=None, help="package.module:callable (frames -> score)")
    scoring.add_argument("--vlm", default=None, help="negative labels by a VLM: a VisionReward-layout folder or 'tiny'")
    rules = parser.add_argument_group("thresholds (re-applied on every run)")
    rules.add_argument("--max-still-fraction", default="0.5", help="slideshow: cuts >= 1 and this share of still pairs")
    rules.add_argument("--min-motion", default="0.01", help="static below this (frame widths per second)")
    rules.add_argument("--max-cuts", default="0", help="editing above this many hard cuts")
    rules.add_argument("--min-sharpness", default="20", help="blurry below this Laplacian variance")
    rules.add_argument("--max-text-fraction", default="0.15", help="text dominated above this share of the frame")
    rules.add_argument("--min-aesthetic", default="none", help="the paper used 4.5 (LAION aesthetic scale)")
    rules.add_argument("--max-negative-probability", default="0.5", help="drop a clip whose P(yes) exceeds this")
    rules.add_argument("--min-duration", default="none", help="seconds")
    parser.add_argument("--images", action="store_true", help="also read image files from a folder input")
    from ._video_job import add_job_arguments

    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.video_data.filter import (
        ClipScorer,
        FilterRules,
        NegativeLabelScorer,
        ScoreConfig,
        collect_filter,
        load_plugin,
        parse_threshold,
        run_filter_scores,
    )
    from datasets_scripts.video_data.inputs import clip_inputs

    from ._video_job import job_flags, job_state, report

    rules = FilterRules(
        **{
            name: parse_threshold(getattr(args, name))
            for name in (
                "max_still_fraction",
                "min_motion",
                "max_cuts",
                "min_sharpness",
                "max_text_fraction",
                "min_aesthetic",
                "max_negative_probability",
                "min_duration",
            )
        }
    )
    config = ScoreConfig(
        analysis_width=args.analysis_width,
        num_samples=args.num_samples,
        cut_threshold=args.cut_threshold,
        text_detector=args.text_detector,
        aesthetic_model=args.aesthetic_model,
        vlm=args.vlm,
    )
    clips = clip_inputs(args.clips, images=args.images)
    state = job_state(args)
    scorer = ClipScorer(
        config,
        aesthetic_scorer=load_plugin(args.aesthetic_model) if args.aesthetic_model else None,
        negative_labels=NegativeLabelScorer.from_model(args.vlm, str(state.device)) if args.vlm else None,
    )
    summary = run_filter_scores(clips, args.out, scorer, state=state, progress=not args.no_progress, **job_flags(args))
    report(state, "filter scores", summary)
    if state.is_main_process:
        result = collect_filter(args.out, rules)
        print(f"kept {result['kept']} of {result['scored']} scored clips; dropped by rule: {result['by_rule']}")
    return 0
