"""``cogvideox`` command line: generate videos, convert SAT checkpoints."""

from __future__ import annotations

from ._cli import run_subcommands

COMMANDS = {
    "generate": ("diffusers_cogvideox.commands.generate", "Generate a video (text-, image- or video-to-video)."),
    "convert": ("diffusers_cogvideox.commands.convert", "Convert an official SAT checkpoint to the diffusers layout."),
    "train": ("diffusers_cogvideox.commands.train", "Fine-tune CogVideoX (LoRA or full) with progressive stages."),
}


def main(argv: list[str] | None = None) -> int:
    return run_subcommands("cogvideox", __doc__, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
