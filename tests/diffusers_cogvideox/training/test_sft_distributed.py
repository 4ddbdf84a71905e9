"""Two CPU processes under ``accelerate launch`` (gloo): the staged bucket sampler shards the batches, explicit uniform
sampling splits the timesteps, and DDP keeps the ranks' weights identical across a stage change."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffusers_cogvideox.commands.train import SFTScriptArguments, build_datasets
from diffusers_cogvideox.tiny import tiny_components

from ...trl_vision_reward.mpo.test_mpo_distributed import _free_port
from .conftest import write_clip_folder
from .sft_ddp_worker import STAGES
from .test_sft_trainer import sft_args

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_two_processes_end_with_identical_weights(tmp_path):
    clips = write_clip_folder(tmp_path / "clips", [(9, 32, 32), (9, 32, 48)] * 4)
    script = SFTScriptArguments(dataset_name=str(clips), cache_dir=str(tmp_path / "cache"))
    train, _, _ = build_datasets(script, sft_args(tmp_path / "unused", stages=STAGES), tiny_components("2b"))
    (tmp_path / "rows.json").write_text(json.dumps(train.rows))
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(Path(__file__).with_name("sft_ddp_worker.py")), str(tmp_path), "lora",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    a, b = ranks[0]["params"], ranks[1]["params"]
    assert a and a.keys() == b.keys() and all("lora_" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # explicit uniform sampling: rank 0 draws t in [0, 500), rank 1 in [500, 1000)
    assert len(ranks[0]["timesteps"]) == len(ranks[1]["timesteps"]) == 6
    assert max(ranks[0]["timesteps"]) < 500 <= min(ranks[1]["timesteps"])
    # the ranks' batches of a step come from one stage but may be of different buckets; each batch has one shape
    buckets = {(1, 3, 4, 4, 4), (1, 3, 4, 4, 6)}  # latents of 9x32x32 and 9x32x48
    assert set(ranks[0]["shapes"] + ranks[1]["shapes"]) == buckets
    assert ranks[0]["stages"] == ranks[1]["stages"] and ranks[0]["stages"][0] == 0 and ranks[0]["stages"][-1] == 1
    assert ranks[0]["losses"] == ranks[1]["losses"] and all(loss == loss for loss in ranks[0]["losses"])
