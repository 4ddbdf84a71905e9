"""Prompt rewriting: the official chat (package data with source and licence), seeded, empty output refused."""

from __future__ import annotations

import pytest

from datasets_scripts.video_data.rewrite import PromptRewriter, RewriteError, official_rewrite_prompt, rewrite_messages


def test_official_prompt_is_package_data_with_source_and_licence():
    spec = official_rewrite_prompt()
    assert "convert_demo.py" in spec["source"] and spec["licence"].startswith("Apache-2.0")
    messages = rewrite_messages("a cat")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"].endswith('for the user input: " a cat "')
    assert spec["generation"] == {"temperature": 0.01, "top_p": 0.7, "max_new_tokens": 250}


def test_rewrites_are_deterministic_per_prompt_and_seed():
    rewriter = PromptRewriter.tiny(temperature=1.0)
    first = rewriter(["a cat", "a dog"])
    assert first == [rewriter.rewrite("a cat"), PromptRewriter.tiny(temperature=1.0).rewrite("a dog")]
    assert all(first)
    with pytest.raises(RewriteError, match="empty"):
        rewriter.rewrite("  ")
