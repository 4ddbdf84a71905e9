"""``MPOTrainer``: Diffusion-DPO on preference pairs for CogVideoX and Stable Diffusion denoisers, as a TRL-style Trainer.

MPO (VisionReward, arXiv 2412.21059) is standard Diffusion-DPO trained on pairs where the chosen sample dominates the
rejected one on every VisionReward dimension (mined by :mod:`trl_vision_reward.mpo.pairs`). Usage mirrors TRL's
``DPOTrainer``::

    from trl_vision_reward import MPOConfig, MPOTrainer

    trainer = MPOTrainer(model=transformer, args=MPOConfig(output_dir="cogvideox-mpo", beta=500), train_dataset=pairs)
    trainer.train()
    trainer.save_model()          # pytorch_lora_weights.safetensors + README.md; pipe.load_lora_weights(output_dir)

**Dataset columns** (full contract in :mod:`trl_vision_reward.mpo.data`): ``prompt`` (str), ``chosen_latents`` and
``rejected_latents`` (VAE latents x scaling factor: CogVideoX ``[F, C, H, W]``, SD ``[C, H, W]``), ``prompt_embeds``
(``[L, D]``); SDXL adds ``pooled_prompt_embeds`` ``[D2]`` and ``add_time_ids`` ``[6]``; CogVideoX image-to-video adds
``image_latents``. Media pairs (``prompt``, ``chosen``, ``rejected`` as image/video paths) are encoded once with
:func:`~trl_vision_reward.mpo.data.precompute_latent_pairs`.

One step: for B pairs, draw one noise tensor and one timestep per pair and share them between chosen and rejected;
run the policy once on the ``[chosen; rejected]`` batch of 2B and the reference once (no grad); the loss is
:func:`~trl_vision_reward.mpo.losses.diffusion_dpo_loss`. With LoRA (the default) the reference is the same network with
its adapter bypassed - no second copy; full fine-tuning keeps a frozen copy.

Logged metrics (train, and ``eval_`` prefixed): ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``,
``rewards/accuracies``, ``mse/model_chosen``, ``mse/model_rejected``, ``mse/ref_chosen``, ``mse/ref_rejected``,
``mse/model``, ``mse/ref``, ``timestep`` (mean sampled t).
"""

from __future__ import annotations

import copy
import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import Trainer

from diffusers_cogvideox.redaction import portable_path, redacted_copy
from diffusers_cogvideox.training.checkpointing import trainer_checkpointing_off
from diffusers_cogvideox.training.denoiser import (  # noqa: F401  (the shared denoiser code, re-exported)
    FULL_WEIGHT_NAME,
    LORA_METADATA_KEY,
    LORA_WEIGHT_NAME,
    adapters_disabled,
    add_lora,
    denoise,
    denoiser_kind,
    load_lora_weights_into,
    lora_card_info,
    lora_layers,
    lora_state_dict,
    save_lora_weights,
)
from diffusers_cogvideox.training.denoiser import RotaryCache as _RotaryCache
from diffusers_cogvideox.training.denoiser import base_model as _base
from diffusers_cogvideox.training.denoiser import config_get as _config_get
from diffusers_cogvideox.training.evaluation import SeededEvaluationMixin

from ..records import admission_rule
from .config import MPOConfig
from .data import MPODataCollator, PairDataError, RowIndexed, check_columns, column_names
from .losses import (
    diffusion_dpo_loss,
    diffusion_dpo_metrics,
    noisy_and_target,
    per_sample_mse,
    sample_timesteps_explicit_uniform,
    sample_timesteps_uniform,
)

METRIC_NAMES = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "mse/model_chosen",
    "mse/model_rejected",
    "mse/ref_chosen",
    "mse/ref_rejected",
    "mse/model",
    "mse/ref",
)


class NonFiniteLossError(FloatingPointError):
    """The MPO loss became NaN/inf; raised before the optimizer step, so saved checkpoints stay valid."""


# ---------------------------------------------------------------------------------------------------------------------
# The trainer


