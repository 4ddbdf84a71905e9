"""Case 5: one SFT step at CogVideoX-2b size (LoRA, gradient checkpointing, one 49 x 480 x 720 clip from cached
latents), ``CogVideoXSFTTrainer``'s step vs the approach of diffusers' ``examples/cogvideo/train_cogvideox_lora.py``.

The reference step, as that script does it: PEFT LoRA on ``to_q/to_k/to_v/to_out.0`` added with ``add_adapter``, the
DPM scheduler's ``add_noise``, the transformer's v-prediction turned into x0 with ``get_velocity``, and the
``1 / (1 - abar_t)``-weighted x0 MSE. Both get the same LoRA rank and alpha (the trainer's defaults), AdamW, and the
same random 2b transformer built on the device. Runs only when ``diffusers_cogvideox.training`` has its trainer.
``--quick``: a tiny 2b-like transformer.
"""

from __future__ import annotations

import tempfile

import torch

from .device import free_memory, peak_window, random_model, repeat_steps, timed
from .report import MIB, CaseContext

TITLE = "5. SFT step at CogVideoX-2b size (LoRA, gradient checkpointing, 49 frames): ours vs the diffusers example"
BUDGET_S = 50
MIN_S = 15
EXAMPLE_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]


def sft_classes():
    """``(CogVideoXSFTConfig, CogVideoXSFTTrainer, CachedLatentDataset)``, or None while the package lacks them."""
    try:
        from diffusers_cogvideox.training import CachedLatentDataset, CogVideoXSFTConfig, CogVideoXSFTTrainer
    except (ImportError, AttributeError):
        return None
    return CogVideoXSFTConfig, CogVideoXSFTTrainer, CachedLatentDataset


def shapes(quick: bool) -> tuple[dict, tuple[int, int, int], int, int]:
    """Transformer config, the clip (frames, height, width) in pixels, text length and width."""
    if quick:
        from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS

        return dict(TINY_TRANSFORMER_CONFIGS["2b"], in_channels=16, out_channels=16), (9, 32, 32), 16, 32
    from _configs import OFFICIAL_TRANSFORMER_CONFIGS

    return dict(OFFICIAL_TRANSFORMER_CONFIGS["2b"]), (49, 480, 720), 226, 4096


