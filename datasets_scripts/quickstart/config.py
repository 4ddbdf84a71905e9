"""The quickstart's knobs and stages: one dataclass, from which the CLI is generated."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..tiny_world.world import prompt_for

DEFAULT_PROMPTS = (
    "a panda playing a guitar in a bamboo forest, cinematic lighting",
    "waves crash on a rocky beach while seagulls fly overhead",
    "a cat sleeping on a red sofa next to a window at sunset",
)
"""Prompts of the random tiny default (``--random``) and of full-size models."""
TINY_WORLD_PROMPTS = tuple(
    prompt_for(shape, colour, background)
    for shape, colour, background in (
        ("circle", "red", "grey"),
        ("square", "green", "teal"),
        ("circle", "blue", "purple"),
        ("square", "yellow", "olive"),
    )
)
"""Prompts of the trained tiny world (the default): every shape, colour and background appears."""
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
    model: str | None = _f(
        None, "CogVideoX folder or repo id (default: the trained tiny world shipped with the package)"
    )
    scorer: str | None = _f(
        None, "VisionReward video folder or repo id (default: the tiny world's trained scorer shipped with the package)"
    )
    random: bool = _f(
        False, "random tiny CogVideoX and VisionReward weights instead of the trained tiny world (noise; soft scores)"
    )
    prompts: list[str] | None = field(
        default=None,
        metadata={
            "help": "prompts; a value ending in .txt/.json/.jsonl is a file of prompts (default: 4 tiny-world prompts, "
            "3 built-in scenes with --random or full-size models)"
        },
    )
    samples_per_prompt: int | None = _f(
        None, "samples generated per prompt, the pairs are mined among them (default: 8 tiny world, 4 otherwise)"
    )
    num_frames: int | None = _f(None, "frames per video (default: 9 tiny, 49 full size)")
    height: int | None = _f(None, "video height (default: 32 tiny, 480 full size)")
    width: int | None = _f(None, "video width (default: 32 tiny, 720 full size)")
    num_inference_steps: int | None = _f(None, "denoising steps (default: 10 tiny world, 2 random tiny, 50 full size)")
    guidance_scale: float | None = _f(None, "classifier-free guidance scale (default: 1 tiny, 6 full size)")
    fps: int = _f(8, "frames per second of the written videos")
    pair_kind: Literal["mpo", "dpo"] = _f("mpo", "pair rule: mpo (dominance) or dpo (total-score gap only)")
    pair_granularity: Literal["dimension", "sub_dimension", "question"] = _f(
        "dimension", "level at which the mpo rule compares scores"
    )
    pair_threshold: float | None = _f(
        None,
        "minimum total-score gap (default: the paper's; with the tiny world's scorer the paper's if it admits pairs, "
        "else the nearest that does, stated in the report; 0 for a random scorer)",
    )
    pair_scores: Literal["official", "soft"] | None = _f(
        None, "scores the pairs are mined on (default: soft for a random scorer, official otherwise)"
    )
    train_steps: int | None = _f(None, "MPO optimisation steps (default: 50 tiny world, 4 random tiny, 100 full size)")
    learning_rate: float | None = _f(None, "MPO learning rate (default: 1e-3 tiny, 5e-6 full size)")
    beta: float | None = _f(None, "Diffusion-DPO beta (default: 500)")
    lora_r: int | None = _f(None, "LoRA rank, alpha equal to it (default: 8 tiny world, 4 random tiny, 64 full size)")
    batch_size: int = _f(1, "pairs per training step")
    seed: int = _f(0, "seed of generation and training")
    device: str = _f("cpu", "torch device")
    progress: bool = _f(True, "show progress bars (--no-progress hides them)")

    @property
    def tiny(self) -> bool:
        """The generator is the tiny world or its random twin (tiny resolution)."""
        from ..backends import is_tiny

        return self.random or is_tiny(self.model)

    @property
    def random_model(self) -> bool:
        from diffusers_cogvideox.sampling import is_random

        return self.random or is_random(self.model)

    @property
    def random_scorer(self) -> bool:
        from diffusers_cogvideox.sampling import is_random

        return self.random or is_random(self.scorer)

    @property
    def world(self) -> bool:
        """The generator is the trained tiny world: its clips can be judged by the procedural truth."""
        return self.tiny and not self.random_model

    @property
    def world_scorer(self) -> bool:
        """The scorer is the tiny world's trained one (its totals are on the world's scale, not the paper's)."""
        from ..backends import is_tiny

        return is_tiny(self.scorer) and not self.random_scorer

    def validate(self) -> None:
        """Refuse contradictory choices (one line naming them) before anything is written."""
        if self.random:
            given = {k: v for k, v in (("--model", self.model), ("--scorer", self.scorer)) if v is not None}
            clash = {k: v for k, v in given.items() if str(v).lower() != "random"}
            if clash:
                names = ", ".join(f"{k} {v}" for k, v in clash.items())
                raise ValueError(
                    f"--random selects the random tiny models; it cannot be combined with {names} "
                    "(drop --random, or drop the model flags)"
                )
        for name in ("samples_per_prompt", "train_steps", "lora_r", "num_inference_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1; got {value}")
        if self.pair_threshold is not None and self.pair_threshold < 0:
            raise ValueError(f"--pair_threshold must be >= 0 (a total-score gap); got {self.pair_threshold}")

    def resolved(self) -> QuickstartConfig:
        """Fill the ``None`` fields: trained tiny world, random tiny, or full-size (paper-like) defaults.

        With the tiny world's scorer and no ``pair_threshold`` the threshold stays ``None`` here: the pairs stage
        picks it from the scores (:func:`.runner.choose_pair_threshold`) and the report says which and why."""
        from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS
        from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS

        self.validate()
        values = asdict(self)
        if self.random:
            values["model"] = values["model"] or "random"
            values["scorer"] = values["scorer"] or "random"
        tiny, world = self.tiny, self.world
        defaults = dict(
            prompts=list(TINY_WORLD_PROMPTS if world else DEFAULT_PROMPTS),
            samples_per_prompt=8 if world else 4,
            num_frames=TINY_WORLD_RESOLUTION["num_frames"] if tiny else 49,
            height=TINY_WORLD_RESOLUTION["height"] if tiny else 480,
            width=TINY_WORLD_RESOLUTION["width"] if tiny else 720,
            num_inference_steps=TINY_WORLD_STEPS if world else 2 if tiny else 50,
            guidance_scale=1.0 if tiny else 6.0,
            # A random scorer answers "no" to every question, so its official scores are all equal; the soft
            # (P(yes)-based) scores still order the samples. Trained scorers use the paper's hard-answer rule.
            pair_scores="soft" if self.random_scorer else "official",
            pair_threshold=0.0
            if self.random_scorer
            else None
            if self.world_scorer
            else PAPER_THRESHOLDS["dpo" if self.pair_kind == "dpo" else self.pair_granularity],
            train_steps=50 if world else 4 if tiny else 100,
            learning_rate=1e-3 if tiny else 5e-6,
            beta=500.0,
            lora_r=8 if world else 4 if tiny else 64,
        )
        values.update({k: v for k, v in defaults.items() if values.get(k) is None})
        return QuickstartConfig(**values)
