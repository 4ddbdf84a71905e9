"""``CogVideoXSFTTrainer``: supervised fine-tuning of CogVideoX (LoRA or full) with the paper's training techniques.

Usage, TRL style::

    from diffusers_cogvideox.training import CogVideoXSFTConfig, CogVideoXSFTTrainer

    args = CogVideoXSFTConfig(output_dir="cogvideox-lora", stages=[
        {"name": "low", "buckets": ["49x256x384", "1x256x384"], "max_steps": 2000, "learning_rate": 1e-4},
        {"name": "high", "buckets": ["49x480x720"], "max_steps": 1000, "learning_rate": 5e-5},
    ])
    trainer = CogVideoXSFTTrainer(model=transformer, args=args, train_dataset=cached, noise_scheduler=scheduler)
    trainer.train()        # one job, one step counter, one resume point across the stages
    trainer.save_model()   # pytorch_lora_weights.safetensors + README.md; pipe.load_lora_weights(output_dir)

One step: each batch is one bucket (``StagedBucketBatchSampler``); a latent is drawn from the cached posterior,
CogVideoX 1.5 front-pads it with copies of its first latent frame to a multiple of ``patch_size_t`` (the official
trainer's rule, matching the pipeline that drops leading frames), ``t`` comes from explicit uniform sampling, and
the loss is the v-MSE (equal to the official ``1/(1 - abar_t)``-weighted x0 loss). Metrics: ``loss``,
``loss/t_<lo>-<hi>`` (loss per quarter of the timestep range), ``stage``, ``timestep``.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from ..redaction import portable_path, redacted_copy
from .buckets import StagedBucketBatchSampler, check_bucket, parse_bucket
from .checkpointing import trainer_checkpointing_off
from .config import CogVideoXSFTConfig
from .data import CachedLatentDataset, collate_latents
from .denoiser import (
    FULL_WEIGHT_NAME,
    LORA_WEIGHT_NAME,
    RotaryCache,
    add_lora,
    base_model,
    config_get,
    denoise,
    load_lora_weights_into,
    lora_card_info,
    lora_layers,
    lora_state_dict,
    save_lora_weights,
)
from .diffusion import (
    cogvideox_alphas_cumprod,
    noisy_and_target,
    per_sample_mse,
    sample_timesteps_explicit_uniform,
    sample_timesteps_uniform,
)
from .evaluation import SeededEvaluationMixin
from .precompute import noised_image_latents
from .stages import StageSchedule

LORA_PREFIX = "transformer"
T_BINS = 4  # loss logged per quarter of [0, T)


def front_pad_latents(latents: torch.Tensor, patch_size_t: int | None) -> torch.Tensor:
    """``[B, F, C, h, w]`` with ``(-F) % patch_size_t`` copies of the first frame prepended (CogVideoX 1.5)."""
    pad = (-latents.shape[1]) % patch_size_t if patch_size_t else 0
    return torch.cat([latents[:, :1].expand(-1, pad, -1, -1, -1), latents], dim=1) if pad else latents


class _ValidationCallback(TrainerCallback):
    def __init__(self, trainer: CogVideoXSFTTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        every = args.validation_steps
        if every and state.global_step % every == 0 and state.global_step < state.max_steps:
            self.trainer.validate()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer.validate()


class CogVideoXSFTTrainer(SeededEvaluationMixin, Trainer):
    """Fine-tune a ``CogVideoXTransformer3DModel`` on cached clips (see the module docstring).

    Args:
        model: the transformer (this package's or diffusers' class).
        args: a :class:`CogVideoXSFTConfig`.
        train_dataset: a :class:`CachedLatentDataset` whose rows carry their ``stage`` index and ``bucket``.
        eval_dataset: held-out rows (any stage); evaluated with fixed noise and timesteps.
        noise_scheduler: the checkpoint's scheduler (``alphas_cumprod``); default the CogVideoX schedule.
        validation_components: ``{"vae", "text_encoder", "tokenizer", "scheduler"}`` to render
            ``args.validation_prompts`` into ``<output_dir>/validation/step-<N>/`` (kept on the CPU between renders).
        vae: image-to-video with ``image_condition='noised'``: the VAE that encodes the noised first frame each step.
        encoders: ``args.precompute=False``: ``{"vae", "text_encoder", "tokenizer"}`` that encode each batch of a
            :class:`ClipFrameDataset` (optionally ``"max_text_length"``; default the transformer's).
    """

    _tag_names = ["cogvideox", "text-to-video", "sft"]

    def __init__(
        self,
        model: nn.Module,
        args: CogVideoXSFTConfig,
        train_dataset: CachedLatentDataset,
        eval_dataset: CachedLatentDataset | None = None,
        noise_scheduler: Any = None,
        callbacks: list | None = None,
        optimizers: tuple = (None, None),
        validation_components: dict[str, Any] | None = None,
        model_name: str | None = None,
        dataset_name: str | None = None,
        vae: nn.Module | None = None,
        encoders: dict[str, Any] | None = None,
    ):
        if not isinstance(args, CogVideoXSFTConfig):
            raise TypeError(f"args must be a CogVideoXSFTConfig; got {type(args).__name__}")
        config = base_model(model).config
        for stage in args.stage_list:
            for bucket in stage.bucket_list:
                try:
                    check_bucket(bucket, config)
                except ValueError as exc:
                    raise ValueError(f"stage {stage.name!r}: {exc}") from None
        self.base_model_name = model_name or config_get(config, "_name_or_path", None)
        self.dataset_name = dataset_name
        self.image_to_video = config_get(config, "in_channels", 16) == 2 * config_get(config, "out_channels", 16)
        if self.image_to_video and args.image_condition == "noised" and vae is None and args.precompute:
            raise ValueError(
                "image_condition='noised' (the official recipe) encodes the noised first frame every step: pass the "
                "vae, or set image_condition='clean' to train on the cached clean image latents"
            )
        self.vae = vae.requires_grad_(False).eval() if vae is not None and self.image_to_video else None
        self._encode_prompt = None
        if not args.precompute:
            missing = [k for k in ("vae", "text_encoder", "tokenizer") if not (encoders or {}).get(k)]
            if missing:
                raise ValueError(f"precompute=False encodes every batch: pass encoders= with {missing} as well")
            from .precompute import t5_prompt_encoder

            self.encoders = {k: encoders[k] for k in ("vae", "text_encoder", "tokenizer")}
            for key in ("vae", "text_encoder"):
                self.encoders[key].requires_grad_(False).eval()
            max_len = encoders.get("max_text_length") or config_get(config, "max_text_seq_length", 226)
            self._encode_prompt = t5_prompt_encoder(encoders["text_encoder"], encoders["tokenizer"], max_len)
            if self.image_to_video and self.vae is None:
                self.vae = self.encoders["vae"]
        self._init_noise_schedule(args, noise_scheduler)

        if args.layerwise_fp8:  # before LoRA: hooks go on the frozen base layers only
            compute = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else torch.float32
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute)
        self.lora_config = add_lora(model, args) if args.use_peft and not lora_layers(model) else None
        if lora_layers(model) and self.lora_config is None:
            self.lora_config = getattr(model, "peft_config", {}).get("default")
        self.is_lora = bool(lora_layers(model))
        if args.checkpointing:
            model.enable_gradient_checkpointing()

        self.schedule = self._resolve_schedule(args, train_dataset)
        args.max_steps = self.schedule.total_steps
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._rope = RotaryCache()
        self._eval_generator: torch.Generator | None = None
        self._empty_prompt: torch.Tensor | None = None
        self.validation_components = validation_components
        callbacks = list(callbacks or [])
        if args.validation_prompts and validation_components:
            self._check_validation(model, args, validation_components, eval_dataset)  # before training, not at its end
            callbacks.append(_ValidationCallback(self))
        super().__init__(
            model=model,
            args=args,
            data_collator=collate_latents,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        self.model_accepts_loss_kwargs = False

    # ---- setup ----

    def _init_noise_schedule(self, args: CogVideoXSFTConfig, noise_scheduler: Any) -> None:
        if noise_scheduler is not None:
            self.alphas_cumprod = torch.as_tensor(noise_scheduler.alphas_cumprod, dtype=torch.float32)
            sched = noise_scheduler.config
        else:
            self.alphas_cumprod = cogvideox_alphas_cumprod(
                args.num_train_timesteps or 1000, snr_shift_scale=args.snr_shift_scale
            )
            sched = {}
        self.num_train_timesteps = args.num_train_timesteps or int(
            config_get(sched, "num_train_timesteps", len(self.alphas_cumprod))
        )
        self.prediction_type = args.prediction_type or config_get(sched, "prediction_type", None) or "v_prediction"

    @staticmethod
    def _resolve_schedule(args: CogVideoXSFTConfig, dataset: CachedLatentDataset) -> StageSchedule:
        per_stage = dataset.buckets_by_stage(len(args.stage_list))
        steps = []
        for i, stage in enumerate(args.stage_list):
            clips = sum(len(v) for v in per_stage[i].values())
            if not clips:
                raise ValueError(f"stage {stage.name!r} has no cached clips (all rejected or filtered out?)")
            batch = (stage.batch_size or args.per_device_train_batch_size) * args.gradient_accumulation_steps
            steps.append(stage.steps_for(clips, batch * args.world_size))
        return StageSchedule(args.stage_list, steps)

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        args = self.args
        sampler = StagedBucketBatchSampler(
            self.train_dataset.buckets_by_stage(len(args.stage_list)),
            self.schedule.steps,
            [s.batch_size or args.per_device_train_batch_size for s in args.stage_list],
            batches_per_step=args.gradient_accumulation_steps * args.world_size,
            seed=args.data_seed if args.data_seed is not None else args.seed,
            image_ratio=[s.image_ratio for s in args.stage_list],
        )
        loader = torch.utils.data.DataLoader(
            self.train_dataset,
            batch_sampler=sampler,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def get_eval_dataloader(self, eval_dataset=None) -> torch.utils.data.DataLoader:
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        batches = []
        for buckets in dataset.buckets_by_stage(1 + max((r.get("stage", 0) for r in dataset.rows), default=0)):
            for name in sorted(buckets):
                rows = buckets[name]
                size = self.args.per_device_eval_batch_size
                batches += [rows[i : i + size] for i in range(0, len(rows), size)]
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=self.data_collator)
        return self.accelerator.prepare(loader)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        if self.lr_scheduler is None:
            base = self.args.learning_rate
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                optimizer or self.optimizer, lambda step: self.schedule.lr_multiplier(step, base)
            )
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def train(self, *args, **kwargs):
        with trainer_checkpointing_off(self.args):  # enabled with enable_gradient_checkpointing() in __init__
            return super().train(*args, **kwargs)

    # ---- the loss ----

    @property
    def _input_dtype(self) -> torch.dtype:
        for name, p in base_model(self.model).named_parameters():
            if "lora_" not in name and p.is_floating_point() and p.dtype != torch.float8_e4m3fn:
                return p.dtype
        return torch.float32

    def _encode_batch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``precompute=False``: a batch of frames and captions encoded now, into the tensors the cache holds."""
        from .precompute import encode_frames

        whole_clip = self.args.encode_mode == "whole_clip"
        device = inputs["frames"].device
        rows = [
            encode_frames(self.encoders["vae"], frames.cpu(), whole_clip, self.image_to_video)
            for frames in inputs["frames"]
        ]
        batch = {k: torch.stack([r[k] for r in rows]).to(device) for k in rows[0]}
        batch["prompt_embeds"] = torch.stack([self._encode_prompt(c) for c in inputs["captions"]]).to(device)
        return {**{k: v for k, v in inputs.items() if k not in ("frames", "captions")}, **batch}

    def _empty_prompt_embeds(self, like: torch.Tensor) -> torch.Tensor:
        if self._empty_prompt is None and self._encode_prompt is not None:
            from .precompute import EMPTY_PROMPT

            self._empty_prompt = self._encode_prompt(EMPTY_PROMPT)
        if self._empty_prompt is None:
            from safetensors.torch import load_file

            path = self.train_dataset.rows[0].get("empty_prompt_embeds")
            if path is None:
                raise ValueError("caption_dropout needs the cached empty-prompt embedding (rows' empty_prompt_embeds)")
            self._empty_prompt = load_file(path)["prompt_embeds"]
        return self._empty_prompt.to(like)

    def sft_forward(self, model: nn.Module, inputs: dict[str, Any], generator: torch.Generator | None = None):
        """Per-sample losses and timesteps of one batch (the training RNG, or ``generator`` in evaluation)."""
        if "frames" in inputs:
            inputs = self._encode_batch(inputs)
        mean, std = inputs["latent_mean"].float(), inputs["latent_std"].float()
        device = mean.device

        def randn(shape):
            return (
                torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
                if generator
                else (torch.randn(shape, device=device, dtype=torch.float32))
            )

        def rand(n):
            return torch.rand(n, generator=generator).to(device) if generator else torch.rand(n, device=device)

        latents = mean + std * randn(mean.shape)  # one posterior sample per step
        config = base_model(model).config
        latents = front_pad_latents(latents, config_get(config, "patch_size_t", None))
        batch = latents.shape[0]
        prompt_embeds = inputs["prompt_embeds"].float()
        if model.training and self.args.caption_dropout > 0:
            drop = rand(batch) < self.args.caption_dropout
            if drop.any():
                prompt_embeds = torch.where(
                    drop[:, None, None], self._empty_prompt_embeds(prompt_embeds), prompt_embeds
                )
        noise = randn(latents.shape)
        if generator is not None:
            t = sample_timesteps_uniform(batch, self.num_train_timesteps, generator=generator).to(device)
        elif self.args.timestep_sampling == "explicit_uniform":
            t = sample_timesteps_explicit_uniform(
                batch,
                self.num_train_timesteps,
                self.accelerator.process_index,
                self.accelerator.num_processes,
                device=device,
            )
        else:
            t = sample_timesteps_uniform(batch, self.num_train_timesteps, device=device)
        noisy, target = noisy_and_target(
            self.prediction_type, latents, noise, t, self.alphas_cumprod, self.num_train_timesteps
        )
        dtype = self._input_dtype
        cond = {"prompt_embeds": prompt_embeds.to(dtype)}
        if self.image_to_video:
            image = self._image_condition(inputs, generator).to(device)
            if model.training and self.args.noised_image_dropout > 0:
                image = image * (rand(batch) >= self.args.noised_image_dropout).float()[:, None, None, None, None]
            pad = image.new_zeros(batch, latents.shape[1] - 1, *image.shape[2:])
            cond["image_latents"] = torch.cat([image, pad], dim=1).to(dtype)
        pred = denoise(model, "cogvideox", noisy.to(dtype), t, cond, self._rope)
        return per_sample_mse(pred, target), t

    def _image_condition(self, inputs: dict[str, Any], generator: torch.Generator | None) -> torch.Tensor:
        """``[B, 1, C, h, w]``: the noised first frame encoded now (official recipe) or the cached clean latent."""
        key = "first_frame" if self.args.image_condition == "noised" else "image_latents"
        if key not in inputs:
            raise ValueError(
                f"image_condition={self.args.image_condition!r} needs the cached {key} of image-to-video clips; "
                "re-encode the cache with an image-to-video transformer"
            )
        if key == "image_latents":
            return inputs["image_latents"].float()
        return noised_image_latents(self.vae, inputs["first_frame"], generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        losses, t = self.sft_forward(model, inputs, self._eval_generator if mode == "eval" else None)
        loss = losses.mean()
        table = torch.stack([losses.detach(), t.float(), inputs["stage"].float().to(losses.device)], dim=1)
        gathered = self.accelerator.gather_for_metrics(table) if mode == "eval" else self.accelerator.gather(table)
        if not torch.isfinite(gathered[:, 0]).all():
            raise FloatingPointError(
                f"non-finite loss in step {self.state.global_step + 1} (rows {inputs['rows'].tolist()}); training "
                f"stopped before the optimizer step, checkpoints in {self.args.output_dir} are intact"
            )
        store = self._metrics[mode]
        width = math.ceil(self.num_train_timesteps / T_BINS)
        for loss_i, t_i, stage_i in gathered.tolist():
            lo = int(t_i) // width * width
            store[f"loss/t_{lo:03d}-{min(lo + width, self.num_train_timesteps) - 1:03d}"].append(loss_i)
            store["timestep"].append(t_i)
            store["stage"].append(stage_i)
        return (loss, {"losses": losses}) if return_outputs else loss

    def reports_eval_metric(self, name: str) -> bool:
        return name.startswith("loss/")  # the per-bin losses; timesteps and stages are bookkeeping

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for name, values in self._metrics["train"].items():
                if values:
                    logs[name] = sum(values) / len(values)
            self._metrics["train"].clear()
        super().log(logs, start_time)

    # ---- validation ----

    @staticmethod
    def _validation_bucket(args: CogVideoXSFTConfig):
        return parse_bucket(args.validation_bucket or args.stage_list[-1].buckets[0])

    def _check_validation(self, model, args, components, eval_dataset) -> None:
        """Refuse a validation shape the variant's pipeline cannot render (1.5: 16k+1 frames), and I2V without
        held-out clips to take condition images from."""
        from ..pipelines.common import check_video_shape

        bucket = self._validation_bucket(args)
        spatial = 2 ** (len(components["vae"].config.block_out_channels) - 1)
        try:
            check_video_shape(bucket.frames, bucket.height, bucket.width, base_model(model).config, spatial)
        except ValueError as exc:
            source = "validation_bucket" if args.validation_bucket else "the last stage's first bucket"
            raise ValueError(
                f"validation videos of {bucket} ({source}) cannot be rendered: {exc}; set validation_bucket"
            ) from None
        if self.image_to_video and not (eval_dataset is not None and len(eval_dataset)):
            raise ValueError(
                "image-to-video validation takes its images from the first frames of held-out clips: pass an "
                "eval_dataset (--eval_dataset_name)"
            )

    def _validation_image(self, index: int):
        """The first frame of held-out clip ``index`` (cycled) as a PIL image: the I2V validation condition."""
        import PIL.Image

        item = self.eval_dataset[index % len(self.eval_dataset)]
        frame = item["first_frame"] if "first_frame" in item else item["frames"][0]
        pixels = (frame.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return PIL.Image.fromarray(pixels)

    @torch.no_grad()
    def validate(self) -> list[str]:
        """Render ``validation_prompts`` to mp4 files under ``<output_dir>/validation/step-<N>/``; returns the paths."""
        if not (self.args.validation_prompts and self.validation_components) or not self.is_world_process_zero():
            return []
        from ..pipelines.pipeline_cogvideox import CogVideoXPipeline
        from ..pipelines.pipeline_cogvideox_image2video import CogVideoXImageToVideoPipeline
        from ..video_io import export_to_video

        device = self.accelerator.device
        parts = self.validation_components
        transformer = self.accelerator.unwrap_model(self.model)
        bucket = self._validation_bucket(self.args)
        for key in ("vae", "text_encoder"):
            parts[key].to(device)
        was_training = transformer.training
        transformer.eval()
        pipe_class = CogVideoXImageToVideoPipeline if self.image_to_video else CogVideoXPipeline
        pipe = pipe_class(transformer=transformer, **parts)
        pipe.set_progress_bar_config(disable=True)
        out_dir = os.path.join(self.args.output_dir, "validation", f"step-{self.state.global_step}")
        paths = []
        try:
            for i, prompt in enumerate(self.args.validation_prompts):
                image = {}
                if self.image_to_video:  # the first frame of a held-out clip, saved next to the video
                    image = {"image": self._validation_image(i)}
                    os.makedirs(out_dir, exist_ok=True)
                    image["image"].save(os.path.join(out_dir, f"{i:02d}-image.png"))
                video = pipe(
                    prompt=prompt,
                    **image,
                    num_frames=bucket.frames,
                    height=bucket.height,
                    width=bucket.width,
                    num_inference_steps=self.args.validation_num_inference_steps,
                    max_sequence_length=config_get(transformer.config, "max_text_seq_length", 226),
                    generator=torch.Generator().manual_seed(self.args.seed + i),
                    output_type="pt",
                ).frames[0]
                paths.append(export_to_video(video, os.path.join(out_dir, f"{i:02d}.mp4"), fps=8))
        finally:
            transformer.train(was_training)
            for key in ("vae", "text_encoder"):  # the frozen parts go back to the CPU (unless they encode batches)
                if self._encode_prompt is None:
                    parts[key].to("cpu")
        self.log({"validation/videos": float(len(paths))})
        return paths

    # ---- saving and loading ----

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if self.is_lora:
            save_lora_weights(
                output_dir, lora_state_dict(model, LORA_PREFIX, state_dict), self.lora_config, LORA_PREFIX
            )
        elif state_dict is None:
            model.save_pretrained(output_dir, safe_serialization=True)
        else:
            from safetensors.torch import save_file

            model.save_config(output_dir)
            save_file({k: v.contiguous() for k, v in state_dict.items()}, os.path.join(output_dir, FULL_WEIGHT_NAME))
        torch.save(redacted_copy(self.args), os.path.join(output_dir, "training_args.bin"))  # no hub token
        self.create_model_card(output_dir=output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model or self.model)
        name = LORA_WEIGHT_NAME if self.is_lora else FULL_WEIGHT_NAME
        path = os.path.join(resume_from_checkpoint, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"cannot resume: {resume_from_checkpoint} has no {name}")
        if self.is_lora:
            load_lora_weights_into(model, path, LORA_PREFIX)
        else:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(path), strict=True)

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def create_model_card(self, model_name: str | None = None, output_dir: str | None = None, **kwargs) -> None:
        """``README.md``: base model, stages, hyperparameters, LoRA, last metrics (``hub_cards``)."""
        if not self.is_world_process_zero():
            return
        from hub_cards.sft_model_card import render_sft_model_card

        output_dir = output_dir or self.args.output_dir
        hp_keys = (
            "learning_rate", "timestep_sampling", "prediction_type", "caption_dropout", "encode_mode",
            "per_device_train_batch_size", "gradient_accumulation_steps", "max_grad_norm", "weight_decay",
            "adam_beta1", "adam_beta2", "optim", "bf16", "fp16", "seed", "use_peft",
        )  # fmt: skip
        hp = {k: getattr(self.args, k) for k in hp_keys}
        hp.update(prediction_type=self.prediction_type, world_size=self.args.world_size)
        stages = [
            {**{k: s.to_dict()[k] for k in ("name", "buckets", "learning_rate", "dataset")}, "steps": n}
            for s, n in zip(self.args.stage_list, self.schedule.steps)
        ]
        lora = lora_card_info(self.lora_config) if self.is_lora and self.lora_config is not None else None
        last = {}
        for entry in self.state.log_history:
            last.update({k: v for k, v in entry.items() if k in ("loss", "eval_loss")})
        card = render_sft_model_card(
            model_name=model_name or os.path.basename(os.path.abspath(output_dir)),
            base_model=portable_path(self.base_model_name),  # no absolute path of this machine in a card
            hub_model_id=self.args.hub_model_id,
            dataset_name=portable_path(self.dataset_name),
            stages=stages,
            hyperparameters=hp,
            lora=lora,
            training_metrics={**last, "global_step": self.state.global_step} if self.state.global_step else None,
            pipeline_tag="image-to-video" if self.image_to_video else "text-to-video",
        )
        card.save(os.path.join(output_dir, "README.md"))