def make_batch(clip: tuple[int, int, int], text: tuple[int, int], device: str) -> dict:
    """One cached clip as the trainer's collator gives it: posterior mean / std of scaled latents, prompt embeds."""
    frames, height, width = clip
    generator = torch.Generator(device).manual_seed(3)
    shape = (1, (frames - 1) // 4 + 1, 16, height // 8, width // 8)
    return {
        "latent_mean": torch.randn(shape, generator=generator, device=device),
        "latent_std": torch.full(shape, 0.05, device=device),
        "prompt_embeds": torch.randn((1, *text), generator=generator, device=device),
        "stage": torch.zeros(1, dtype=torch.long),
        "rows": torch.zeros(1, dtype=torch.long),
    }


def run(ctx: CaseContext) -> str | None:
    classes = sft_classes()
    if classes is None:
        return "diffusers_cogvideox.training has no CogVideoXSFTTrainer yet"
    from diffusers_cogvideox import CogVideoXTransformer3DModel

    config, clip, text_length, text_dim = shapes(ctx.quick)
    batch = make_batch(clip, (text_length, text_dim), ctx.device)
    results = {}
    step_s = None
    with tempfile.TemporaryDirectory(prefix="gpu_suite_sft_") as output_dir:
        for variant in ("ours", "diffusers example"):
            if step_s is not None and not ctx.fits(f"{variant}: SFT step", 4 * step_s + 5):
                continue
            with peak_window(ctx.device) as window:
                model = random_model(lambda: CogVideoXTransformer3DModel(**config), ctx.device, ctx.dtype).train()
                builder = ours_step if variant == "ours" else example_step
                step, trainable = builder(classes, model, batch, clip, ctx, output_dir)
                first_s, _ = timed(step, ctx.device)
                timed(step, ctx.device)  # the second step: AdamW state in place
            step_s = step_s or first_s
            times = repeat_steps(step, ctx.device, ctx.budget, ctx.repeats, first_s)
            results[variant] = (sorted(times)[len(times) // 2], window.peak_bytes, trainable, len(times))
            del step, model
            free_memory(ctx.device)
    ours, other = results["ours"], results.get("diffusers example")
    note = f"{ours[2]:,} trainable parameters; median of {ours[3]} steps"
    ctx.row("clips per second", 1 / ours[0], 1 / other[0] if other else None, "clips/s", note)
    ctx.row("peak memory (weights, optimizer, activations)", ours[1] / MIB, other[1] / MIB if other else None, "MiB",
            "allocated from before the model was built, over two steps")  # fmt: skip
    return None


def _adamw_step(model, loss_fn):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def step():
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in params)


def ours_step(classes, model, batch, clip, ctx: CaseContext, output_dir: str):
    config_class, trainer_class, dataset_class = classes
    bucket = "x".join(map(str, clip))
    args = config_class(output_dir=output_dir, buckets=[bucket], max_steps=1, report_to=[],
                        use_cpu=ctx.device == "cpu", bf16=ctx.dtype == torch.bfloat16)  # fmt: skip
    # the schedule only counts rows per bucket; the batch below is handed over directly, nothing is read from disk
    dataset = dataset_class([{"bucket": bucket, "stage": 0, "latents": None, "prompt_embeds": None}])
    trainer = trainer_class(model=model, args=args, train_dataset=dataset)
    ctx.details["sft_lora"] = {"r": args.lora_r, "alpha": args.lora_alpha}
    return _adamw_step(trainer.model, lambda: trainer.compute_loss(trainer.model, batch))


def example_step(classes, model, batch, clip, ctx: CaseContext, output_dir: str):
    """diffusers' example script: LoRA via add_adapter, scheduler noise, x0 from get_velocity, weighted x0 MSE."""
    from diffusers import CogVideoXDPMScheduler
    from peft import LoraConfig

    from diffusers_cogvideox.models.embeddings import rotary_embeddings_for_video
    from diffusers_cogvideox.tiny import tiny_scheduler_config

    lora = ctx.details.get("sft_lora", {"r": 128, "alpha": 64})
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], init_lora_weights=True,
                                 target_modules=EXAMPLE_LORA_TARGETS))  # fmt: skip
    for param in model.parameters():  # the script upcasts the trainable LoRA weights to float32
        if param.requires_grad:
            param.data = param.data.float()
    model.enable_gradient_checkpointing()
    scheduler = CogVideoXDPMScheduler(**tiny_scheduler_config("2b"))
    alphas_cumprod = scheduler.alphas_cumprod.to(ctx.device)
    frames, height, width = clip
    rope = None
    if model.config.use_rotary_positional_embeddings:
        rope = rotary_embeddings_for_video(
            model.config, height, width, batch["latent_mean"].shape[1], device=ctx.device
        )

    def loss_fn():
        latents = (batch["latent_mean"] + batch["latent_std"] * torch.randn_like(batch["latent_std"])).to(ctx.dtype)
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=ctx.device)
        noisy = scheduler.add_noise(latents, noise, t)
        output = model(hidden_states=noisy, encoder_hidden_states=batch["prompt_embeds"].to(ctx.dtype), timestep=t,
                       image_rotary_emb=rope, return_dict=False)[0]  # fmt: skip
        x0 = scheduler.get_velocity(output, noisy, t)
        weights = (1 / (1 - alphas_cumprod[t])).flatten()
        while weights.ndim < x0.ndim:
            weights = weights.unsqueeze(-1)
        return torch.mean((weights * (x0.float() - latents.float()) ** 2).reshape(latents.shape[0], -1), dim=1).mean()

    return _adamw_step(model, loss_fn)
