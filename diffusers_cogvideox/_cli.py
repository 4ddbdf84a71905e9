"""Shared entry-point machinery: the sub-command dispatcher and the one error policy of every command line.

Every console script (``cogvideox``, ``vision-reward``, ``mpo-train``, ``vr-datasets``, ``vr-quickstart``) runs its
work through :func:`run_cli`, so a known error (:data:`~diffusers_cogvideox.errors.KNOWN_ERRORS`: ``UsageError`` and
other ``ValueError``, ``OSError``) prints one line, ``PROG: error: MESSAGE``, and exits with status 2; ``--debug``
anywhere on the command line (or ``COGVIDEOX_VR_DEBUG=1``) shows its traceback too. Anything else is a bug and keeps
its traceback. Ctrl-C prints one line and exits 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

from .errors import DEBUG_ENV, EXIT_USAGE, KNOWN_ERRORS, one_line

DEBUG_FLAG = "--debug"


def split_debug(argv: Sequence[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (before a ``--``), and whether debugging is on (the flag or the env var)."""
    argv = list(argv)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = DEBUG_FLAG in argv[:end]
    kept = [a for a in argv[:end] if a != DEBUG_FLAG] + argv[end:]
    return kept, debug or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def run_cli(prog: str, main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` under the error policy and return its exit status.

    ``main`` gets ``argv`` with ``--debug`` removed. Known errors become ``PROG: error: MESSAGE`` on stderr and
    status 2 (with ``--debug``: re-raised, so the traceback shows); ``SystemExit`` passes through unchanged.
    """
    argv, debug = split_debug(sys.argv[1:] if argv is None else argv)
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except KNOWN_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {one_line(error)} (add {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        return EXIT_USAGE


def run_subcommands(prog: str, description: str, commands: dict[str, tuple[str, str]], argv: list[str] | None) -> int:
    """Run ``prog COMMAND ...`` where ``commands`` maps names to ``(module, help)``, under :func:`run_cli`.

    Only the chosen command's module is imported, so a command's heavy dependencies never slow the others down.
    Each module defines ``add_arguments(parser)`` and ``run(args) -> int``.
    """

    def dispatch(argv: list[str]) -> int:
        if argv and argv[0] in commands:  # a command with its own parser (OWN_PARSER, e.g. TrlParser) takes raw argv
            own = import_module(commands[argv[0]][0])
            if getattr(own, "OWN_PARSER", False):
                return int(own.run_argv(argv[1:]) or 0)
        parser = argparse.ArgumentParser(prog=prog, description=description)
        parser.add_argument(DEBUG_FLAG, action="store_true", help=f"show tracebacks of known errors (or {DEBUG_ENV}=1)")
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

    return run_cli(f"{prog} {argv_command(argv, commands)}".strip(), dispatch, argv)


def argv_command(argv: Sequence[str] | None, commands: dict) -> str:
    """The sub-command named on the command line (for error messages), or ``""``."""
    argv = sys.argv[1:] if argv is None else argv
    return argv[0] if argv and argv[0] in commands else ""
