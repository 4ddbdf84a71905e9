"""Checks of numbers, arrays, file lists and prompts that turn a silently wrong result into a named error.

The argparse types (:func:`int_range`, :func:`float_range`) reject ``--steps -3``, ``--fps 0`` or
``--guidance-scale nan`` while the command line is parsed, with argparse's one-line error and exit status 2; the
functions raise :class:`~diffusers_cogvideox.errors.UsageError` for the same checks inside library code.
"""

from __future__ import annotations

import argparse
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import UsageError


def _bounds(low: float | None, high: float | None, low_open: bool = False) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"<= {high:g}")
    return " and ".join(parts)


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> Any:
    """``value`` if it is a finite number within the bounds; a :class:`UsageError` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{name} must be a number {_bounds(low, high, low_open)}; got {value!r}".replace("  ", " "))
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number {_bounds(low, high, low_open)}; got {value}")
    if low is not None and (value <= low if low_open else value < low) or high is not None and value > high:
        raise UsageError(f"{name} must be {_bounds(low, high, low_open)}; got {value:g}")
    return value


def int_range(low: int | None = None, high: int | None = None):
    """An argparse ``type`` for an integer within ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {_bounds(low, high)}; got {text!r}") from None
        if low is not None and value < low or high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be an integer {_bounds(low, high)}; got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(low: float | None = None, high: float | None = None, low_open: bool = False):
    """An argparse ``type`` for a finite float within the bounds (``low_open``: strictly above ``low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {_bounds(low, high, low_open)}; got {text!r}") from None
        try:
            check_number("value", value, low=low, high=high, low_open=low_open)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value ")) from None
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
finite_float = float_range()


def check_finite(name: str, array: Any) -> Any:
    """``array`` (numpy array or torch tensor) if every entry is finite; else a :class:`UsageError` with the count."""
    import numpy as np

    values = array.detach().cpu().float().numpy() if hasattr(array, "detach") else np.asarray(array, dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise UsageError(f"{name} holds {int(bad.sum())} NaN or infinite value(s) of {values.size}; all must be finite")
    return array


def check_unique_files(paths: Sequence[str | os.PathLike], what: str = "input files") -> list[Path]:
    """The paths, refusing the same file given twice (symlinks and ``./`` spellings resolved)."""
    seen: dict[Path, str] = {}
    for path in paths:
        key = Path(path).expanduser().resolve(strict=False)
        if key in seen:
            raise UsageError(f"{what}: {os.fspath(path)!r} is the same file as {seen[key]!r}; give each file once")
        seen[key] = os.fspath(path)
    return [Path(p) for p in paths]


def check_prompt_length(
    prompt: str, tokenizer: Any, max_tokens: int, what: str = "prompt", truncates: bool = False
) -> int:
    """The prompt's token count, refusing one longer than ``max_tokens`` before any model runs.

    A prompt far beyond the model's context (a pasted file) would otherwise tokenize and run for minutes; the
    character count is checked first so such a prompt is never tokenized at all. ``truncates``: the model is
    defined to read only the first ``max_tokens`` (CogVideoX's T5 prompt), so a longer prompt is used with a
    warning naming both numbers instead of refused.
    """
    if len(prompt) > 16 * max_tokens:  # no tokenizer makes fewer tokens than bytes / 16 of ordinary text
        raise UsageError(
            f"{what} has {len(prompt)} characters, far more than the {max_tokens} tokens the model reads; shorten it"
        )
    count = len(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if count > max_tokens and truncates:
        warnings.warn(f"{what} is {count} tokens long; the model reads only the first {max_tokens}", stacklevel=2)
    elif count > max_tokens:
        raise UsageError(f"{what} is {count} tokens long; the model reads at most {max_tokens}; shorten it")
    return count


def check_choices(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
