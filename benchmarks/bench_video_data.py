"""Throughput of the video data stages on CPU: clips (or prompts) per second for split, filter scoring, filter
apply, caption (tiny CogVLM2-Video) and rewrite-prompts (tiny causal LM), each through its job function.

    python benchmarks/bench_video_data.py                      # 6 scenes of 40 frames at 128x96 -> 24 clips of 9 frames
    python benchmarks/bench_video_data.py --scenes 12 --width 256 --height 192 --num-frames 17

The clip set is made here: one raw video of moving random textures with a hard cut between scenes (8 fps), split
into ``--num-frames`` clips; the same clips are then scored, thresholded and captioned, and ``--prompts`` short
prompts are rewritten. Each stage runs once in a fresh job folder (loading the tiny models is not timed; the first
clip of a stage includes warm-up). The tiny models have random weights: the caption and rewrite rates measure the
job machinery and tiny forward passes, not a real checkpoint.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np


def scene(seed: int, frames: int, width: int, height: int, speed: tuple[int, int] = (3, 1)) -> list[np.ndarray]:
    """A random texture (smoothed noise, with sharp edges) panned by ``speed`` pixels per frame."""
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, size=(height // 4 + 60, width // 4 + 60, 3), dtype=np.uint8)
    big = np.kron(big, np.ones((4, 4, 1), dtype=np.uint8))  # 4x4 blocks: edges that flow and sharpness can see
    return [
        big[t * speed[1] : t * speed[1] + height, t * speed[0] : t * speed[0] + width].copy() for t in range(frames)
    ]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--frames-per-scene", type=int, default=40)
    parser.add_argument("--num-frames", type=int, default=9, help="frames per clip (4k+1)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--caption-tokens", type=int, default=16)
    args = parser.parse_args(argv)

    from datasets_scripts.video_data.caption import CaptionConfig, CogVLM2VideoCaptioner, collect_captions, run_caption
    from datasets_scripts.video_data.filter import ClipScorer, FilterRules, collect_filter, run_filter_scores
    from datasets_scripts.video_data.inputs import clip_inputs
    from datasets_scripts.video_data.rewrite import PromptRewriter, RewriteConfig, collect_rewrites, run_rewrite
    from datasets_scripts.video_data.split import SplitConfig, collect_split, run_split
    from diffusers_cogvideox.video_io import export_to_video

    root = Path(tempfile.mkdtemp(prefix="bench-video-data-"))
    frames = [f for s in range(args.scenes) for f in scene(s, args.frames_per_scene, args.width, args.height)]
    raw = root / "raw" / "long.mp4"
    raw.parent.mkdir(parents=True)
    export_to_video(frames, raw, fps=8)
    rows = []

    config = SplitConfig(num_frames=args.num_frames, fps=8)
    _, seconds = timed(lambda: run_split([(raw, raw.name)], root / "split", config, progress=False))
    collect_split(root / "split", config)
    clips = clip_inputs(root / "split")
    rows.append(("split (decode, cut detection, encode)", len(clips), "clips", seconds))

    _, seconds = timed(lambda: run_filter_scores(clips, root / "filter", ClipScorer(), progress=False))
    rows.append(("filter scoring (flow, stills, cuts, sharpness, text)", len(clips), "clips", seconds))
    result, seconds = timed(lambda: collect_filter(root / "filter", FilterRules()))
    rows.append(("filter apply (thresholds, links, Parquet, card)", result["scored"], "clips", seconds))

    captioner = CogVLM2VideoCaptioner.tiny(max_new_tokens=args.caption_tokens)
    for batch in (1, 4):
        out = root / f"caption-b{batch}"
        _, seconds = timed(
            partial(
                run_caption, clips, out, captioner, CaptionConfig(truncated="keep"), batch_size=batch, progress=False
            )
        )
        collect_captions(out, CaptionConfig(truncated="keep"))
        rows.append(
            (f"caption (tiny CogVLM2-Video, {args.caption_tokens} tokens, batch {batch})", len(clips), "clips", seconds)
        )

    rewriter = PromptRewriter.tiny()
    prompts = [f"a red ball number {i} bouncing on a wooden floor" for i in range(args.prompts)]
    _, seconds = timed(lambda: run_rewrite(prompts, root / "rewrite", rewriter, RewriteConfig(), progress=False))
    collect_rewrites(root / "rewrite")
    rows.append(("rewrite-prompts (tiny Qwen2, 16 tokens)", len(prompts), "prompts", seconds))

    print(f"\n{len(clips)} clips of {args.num_frames} frames at {args.width}x{args.height}, 8 fps (CPU)\n")
    print("| stage | items | seconds | items/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, unit, secs in rows:
        print(f"| {name} | {count} {unit} | {secs:.2f} | {count / secs:.2f} |")


if __name__ == "__main__":
    main()
