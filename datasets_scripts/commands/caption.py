"""``vr-datasets caption``: clips -> dense captions -> the CogVideoX SFT dataset (Clip rows + media + card).

Default: the CogVLM2-Caption recipe (``THUDM/cogvlm2-llama3-caption``'s frame sampling, prompt and greedy decoding)
on the native CogVLM2-Video backbone; ``--backend image-text-to-text`` runs any ``AutoModelForImageTextToText``.
Without ``--model`` a tiny random CogVLM2-Video runs offline (noise captions; the card says so). Resumable and
shardable with ``accelerate launch -m datasets_scripts.cli caption ...``.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from datasets_scripts.video_data.caption import OFFICIAL_CAPTION_PROMPT

    from ._video_job import add_job_arguments

    parser.add_argument(
        "--clips", required=True, help="a clip dataset folder (e.g. filter output), a video folder or .txt"
    )
    parser.add_argument("--out", required=True, help="the SFT dataset folder: clips/, data/, rejects.jsonl, README.md")
    parser.add_argument("--model", default="tiny", help="folder or repo id (THUDM/cogvlm2-llama3-caption); 'tiny'")
    parser.add_argument("--backend", choices=["cogvlm2", "image-text-to-text"], default="cogvlm2")
    parser.add_argument("--prompt", default=OFFICIAL_CAPTION_PROMPT)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 2048 (official); 24 for tiny")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--truncated", choices=["reject", "keep"], default="reject", help="captions cut off at the limit"
    )
    parser.add_argument("--validation-fraction", type=float, default=0.0, help="share of clips in the validation split")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    parser.add_argument("--images", action="store_true", help="also caption image files from a folder input")
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from datasets_scripts.video_data.caption import CaptionConfig, collect_captions, load_captioner, run_caption
    from datasets_scripts.video_data.inputs import clip_inputs

    from ._video_job import job_flags, job_state, report

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1; got {args.batch_size}")
    config = CaptionConfig(
        model=args.model,
        backend=args.backend,
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        truncated=args.truncated,
        validation_fraction=args.validation_fraction,
    )
    clips = clip_inputs(args.clips, images=args.images)
    state = job_state(args)
    kwargs = {"prompt": args.prompt}
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    if args.model not in (None, "tiny"):
        kwargs["dtype"] = getattr(torch, args.dtype) if args.dtype else None
    captioner = load_captioner(args.model, args.backend, device=str(state.device), **kwargs)
    summary = run_caption(
        clips,
        args.out,
        captioner,
        config,
        batch_size=args.batch_size,
        state=state,
        progress=not args.no_progress,
        **job_flags(args),
    )
    report(state, "caption", summary)
    if state.is_main_process:
        collect_captions(args.out, config)
        print(f"wrote the SFT dataset to {args.out}")
    return 0
