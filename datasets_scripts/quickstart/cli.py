"""``vr-quickstart``: every field of :class:`QuickstartConfig` is a flag (``HfArgumentParser``, as ``mpo-train``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from .config import QuickstartConfig

PROMPT_FILE_SUFFIXES = (".txt", ".json", ".jsonl")


def make_parser(**kwargs: Any) -> argparse.ArgumentParser:
    from transformers import HfArgumentParser

    kwargs.setdefault("prog", "vr-quickstart")
    kwargs.setdefault("description", "Run the whole loop: generate, score, pair, train MPO, regenerate, report.")
    return HfArgumentParser(QuickstartConfig, **kwargs)


def expand_prompts(values: list[str]) -> list[str]:
    """Each value ending in a prompt-file suffix is read as a file of prompts; the others are prompts."""
    from ..commands.generate_score import read_prompts

    prompts: list[str] = []
    for value in values:
        if value.endswith(PROMPT_FILE_SUFFIXES):
            if not Path(value).is_file():
                raise FileNotFoundError(f"--prompts {value}: no such file (a .txt file has one prompt a line)")
            prompts += read_prompts(value)
        else:
            prompts.append(value)
    if not prompts:
        raise ValueError("--prompts: no prompt given (pass prompts or a .txt file with one prompt a line)")
    return prompts


def config_from_args(args: argparse.Namespace) -> QuickstartConfig:
    config = QuickstartConfig(**{f.name: getattr(args, f.name) for f in fields(QuickstartConfig)})
    if config.prompts is not None:  # None: the default prompts of the chosen models
        config.prompts = expand_prompts(list(config.prompts))
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    from .runner import Quickstart

    try:
        config = config_from_args(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"vr-quickstart: error: {exc}", file=sys.stderr)
        return 2
    ok = Quickstart(config).run()
    print(f"report: {Path(config.out) / 'report.html'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None, prog: str = "vr-quickstart") -> int:
    from diffusers_cogvideox._cli import run_cli

    return run_cli(prog, lambda argv: run(make_parser(prog=prog).parse_args(argv)), argv)


if __name__ == "__main__":
    raise SystemExit(main())
