"""Case 1: one CFG denoising step of the CogVideoX transformers (batch 2 = [uncond; cond]), ours vs diffusers' class
with the same weights, per attention backend; the 50-step time it extrapolates to; the denoising loop with TeaCache.

Full size: CogVideoX-2b and 5b at 49 x 480 x 720 (13 x 60 x 90 latents), CogVideoX1.5-5B at 81 x 768 x 1360 (21 + 1
padding latent frames of 96 x 170). ``--quick``: the tiny configs of ``diffusers_cogvideox.tiny``.
"""

from __future__ import annotations

import importlib.util

import torch

from .device import free_memory, measure, random_model, same_weights, timed
from .report import MIB, CaseContext

TITLE = "1. CogVideoX transformer: one CFG step (batch 2), ours vs diffusers"
BUDGET_S = 170
MIN_S = 30
STEPS = 50
TEACACHE_THRESHOLD = 0.2  # the README's example: pipe.enable_step_cache(TeaCacheConfig(threshold=0.2))
QUICK_VIDEO_SIZES = {"2b": (9, 32, 32), "5b": (9, 32, 32), "1.5-5b": (17, 64, 64)}


def variant_configs(quick: bool) -> dict[str, tuple[dict, tuple[int, int, int]]]:
    """``{variant: (transformer config, (frames, height, width) in pixels)}``."""
    if quick:
        from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS

        return {name: (dict(TINY_TRANSFORMER_CONFIGS[name]), QUICK_VIDEO_SIZES[name]) for name in QUICK_VIDEO_SIZES}
    from _configs import OFFICIAL_TRANSFORMER_CONFIGS, OFFICIAL_VIDEO_SIZES

    return {name: (dict(config), OFFICIAL_VIDEO_SIZES[name]) for name, config in OFFICIAL_TRANSFORMER_CONFIGS.items()}


def attention_backends(device: str) -> list[str]:
    """diffusers attention backends to time: SDPA (``native``) always; flash-attn and SageAttention when installed."""
    backends = ["native"]
    if device.startswith("cuda"):
        backends += [
            name for name, module in (("flash", "flash_attn"), ("sage", "sageattention")) if _installed(module)
        ]
    return backends


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def step_flops(config: dict, video: tuple[int, int, int]) -> float:
    """Matmul FLOPs of one CFG step (batch 2): per layer 24 D^2 per token (QKV, output, 4x MLP) plus 4 S^2 D of
    attention."""
    from diffusers_cogvideox.pipelines.common import latent_frame_layout

    frames, height, width = video
    p, p_t = config.get("patch_size", 2), config.get("patch_size_t")
    latent_frames, pad = latent_frame_layout(frames, config.get("temporal_compression_ratio", 4), p_t)
    tokens = config.get("max_text_seq_length", 226)
    tokens += (latent_frames + pad) // (p_t or 1) * (height // 8 // p) * (width // 8 // p)
    d = config.get("num_attention_heads", 30) * config.get("attention_head_dim", 64)
    return 2 * config.get("num_layers", 30) * (24 * d * d * tokens + 4 * tokens * tokens * d)


