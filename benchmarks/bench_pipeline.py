"""CogVideoX text-to-video end to end: our pipeline vs diffusers' reference, and step caching's speed/quality trade.

    python benchmarks/bench_pipeline.py                    # mid-size random model on CPU (a few minutes)
    python benchmarks/bench_pipeline.py --model THUDM/CogVideoX-2b --device cuda --steps 50 --frames 49

1. End to end. Ours (``diffusers_cogvideox.CogVideoXPipeline`` with this package's transformer and VAE) and the
   reference (``diffusers.CogVideoXPipeline`` with diffusers' classes) load the same Hub-layout folder: same weights,
   scheduler, seed and call; a third entry runs our pipeline code on diffusers' models, which separates the pipeline
   from the models. Runs alternate (ours, ..., reference, ours, ...) after one warm-up each; min and median of
   ``--repeats`` are reported as wall-clock time and as process CPU time, with each video's max abs difference to the
   reference's. Speed-ups are the median over repeats of the ratio of two runs made back to back, which shared
   machines (other jobs come and go) disturb far less than the ratio of separate medians.
2. Step caching. Ours with ``TeaCacheConfig(threshold)`` for each threshold and indicator, interleaved with ours
   uncached: steps that ran the transformer blocks, speed-up (median of back-to-back ratios) and PSNR/SSIM of the
   cached video against the uncached one; and, as the bar caching has to clear, the PSNR of an uncached run with only
   as many steps as the cached run computed.

Without ``--model`` the weights are random (a CogVideoX-5b-shaped transformer scaled down, the tiny T5, a VAE with the
official layout at toy widths), so the quality numbers only say how far caching moves a random model's output, not how
a trained model's video looks. The ``timestep_embedding`` indicator's polynomial was fitted by the TeaCache authors on
the real CogVideoX weights; on random weights its decisions mean nothing (the random timestep MLP changes ~0.9 per step,
where the polynomial goes negative). Results go to ``--json`` as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ----------------------------------------------------------------------------------------------------------------------
# Quality metrics on videos [F, C, H, W] (or [B, F, C, H, W]) in [0, 1]
# ----------------------------------------------------------------------------------------------------------------------


def psnr(x: torch.Tensor, reference: torch.Tensor) -> float:
    """10 log10(1 / MSE) in dB, for values in [0, 1]."""
    mse = F.mse_loss(x.float(), reference.float()).item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).float()


def ssim(x: torch.Tensor, reference: torch.Tensor, window_size: int = 11) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) over frames and channels."""
    x = x.float().reshape(-1, 1, *x.shape[-2:])
    y = reference.float().reshape(-1, 1, *reference.shape[-2:])
    window_size = min(window_size, x.shape[-1], x.shape[-2])
    w = _gaussian_window(window_size)[None, None]
    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    var_x = F.conv2d(x * x, w) - mu_x**2
    var_y = F.conv2d(y * y, w) - mu_y**2
    cov = F.conv2d(x * y, w) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean().item()


# ----------------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------------


def write_random_folder(args, folder: str) -> str:
    """A Hub-layout folder (diffusers' classes, as the official repos) holding a random mid-size CogVideoX."""
    import diffusers

    from diffusers_cogvideox.tiny import (
        TINY_VAE_CONFIG,
        TINY_VAE_CONFIG_16,
        tiny_scheduler_config,
        tiny_t5_encoder,
        tiny_t5_tokenizer,
    )

    vae_config = TINY_VAE_CONFIG_16 if args.latent_channels == 16 else TINY_VAE_CONFIG

    torch.manual_seed(0)
    transformer = diffusers.CogVideoXTransformer3DModel(
        num_attention_heads=args.heads,
        attention_head_dim=64,
        in_channels=vae_config["latent_channels"],
        out_channels=vae_config["latent_channels"],
        time_embed_dim=512,
        text_embed_dim=32,
        num_layers=args.layers,
        sample_frames=args.frames,
        sample_height=args.height // 8,
        sample_width=args.width // 8,
        max_text_seq_length=args.text_length,
        use_rotary_positional_embeddings=True,
    )
    with torch.no_grad():  # away from the init, so that no branch starts at exactly zero
        for p in transformer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    vae = diffusers.AutoencoderKLCogVideoX(**dict(vae_config, scaling_factor=0.7))
    pipe = diffusers.CogVideoXPipeline(
        tokenizer=tiny_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(),
        vae=vae,
        transformer=transformer,
        scheduler=diffusers.CogVideoXDDIMScheduler(**tiny_scheduler_config("5b")),
    )
    pipe.save_pretrained(folder)
    return folder


