"""``MPOConfig``: every hyperparameter of MPO / Diffusion-DPO training, as a ``TrainingArguments`` dataclass.

The defaults follow TRL's trainers (logging every 10 steps, gradient checkpointing on, bf16 when the accelerator
supports it and fp16 is not set) and the VisionReward paper's CogVideoX-2B MPO run (beta 500, dominance per
dimension with total gap 0.6, LoRA on the attention projections). Paper settings for reference:

* CogVideoX-2B text-to-video: batch 32, lr 5e-6, 100 warm-up steps then linear decay, beta 500, ~500 steps.
* SDXL text-to-image: effective batch 256, beta 5000, lr 5e-9 before scaling by the batch, 100-step constant warm-up,
  3,000 steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from .losses import PREDICTION_TYPES
from .pairs import GRANULARITIES, PAPER_THRESHOLDS, PairRule

TIMESTEP_SAMPLINGS = ("uniform", "explicit_uniform")
REFERENCE_MODES = ("auto", "adapter_disabled", "frozen_copy")
DENOISER_TYPES = ("auto", "cogvideox", "unet")
DEFAULT_LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
_CHECKPOINTING_FIELD = (
    "activation_checkpointing"
    if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    else "gradient_checkpointing"
)


def _bf16_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@dataclass
class MPOConfig(TrainingArguments):
    r"""Configuration of [`MPOTrainer`]: the Diffusion-DPO objective, the pair rule, LoRA and the reference model.

    Fields beyond [`~transformers.TrainingArguments`] are grouped below; each carries help text (``mpo-train --help``).
    The loss is ``-log sigmoid(-beta/2 * ((L_w - Lref_w) - (L_l - Lref_l)))`` with per-sample denoising MSEs ``L``;
    see :mod:`trl_vision_reward.mpo.losses` for the beta convention.
    """

    # ---- Diffusion-DPO objective ----
    beta: float = field(
        default=500.0,
        metadata={
            "help": "Diffusion-DPO beta in the official `-beta/2` form (loss = -log sigmoid(-beta/2 * ((L_w - Lref_w) - "
            "(L_l - Lref_l)))). VisionReward MPO: 500 for CogVideoX-2B, 5000 for SDXL; Diffusion-DPO: 5000 for SD 1.5 / "
            "SDXL. diffusers' SD 1.5 script omits the 1/2, so its beta_dpo=2500 equals 5000 here."
        },
    )
    prediction_type: str | None = field(
        default=None,
        metadata={
            "help": f"What the denoiser predicts, one of {PREDICTION_TYPES}. None: the noise scheduler's "
            "`prediction_type` if one is given, else 'v_prediction' for CogVideoX and 'epsilon' for UNets.",
            "choices": [*PREDICTION_TYPES, None],
        },
    )
    timestep_sampling: str = field(
        default="uniform",
        metadata={
            "help": "How training timesteps are drawn (one per pair, shared by chosen and rejected): 'uniform' "
            "(t ~ U{0..T-1}, as Diffusion-DPO) or 'explicit_uniform' (CogVideoX paper sec. 3.3: [0, T) split into one "
            "interval per data-parallel rank, each rank sampling uniformly inside its own; identical to uniform on "
            "one process).",
            "choices": list(TIMESTEP_SAMPLINGS),
        },
    )
    num_train_timesteps: int | None = field(
        default=None,
        metadata={
            "help": "Number of diffusion timesteps T. None: from the noise scheduler (1000 for CogVideoX and SD)."
        },
    )
    snr_shift_scale: float = field(
        default=3.0,
        metadata={
            "help": "CogVideoX SNR shift used to build the noise schedule when no scheduler is given (3.0 for "
            "CogVideoX-2B, 1.0 for the 5B models). Ignored when a scheduler is passed or loaded with the model."
        },
    )
    denoiser_type: str = field(
        default="auto",
        metadata={
            "help": "Which forward signature the denoiser has: 'cogvideox' (CogVideoXTransformer3DModel, latents "
            "[B,F,C,H,W]), 'unet' (UNet2DConditionModel, SD 1.5 / SDXL, latents [B,C,H,W]) or 'auto' (from the model).",
            "choices": list(DENOISER_TYPES),
        },
    )
    eval_seed: int = field(
        default=1234,
        metadata={
            "help": "Seed of the noise and timesteps used in evaluation; evaluation reuses it every time, so eval "
            "metrics are comparable across checkpoints and do not disturb the training random stream."
        },
    )

    # ---- Pair rule (recorded in the model card; used when mining pairs from scored samples) ----
    pair_rule: str = field(
        default="mpo",
        metadata={
            "help": "'mpo': admit a pair only if the chosen sample dominates the rejected one (>= on every "
            "dimension at `pair_granularity`) and the total-score gap >= `pair_threshold`. 'dpo': total-score gap "
            "only (the paper's comparison).",
            "choices": ["mpo", "dpo"],
        },
    )
    pair_granularity: str = field(
        default="dimension",
        metadata={"help": "Dominance granularity for pair mining.", "choices": list(GRANULARITIES)},
    )
    pair_threshold: float | None = field(
        default=None,
        metadata={
            "help": "Minimum total-score gap between chosen and rejected. None: the paper's ablation value (MPO "
            "dimension 0.6, sub-dimension 0.5, question 0.4; plain DPO 0.8)."
        },
    )

    # ---- LoRA (PEFT) ----
    use_peft: bool = field(
        default=True,
        metadata={
            "help": "Train a LoRA adapter (PEFT) instead of all weights. The reference is then the same model "
            "with the adapter disabled: no second copy in memory."
        },
    )
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (scale = alpha / r); rank or rank/2 are usual."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Module names to adapt. None: the attention projections {DEFAULT_LORA_TARGET_MODULES} "
            "(CogVideoX and SD UNets alike)."
        },
    )
    lora_init_weights: str = field(
        default="gaussian",
        metadata={
            "help": "LoRA initialisation passed to PEFT's `init_lora_weights`: 'gaussian' (diffusers' scripts) or "
            "'true' (PEFT's default); B starts at zero either way, so the policy starts equal to the reference."
        },
    )

    # ---- Reference model ----
    reference_mode: str = field(
        default="auto",
        metadata={
            "help": "'adapter_disabled' (LoRA only): the reference is the model with its LoRA layers bypassed. "
            "'frozen_copy': a frozen copy of the initial weights (needed for full fine-tuning). 'auto': the first "
            "with LoRA, the second otherwise.",
            "choices": list(REFERENCE_MODES),
        },
    )

    # ---- Overridden TrainingArguments defaults ----
    learning_rate: float = field(
        default=1e-5,
        metadata={
            "help": "Initial AdamW learning rate. 1e-5 suits LoRA (diffusers' Diffusion-DPO LoRA recipe); the "
            "paper's full fine-tune of CogVideoX-2B used 5e-6."
        },
    )
    logging_steps: float = field(
        default=10, metadata={"help": "Log every X update steps (or a ratio of the run if < 1)."}
    )
    # transformers >= 5.x renamed `gradient_checkpointing` to `activation_checkpointing` (the old name is an alias).
    if _CHECKPOINTING_FIELD == "activation_checkpointing":
        activation_checkpointing: bool | None = field(
            default=None,
            metadata={
                "help": "Recompute denoiser activations in backward (diffusers `enable_gradient_checkpointing`); "
                "saves most activation memory at ~20%% more compute. None: on (TRL's default), unless the "
                "deprecated alias `gradient_checkpointing` says otherwise."
            },
        )
    else:
        gradient_checkpointing: bool = field(
            default=True,
            metadata={
                "help": "Recompute denoiser activations in backward (diffusers `enable_gradient_checkpointing`); "
                "saves most activation memory at ~20%% more compute."
            },
        )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bf16 mixed precision. None: on when a bf16-capable GPU is present and fp16 is not set."},
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0 disables)."})
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Kept False: the pair columns are not arguments of the denoiser's forward."},
    )
    lr_scheduler_kwargs: dict | str | None = field(
        default=None, metadata={"help": "Extra arguments of the learning-rate scheduler."}
    )
    torch_empty_cache_steps: int | None = field(
        default=None, metadata={"help": "Empty the accelerator cache every N steps (slower; can avoid OOM)."}
    )
    use_liger_kernel: bool = field(default=False, metadata={"help": "Unused by MPO (language-model kernels)."})

    def __post_init__(self):
        if _CHECKPOINTING_FIELD == "activation_checkpointing" and self.activation_checkpointing is None:
            if self.gradient_checkpointing is None:
                self.activation_checkpointing = True
        if self.bf16 is None:
            self.bf16 = not self.fp16 and not getattr(self, "use_cpu", False) and _bf16_available()
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0; got {self.beta}")
        if self.prediction_type is not None and self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES} or None; got {self.prediction_type!r}")
        if self.timestep_sampling not in TIMESTEP_SAMPLINGS:
            raise ValueError(f"timestep_sampling must be one of {TIMESTEP_SAMPLINGS}; got {self.timestep_sampling!r}")
        if self.reference_mode not in REFERENCE_MODES:
            raise ValueError(f"reference_mode must be one of {REFERENCE_MODES}; got {self.reference_mode!r}")
        if self.reference_mode == "adapter_disabled" and not self.use_peft:
            raise ValueError(
                "reference_mode='adapter_disabled' needs use_peft=True (full fine-tuning has no adapter to "
                "disable); use 'frozen_copy' or 'auto'"
            )
        if self.denoiser_type not in DENOISER_TYPES:
            raise ValueError(f"denoiser_type must be one of {DENOISER_TYPES}; got {self.denoiser_type!r}")
        if self.lora_target_modules is None:
            self.lora_target_modules = list(DEFAULT_LORA_TARGET_MODULES)
        self.get_pair_rule()  # validates the pair fields
        super().__post_init__()

    @property
    def checkpointing(self) -> bool:
        """Whether gradient (activation) checkpointing is requested, under either transformers field name."""
        return bool(getattr(self, _CHECKPOINTING_FIELD))

    @property
    def resolved_reference_mode(self) -> str:
        if self.reference_mode == "auto":
            return "adapter_disabled" if self.use_peft else "frozen_copy"
        return self.reference_mode

    def get_pair_rule(self) -> PairRule:
        """The :class:`~trl_vision_reward.mpo.pairs.PairRule` these fields describe."""
        threshold = self.pair_threshold
        if threshold is None:
            threshold = PAPER_THRESHOLDS["dpo" if self.pair_rule == "dpo" else self.pair_granularity]
        return PairRule(kind=self.pair_rule, granularity=self.pair_granularity, min_total_gap=threshold)