def make_inputs(model, frames: int, height: int, width: int, device: str, dtype: torch.dtype) -> dict:
    """[uncond; cond] latents and text embeddings of one CFG step, created on the device, and the RoPE tables."""
    from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video
    from diffusers_cogvideox.pipelines.common import latent_frame_layout

    config = model.config
    latent_frames, pad = latent_frame_layout(frames, config.temporal_compression_ratio, config.patch_size_t)
    generator = torch.Generator(device).manual_seed(1)
    shape = (2, latent_frames + pad, config.in_channels, height // 8, width // 8)
    inputs = dict(
        hidden_states=torch.randn(shape, generator=generator, device=device, dtype=dtype),
        encoder_hidden_states=torch.randn(
            (2, config.max_text_seq_length, config.text_embed_dim), generator=generator, device=device, dtype=dtype
        ),
        timestep=torch.full((2,), 500, device=device),
        return_dict=False,
    )
    if config.use_rotary_positional_embeddings:
        inputs["image_rotary_emb"] = rotary_embeddings_for_video(config, height, width, shape[1], device=device)
    return inputs


def run(ctx: CaseContext) -> None:
    backends = attention_backends(ctx.device)
    ctx.details["attention_backends"] = backends
    flops_per_s = None  # measured on the first variant, to tell whether the next ones fit
    for name, (config, video) in variant_configs(ctx.quick).items():
        label = f"{name} {'x'.join(map(str, video))}"
        flops = step_flops(config, video)
        # per backend: two warm-ups and at least two timed calls (ours and the reference)
        if flops_per_s and not ctx.fits(f"{label}: CFG step", 4 * len(backends) * flops / flops_per_s):
            continue
        seconds = run_variant(ctx, name, label, config, video, backends)
        flops_per_s = flops_per_s or flops / seconds
        free_memory(ctx.device)


def run_variant(ctx: CaseContext, name: str, label: str, config: dict, video, backends: list[str]) -> float:
    """The variant's rows; returns our SDPA step time."""
    from diffusers import CogVideoXTransformer3DModel as Reference

    from diffusers_cogvideox import CogVideoXTransformer3DModel as Ours

    ours = random_model(lambda: Ours(**config), ctx.device, ctx.dtype)
    reference = same_weights(lambda: Reference(**config), ours, ctx.device)
    inputs = make_inputs(ours, *video, ctx.device, ctx.dtype)
    sdpa_s = None
    for backend in backends:
        share = ctx.budget.part(0.5 if backend == backends[-1] else 0.3)
        try:
            ours.set_attention_backend(backend)
            reference.set_attention_backend(backend)
            with torch.no_grad():
                mine = measure(lambda: ours(**inputs)[0], ctx.device, share, ctx.repeats, keep_output=True)
                theirs = measure(lambda: reference(**inputs)[0], ctx.device, share, ctx.repeats, keep_output=True)
        except (RuntimeError, ValueError, ImportError) as error:
            if backend == "native":
                raise
            # an optional kernel that cannot take these shapes or this build: the SDPA figures stand
            ctx.skip(f"{label} [{backend}]: CFG step", f"{type(error).__name__}: {error}".splitlines()[0])
            continue
        diff = (mine.output.float() - theirs.output.float()).abs().max().item()
        mine.output = theirs.output = None
        sdpa_s = sdpa_s or mine.seconds
        note = f"median of {len(mine.times_s)}/{len(theirs.times_s)} after a warm-up; max abs diff {diff:.2e}"
        ctx.row(f"{label} [{backend}]: CFG step", mine.seconds, theirs.seconds, "s", note)
        ctx.row(f"{label} [{backend}]: {STEPS}-step estimate", STEPS * mine.seconds, STEPS * theirs.seconds,
                "s", f"{STEPS} x the CFG step")  # fmt: skip
        ctx.row(f"{label} [{backend}]: peak memory of the step", mine.peak_bytes / MIB, theirs.peak_bytes / MIB,
                "MiB", "allocated beyond the weights and inputs")  # fmt: skip
    if name == "2b":
        ours.set_attention_backend("native")
        teacache(ctx, ours, inputs, video, sdpa_s, label)
    return sdpa_s


def teacache(ctx: CaseContext, transformer, inputs: dict, video: tuple[int, int, int], step_s: float, label: str):
    """Our pipeline's denoising loop (prompt embeddings given, latents out) with TeaCache at the README's threshold."""
    from diffusers import CogVideoXDDIMScheduler

    from diffusers_cogvideox import AutoencoderKLCogVideoX, CogVideoXPipeline
    from diffusers_cogvideox.caching import TeaCacheConfig
    from diffusers_cogvideox.tiny import TINY_VAE_CONFIG, tiny_scheduler_config

    steps = 4 if ctx.quick else STEPS
    measure_name = f"{label}: {steps}-step loop, TeaCache {TEACACHE_THRESHOLD}"
    if not ctx.fits(measure_name, 1.2 * steps * step_s):
        return
    scheduler = CogVideoXDDIMScheduler(**tiny_scheduler_config("2b"))
    # latents out, so the VAE is never run: a toy one with the right latent channels gives the pipeline its config
    vae_config = dict(TINY_VAE_CONFIG, latent_channels=transformer.config.in_channels)
    vae = random_model(lambda: AutoencoderKLCogVideoX(**vae_config), ctx.device, ctx.dtype)
    pipe = CogVideoXPipeline(tokenizer=None, text_encoder=None, vae=vae, transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    pipe.enable_step_cache(TeaCacheConfig(threshold=TEACACHE_THRESHOLD))
    frames, height, width = video
    embeds = inputs["encoder_hidden_states"]
    try:
        seconds, _ = timed(
            lambda: pipe(
                prompt_embeds=embeds[1:], negative_prompt_embeds=embeds[:1], num_frames=frames, height=height,
                width=width, num_inference_steps=steps, output_type="latent",
            ),
            ctx.device,
        )  # fmt: skip
        stats = pipe.step_cache_stats
    finally:
        pipe.disable_step_cache()
    computed = f"{stats.computed}/{steps} steps computed" if stats is not None else "no cache statistics"
    ctx.row(measure_name, seconds, steps * step_s, "s",
            f"reference column: {steps} x the uncached step; {computed} (random weights: the skip pattern of trained "
            "weights differs)")  # fmt: skip
