"""Case 4: one MPO step at CogVideoX-2b size - LoRA rank 64, gradient checkpointing, one pair of 49-frame clips
(13 x 60 x 90 latents), 226 text tokens - ``MPOTrainer``'s step vs the research scripts' frozen second copy with
separate chosen / rejected forwards, the same LoRA policy.

The steps are those of ``benchmarks/bench_mpo_step.py`` (one definition of both variants), on a random 2b transformer
built on the device. Peak memory: the window opens before the variant's model is built and covers two steps (the
second with the optimizer state), so weights, the reference copy, LoRA, AdamW state and activations all count.
Pairs per second: median of the timed steps after those two. ``--quick``: a tiny 2b-like transformer.
"""

from __future__ import annotations

import argparse

from .device import dtype_name, free_memory, peak_window, random_model, repeat_steps, timed
from .report import MIB, CaseContext

TITLE = "4. MPO step at CogVideoX-2b size (LoRA, gradient checkpointing, 49 frames): ours vs frozen copy + separate"
BUDGET_S = 70
MIN_S = 20
VARIANTS = ("ours", "copy+separate")


def shapes(quick: bool) -> tuple[dict, argparse.Namespace]:
    """The transformer config and the batch shape (``bench_mpo_step``'s argument names)."""
    if quick:
        from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS

        config = dict(TINY_TRANSFORMER_CONFIGS["2b"], in_channels=16, out_channels=16)  # bench batches have 16
        return config, argparse.Namespace(pairs=1, frames=2, height=4, width=4, text_length=16, text_dim=32)
    from _configs import OFFICIAL_TRANSFORMER_CONFIGS

    batch = argparse.Namespace(pairs=1, frames=13, height=60, width=90, text_length=226, text_dim=4096)
    return dict(OFFICIAL_TRANSFORMER_CONFIGS["2b"]), batch


def run(ctx: CaseContext) -> None:
    import bench_mpo_step

    from diffusers_cogvideox import CogVideoXTransformer3DModel

    config, args = shapes(ctx.quick)
    args.device, args.dtype = ctx.device, dtype_name(ctx.dtype)
    results = {}
    step_s = None
    for variant in VARIANTS:
        if step_s is not None and not ctx.fits(f"{variant}: MPO step", 4 * step_s + 5):
            continue
        batch = bench_mpo_step.make_batch(args, ctx.device)
        with peak_window(ctx.device) as window:
            model = random_model(lambda: CogVideoXTransformer3DModel(**config), ctx.device, ctx.dtype).train()
            step, trainable = bench_mpo_step.build_variant(variant, args, batch, model=model)
            first_s, _ = timed(step, ctx.device)
            timed(step, ctx.device)  # the second step: AdamW state in place
        step_s = step_s or first_s
        times = repeat_steps(step, ctx.device, ctx.budget, ctx.repeats, first_s)
        results[variant] = (sorted(times)[len(times) // 2], window.peak_bytes, trainable, len(times))
        del step, model, batch
        free_memory(ctx.device)
    if "ours" not in results:
        return
    ours = results["ours"]
    other = results.get("copy+separate")
    pairs = args.pairs
    note = f"{ours[2]:,} trainable parameters; median of {ours[3]} steps"
    ctx.row("pairs per second", pairs / ours[0], pairs / other[0] if other else None, "pairs/s", note)
    ctx.row("peak memory (weights, optimizer, activations)", ours[1] / MIB, other[1] / MIB if other else None, "MiB",
            "allocated from before the model was built, over two steps")  # fmt: skip
