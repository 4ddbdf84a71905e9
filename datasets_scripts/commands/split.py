"""``vr-datasets split``: long raw videos -> clips of the model's frame count and rate, cut at detected scenes.

Resumable and shardable (``accelerate launch -m datasets_scripts.cli split ...``); see
:mod:`datasets_scripts.video_data.split` for the rules.
"""

from __future__ import annotations

import argparse

from ._video_job import add_job_arguments, job_flags, job_state, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos", required=True, help="a folder of raw videos (recursive) or a .txt list of paths")
    parser.add_argument(
        "--out", required=True, help="job folder: clips/, shards/, then data/, rejects.jsonl, README.md"
    )
    parser.add_argument("--num-frames", type=int, default=49, help="frames per clip (49 for CogVideoX 1.0, 81 for 1.5)")
    parser.add_argument("--fps", type=float, default=8.0, help="clip frame rate (8 for CogVideoX 1.0, 16 for 1.5)")
    parser.add_argument("--cut-threshold", type=float, default=27.0, help="content score of a hard cut (0-255)")
    parser.add_argument("--min-scene-frames", type=int, default=4, help="fewest source frames between two cuts")
    parser.add_argument("--trim-frames", type=int, default=0, help="source frames skipped at both ends of a scene")
    parser.add_argument("--max-clips-per-scene", type=int, default=None)
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from datasets_scripts.video_data.inputs import clip_inputs
    from datasets_scripts.video_data.split import SplitConfig, collect_split, run_split

    config = SplitConfig(
        num_frames=args.num_frames,
        fps=args.fps,
        cut_threshold=args.cut_threshold,
        min_scene_frames=args.min_scene_frames,
        trim_frames=args.trim_frames,
        max_clips_per_scene=args.max_clips_per_scene,
    )
    videos = [(Path(c["path"]), c["source"]) for c in clip_inputs(args.videos)]
    state = job_state(args)
    summary = run_split(videos, args.out, config, state=state, progress=not args.no_progress, **job_flags(args))
    report(state, "split", summary)
    if state.is_main_process:
        collect_split(args.out, config)
        print(f"wrote the clip dataset to {args.out}")
    return 0
