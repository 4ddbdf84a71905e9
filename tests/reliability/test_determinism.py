"""The tiny default tokenizers give the same ids in every process (a resumed or re-sharded run makes the same
samples), checked in fresh interpreters with different hash seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .helpers import REPO

PROMPTS = ["a panda playing", "Is the image sharp? Answer yes or no.", "waves crash on a rocky beach ✓ 日本"]
CODE = """
import json, sys
from diffusers_cogvideox.tiny import tiny_t5_tokenizer
from trl_vision_reward.reward.tiny import tiny_qwen2_vl_tokenizer
prompts = json.loads(sys.argv[1])
t5, qwen = tiny_t5_tokenizer(), tiny_qwen2_vl_tokenizer()
print(json.dumps([[t5(p)["input_ids"] for p in prompts], [qwen(p)["input_ids"] for p in prompts]]))
"""


def _ids(hash_seed: str):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", CODE, json.dumps(PROMPTS)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tiny_tokenizers_are_identical_across_processes():
    first, second = _ids("1"), _ids("12345")
    assert first == second
    assert all(len(ids) > 1 for ids in first[0] + first[1])  # real tokenization, not an empty fallback