def load_pipelines(source: str, dtype: torch.dtype, device: str):
    import diffusers

    from diffusers_cogvideox import CogVideoXPipeline

    ours = CogVideoXPipeline.from_pretrained(source, torch_dtype=dtype).to(device)
    reference = diffusers.CogVideoXPipeline.from_pretrained(source, torch_dtype=dtype).to(device)
    for pipe in (ours, reference):
        pipe.set_progress_bar_config(disable=True)
    return ours, reference


# ----------------------------------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------------------------------


def timed_call(pipe, call: dict, device: str) -> tuple[torch.Tensor, float, float]:
    """(video, wall seconds, process CPU seconds) of one generation with a fresh seeded generator."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    frames = pipe(**call, generator=torch.Generator("cpu").manual_seed(0)).frames
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return frames.float().cpu(), time.perf_counter() - wall, time.process_time() - cpu


def summarize(runs: list[tuple[float, float]]) -> dict:
    """Min and median of wall and CPU seconds; the min is the least disturbed by other work on a shared machine."""
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    return {
        "wall_min_s": min(walls),
        "wall_median_s": statistics.median(walls),
        "cpu_min_s": min(cpus),
        "cpu_median_s": statistics.median(cpus),
    }


def compare_end_to_end(pipes: dict, calls: dict, repeats: int, device: str) -> dict:
    """Interleaved runs of each pipeline (after one warm-up each); times, and each video's max abs diff to the
    reference's."""
    for name, pipe in pipes.items():
        timed_call(pipe, calls[name], device)
    runs, videos = {name: [] for name in pipes}, {}
    for _ in range(repeats):
        for name, pipe in pipes.items():
            videos[name], *t = timed_call(pipe, calls[name], device)
            runs[name].append(t)
    out = {name: summarize(r) for name, r in runs.items()}
    for name in pipes:
        out[name]["max_abs_diff_to_reference"] = (videos[name] - videos["reference"]).abs().max().item()
    out["speedup_vs_reference_wall"] = paired_speedup(runs["reference"], runs["ours"], 0)
    out["speedup_vs_reference_cpu"] = paired_speedup(runs["reference"], runs["ours"], 1)
    return out


def paired_speedup(base: list, other: list, index: int) -> float:
    """Median over repeats of base time / other time, each pair run back to back (so under the same machine load)."""
    return statistics.median(b[index] / o[index] for b, o in zip(base, other))


def sweep_caching(ours, call: dict, settings: list[tuple[str, float]], repeats: int, device: str) -> dict:
    """Each caching setting against the uncached pipeline, runs interleaved (uncached, cached, uncached, ...)."""
    from diffusers_cogvideox.caching import TeaCacheConfig

    all_uncached = []
    rows = []
    for indicator, threshold in settings:
        config = TeaCacheConfig(threshold=threshold, indicator=indicator)
        uncached_runs, runs = [], []
        for _ in range(repeats):
            uncached, *t = timed_call(ours, call, device)
            uncached_runs.append(t)
            ours.enable_step_cache(config)
            cached, *t = timed_call(ours, call, device)
            runs.append(t)
            decisions = ours.step_cache_stats.calls[-1]
            ours.disable_step_cache()
        all_uncached += uncached_runs
        rows.append(
            {
                "indicator": indicator,
                "threshold": threshold,
                "steps_computed": f"{sum(decisions)}/{len(decisions)}",
                **{f"cached_{k}": v for k, v in summarize(runs).items()},
                "speedup_wall": paired_speedup(uncached_runs, runs, 0),
                "speedup_cpu": paired_speedup(uncached_runs, runs, 1),
                "psnr_db": psnr(cached, uncached),
                "ssim": ssim(cached, uncached),
                "same_cost_fewer_steps_psnr_db": psnr(fewer_steps(ours, call, sum(decisions), device), uncached),
            }
        )
        print(_row(rows[-1]), flush=True)
    return {"uncached": summarize(all_uncached), "rows": rows}


