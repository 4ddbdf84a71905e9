"""``vision-reward`` command line: score media, train and evaluate reward models, convert checkpoints."""

from __future__ import annotations

from diffusers_cogvideox._cli import run_subcommands

COMMANDS = {
    "score": ("trl_vision_reward.commands.score", "Score images or videos with a VisionReward checklist."),
    "train-sft": ("trl_vision_reward.commands.train_sft", "Stage 1: fine-tune the backbone on checklist judgments."),
    "fit-weights": (
        "trl_vision_reward.commands.fit_weights",
        "Stage 2: fit non-negative checklist weights on preference pairs.",
    ),
    "evaluate": ("trl_vision_reward.commands.evaluate", "Preference accuracy (tau / diff) and judgment accuracy."),
    "convert-sat": (
        "trl_vision_reward.commands.convert_sat",
        "Convert the SAT VisionReward-Image checkpoint to transformers.",
    ),
}


def main(argv: list[str] | None = None) -> int:
    return run_subcommands("vision-reward", __doc__, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
