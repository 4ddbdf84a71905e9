"""Prompt rewriting: the official chat (package data with source and licence), seeded, empty output refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from datasets_scripts.commands.generate_score import read_prompts
from datasets_scripts.files import read_records
from datasets_scripts.video_data.rewrite import (
    PromptRewriter,
    RewriteConfig,
    RewriteError,
    collect_rewrites,
    official_rewrite_prompt,
    rewrite_messages,
    run_rewrite,
    save_tiny_rewriter,
)


def test_official_prompt_is_package_data_with_source_and_licence():
    spec = official_rewrite_prompt()
    assert "convert_demo.py" in spec["source"] and spec["licence"].startswith("Apache-2.0")
    messages = rewrite_messages("a cat")
    assert [m["role"] for m in messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert messages[-1]["content"].endswith('for the user input: " a cat "')
    assert spec["generation"] == {"temperature": 0.01, "top_p": 0.7, "max_new_tokens": 250}


def test_rewrites_are_deterministic_per_prompt_and_seed():
    rewriter = PromptRewriter.tiny(temperature=1.0, max_new_tokens=4)
    first = rewriter(["a cat", "a dog"])
    assert first == [rewriter.rewrite("a cat"), PromptRewriter.tiny(temperature=1.0, max_new_tokens=4).rewrite("a dog")]
    assert all(first)
    with pytest.raises(RewriteError, match="empty"):
        rewriter.rewrite("  ")


def test_tiny_rewriter_is_a_checkpoint_folder_loaded_by_the_auto_classes(tmp_path):
    import json

    folder = save_tiny_rewriter(tmp_path / "tiny")
    assert json.loads((folder / "config.json").read_text())["architectures"] == ["Qwen2ForCausalLM"]
    assert (
        "chat_template" in (folder / "tokenizer_config.json").read_text() or (folder / "chat_template.jinja").exists()
    )
    loaded = PromptRewriter.from_pretrained(folder, max_new_tokens=6, temperature=1.0)
    assert loaded.rewrite("a cat") == PromptRewriter.tiny(max_new_tokens=6, temperature=1.0).rewrite("a cat")
    assert loaded.rewrite("a cat") != PromptRewriter.tiny(seed=1, max_new_tokens=6, temperature=1.0).rewrite("a cat")


def test_a_prompt_the_rewriter_returns_nothing_for_is_a_rejects_row(tmp_path):
    import torch

    rewriter = PromptRewriter.tiny(max_new_tokens=4)
    generate = rewriter.model.generate

    def silent_on_dogs(input_ids, **kwargs):  # the model ends at once (end-of-sequence) for one prompt
        if "dog" in rewriter.tokenizer.decode(input_ids[0, -20:]):
            return torch.cat([input_ids, torch.tensor([[rewriter.tokenizer.eos_token_id]])], dim=1)
        return generate(input_ids=input_ids, **kwargs)

    rewriter.model.generate = silent_on_dogs
    summary = run_rewrite(
        ["a cat", "a dog"], tmp_path / "job", rewriter, RewriteConfig(max_new_tokens=4), progress=False
    )
    assert (summary.done, summary.failed) == (1, 1)
    assert "RewriteError: the rewriter returned nothing for 'a dog'" in summary.rejects[0]["reason"]
    collect_rewrites(tmp_path / "job")
    rows = pq.read_table(tmp_path / "job" / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert [r["prompt"] for r in rows] == ["a cat"] and rows[0]["rewritten_prompt"]
    assert "a dog" in (tmp_path / "job" / "rejects.jsonl").read_text()
    with pytest.raises(ValueError, match="holds no prompts"):
        run_rewrite([], tmp_path / "job2", rewriter, progress=False)


@pytest.mark.slow
def test_rewrite_prompts_cli_resumes_and_feeds_generate_score(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a cat\n\na dog on a beach\n")

    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}  # the user's view: one-line errors

    def vr(*args):
        return subprocess.run(
            [sys.executable, "-m", "datasets_scripts.cli", "rewrite-prompts", *args, "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    run = vr("--prompts", str(prompts), "--out", str(tmp_path / "rw"), "--max-new-tokens", "4", "--temperature", "1")
    assert run.returncode == 0, run.stderr
    rewritten = read_records(tmp_path / "rw" / "rewritten.jsonl")
    assert len(rewritten) == 2 and all(r["prompt"] for r in rewritten)
    assert read_prompts(str(tmp_path / "rw" / "rewritten.jsonl")) == [r["prompt"] for r in rewritten]
    again = vr("--prompts", str(prompts), "--out", str(tmp_path / "rw"), "--max-new-tokens", "4", "--temperature", "1")
    assert again.returncode == 0 and "0 done, 2 already done" in again.stdout
    assert read_records(tmp_path / "rw" / "rewritten.jsonl") == rewritten
    assert "Made with random weights" in (tmp_path / "rw" / "README.md").read_text()

    other = vr("--prompts", str(prompts), "--out", str(tmp_path / "rw"), "--max-new-tokens", "5")
    assert other.returncode == 2 and "max_new_tokens: 4 -> 5" in other.stderr and "Traceback" not in other.stderr
    (tmp_path / "empty.txt").write_text("\n\n")
    empty = vr("--prompts", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "rw2"))
    assert empty.returncode == 2 and "holds no prompts" in empty.stderr and not (tmp_path / "rw2").exists()


def test_generate_rewrites_its_prompt_first(tmp_path, capsys):
    from diffusers_cogvideox import cli
    from diffusers_cogvideox.commands.generate import WORLD_PROMPT

    out = tmp_path / "clip.mp4"
    assert cli.main(["generate", "--rewrite-prompt", "tiny", "--out", str(out), "--steps", "2", "--seed", "3"]) == 0
    expected = PromptRewriter.tiny(seed=3).rewrite(WORLD_PROMPT)
    assert f"rewritten prompt: {expected}\n" in capsys.readouterr().out and out.is_file()


def test_generate_score_scores_the_rewritten_prompts(tmp_path):
    from datasets_scripts.cli import main

    (tmp_path / "prompts.txt").write_text("a red ball\n")
    argv = ["generate-score", "--prompts", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "scored"),
            "--samples-per-prompt", "1", "--num-inference-steps", "2", "--rewrite-prompt", "tiny", "--seed", "5",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    rows = pq.read_table(next((tmp_path / "scored" / "data").glob("*.parquet")), columns=["prompt"]).to_pylist()
    assert [r["prompt"] for r in rows] == [PromptRewriter.tiny(seed=5).rewrite("a red ball")]
    manifest = (tmp_path / "scored" / ".cogvideox-vr-output.json").read_text()
    assert '"rewrite_prompt": "tiny"' in manifest


def test_rewrite_all_names_the_prompt_the_model_returned_nothing_for(monkeypatch):
    from datasets_scripts.video_data import rewrite

    class Silent(PromptRewriter):
        def rewrite(self, prompt):
            raise RewriteError(f"the rewriter returned nothing for {prompt!r}")

    monkeypatch.setattr(rewrite, "load_rewriter", lambda *a, **k: Silent(None, None))
    with pytest.raises(RewriteError, match="returned nothing for 'a cat'"):
        rewrite.rewrite_all(["a cat"], "tiny", progress=False)
