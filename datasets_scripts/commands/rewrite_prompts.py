"""``vr-datasets rewrite-prompts``: short user prompts -> long CogVideoX-style prompts with any chat causal LM.

The official system prompt and few-shot examples (THUDM/CogVideo ``inference/convert_demo.py``) and its sampling
settings, seeded per prompt. Without ``--model`` a tiny random causal LM runs offline (noise rewrites; the card says
so). Resumable and shardable with ``accelerate launch -m datasets_scripts.cli rewrite-prompts ...``; the output's
``rewritten.jsonl`` is a prompts file for ``vr-datasets generate-score``.
"""

from __future__ import annotations

import argparse

from diffusers_cogvideox.checks import float_range, int_range

from ._video_job import add_job_arguments, job_flags, job_state, report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompts", required=True, help="a .txt file (one prompt a line) or .json/.jsonl with 'prompt'"
    )
    parser.add_argument("--out", required=True, help="job folder: shards/, then data/, rewritten.jsonl, README.md")
    parser.add_argument("--model", default="tiny", help="chat causal LM folder or repo id; 'tiny' (random, offline)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (combined with each prompt's hash)")
    parser.add_argument("--temperature", type=float_range(0, low_open=True), default=None, help="default 0.01")
    parser.add_argument("--top-p", type=float_range(0, 1, low_open=True), default=None, help="default 0.7")
    parser.add_argument("--max-new-tokens", type=int_range(1), default=None, help="default 250 (16 for tiny)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    add_job_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from datasets_scripts.video_data.rewrite import RewriteConfig, collect_rewrites, load_rewriter, run_rewrite

    from .generate_score import read_prompts

    config = RewriteConfig(
        model=args.model,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
    )
    prompts = read_prompts(args.prompts)
    if not prompts:
        raise ValueError(f"{args.prompts} holds no prompts; give one prompt a line (.txt) or 'prompt' records")
    state = job_state(args)
    kwargs = config.generation()
    if args.dtype:
        kwargs["dtype"] = getattr(torch, args.dtype)
    rewriter = load_rewriter(args.model, device=str(state.device), seed=args.seed, **kwargs)
    summary = run_rewrite(
        prompts,
        args.out,
        rewriter,
        config,
        state=state,
        progress=not args.no_progress,
        inputs=[args.prompts],
        **job_flags(args),
    )
    report(state, "rewrite-prompts", summary)
    if state.is_main_process:
        collect_rewrites(args.out)
        print(f"wrote the rewritten prompts to {args.out} (rewritten.jsonl is a --prompts file for generate-score)")
    return 0
