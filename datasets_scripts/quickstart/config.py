"""The quickstart's knobs and stages: one dataclass, from which the CLI is generated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DEFAULT_PROMPTS = (
    "a panda playing a guitar in a bamboo forest, cinematic lighting",
    "waves crash on a rocky beach while seagulls fly overhead",
    "a cat sleeping on a red sofa next to a window at sunset",
)
STAGES = ("generate_score", "pairs", "train_mpo", "regenerate", "report")
STAGE_TITLES = {
    "generate_score": "1. Generate and score",
    "pairs": "2. Mine MPO pairs",
    "train_mpo": "3. Train MPO (LoRA) and save the adapter with its card",
    "regenerate": "4. Regenerate with the adapter and score",
    "report": "5. Report",
}


def _f(default: Any, help_text: str) -> Any:
    """A field with its ``--help`` text: the CLI is generated from this dataclass."""
    return field(default=default, metadata={"help": help_text})


@dataclass
class QuickstartConfig:
    """Every knob of the quickstart. ``None`` fields take the tiny or full-size default (see :meth:`resolved`)."""

    out: str = _f("outputs/quickstart", "output folder (each run replaces only what an earlier quickstart wrote)")
    model: str | None = _f(None, "CogVideoX folder or repo id (default: tiny random weights)")
    scorer: str | None = _f(None, "VisionReward video folder or repo id (default: tiny random weights)")
    prompts: list[str] = field(
        default_factory=lambda: list(DEFAULT_PROMPTS),
        metadata={"help": "prompts; a value ending in .txt/.json/.jsonl is a file of prompts (default: 3 built in)"},
    )
    samples_per_prompt: int = _f(4, "samples generated per prompt (the pairs are mined among them)")
    num_frames: int | None = _f(None, "frames per video (default: 9 tiny, 49 full size)")
    height: int | None = _f(None, "video height (default: 32 tiny, 480 full size)")
    width: int | None = _f(None, "video width (default: 32 tiny, 720 full size)")
    num_inference_steps: int | None = _f(None, "denoising steps (default: 2 tiny, 50 full size)")
    guidance_scale: float | None = _f(None, "classifier-free guidance scale (default: 1 tiny, 6 full size)")
    fps: int = _f(8, "frames per second of the written videos")
    pair_kind: Literal["mpo", "dpo"] = _f("mpo", "pair rule: mpo (dominance) or dpo (total-score gap only)")
    pair_granularity: Literal["dimension", "sub_dimension", "question"] = _f(
        "dimension", "level at which the mpo rule compares scores"
    )
    pair_threshold: float | None = _f(None, "minimum total-score gap (default: 0 tiny scorer, the paper's otherwise)")
    pair_scores: Literal["official", "soft"] | None = _f(
        None, "scores the pairs are mined on (default: soft for the tiny scorer, official otherwise)"
    )
    train_steps: int | None = _f(None, "MPO optimisation steps (default: 4 tiny, 100 full size)")
    learning_rate: float | None = _f(None, "MPO learning rate (default: 1e-3 tiny, 5e-6 full size)")
    beta: float | None = _f(None, "Diffusion-DPO beta (default: 500)")
    lora_r: int | None = _f(None, "LoRA rank, alpha equal to it (default: 4 tiny, 64 full size)")
    batch_size: int = _f(1, "pairs per training step")
    seed: int = _f(0, "seed of generation and training")
    device: str = _f("cpu", "torch device")
    progress: bool = _f(True, "show progress bars (--no-progress hides them)")

    @property
    def tiny(self) -> bool:
        from ..backends import is_tiny

        return is_tiny(self.model)

    def resolved(self) -> QuickstartConfig:
        """Fill the ``None`` fields: tiny (fast, random) or full-size (paper-like) defaults."""
        from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS

        tiny = self.tiny
        defaults = dict(
            num_frames=9 if tiny else 49,
            height=32 if tiny else 480,
            width=32 if tiny else 720,
            num_inference_steps=2 if tiny else 50,
            guidance_scale=1.0 if tiny else 6.0,
            # A random scorer answers "no" to every question, so its official scores are all equal; the soft
            # (P(yes)-based) scores still order the samples. Real scorers use the paper's rule and thresholds.
            pair_scores="soft" if self.scorer is None else "official",
            pair_threshold=0.0
            if self.scorer is None
            else PAPER_THRESHOLDS["dpo" if self.pair_kind == "dpo" else self.pair_granularity],
            train_steps=4 if tiny else 100,
            learning_rate=1e-3 if tiny else 5e-6,
            beta=500.0,
            lora_r=4 if tiny else 64,
        )
        values = asdict(self)
        values.update({k: v for k, v in defaults.items() if values.get(k) is None})
        return QuickstartConfig(**values)
