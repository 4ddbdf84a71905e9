"""``cogvideox generate``: one prompt to an mp4, text-, image- (``--image``) or video-to-video (``--video``).

With no ``--model`` (or ``--model tiny``) it runs the tiny world shipped with the package: a tiny CogVideoX trained on
procedural clips of one shape over a plain background (9 frames of 32 x 32; no download, under a second on a CPU).
The tiny world is text-to-video only, so image- and video-to-video with no ``--model`` run the random tiny variants;
``--model random`` runs the random tiny pipeline for text-to-video too. Random output is noise, and the command says so.
"""

from __future__ import annotations

import argparse
import os
import time

from ..checks import check_prompt_length, float_range, int_range, positive_int
from ..errors import UsageError
from ..outputs import atomic_path, check_output_file
from ..sampling import is_random, is_tiny

DEFAULT_PROMPT = "A panda playing a guitar in a bamboo forest, cinematic lighting"
TINY_PROMPT = "a panda playing"  # within the random tiny T5's 16 tokens
WORLD_PROMPT = "a red circle on a grey background"  # one of the tiny world's prompts
WORLD_GUIDANCE = 1.0  # the tiny world is sampled without classifier-free guidance
TINY_VARIANTS = {"t2v": "2b", "v2v": "2b", "i2v": "1.5-5b-i2v"}
TINY_STEPS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="Hub repo or local folder (official layout), e.g. THUDM/CogVideoX-2b; 'tiny' (the default): the tiny "
        "world shipped with the package, trained on procedural clips (text-to-video only: --image/--video then run "
        "the random tiny variants); 'random': the random tiny pipeline (noise)",
    )
    parser.add_argument(
        "--prompt", default=None, help=f"default: {DEFAULT_PROMPT!r} ({WORLD_PROMPT!r} for the tiny world)"
    )
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--image", default=None, help="image-to-video: the first frame (needs an I2V model)")
    parser.add_argument("--video", default=None, help="video-to-video: the input clip")
    parser.add_argument(
        "--strength",
        type=float_range(0, 1, low_open=True),
        default=0.8,
        help="video-to-video: how far to noise the input (0, 1]",
    )
    parser.add_argument(
        "--num-frames",
        type=positive_int,
        default=None,
        help="1.0: 8k+1 up to 49 (default 49; 9 for the tiny world); 1.5: 16k+1 up to 161 (default 81); V2V: frames "
        "taken from the input",
    )
    parser.add_argument(
        "--height", type=positive_int, default=None, help="default 480 (1.0) or 768 (1.5); 32 for the tiny world"
    )
    parser.add_argument(
        "--width", type=positive_int, default=None, help="default 720 (1.0) or 1360 (1.5); 32 for the tiny world"
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help=f"denoising steps (default 50; the tiny world's own steps, {TINY_STEPS} for random)",
    )
    parser.add_argument(
        "--guidance-scale",
        type=float_range(0),
        default=None,
        help=f"a finite number >= 0 (default 6; {WORLD_GUIDANCE:g} for the tiny world)",
    )
    parser.add_argument(
        "--dynamic-cfg", action="store_true", help="anneal the guidance scale (cosine schedule of the official code)"
    )
    parser.add_argument(
        "--dynamic-cfg-mode",
        choices=["step", "timestep"],
        default="step",
        help="step index (smooth) or raw timestep (as diffusers' pipelines)",
    )
    parser.add_argument(
        "--scheduler", choices=["ddim", "dpm"], default=None, help="default: the model's; the official demo uses dpm"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--rewrite-prompt",
        default=None,
        metavar="MODEL",
        help="rewrite the prompt into the long CogVideoX style first with this chat causal LM ('tiny': random)",
    )
    parser.add_argument(
        "--num-videos", type=positive_int, default=1, help="videos to generate; the 2nd onwards go to OUT_1.mp4, ..."
    )
    parser.add_argument("--fps", type=int_range(1, 240), default=None, help="default 8 (1.0) or 16 (1.5)")
    parser.add_argument(
        "--dtype",
        choices=["auto", "float32", "float16", "bfloat16"],
        default="auto",
        help="auto: bfloat16 on GPU (float16 for 2b), float32 on CPU",
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument(
        "--offload", choices=["none", "model", "sequential"], default="none", help="CPU offload (needs an accelerator)"
    )
    parser.add_argument("--vae-tiling", action="store_true")
    parser.add_argument("--vae-slicing", action="store_true")
    parser.add_argument(
        "--step-cache",
        type=float_range(0, low_open=True),
        default=None,
        metavar="THRESHOLD",
        help="TeaCache-style step caching with this threshold (e.g. 0.1)",
    )
    parser.add_argument(
        "--lora", default=None, help="LoRA weights (folder, file or Hub repo) to load into the transformer"
    )
    parser.add_argument("--lora-scale", type=float_range(), default=1.0)
    parser.add_argument("--out", default="outputs/clip.mp4", help="output mp4 path")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _kind(args) -> str:
    if args.image and args.video:
        raise UsageError("pass --image or --video, not both")
    return "i2v" if args.image else "v2v" if args.video else "t2v"


def embedded(args, kind: str) -> str | None:
    """Which embedded pipeline runs: ``"world"`` (the trained tiny world), ``"random"`` or None (``--model``'s)."""
    if not is_tiny(args.model):
        return None
    if is_random(args.model) or (args.model is None and kind != "t2v"):
        return "random"
    if kind != "t2v":
        raise UsageError(
            f"--model {args.model}: the tiny world is text-to-video only; for {kind} pass --model random or an "
            f"{'I2V' if kind == 'i2v' else 'official'} model"
        )
    return "world"


def _dtype(name: str, model: str | None, device: str):
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device == "cpu":
        return torch.float32
    return torch.float16 if model and "2b" in model.lower() else torch.bfloat16


def load_pipeline(args, kind: str, device: str):
    """The pipeline for ``kind`` from ``--model``, the trained tiny world, or a random tiny one."""
    import diffusers_cogvideox
    from diffusers_cogvideox.tiny import PIPELINE_CLASS_NAMES, tiny_pipeline, tiny_world_pipeline

    which = embedded(args, kind)
    if which == "world":
        print(
            "cogvideox generate: using the tiny world shipped with the package (a tiny CogVideoX trained on procedural "
            "clips of a shape over a background, 9 frames of 32x32); pass --model THUDM/CogVideoX-2b for real videos.",
            flush=True,
        )
        return tiny_world_pipeline()
    if which == "random":
        why = "" if args.model else " (the tiny world is text-to-video only)"
        print("=" * 78)
        print(f"cogvideox generate: using the embedded TINY pipeline ({TINY_VARIANTS[kind]}){why}.")
        print(
            "Its weights are RANDOM: random weights, output is noise. Pass --model THUDM/CogVideoX-2b for real videos."
        )
        print("=" * 78, flush=True)
        return tiny_pipeline(TINY_VARIANTS[kind], kind)
    pipeline_class = getattr(diffusers_cogvideox, PIPELINE_CLASS_NAMES[kind])
    return pipeline_class.from_pretrained(args.model, torch_dtype=_dtype(args.dtype, args.model, device))


def configure(pipe, args, device: str) -> None:
    from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

    if args.scheduler is not None:
        scheduler_class = CogVideoXDPMScheduler if args.scheduler == "dpm" else CogVideoXDDIMScheduler
        pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    if args.lora:
        pipe.load_lora_weights(args.lora, adapter_name="cli")
        pipe.set_adapters(["cli"], [args.lora_scale])
    if args.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif args.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    if args.vae_tiling:
        pipe.vae.enable_tiling()
    if args.vae_slicing:
        pipe.vae.enable_slicing()
    if args.step_cache is not None:
        pipe.enable_step_cache(threshold=args.step_cache)


def conditioning_input(args, kind: str, rules):
    """The PIL image (I2V) or frames (V2V) to condition on, or None."""
    import PIL.Image

    from diffusers_cogvideox.video_io import load_video

    if kind == "i2v":
        return {"image": PIL.Image.open(args.image).convert("RGB")}
    if kind == "v2v":
        frames = load_video(args.video)
        wanted = args.num_frames or max([n for n in rules.frame_counts if n <= len(frames)], default=0)
        if wanted == 0 or wanted > len(frames):
            raise UsageError(
                f"{args.video} has {len(frames)} frames; CogVideoX {rules.version} needs "
                f"{rules.frame_step}*k+1 ({rules.frame_counts[0]}, ...) frames"
            )
        if wanted < len(frames):
            print(f"using the first {wanted} of the video's {len(frames)} frames")
        return {"video": frames[:wanted], "strength": args.strength}
    return {}


def output_paths(args) -> list[str]:
    """The mp4 files this run writes, checked before any work (not an input; replaced only with --overwrite)."""
    root, ext = os.path.splitext(args.out)
    paths = [args.out if i == 0 else f"{root}_{i}{ext or '.mp4'}" for i in range(args.num_videos)]
    for path in paths:
        check_output_file(path, inputs=[args.image, args.video], overwrite=args.overwrite, suffixes=(".mp4",))
    return paths


def verify_video(path, num_frames: int) -> None:
    """Read the written file back: an mp4 that does not hold every frame is an error, not ``wrote ...``."""
    from diffusers_cogvideox.video_io import count_frames

    found = count_frames(path)
    if found != num_frames:
        raise OSError(f"the video written to {path} holds {found} frames, not {num_frames}")


def run(args) -> int:
    import numpy as np
    import torch

    from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS
    from diffusers_cogvideox.video_io import export_to_video

    kind = _kind(args)
    which = embedded(args, kind)
    paths = output_paths(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = load_pipeline(args, kind, device)
    configure(pipe, args, device)
    rules = pipe.variant_rules
    prompt = args.prompt or {"world": WORLD_PROMPT, "random": TINY_PROMPT}.get(which, DEFAULT_PROMPT)
    if args.rewrite_prompt:
        from datasets_scripts.video_data.rewrite import rewrite_all  # the rewriter lives with the data tools

        prompt = rewrite_all([prompt], args.rewrite_prompt, device, args.seed, progress=False)[0]
        print(f"rewritten prompt: {prompt}")
    max_tokens = pipe.transformer.config.max_text_seq_length
    check_prompt_length(prompt, pipe.tokenizer, max_tokens, truncates=True)  # said, not silently cut
    if args.negative_prompt:
        check_prompt_length(args.negative_prompt, pipe.tokenizer, max_tokens, what="negative prompt", truncates=True)
    steps = args.steps or {"world": TINY_WORLD_STEPS, "random": TINY_STEPS}.get(which, 50)
    guidance = args.guidance_scale if args.guidance_scale is not None else WORLD_GUIDANCE if which == "world" else 6.0
    size = TINY_WORLD_RESOLUTION if which == "world" else {}
    call = dict(
        prompt=prompt,
        negative_prompt=args.negative_prompt,
        height=args.height or size.get("height"),
        width=args.width or size.get("width"),
        num_inference_steps=steps,
        guidance_scale=guidance,
        use_dynamic_cfg=args.dynamic_cfg,
        dynamic_cfg_mode=args.dynamic_cfg_mode,
        num_videos_per_prompt=args.num_videos,
        generator=torch.Generator(device="cpu").manual_seed(args.seed),
        output_type="np",
        **conditioning_input(args, kind, rules),
    )
    if kind != "v2v":
        call["num_frames"] = args.num_frames or size.get("num_frames")
    started = time.perf_counter()
    videos = pipe(**call).frames
    seconds = time.perf_counter() - started
    fps = args.fps or (16 if rules.version == "1.5" else 8)
    for path, video in zip(paths, videos):
        num_frames, height, width = video.shape[:3]
        if not np.isfinite(video).all():
            raise UsageError(
                f"the pipeline returned NaN or infinite pixels for {path} (try --dtype float32 or a smaller "
                "--guidance-scale); nothing was written"
            )
        with atomic_path(path, verify=lambda tmp, n=num_frames: verify_video(tmp, n)) as tmp:
            export_to_video(video, tmp, fps=fps)
        print(f"wrote {path}: {num_frames} frames, {width}x{height}, {fps} fps ({seconds:.1f} s generating)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cogvideox generate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
