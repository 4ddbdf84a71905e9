"""Shared dispatcher for sub-command CLIs whose commands live in their own modules."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module


def run_subcommands(prog: str, description: str, commands: dict[str, tuple[str, str]], argv: list[str] | None) -> int:
    """Run ``prog COMMAND ...`` where ``commands`` maps names to ``(module, help)``.

    Only the chosen command's module is imported, so a command's heavy dependencies never slow the others down.
    Each module defines ``add_arguments(parser)`` and ``run(args) -> int``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in commands else None
    module = None
    for name, (module_name, help_text) in commands.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = import_module(module_name)
            module.add_arguments(command_parser)
    args = parser.parse_args(argv)  # prints help or an error naming the accepted commands when none was chosen
    assert module is not None
    return int(module.run(args) or 0)
