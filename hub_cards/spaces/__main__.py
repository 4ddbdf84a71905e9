"""``python -m hub_cards.spaces write --app cogvideox|vision-reward --out DIR``: write a ready-to-upload Space folder."""

from __future__ import annotations

import sys

from diffusers_cogvideox._cli import run_subcommands

COMMANDS = {"write": ("hub_cards.spaces.space_folder", "write a ready-to-upload Space folder for one app")}


def main(argv: list[str] | None = None) -> int:
    return run_subcommands("python -m hub_cards.spaces", __doc__.splitlines()[0], COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
