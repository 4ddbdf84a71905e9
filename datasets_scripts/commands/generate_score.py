"""``vr-datasets generate-score``: prompts -> N samples each -> VisionReward scores -> scored-samples dataset.

Resumable (rerun the same command after a crash) and shardable: ``accelerate launch --num_processes N -m
datasets_scripts.cli generate-score ...`` (GPUs) or ``torchrun --nproc_per_node N -m datasets_scripts.cli
generate-score ...`` (CPU) splits the unfinished prompts between the processes.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompts", required=True, help="a .txt file (one prompt a line) or .json/.jsonl with 'prompt'"
    )
    parser.add_argument("--out", required=True, help="job folder: media/, shards/, rejects/, then data/ and README.md")
    parser.add_argument(
        "--model",
        default=None,
        help="pipeline folder or repo id; default 'tiny': the tiny world's CogVideoX shipped with the package (trained "
        "on procedural clips); 'random': the random tiny CogVideoX (noise)",
    )
    parser.add_argument(
        "--scorer",
        default=None,
        help="VisionReward folder or repo id; default 'tiny': the tiny world's scorer shipped with the package; "
        "'random': the random tiny scorer (noise)",
    )
    parser.add_argument("--modality", choices=["video", "image"], default="video")
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--num-inference-steps", type=int, default=None)
    parser.add_argument("--guidance-scale", type=float, default=None)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rewrite-prompt",
        default=None,
        metavar="MODEL",
        help="rewrite each prompt into the long CogVideoX style first with this chat causal LM ('tiny': random)",
    )
    parser.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier job in --out (deleted once the new dataset is written; nothing else is deleted)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="resume a job folder made with other settings (the card then describes the new ones)",
    )


TINY_WORLD_LABEL = "tiny world (trained, shipped with the package)"


def embedded_label(model: str | None, what: str) -> str:
    """How the card names ``--model`` / ``--scorer``: the embedded defaults by what they are, else as given."""
    from diffusers_cogvideox.sampling import is_random, is_tiny

    if is_random(model):
        return f"random tiny {what} (random weights)"
    return TINY_WORLD_LABEL if is_tiny(model) else model


def read_prompts(path: str) -> list[str]:
    from datasets_scripts.files import read_records

    if path.endswith((".json", ".jsonl")):
        return [r["prompt"] if isinstance(r, dict) else str(r) for r in read_records(path)]
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def run(args: argparse.Namespace) -> int:
    import torch
    from accelerate import PartialState

    from datasets_scripts.backends import (
        PipelineSampler,
        VisionRewardSampleScorer,
        load_pipeline,
        load_vision_reward,
    )
    from datasets_scripts.generate_and_score import collect_scored_samples, run_generate_and_score
    from diffusers_cogvideox.sampling import is_random

    # On a machine without an accelerator, cpu=True lets several processes (torchrun / accelerate launch) shard the
    # prompts over gloo; without it accelerate would treat every process as a lone process 0.
    state = PartialState(cpu=args.cpu or not torch.cuda.is_available())
    device = str(state.device)
    sampler = PipelineSampler(
        load_pipeline(args.model, device=device),
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.num_inference_steps,
        guidance_scale=args.guidance_scale,
        fps=args.fps,
        modality=args.modality,
    )
    scorer = VisionRewardSampleScorer(load_vision_reward(args.scorer, args.modality, device=device), args.modality)
    prompts = read_prompts(args.prompts)
    if args.rewrite_prompt:  # the samples' prompt is the rewritten one; the job settings name the rewriter
        from datasets_scripts.video_data.rewrite import rewrite_all

        prompts = rewrite_all(prompts, args.rewrite_prompt, device, args.seed, progress=not args.no_progress)
    summary = run_generate_and_score(
        prompts,
        sampler,
        scorer,
        args.out,
        samples_per_prompt=args.samples_per_prompt,
        seed=args.seed,
        state=state,
        progress=not args.no_progress,
        settings={
            "modality": args.modality,
            "model": args.model,
            "scorer": args.scorer,
            **({"rewrite_prompt": args.rewrite_prompt} if args.rewrite_prompt else {}),
        },
        overwrite=args.overwrite,
        force=args.force,
    )
    print(
        f"[process {state.process_index}] {summary.finished} prompts scored, {summary.skipped} already done, "
        f"{summary.failed} failed ({summary.seconds:.1f}s)"
    )
    if state.is_main_process:
        collect_scored_samples(
            args.out,
            modality=args.modality,
            generator=embedded_label(args.model, "CogVideoX"),
            scorer=embedded_label(args.scorer, "scorer"),
            generation_config=sampler.config(),
            random_data=is_random(args.model) or is_random(args.scorer),
        )
        print(f"wrote the scored-samples dataset to {args.out}")
    return 0
