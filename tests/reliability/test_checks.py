"""Numeric ranges, finite arrays, duplicate files, prompt lengths and secrets: named errors, not silent results."""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
import pytest
import torch

from diffusers_cogvideox.checks import (
    check_finite,
    check_number,
    check_prompt_length,
    check_unique_files,
    float_range,
    int_range,
)
from diffusers_cogvideox.errors import UsageError, one_line
from diffusers_cogvideox.redaction import REDACTED, portable_path, redact, redact_text


@pytest.mark.parametrize("text", ["-3", "0", "1.5", "ten"])
def test_int_range_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError, match=">= 1"):
        int_range(1)(text)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "x"])
def test_float_range_rejects_non_finite(text):
    with pytest.raises(argparse.ArgumentTypeError):
        float_range()(text)
    assert float_range(0)("1.5") == 1.5


def test_check_number_bounds():
    assert check_number("strength", 1.0, low=0, high=1, low_open=True) == 1.0
    with pytest.raises(UsageError, match=r"strength must be > 0 and <= 1; got 0"):
        check_number("strength", 0.0, low=0, high=1, low_open=True)
    with pytest.raises(UsageError, match="question_batch_size must be >= 1; got 0"):
        check_number("question_batch_size", 0, low=1)
    with pytest.raises(UsageError, match="finite"):
        check_number("beta", math.nan)
    with pytest.raises(UsageError, match="number"):
        check_number("beta", True)


def test_check_finite_counts_bad_entries():
    check_finite("scores", np.ones(3))
    with pytest.raises(UsageError, match="scores holds 2 NaN or infinite value"):
        check_finite("scores", np.array([1.0, np.nan, np.inf]))
    with pytest.raises(UsageError, match="latents holds 1 NaN"):
        check_finite("latents", torch.tensor([0.0, float("-inf")]))


def test_duplicate_input_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    with pytest.raises(UsageError, match="same file"):
        check_unique_files([tmp_path / "a.png", f"{tmp_path}/./a.png"])
    with pytest.raises(UsageError, match="same file"):
        check_unique_files([tmp_path / "a.png", tmp_path / "b.png"])
    assert len(check_unique_files([tmp_path / "a.png", tmp_path / "c.png"])) == 2


def test_prompt_length_is_checked_with_the_number():
    def tokenizer(text, add_special_tokens=True):
        return {"input_ids": text.split()}

    assert check_prompt_length("a b c", tokenizer, 4) == 3
    with pytest.raises(UsageError, match="5 tokens long; the model reads at most 4"):
        check_prompt_length("a b c d e", tokenizer, 4)
    with pytest.raises(UsageError, match="100000 characters"):
        check_prompt_length("x" * 100_000, tokenizer, 226)  # refused before tokenizing


def test_redaction_of_keys_values_and_paths(tmp_path):
    token = "hf_" + "a1B2" * 8
    saved = redact({"hub_token": token, "note": f"pushed with {token}", "max_tokens": 5, "args": [token]})
    assert saved == {"hub_token": REDACTED, "note": f"pushed with {REDACTED}", "max_tokens": 5, "args": [REDACTED]}
    assert token not in redact_text(f"--hub_token={token}")
    assert portable_path(tmp_path / "pairs" / "x.jsonl", tmp_path) == "pairs/x.jsonl"
    assert portable_path("/somewhere/else/model") == "model"
    assert portable_path("THUDM/CogVideoX-2b") == "THUDM/CogVideoX-2b"


def test_one_line_of_errors():
    assert one_line(FileNotFoundError(2, "No such file or directory", "x.pt")) == "No such file or directory: x.pt"
    assert one_line(ValueError("first\n  second")) == "first second"
