"""``CogVideoXSFTConfig``: every hyperparameter of CogVideoX fine-tuning (LoRA or full), as ``TrainingArguments``.

Defaults follow the official ``THUDM/CogVideo`` ``finetune/`` trainer where it states one (AdamW betas (0.9, 0.95),
weight decay 1e-4, clipping 1.0, LoRA rank 128 / alpha 64 on ``to_q/k/v/out.0``, gradient checkpointing on) and the
paper where the official trainer differs: explicit uniform timestep sampling (arXiv 2408.06072 sec. 3.3; the
official ``finetune/`` samples plain uniform, SAT's ``DiscreteSampling`` has EUS but turns it off at <= 8 ranks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .diffusion import PREDICTION_TYPES
from .stages import Stage, parse_stages

TIMESTEP_SAMPLINGS = ("explicit_uniform", "uniform")
ENCODE_MODES = ("whole_clip", "batched")
IMAGE_CONDITIONS = ("noised", "clean")
DEFAULT_LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
_CHECKPOINTING_FIELD = (
    "activation_checkpointing"
    if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    else "gradient_checkpointing"
)


@dataclass
class CogVideoXSFTConfig(TrainingArguments):
    r"""Configuration of [`CogVideoXSFTTrainer`]: the stages, the objective, LoRA, data and memory switches.

    The loss is the v-prediction MSE on the checkpoint's zero-terminal-SNR schedule, which equals the official
    ``1/(1 - abar_t)``-weighted x0 loss (see :mod:`diffusers_cogvideox.training.diffusion`). ``max_steps`` is set
    from the stages; the learning rate of a step is its stage's (``stages[i].learning_rate``, default
    ``learning_rate``) with the stage's own warm-up.
    """

    # ---- Progressive schedule ----
    stages: list | str | None = field(
        default=None,
        metadata={
            "help": "The progressive schedule: a list of stages (YAML), or JSON on the command line. Each stage has "
            "name, buckets (list of FRAMESxHEIGHTxWIDTH; 1xHxW takes images), max_steps or num_epochs, and optionally "
            "learning_rate, warmup_steps, lr_shape (constant|cosine), dataset (another clip folder), min_scores "
            "({score: minimum}), batch_size, image_ratio. None: one stage of max_steps steps over `buckets`."
        },
    )
    buckets: list[str] | None = field(
        default=None,
        metadata={"help": "Buckets of the single default stage when `stages` is not given (e.g. 49x480x720)."},
    )
    max_aspect_change: float = field(
        default=0.25,
        metadata={
            "help": "Reject a clip whose aspect ratio differs from its closest bucket's by more than this fraction "
            "(clips are short-side resized and center-cropped, never stretched)."
        },
    )

    # ---- Objective ----
    timestep_sampling: str = field(
        default="explicit_uniform",
        metadata={
            "help": "'explicit_uniform' (paper sec. 3.3: [0, T) split into one interval per data-parallel rank, "
            "each rank sampling in its own; plain uniform on one process) or 'uniform' (the official finetune/).",
            "choices": list(TIMESTEP_SAMPLINGS),
        },
    )
    prediction_type: str | None = field(
        default=None,
        metadata={"help": "None: the scheduler's (v_prediction for CogVideoX).", "choices": [*PREDICTION_TYPES, None]},
    )
    num_train_timesteps: int | None = field(default=None, metadata={"help": "T; None: the scheduler's (1000)."})
    snr_shift_scale: float = field(
        default=3.0,
        metadata={"help": "SNR shift of the schedule when no scheduler is given: 3.0 for 2B, 1.0 for 5B and 1.5."},
    )
    caption_dropout: float = field(
        default=0.0,
        metadata={
            "help": "Probability of training a clip on the empty prompt (classifier-free guidance). SAT uses 0.1; "
            "the official finetune/ uses 0."
        },
    )
    noised_image_dropout: float = field(
        default=0.05, metadata={"help": "Image-to-video: probability of zeroing the image condition (SAT: 0.05)."}
    )
    image_condition: str = field(
        default="noised",
        metadata={
            "help": "Image-to-video condition. 'noised' (the official finetune/ recipe): every step the first frame "
            "gets Gaussian noise of sigma = exp(N(-3, 0.5)) in [-1, 1] pixels and is encoded (a posterior sample) by "
            "the VAE passed to the trainer, which stays in memory; 'clean': the cached posterior mean of the clean "
            "first frame, no VAE while training.",
            "choices": list(IMAGE_CONDITIONS),
        },
    )
    eval_seed: int = field(
        default=1234, metadata={"help": "Seed of the fixed noise and timesteps of evaluation (comparable losses)."}
    )

    # ---- LoRA (PEFT) ----
    use_peft: bool = field(default=True, metadata={"help": "Train a LoRA adapter (PEFT); False: all weights."})
    lora_r: int = field(default=128, metadata={"help": "LoRA rank (official finetune/: 128)."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (official finetune/: 64; scale alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": f"Modules to adapt. None: {DEFAULT_LORA_TARGET_MODULES}."}
    )
    lora_init_weights: str = field(
        default="gaussian", metadata={"help": "PEFT init_lora_weights: 'gaussian' (diffusers' scripts) or 'true'."}
    )

    # ---- Data and memory ----
    encode_mode: str = field(
        default="whole_clip",
        metadata={
            "help": "How training latents are encoded: 'whole_clip' (GroupNorm over the whole clip: the official SAT "
            "encoder) or 'batched' (8-frame batches: diffusers' pipelines and example scripts).",
            "choices": list(ENCODE_MODES),
        },
    )
    precompute: bool = field(
        default=True,
        metadata={
            "help": "True: encode every clip once into the latent cache and train without the VAE and T5 in memory. "
            "False: keep the VAE and T5 resident and encode each batch on the fly (same encoder calls and encode_mode "
            "as the cache; no cache files written): for data that changes, or too big to cache."
        },
    )
    layerwise_fp8: bool = field(
        default=False,
        metadata={
            "help": "Store the frozen transformer weights in float8_e4m3fn and upcast per layer (diffusers' "
            "layerwise casting); LoRA training only."
        },
    )

    # ---- Validation ----
    validation_prompts: list[str] | None = field(
        default=None, metadata={"help": "Prompts rendered to videos every validation_steps (needs VAE + T5)."}
    )
    validation_steps: int = field(default=0, metadata={"help": "Render validation videos every N steps (0: at end)."})
    validation_num_inference_steps: int = field(default=50, metadata={"help": "Sampling steps of validation videos."})
    validation_bucket: str | None = field(
        default=None, metadata={"help": "FxHxW of validation videos; None: the last stage's first bucket."}
    )

    # ---- Overridden TrainingArguments defaults ----
    learning_rate: float = field(
        default=1e-4,
        metadata={"help": "Base learning rate (maintainers: LoRA 1e-4 to 1e-3, full fine-tuning 1e-5)."},
    )
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2 (paper and official trainer: 0.95)."})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay (paper Table 6: 1e-4)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (paper: 1.0)."})
    logging_steps: float = field(default=10, metadata={"help": "Log every X update steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: cached columns are not forward arguments."}
    )
    if _CHECKPOINTING_FIELD == "activation_checkpointing":
        activation_checkpointing: bool | None = field(
            default=None,
            metadata={"help": "Recompute transformer activations in backward (None: on, as the official trainer)."},
        )
    else:
        gradient_checkpointing: bool = field(
            default=True, metadata={"help": "Recompute transformer activations in backward."}
        )
    lr_scheduler_kwargs: dict | str | None = field(default=None, metadata={"help": "Unused: stages set the LR."})
    use_liger_kernel: bool = field(default=False, metadata={"help": "Unused (language-model kernels)."})

    def __post_init__(self):
        if _CHECKPOINTING_FIELD == "activation_checkpointing" and self.activation_checkpointing is None:
            if self.gradient_checkpointing is None:
                self.activation_checkpointing = True
        if isinstance(self.stages, str):
            try:
                self.stages = json.loads(self.stages)
            except json.JSONDecodeError as exc:
                raise ValueError(f"stages must be a YAML list or a JSON list of stage mappings ({exc.msg})") from None
        if self.stages is None:
            if not self.buckets:
                raise ValueError("give `stages` (the progressive schedule) or `buckets` + max_steps for one stage")
            if self.max_steps is None or self.max_steps < 1:
                raise ValueError("a single default stage needs max_steps >= 1")
            self.stages = [{"name": "main", "buckets": list(self.buckets), "max_steps": self.max_steps}]
        self.stage_list: list[Stage] = parse_stages(self.stages)
        self.stages = [s.to_dict() for s in self.stage_list]
        if self.timestep_sampling not in TIMESTEP_SAMPLINGS:
            raise ValueError(f"timestep_sampling must be one of {TIMESTEP_SAMPLINGS}; got {self.timestep_sampling!r}")
        if self.encode_mode not in ENCODE_MODES:
            raise ValueError(f"encode_mode must be one of {ENCODE_MODES}; got {self.encode_mode!r}")
        if self.image_condition not in IMAGE_CONDITIONS:
            raise ValueError(f"image_condition must be one of {IMAGE_CONDITIONS}; got {self.image_condition!r}")
        for name in ("caption_dropout", "noised_image_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        if self.layerwise_fp8 and not self.use_peft:
            raise ValueError("layerwise_fp8 stores frozen weights in fp8: it needs use_peft=True")
        if self.lora_target_modules is None:
            self.lora_target_modules = list(DEFAULT_LORA_TARGET_MODULES)
        super().__post_init__()

    @property
    def checkpointing(self) -> bool:
        return bool(getattr(self, _CHECKPOINTING_FIELD))
