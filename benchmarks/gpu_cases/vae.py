"""Case 2: the CogVideoX VAE, ours vs diffusers' class with the same weights: decode of 13 latent frames to 49 x 480 x
720 with and without tiling (time, peak memory), then the whole-clip encode of that video.

Both classes run the official frame schedule (2 latent frames per decoder call, 8 frames per encoder call). The
package has no batched encode yet, so the encode row is the exact whole-clip encode only. ``--quick``: the tiny VAE
of ``diffusers_cogvideox.tiny`` with 16 latent channels, one latent frame of 6 x 6 in tiles of 4 x 4; on CPU in float32 (CPU
bf16 3D convolutions are a slow path and bf16 ``avg_pool3d`` is missing there).
"""

from __future__ import annotations

import torch

from .device import measure, random_model, same_weights
from .report import MIB, CaseContext

TITLE = "2. CogVideoX VAE: decode 13 latent frames to 49x480x720, encode the clip, ours vs diffusers"
BUDGET_S = 80
MIN_S = 20


def vae_config(quick: bool) -> tuple[dict, tuple[int, int, int]]:
    """The VAE config and the (latent frames, latent height, latent width) decoded."""
    if quick:
        from diffusers_cogvideox.tiny import TINY_VAE_CONFIG_16

        return dict(TINY_VAE_CONFIG_16, sample_height=64, sample_width=64), (1, 6, 6)  # 2 x 2 tiles of 4 x 4
    return {}, (13, 60, 90)  # the class defaults are the official layout (tiles of 240 x 360 pixels)


def run(ctx: CaseContext) -> None:
    from diffusers import AutoencoderKLCogVideoX as Reference

    from diffusers_cogvideox import AutoencoderKLCogVideoX as Ours

    config, (frames, height, width) = vae_config(ctx.quick)
    dtype = torch.float32 if ctx.device == "cpu" else ctx.dtype
    ours = random_model(lambda: Ours(**config), ctx.device, dtype)
    reference = same_weights(lambda: Reference(**config), ours, ctx.device)
    generator = torch.Generator(ctx.device).manual_seed(2)
    latents = torch.randn((1, 16, frames, height, width), generator=generator, device=ctx.device, dtype=dtype)
    size = f"{frames} latents -> {4 * (frames - 1) + 1}x{8 * height}x{8 * width}"
    seconds_per_decode, video = None, None
    for tiling in (False, True):
        label = f"decode {size}{', tiled' if tiling else ''}"
        if seconds_per_decode is not None and not ctx.fits(label, 4 * seconds_per_decode):
            continue
        for model in (ours, reference):
            model.enable_tiling() if tiling else model.disable_tiling()
        with torch.no_grad():
            mine = measure(lambda: ours.decode(latents).sample, ctx.device, ctx.budget.part(0.25), ctx.repeats, True)
            theirs = measure(lambda: reference.decode(latents).sample, ctx.device, ctx.budget.part(0.3), ctx.repeats,
                             True)  # fmt: skip
        diff = (mine.output.float() - theirs.output.float()).abs().max().item()
        video = video if tiling else mine.output  # the exact decode feeds the encode below
        del mine.output, theirs.output
        seconds_per_decode = seconds_per_decode or max(mine.first_s, theirs.first_s)
        note = f"median of {len(mine.times_s)}/{len(theirs.times_s)} after a warm-up; max abs diff {diff:.2e}"
        ctx.row(f"{label}: time", mine.seconds, theirs.seconds, "s", note)
        ctx.row(f"{label}: peak memory", mine.peak_bytes / MIB, theirs.peak_bytes / MIB, "MiB",
                "allocated beyond the weights and latents")  # fmt: skip
    for model in (ours, reference):
        model.disable_tiling()
    label = f"encode {4 * (frames - 1) + 1}x{8 * height}x{8 * width} (whole clip, exact)"
    if ctx.fits(label, 4 * (seconds_per_decode or 0)):
        video = video.clamp(-1, 1)
        with torch.no_grad():
            mine = measure(lambda: ours.encode(video).latent_dist.mode(), ctx.device, ctx.budget.part(0.4), ctx.repeats)
            theirs = measure(lambda: reference.encode(video).latent_dist.mode(), ctx.device, ctx.budget.part(0.6),
                             ctx.repeats)  # fmt: skip
        ctx.row(
            f"{label}: time", mine.seconds, theirs.seconds, "s", f"median of {len(mine.times_s)}/{len(theirs.times_s)}"
        )
        ctx.row(f"{label}: peak memory", mine.peak_bytes / MIB, theirs.peak_bytes / MIB, "MiB",
                "allocated beyond the weights and video")  # fmt: skip
    ctx.details["notes"] = ["batched encode (several clips per call) is not in the package yet: not measured"]
