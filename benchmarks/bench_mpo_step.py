"""One MPO training step: ours vs the research-script approach, same model, batch and run.

    python benchmarks/bench_mpo_step.py                       # mid-size CogVideoX config on CPU (a few minutes)
    python benchmarks/bench_mpo_step.py --height 12 --width 12   # more video tokens: activations weigh more
    python benchmarks/bench_mpo_step.py --device cuda --layers 8 --heads 16 --frames 13 --height 30 --width 45

The memory ratio depends on how much of the peak is weights: the reference copy costs one set of weights, so it
matters most when weights dominate (LoRA with gradient checkpointing on short clips, or large models) and least
when activations of long, high-resolution clips dominate.

Variants (all: LoRA rank 64 on the attention projections, AdamW, gradient checkpointing, B pairs):

* ``ours``: ``MPOTrainer``'s step - reference = the same network with its adapter disabled (no copy); chosen and
  rejected in one batched forward of 2B for the policy and one for the reference.
* ``copy+separate``: the research-script reference handling with the same LoRA policy - a frozen second full copy of
  the denoiser as reference, and separate forwards for chosen and rejected (policy w, policy l, reference w,
  reference l).
* ``official``: SalesforceAIResearch/DiffusionDPO's ``train.py`` setup - full fine-tuning (AdamW on every weight) with
  a frozen copy as reference; chosen and rejected go through each network as one batch of 2B, as there. Shown for
  scale; it also changes what is trained.

Peak memory: each variant is built in a fresh child process and runs two steps; on CUDA the peak of
``torch.cuda.max_memory_allocated`` over what was allocated before the model was built; on CPU the same quantity, the
peak of the bytes held by live tensors created from the model's construction on (``_tensor_memory.py``), and, for
reference, the growth of the process's peak resident set size (``ru_maxrss``: allocator caching and fragmentation
included). Before that, each child runs two steps of the same variant on a one-layer model, so that one-off costs
(lazy imports, Trainer and PEFT set-up, the first backward's workspaces) stay out of the RSS figure.
Throughput: pairs per second, median over ``--steps`` steps after a warm-up, with all variants in one process and
their steps interleaved so that machine noise hits all alike; on CPU the clock is the process's CPU time (all
threads), so that waiting for a shared core does not count.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from _configs import add_scaled_transformer_arguments, scaled_5b_transformer_config
from _tensor_memory import TensorMemoryPeak

VARIANTS = ("ours", "copy+separate", "official")


def make_batch(args: argparse.Namespace, device: str) -> dict:
    g = torch.Generator().manual_seed(0)
    shape = (args.pairs, args.frames, 16, args.height, args.width)
    latents = torch.cat([torch.randn(shape, generator=g), torch.randn(shape, generator=g)])
    return {
        "latents": latents.to(device),
        "prompt_embeds": torch.randn(args.pairs, args.text_length, args.text_dim, generator=g).to(device),
        "rows": torch.arange(args.pairs),
        "prompts": [f"prompt {i}" for i in range(args.pairs)],
    }


def _memory_now(device: str) -> int:
    if device == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def build_variant(variant: str, args: argparse.Namespace, batch: dict, model=None):
    """The variant's model(s) and a ``step()`` doing forward, backward and an AdamW update; returns (step, trainable).

    ``model``: a denoiser already built (in ``args.dtype`` on ``args.device``) to use instead of a scaled 5b one."""
    from diffusers_cogvideox import CogVideoXTransformer3DModel
    from trl_vision_reward.mpo.config import MPOConfig
    from trl_vision_reward.mpo.losses import (
        cogvideox_alphas_cumprod,
        diffusion_dpo_loss,
        noisy_and_target,
        per_sample_mse,
        sample_timesteps_uniform,
    )
    from trl_vision_reward.mpo.trainer import MPOTrainer, _RotaryCache, add_lora, denoise

    device, dtype = args.device, getattr(torch, args.dtype)
    if model is None:
        torch.manual_seed(0)
        model = CogVideoXTransformer3DModel(**scaled_5b_transformer_config(args)).to(device)
        if dtype != torch.float32:
            model.to(dtype)
    cfg = MPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench_mpo_"), report_to=[], lora_r=64, lora_alpha=64, beta=500,
        use_cpu=device == "cpu",
    )  # fmt: skip

    if variant == "ours":
        trainer = MPOTrainer(model=model, args=cfg)
        model = trainer.model

        def loss_fn():
            return trainer.compute_loss(model, batch)
    else:
        model.enable_gradient_checkpointing()
        reference = copy.deepcopy(model).requires_grad_(False).eval()
        if variant == "copy+separate":
            add_lora(model, cfg)
        abar, rope = cogvideox_alphas_cumprod(), _RotaryCache()

        def mse(net, noisy, target, t, embeds):
            pred = denoise(net, "cogvideox", noisy.to(dtype), t, {"prompt_embeds": embeds}, rope)
            return per_sample_mse(pred, target)

        def loss_fn():
            chosen, rejected = batch["latents"].chunk(2)
            noise = torch.randn(chosen.shape, device=device)
            t = sample_timesteps_uniform(chosen.shape[0], device=device)
            embeds = batch["prompt_embeds"].to(dtype)
            if variant == "official":  # train.py: [w; l] as one batch of 2B through the policy and the copy
                t2, embeds2 = t.repeat(2), torch.cat([embeds, embeds])
                noisy, target = noisy_and_target(
                    "v_prediction", batch["latents"], noise.repeat(2, 1, 1, 1, 1), t2, abar
                )
                with torch.no_grad():
                    ref_w, ref_l = mse(reference, noisy, target, t2, embeds2).chunk(2)
                model_w, model_l = mse(model, noisy, target, t2, embeds2).chunk(2)
            else:  # separate forwards for chosen and rejected
                errs = []
                for x0 in (chosen, rejected):
                    noisy, target = noisy_and_target("v_prediction", x0, noise, t, abar)
                    with torch.no_grad():
                        ref = mse(reference, noisy, target, t, embeds)
                    errs.append((mse(model, noisy, target, t, embeds), ref))
                (model_w, ref_w), (model_l, ref_l) = errs
            return diffusion_dpo_loss(model_w, model_l, ref_w, ref_l, 500.0).loss

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step():
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()

    return step, sum(p.numel() for p in params)


def _two_steps(variant: str, args: argparse.Namespace, batch: dict) -> int:
    """Build the variant and run two steps (the second with the optimizer state in place); returns trainable count."""
    step, trainable = build_variant(variant, args, batch)
    step()
    step()
    return trainable


def measure_memory(variant: str, args: argparse.Namespace) -> dict:
    """Peak memory growth (bytes) over building the variant and two steps; meant for a fresh process."""
    # Lazy imports and one-off set-up (Trainer, Accelerator, PEFT, autograd and kernel workspaces) are not the step's
    # memory: pay them first, for every variant alike, with two steps of the same variant on a one-layer model.
    warm = argparse.Namespace(**{**vars(args), "layers": 1, "heads": 2, "head_dim": 16, "text_dim": 32, "pairs": 1})
    _two_steps(variant, warm, make_batch(warm, args.device))
    gc.collect()

    batch = make_batch(args, args.device)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated() if cuda else _memory_now("cpu")
    with contextlib.nullcontext() if cuda else TensorMemoryPeak() as tensors:
        trainable = _two_steps(variant, args, batch)
    if cuda:
        return {"peak_bytes": torch.cuda.max_memory_allocated() - start, "rss_bytes": None, "trainable": trainable}
    return {"peak_bytes": tensors.peak, "rss_bytes": _memory_now("cpu") - start, "trainable": trainable}


def measure_speed(variants: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Pairs per second per variant: all built in this process, steps interleaved so machine noise hits all alike."""
    batch = make_batch(args, args.device)
    steps = {v: build_variant(v, args, batch)[0] for v in variants}
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {v: [] for v in variants}
    clock = time.perf_counter if args.device == "cuda" else time.process_time  # CPU: work done, not shared-core waits
    for _ in range(args.steps):
        for v, step in steps.items():
            t0 = clock()
            step()
            times[v].append(clock() - t0)
    return {v: args.pairs / statistics.median(ts) for v, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scaled_transformer_arguments(parser, text_length=32, frames=2)
    parser.add_argument("--pairs", type=int, default=2, help="pairs per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print("RESULT " + json.dumps(measure_memory(args.child, args)))
        return 0
    results = {}
    for variant in args.variants:  # memory: a fresh process per variant (ru_maxrss is a lifetime peak)
        out = subprocess.run(
            [sys.executable, __file__, *(argv or sys.argv[1:]), "--child", variant], capture_output=True, text=True
        )
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise RuntimeError(f"{variant} failed:\n{out.stderr[-3000:]}")
        results[variant] = json.loads(line[len("RESULT ") :])
    for variant, speed in measure_speed(args.variants, args).items():
        results[variant]["pairs_per_s"] = speed
    ours = results.get("ours")
    params_m = scaled_5b_transformer_config(args)
    print(
        f"\nOne MPO step, {args.pairs} pairs, CogVideoX-shaped transformer: {params_m['num_layers']} layers, "
        f"{args.heads}x{args.head_dim} heads, latents {args.frames}x16x{args.height}x{args.width}, {args.dtype}, {args.device}"
    )
    print(
        f"{'variant':<15} {'trainable':>12} {'pairs/s':>9} {'peak MiB':>10} {'mem ratio':>10} {'speed ratio':>12} "
        f"{'RSS MiB':>9} {'RSS ratio':>10}"
    )
    for variant, r in results.items():
        other = ours and variant != "ours"
        mem = f"{ours['peak_bytes'] / r['peak_bytes']:.2f}x" if other else "-"
        speed = f"{ours['pairs_per_s'] / r['pairs_per_s']:.2f}x" if other else "-"
        rss = f"{r['rss_bytes'] / 2**20:>9.1f}" if r["rss_bytes"] is not None else f"{'-':>9}"
        rss_ratio = f"{ours['rss_bytes'] / r['rss_bytes']:.2f}x" if other and r["rss_bytes"] else "-"
        print(
            f"{variant:<15} {r['trainable']:>12,} {r['pairs_per_s']:>9.3f} {r['peak_bytes'] / 2**20:>10.1f} {mem:>10} "
            f"{speed:>12} {rss} {rss_ratio:>10}"
        )
    print(
        "peak MiB = peak of allocated tensor bytes (CUDA: max_memory_allocated); mem ratio = ours / variant "
        "(goal <= 0.6x); speed ratio = ours / variant throughput (goal >= 1.3x); RSS = process resident-set growth"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
