import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# In-process calls of a CLI ``main`` re-raise known errors (as a library caller sees them); tests of the one-line
# error policy run the console scripts as subprocesses without this (tests/reliability/helpers.py).
os.environ.setdefault("COGVIDEOX_VR_DEBUG", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
