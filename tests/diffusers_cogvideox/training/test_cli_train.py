"""``cogvideox train`` as a user runs it: a YAML config in a subprocess, and bad input as one line with status 2."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from .conftest import write_clip_folder


def run(*args):
    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}  # the user's default: one-line errors
    return subprocess.run(
        [sys.executable, "-m", "diffusers_cogvideox.cli", "train", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.slow
def test_train_from_a_yaml_config_writes_lora_card_and_rejects(tmp_path):
    clips = write_clip_folder(tmp_path / "clips", [(9, 32, 32), (9, 32, 48), (5, 32, 32)])
    config = {
        "model_name_or_path": "tiny", "dataset_name": str(clips), "output_dir": str(tmp_path / "out"),
        "stages": [{"name": "a", "buckets": ["9x32x32", "9x32x48"], "max_steps": 2}],
        "per_device_train_batch_size": 1, "lora_r": 4, "lora_alpha": 4, "use_cpu": True, "report_to": "none",
        "save_strategy": "no", "disable_tqdm": True,
    }  # fmt: skip
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(config))
    result = run("--config", str(tmp_path / "sft.yaml"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "pytorch_lora_weights.safetensors").is_file()
    assert "stage" in (tmp_path / "out" / "README.md").read_text().lower()
    rejects = [json.loads(x) for x in (tmp_path / "out" / "latent_cache" / "rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["5 frames: shorter than the smallest bucket (9 frames)"]


def test_mismatched_caption_counts_exit_2_with_one_line(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "prompts.txt").write_text("a\nb\n")
    (tmp_path / "clips" / "videos.txt").write_text("a.mp4\n")
    stages = json.dumps([{"name": "a", "buckets": ["9x32x32"], "max_steps": 1}])
    result = run("--dataset_name", str(tmp_path / "clips"), "--output_dir", str(tmp_path / "out"), "--stages", stages,
                 "--use_cpu", "true", "--report_to", "none")  # fmt: skip
    assert result.returncode == 2, result.stderr[-1500:]
    assert "prompts.txt has 2 lines but videos.txt has 1" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