def default_alphas_cumprod(denoiser_type: str, num_train_timesteps: int, snr_shift_scale: float) -> torch.Tensor:
    """The family's training schedule from diffusers' own schedulers, for when no checkpoint scheduler is given:
    CogVideoX's (scaled-linear betas, SNR shift, zero terminal SNR) or SD 1.5 / SDXL's scaled-linear 0.00085..0.012."""
    from diffusers import CogVideoXDDIMScheduler, DDPMScheduler

    common = {"num_train_timesteps": num_train_timesteps, "beta_start": 0.00085, "beta_end": 0.012}
    if denoiser_type == "cogvideox":
        scheduler = CogVideoXDDIMScheduler(
            **common, beta_schedule="scaled_linear", snr_shift_scale=snr_shift_scale, rescale_betas_zero_snr=True
        )
    else:
        scheduler = DDPMScheduler(**common, beta_schedule="scaled_linear")
    return torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32)


class MPOTrainer(SeededEvaluationMixin, Trainer):
    """Diffusion-DPO / MPO trainer for diffusers denoisers (see the module docstring).

    Args:
        model: the denoiser (our ``CogVideoXTransformer3DModel`` or diffusers' ``UNet2DConditionModel``).
        ref_model: the reference for full fine-tuning (default: a frozen copy of ``model``); must be None with LoRA.
        args: an :class:`MPOConfig`.
        train_dataset / eval_dataset: latent pairs (columns above): a ``datasets.Dataset``, a
            :class:`~trl_vision_reward.mpo.data.PairFolder`, or any map-style dataset of dicts.
        noise_scheduler: any diffusers scheduler with ``alphas_cumprod`` and ``config.num_train_timesteps`` (e.g.
            the checkpoint's ``scheduler``); default: the CogVideoX schedule (``args.snr_shift_scale``) for CogVideoX,
            SD's scaled-linear schedule for UNets.
        peft_config: a ``peft.LoraConfig`` overriding the ``lora_*`` fields of ``args``.
        model_name / dataset_name: recorded in the model card.
    """

    _tag_names = ["trl", "mpo", "diffusion-dpo", "vision-reward"]
    _name = "MPO"

    def __init__(
        self,
        model: nn.Module,
        ref_model: nn.Module | None = None,
        args: MPOConfig | None = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        noise_scheduler: Any = None,
        peft_config: Any = None,
        callbacks: list | None = None,
        optimizers: tuple = (None, None),
        model_name: str | None = None,
        dataset_name: str | None = None,
    ):
        args = args or MPOConfig(output_dir="mpo-output")
        if not isinstance(args, MPOConfig):
            raise TypeError(f"args must be an MPOConfig; got {type(args).__name__}")
        existing_lora = getattr(model, "peft_config", {}).get("default") if hasattr(model, "get_base_model") else None
        if hasattr(model, "get_base_model"):  # a peft.PeftModel: adapters are injected in place, drive the base module
            model = model.get_base_model()
        self.denoiser_type = args.denoiser_type if args.denoiser_type != "auto" else denoiser_kind(model)
        self.base_model_name = model_name or _config_get(getattr(model, "config", {}), "_name_or_path", None)
        self.dataset_name = dataset_name
        # the rule that admitted the training pairs, read from the data (the card states it, not MPOConfig's defaults)
        self.pair_admission = admission_rule(train_dataset) if train_dataset is not None else None
        self._init_noise_schedule(args, noise_scheduler)
        ref_model = self._init_adapter_and_reference(model, ref_model, args, peft_config, existing_lora)

        if args.checkpointing:
            if not hasattr(model, "enable_gradient_checkpointing"):
                raise TypeError(
                    f"{type(model).__name__} has no enable_gradient_checkpointing(); set gradient_checkpointing=False"
                )
            model.enable_gradient_checkpointing()

        # Data
        self._needs = ("pooled_prompt_embeds", "add_time_ids") if self._is_sdxl(model) else ()
        train_dataset = self._prepare_dataset(train_dataset, "train")
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: self._prepare_dataset(v, f"eval[{k}]") for k, v in eval_dataset.items()}
        else:
            eval_dataset = self._prepare_dataset(eval_dataset, "eval")
        data_collator = data_collator or MPODataCollator(self._needs)

        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self._rope = _RotaryCache()
        self._eval_generator: torch.Generator | None = None

        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            callbacks=callbacks,
            optimizers=optimizers,
        )
        self.model_accepts_loss_kwargs = False  # the loss is a mean over pairs: let Trainer scale by accumulation
        self.ref_model = self._prepare_reference(ref_model) if ref_model is not None else None

    # ---- setup helpers ----

    def _init_noise_schedule(self, args: MPOConfig, noise_scheduler: Any) -> None:
        """``alphas_cumprod``, T and the prediction type: from the scheduler if given, else the family's default."""
        if noise_scheduler is not None:
            self.alphas_cumprod = torch.as_tensor(noise_scheduler.alphas_cumprod, dtype=torch.float32)
            sched_config = noise_scheduler.config
        else:
            steps = args.num_train_timesteps or 1000
            self.alphas_cumprod = default_alphas_cumprod(self.denoiser_type, steps, args.snr_shift_scale)
            sched_config = {}
        self.num_train_timesteps = args.num_train_timesteps or int(
            _config_get(sched_config, "num_train_timesteps", len(self.alphas_cumprod))
        )
        self.prediction_type = (
            args.prediction_type
            or _config_get(sched_config, "prediction_type", None)
            or ("v_prediction" if self.denoiser_type == "cogvideox" else "epsilon")
        )

    def _init_adapter_and_reference(self, model, ref_model, args: MPOConfig, peft_config, existing_lora):
        """Attach LoRA (unless the model has an adapter already) and return the frozen reference copy, or None."""
        self.reference_mode = args.resolved_reference_mode
        if lora_layers(model):
            self.lora_config = existing_lora or getattr(model, "peft_config", {}).get("default")
        elif args.use_peft:
            if peft_config is not None:
                args.lora_r, args.lora_alpha = peft_config.r, peft_config.lora_alpha
                args.lora_dropout, args.lora_target_modules = (
                    peft_config.lora_dropout,
                    sorted(peft_config.target_modules),
                )
            self.lora_config = add_lora(model, args)
        else:
            self.lora_config = None
        self.is_lora = bool(lora_layers(model))
        if self.reference_mode == "adapter_disabled":
            if not self.is_lora:
                raise ValueError("reference_mode='adapter_disabled' needs a LoRA adapter (use_peft=True)")
            if ref_model is not None:
                raise ValueError(
                    "ref_model must be None with reference_mode='adapter_disabled' (the reference is the model with "
                    "its adapter disabled)"
                )
            return None
        ref_model = ref_model if ref_model is not None else copy.deepcopy(model)
        return ref_model.requires_grad_(False).eval()

    def _is_sdxl(self, model: nn.Module) -> bool:
        return (
            self.denoiser_type == "unet"
            and _config_get(_base(model).config, "addition_embed_type", None) == "text_time"
        )

    def _prepare_dataset(self, dataset: Any, split: str) -> Any:
        if dataset is None:
            return None
        names = column_names(dataset)
        if names is None and len(dataset) and isinstance(dataset[0], Mapping):
            names = list(dataset[0])
        if names is not None:
            try:
                check_columns(names, self._needs)
            except PairDataError as exc:
                raise PairDataError(f"{split} dataset: {exc}") from None
        if len(dataset) == 0:
            raise PairDataError(f"{split} dataset is empty")
        return RowIndexed(dataset)

    def _prepare_reference(self, ref_model: nn.Module) -> nn.Module:
        if self.is_deepspeed_enabled:
            from trl.models.utils import prepare_deepspeed

            return prepare_deepspeed(ref_model, self.accelerator)
        if self.is_fsdp_enabled:
            from trl.models.utils import prepare_fsdp

            return prepare_fsdp(ref_model, self.accelerator)
        return self.accelerator.prepare_model(ref_model, evaluation_mode=True)

    def train(self, *args, **kwargs):
        resume = kwargs.get("resume_from_checkpoint", args[0] if args else None)
        if isinstance(resume, str) and not (self.is_deepspeed_enabled or self.is_fsdp_enabled):
            if not os.path.isfile(os.path.join(resume, "optimizer.pt")):  # else Trainer silently starts a fresh one
                raise FileNotFoundError(
                    f"cannot resume: {resume} has no optimizer.pt (a checkpoint folder holds it; a final save does not)"
                )
        with trainer_checkpointing_off(self.args):  # enabled with enable_gradient_checkpointing() in __init__
            return super().train(*args, **kwargs)

    # ---- the loss ----

    def _sample_noise_and_timesteps(self, latents: torch.Tensor, generator: torch.Generator | None):
        """One noise tensor and one timestep per pair, repeated for [chosen; rejected]."""
        pairs = latents.shape[0] // 2
        if generator is None:  # training: the global RNG, which Trainer checkpoints and restores on resume
            noise = torch.randn(latents[:pairs].shape, device=latents.device, dtype=torch.float32)
            if self.args.timestep_sampling == "explicit_uniform":
                t = sample_timesteps_explicit_uniform(
                    pairs,
                    self.num_train_timesteps,
                    self.accelerator.process_index,
                    self.accelerator.num_processes,
                    device=latents.device,
                )
            else:
                t = sample_timesteps_uniform(pairs, self.num_train_timesteps, device=latents.device)
        else:  # evaluation: a fixed stream, the same at every evaluation
            noise = torch.randn(latents[:pairs].shape, generator=generator, dtype=torch.float32).to(latents.device)
            t = sample_timesteps_uniform(pairs, self.num_train_timesteps, generator=generator).to(latents.device)
        return noise.repeat(2, *([1] * (noise.ndim - 1))), t.repeat(2)

    def mpo_forward(self, model: nn.Module, inputs: Mapping[str, Any], generator: torch.Generator | None = None):
        """Loss and per-pair metric values for one batch of pairs (chosen and rejected batched as 2B)."""
        latents = inputs["latents"]
        noise, timesteps = self._sample_noise_and_timesteps(latents, generator)
        noisy, target = noisy_and_target(
            self.prediction_type, latents.float(), noise, timesteps, self.alphas_cumprod, self.num_train_timesteps
        )
        dtype = self._model_input_dtype
        noisy = noisy.to(dtype)
        cond = {
            k: torch.cat([inputs[k], inputs[k]]).to(dtype)
            for k in ("prompt_embeds", "pooled_prompt_embeds", "add_time_ids", "image_latents")
            if k in inputs
        }

        with torch.no_grad():
            if self.ref_model is not None:
                ref_pred = denoise(self.ref_model, self.denoiser_type, noisy, timesteps, cond, self._rope)
            else:
                with adapters_disabled(model):
                    ref_pred = denoise(model, self.denoiser_type, noisy, timesteps, cond, self._rope)
        pred = denoise(model, self.denoiser_type, noisy, timesteps, cond, self._rope)

        model_err = per_sample_mse(pred, target)
        ref_err = per_sample_mse(ref_pred, target)
        model_w, model_l = model_err.chunk(2)
        ref_w, ref_l = ref_err.chunk(2)
        out = diffusion_dpo_loss(model_w, model_l, ref_w, ref_l, self.args.beta)
        metrics = diffusion_dpo_metrics(out, model_w, model_l, ref_w, ref_l)
        metrics["timestep"] = timesteps[: len(model_w)].float()
        return out.loss, out.losses, metrics

    @property
    def _model_input_dtype(self) -> torch.dtype:
        """The dtype of the denoiser's frozen base weights (inputs are cast to it; autocast handles mixed precision)."""
        for name, p in _base(self.model).named_parameters():
            if "lora_" not in name and p.is_floating_point():
                return p.dtype
        return torch.float32

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if model.training else "eval"
        loss, losses, metrics = self.mpo_forward(model, inputs, self._eval_generator if mode == "eval" else None)
        self._record(mode, loss, losses, metrics, inputs)
        return (loss, {"losses": losses}) if return_outputs else loss

    def _record(
        self, mode: str, loss: torch.Tensor, losses: torch.Tensor, metrics: dict, inputs: Mapping[str, Any]
    ) -> None:
        """Gather per-pair metrics across processes (one collective), store them, and stop on a non-finite loss."""
        names = list(metrics)
        table = torch.stack([losses.detach().float()] + [metrics[n].float() for n in names], dim=1)  # [B, 1 + M]
        gathered = self.accelerator.gather_for_metrics(table) if mode == "eval" else self.accelerator.gather(table)
        if not torch.isfinite(gathered[:, 0]).all():
            self._raise_non_finite(loss, losses, metrics, inputs)
        for j, name in enumerate(names, start=1):
            self._metrics[mode][name].append(gathered[:, j].mean().item())

    def _raise_non_finite(self, loss, losses, metrics, inputs) -> None:
        rows = inputs["rows"].tolist() if "rows" in inputs else []
        prompts = inputs.get("prompts", [])
        local_bad = [r for r, value in zip(rows, losses.tolist()) if not torch.isfinite(torch.tensor(value))]
        culprit = [
            k
            for k in ("mse/model_chosen", "mse/model_rejected", "mse/ref_chosen", "mse/ref_rejected")
            if not torch.isfinite(metrics[k]).all()
        ]
        last = (
            self.state.global_step - (self.state.global_step % self.args.save_steps)
            if self.args.save_strategy == "steps" and self.args.save_steps
            else None
        )
        raise NonFiniteLossError(
            f"MPO loss is {loss.item()} in optimizer step {self.state.global_step + 1} (epoch {self.state.epoch or 0:.2f}) "
            f"on process {self.accelerator.process_index}: batch rows {rows} (prompts {[p[:40] for p in prompts]}); "
            f"non-finite pairs on this process: {local_bad or 'none (another process)'}; non-finite terms: "
            f"{culprit or 'the loss only (beta too large?)'}. Training stopped before the optimizer step; checkpoints in "
            f"{self.args.output_dir} are intact" + (f" (latest: checkpoint-{last})." if last else ".")
        )

    # ---- logging (evaluation: SeededEvaluationMixin) ----

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the averaged MPO metrics since the last one
            for name, values in self._metrics["train"].items():
                if values:
                    logs[name] = sum(values) / len(values)
            self._metrics["train"].clear()
        super().log(logs, start_time)

    # ---- saving and loading ----

    @property
    def lora_prefix(self) -> str:
        return "transformer" if self.denoiser_type == "cogvideox" else "unet"

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """LoRA: ``pytorch_lora_weights.safetensors`` (diffusers format); full: the diffusers model folder. Plus the card."""
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if self.is_lora:
            save_lora_weights(
                output_dir, lora_state_dict(model, self.lora_prefix, state_dict), self.lora_config, self.lora_prefix
            )
        elif state_dict is None:
            model.save_pretrained(output_dir, safe_serialization=True)
        else:  # gathered by FSDP / DeepSpeed
            from safetensors.torch import save_file

            model.save_config(output_dir)
            save_file(
                {k: v.contiguous() for k, v in state_dict.items()},
                os.path.join(output_dir, FULL_WEIGHT_NAME),
                metadata={"format": "pt"},
            )
        torch.save(redacted_copy(self.args), os.path.join(output_dir, "training_args.bin"))  # no hub token
        self.create_model_card(output_dir=output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if self.is_deepspeed_enabled or self.is_fsdp_enabled:
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = self.accelerator.unwrap_model(model or self.model)
        if self.is_lora:
            path = os.path.join(resume_from_checkpoint, LORA_WEIGHT_NAME)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"cannot resume: {resume_from_checkpoint} has no {LORA_WEIGHT_NAME}")
            load_lora_weights_into(model, path, self.lora_prefix)
        else:
            from diffusers.models.model_loading_utils import load_state_dict

            path = os.path.join(resume_from_checkpoint, FULL_WEIGHT_NAME)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"cannot resume: {resume_from_checkpoint} has no {FULL_WEIGHT_NAME}")
            model.load_state_dict(load_state_dict(path), strict=True)

    def _load_best_model(self) -> None:
        self._load_from_checkpoint(self.state.best_model_checkpoint)

    def _card_pair_rule(self) -> dict[str, Any]:
        """The admission rule for the card: the one recorded in the training pairs, else ``MPOConfig``'s pair fields."""
        if self.pair_admission is not None:
            return {**self.pair_admission, "source": "recorded in the training pairs"}
        rule = self.args.get_pair_rule()
        return {
            "rule": rule.kind,
            "granularity": rule.granularity,
            "min_total_gap": rule.min_total_gap,
            "scores": "official",
            "source": "MPOConfig's pair fields: the training pairs record no rule",
        }

    def create_model_card(
        self,
        model_name: str | None = None,
        dataset_name: str | None = None,
        tags: list[str] | None = None,
        output_dir: str | None = None,
        **kwargs,
    ) -> None:
        """Render ``README.md`` (base model, data, hyperparameters, LoRA, last metrics, tags) on the main process."""
        if not self.is_world_process_zero():
            return
        from hub_cards.model_cards import render_mpo_model_card

        hp_keys = (
            "beta",
            "prediction_type",
            "timestep_sampling",
            "pair_rule",
            "pair_granularity",
            "pair_threshold",
            "learning_rate",
            "lr_scheduler_type",
            "warmup_steps",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "max_steps",
            "num_train_epochs",
            "max_grad_norm",
            "optim",
            "bf16",
            "fp16",
            "seed",
            "reference_mode",
        )
        hp = {k: getattr(self.args, k) for k in hp_keys}
        hp.update(
            reference_mode=self.reference_mode,
            prediction_type=self.prediction_type,
            pair_threshold=self.args.get_pair_rule().min_total_gap,
        )
        pair_rule = self._card_pair_rule()
        hp.update(
            pair_rule=pair_rule["rule"],
            pair_granularity=pair_rule["granularity"],
            pair_threshold=pair_rule["min_total_gap"],
            pair_scores=pair_rule["scores"],
        )
        hp["effective_batch_size"] = (
            self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        )
        lora = lora_card_info(self.lora_config) if self.is_lora and self.lora_config is not None else None
        last = {}
        for entry in self.state.log_history:
            last.update(
                {k: v for k, v in entry.items() if k.startswith(("rewards/", "eval_rewards/", "loss", "eval_loss"))}
            )
        video = self.denoiser_type == "cogvideox"
        card = render_mpo_model_card(
            model_name=model_name or os.path.basename(os.path.abspath(output_dir or self.args.output_dir)),
            base_model=portable_path(self.base_model_name),  # no absolute path of this machine in a card
            hub_model_id=self.args.hub_model_id,
            output_dir=portable_path(output_dir or self.args.output_dir),
            dataset_name=portable_path(dataset_name or self.dataset_name),
            hyperparameters=hp,
            lora=lora,
            pair_rule=pair_rule,
            training_metrics={**last, "global_step": self.state.global_step} if self.state.global_step else None,
            tags=[*self._tag_names, *(tags or [])] + ([] if video else ["stable-diffusion", "text-to-image"]),
            pipeline_tag="text-to-video" if video else "text-to-image",
            summary=None
            if video
            else f"A {'LoRA adapter' if self.is_lora else 'fine-tune'} of the UNet of `{self.base_model_name}` trained with MPO (Diffusion-DPO on VisionReward-dominating pairs).",
            usage=None
            if video
            else _sd_usage(
                self.base_model_name, self.args.hub_model_id or output_dir or self.args.output_dir, self.is_lora
            ),
            validate=False,
        )
        card.save(os.path.join(output_dir or self.args.output_dir, "README.md"))


def _sd_usage(base: str | None, model_id: str, lora: bool) -> str:
    base = base or "stable-diffusion-v1-5/stable-diffusion-v1-5"
    if lora:
        return (
            "from diffusers import DiffusionPipeline\n\n"
            f'pipe = DiffusionPipeline.from_pretrained("{base}").to("cuda")\n'
            f'pipe.load_lora_weights("{model_id}")\n'
            'image = pipe("a panda playing a guitar").images[0]'
        )
    return (
        "from diffusers import DiffusionPipeline, UNet2DConditionModel\n\n"
        f'unet = UNet2DConditionModel.from_pretrained("{model_id}")\n'
        f'pipe = DiffusionPipeline.from_pretrained("{base}", unet=unet).to("cuda")'
    )
