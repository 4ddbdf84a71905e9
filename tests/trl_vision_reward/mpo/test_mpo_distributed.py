"""Two CPU processes under ``accelerate launch`` (gloo): DDP keeps the ranks' weights identical."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_two_processes_end_with_identical_weights(tmp_path, mode):
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        str(Path(__file__).with_name("mpo_ddp_worker.py")), str(tmp_path), mode,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    a, b = ranks[0]["params"], ranks[1]["params"]
    assert a and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (mode == "lora") == all("lora_" in k for k in a)
    # explicit uniform sampling: rank 0 draws t in [0, 500), rank 1 in [500, 1000)
    assert max(ranks[0]["timesteps"]) < 500 <= min(ranks[1]["timesteps"])
    assert ranks[0]["losses"] == ranks[1]["losses"] and all(l == l for l in ranks[0]["losses"])  # noqa: E741
