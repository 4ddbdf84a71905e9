"""The loop stage by stage from files, as a user runs it: each command a separate process consuming what the previous
one wrote, with no flags beyond the ones a user would pass (the embedded default everywhere: the trained tiny world,
no download)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset
from huggingface_hub import ModelCard
from safetensors.torch import load_file

BIN = Path(sys.executable).parent


def command(name: str) -> list[str]:
    """The console script next to this interpreter (what a user types), else its module."""
    modules = {
        "vr-datasets": "datasets_scripts.cli",
        "mpo-train": "trl_vision_reward.mpo.cli",
        "cogvideox": "diffusers_cogvideox.cli",
        "vision-reward": "trl_vision_reward.cli",
    }
    script = BIN / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", modules[name]]


def run(name: str, *args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(cwd / ".hf_datasets_cache"),
    }
    done = subprocess.run([*command(name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{name} {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_generate_score_pairs_train_generate_score_from_files(tmp_path):
    prompt = "a red circle on a grey background"  # the tiny world's prompts
    (tmp_path / "prompts.txt").write_text(f"{prompt}\na yellow square on a teal background\n")

    run("vr-datasets", "generate-score", "--prompts", "prompts.txt", "--out", "scored", "--samples-per-prompt", "3",
        "--no-progress", cwd=tmp_path)  # fmt: skip
    scored = load_dataset("parquet", data_files=str(tmp_path / "scored/data/*.parquet"), split="train")
    assert scored.num_rows == 6 and {"media", "total", "soft_total", "video"} <= set(scored.column_names)
    scored_card = (tmp_path / "scored/README.md").read_text()
    assert "| generator | tiny world (trained, shipped with the package) |" in scored_card
    assert "Made with random weights" not in scored_card
    # the trained scorer tells the clips apart (a scorer whose fitted weights are all zero would not)
    assert len(set(scored["soft_total"])) > 1, "the shipped tiny-world scorer gives every clip the same soft total"

    # the plain-DPO rule on soft totals admits pairs whatever the scores (dominance on all five dimensions among three
    # clips per prompt is not guaranteed)
    run("vr-datasets", "pairs", "--scored", "scored", "--out", "pairs", "--kind", "dpo", "--scores", "soft",
        "--threshold", "0", cwd=tmp_path)  # fmt: skip
    stats = json.loads((tmp_path / "pairs/stats.json").read_text())
    assert stats["admitted"] > 0

    # mpo-train reads the pairs folder as written, from another working directory: the media are embedded, never
    # resolved from the current directory, and the text length is the tiny model's own
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run("mpo-train", "--model_name_or_path", "tiny", "--dataset_name", str(tmp_path / "pairs"), "--output_dir",
        str(tmp_path / "mpo"), "--max_steps", "2", "--report_to", "none", cwd=elsewhere)  # fmt: skip
    weights = load_file(str(tmp_path / "mpo/pytorch_lora_weights.safetensors"))
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())  # the two steps trained the adapter
    card = ModelCard.load(tmp_path / "mpo/README.md")
    # the card states the rule that admitted the pairs (DPO, soft scores, gap 0), not MPOConfig's defaults (MPO,
    # official, 0.6), and that the base is the trained tiny world
    assert (
        "pairs whose VisionReward totals differ by at least 0 (the plain-DPO rule, no dominance check), on soft "
        "(P(yes)-based) scores (recorded in the training pairs)" in card.text
    )
    assert "| pair_rule | dpo |" in card.text and "| pair_threshold | 0 |" in card.text
    assert "| pair_scores | soft |" in card.text
    assert "`tiny world`" in card.text and "Random weights" not in card.text

    out = run("cogvideox", "generate", "--lora", "mpo", "--prompt", prompt, "--out", "clip.mp4", cwd=tmp_path)
    assert "tiny world shipped with the package" in out and "random" not in out.lower()
    assert (tmp_path / "clip.mp4").stat().st_size > 0, out

    out = run("vision-reward", "score", "clip.mp4", "--prompt", prompt, "--json", "scores.json", cwd=tmp_path)
    assert "tiny world's scorer" in out
    result = json.loads((tmp_path / "scores.json").read_text())
    assert not result["failures"] and result["results"][0]["modality"] == "video"
    assert result["results"][0]["checklist"] == scored[0]["checklist_id"]
    assert set(result["results"][0]["dimension_scores"]) == set(scored[0]["dimension_scores"])


@pytest.mark.parametrize("form", ["folder", "data", "parquet"])
def test_mpo_train_reads_a_pairs_folder_its_data_or_a_parquet_file(tmp_path, form):
    """The pairs dataset as ``vr-datasets pairs`` lays it out: the card and stats.json beside data/ are not data."""
    from datasets import Dataset

    from trl_vision_reward.mpo.cli import load_pairs
    from trl_vision_reward.records import admission_rule

    folder = tmp_path / "pairs"
    (folder / "data").mkdir(parents=True)
    rows = [
        {"prompt": "p", "chosen": "media/a.mp4", "rejected": "media/b.mp4", "rule": "dpo", "granularity": "dimension",
         "min_total_gap": 0.8, "scores": "official"}
    ]  # fmt: skip
    Dataset.from_list(rows).to_parquet(str(folder / "data/train-00000-of-00001.parquet"))
    (folder / "stats.json").write_text("{}")
    (folder / "README.md").write_text("# pairs\n")
    name = {"folder": folder, "data": folder / "data", "parquet": folder / "data/train-00000-of-00001.parquet"}[form]
    pairs, root = load_pairs(str(name))
    assert pairs.num_rows == 1 and root == folder  # relative media resolve from the dataset folder
    assert admission_rule(pairs) == {
        "rule": "dpo",
        "granularity": "dimension",
        "min_total_gap": 0.8,
        "scores": "official",
    }