def fewer_steps(pipe, call: dict, steps: int, device: str) -> torch.Tensor:
    """The uncached video with only as many steps as a cached run computed: what caching has to beat."""
    return timed_call(pipe, dict(call, num_inference_steps=steps), device)[0]


def _row(r: dict) -> str:
    return (
        f"  {r['indicator']:<19} thr {r['threshold']:<5} steps {r['steps_computed']:>6}  "
        f"{r['cached_wall_min_s']:7.2f} s  x{r['speedup_wall']:.2f} (cpu x{r['speedup_cpu']:.2f})  "
        f"PSNR {r['psnr_db']:6.2f} dB  SSIM {r['ssim']:.4f}  (as many plain steps: {r['same_cost_fewer_steps_psnr_db']:.2f} dB)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="Hub repo or folder with real weights (default: random mid-size)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--layers", type=int, default=8, help="random model: transformer blocks")
    parser.add_argument("--heads", type=int, default=4, help="random model: attention heads of 64 channels")
    parser.add_argument(
        "--latent-channels",
        type=int,
        choices=[4, 16],
        default=4,
        help="random model: the toy VAE "
        "(4 latent channels, 8-wide, keeps decoding a small share of the time as in the real models)",
    )
    parser.add_argument("--text-length", type=int, default=32, help="random model: T5 tokens")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5", help="modulated-input thresholds")
    parser.add_argument("--temb-thresholds", default="0.1", help="timestep-embedding thresholds")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--json", default="outputs/bench_pipeline.json")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)

    dtype = (
        getattr(torch, args.dtype)
        if args.dtype
        else (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    )
    prompt = "A panda playing a guitar in a bamboo forest, cinematic lighting"
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model or write_random_folder(args, tmp)
        ours, reference = load_pipelines(source, dtype, args.device)
        call = dict(
            prompt=prompt if args.model else "a panda playing",
            num_frames=args.frames,
            height=args.height,
            width=args.width,
            num_inference_steps=args.steps,
            guidance_scale=6.0,
            output_type="pt",
        )
        max_len = ours.transformer.config.max_text_seq_length
        reference_call = dict(call, max_sequence_length=max_len)
        setup = {
            "model": args.model or "random mid-size (5b-shaped)",
            "device": args.device,
            "dtype": str(dtype),
            "call": {k: v for k, v in call.items() if k != "prompt"},
            "transformer_params_M": sum(p.numel() for p in ours.transformer.parameters()) / 1e6,
            "torch_threads": torch.get_num_threads(),
        }
        print("setup:", json.dumps(setup), flush=True)
        results = {"setup": setup}
        if not args.skip_reference:
            from diffusers_cogvideox import CogVideoXPipeline

            our_pipeline_reference_models = CogVideoXPipeline(**reference.components)
            our_pipeline_reference_models.set_progress_bar_config(disable=True)
            pipes = {
                "ours": ours,
                "our_pipeline_reference_models": our_pipeline_reference_models,
                "reference": reference,
            }
            calls = {"ours": call, "our_pipeline_reference_models": call, "reference": reference_call}
            results["end_to_end"] = compare_end_to_end(pipes, calls, args.repeats, args.device)
            print("end to end:", json.dumps(results["end_to_end"], indent=1), flush=True)
            del our_pipeline_reference_models
        del reference
        settings = [("modulated_input", float(t)) for t in args.thresholds.split(",") if t]
        settings += [("timestep_embedding", float(t)) for t in args.temb_thresholds.split(",") if t]
        if settings:
            print("step caching (vs ours uncached):", flush=True)
            results["caching"] = sweep_caching(ours, call, settings, args.repeats, args.device)

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
