"""What every case needs from the machine: random full-size models built on the device, clocks, peak memory, budgets.

Models are built the way ``from_pretrained`` builds them, minus the checkpoint: parameters on the meta device (no
memory, no init), cast to the benchmark dtype, allocated once on the target device with ``to_empty`` and initialised
there in place - a 19B scorer never passes through host memory. Buffers (sin-cos tables) are computed on the device
during construction and kept.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over a window minus the allocation when it opened; on CPU the
same quantity counted from tensor storages (``benchmarks/_tensor_memory.py``).
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared helpers beside the scripts
from _tensor_memory import TensorMemoryPeak  # noqa: E402

# Modules whose own ``reset_parameters`` is torch's initialisation; every other parameter gets the rule below.
_TORCH_INIT = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LayerNorm, nn.GroupNorm, nn.Embedding, nn.RMSNorm)


@torch.no_grad()
def init_in_place(model: nn.Module, seed: int = 0) -> None:
    """Random weights where they lie: torch's init for its layers; norm scales 1, biases 0, anything else N(0, 0.02)."""
    torch.manual_seed(seed)  # seeds every device's generator
    for module in model.modules():
        if isinstance(module, _TORCH_INIT):
            module.reset_parameters()
            continue
        for name, param in module.named_parameters(recurse=False):
            if name.endswith("bias"):
                param.zero_()
            elif param.ndim == 1 and "norm" in type(module).__name__.lower():
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)


def random_model(factory: Callable[[], nn.Module], device: str, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """``factory()`` built with random ``dtype`` weights directly on ``device`` (meta construction, ``to_empty``,
    in-place init), in eval mode."""
    model = empty_model(factory, device, dtype)
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    model.to_empty(device=device)  # also empties the buffers: put the computed ones back
    for name, buffer in model.named_buffers():
        buffer.copy_(buffers[name])
    init_in_place(model, seed)
    return model.eval()


def empty_model(factory: Callable[[], nn.Module], device: str, dtype: torch.dtype) -> nn.Module:
    """``factory()`` with its parameters on the meta device in ``dtype`` and its buffers computed on ``device``."""
    from accelerate import init_empty_weights
    from diffusers.utils import logging as diffusers_logging

    with torch.device(device), init_empty_weights(include_buffers=False):
        model = factory()
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # ModelMixin.to(dtype) warns about fp32 modules none of ours has
    try:
        model.to(dtype)  # meta parameters: free; buffers cast as from_pretrained(torch_dtype=...) casts them
    finally:
        diffusers_logging.set_verbosity(verbosity)
    return model


def same_weights(factory: Callable[[], nn.Module], source: nn.Module, device: str) -> nn.Module:
    """``factory()`` (the reference class) sharing ``source``'s parameter tensors: same weights, no second copy."""
    model = empty_model(factory, device, next(source.parameters()).dtype)
    model.load_state_dict(source.state_dict(), strict=True, assign=True)
    return model.eval()


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@dataclass
class PeakWindow:
    peak_bytes: int = 0


@contextlib.contextmanager
def peak_window(device: str) -> Iterator[PeakWindow]:
    """``with peak_window(device) as w: ...`` then ``w.peak_bytes``: the most memory allocated inside the block
    beyond what was allocated when it opened."""
    window = PeakWindow()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield window
        torch.cuda.synchronize()
        window.peak_bytes = torch.cuda.max_memory_allocated() - base
    else:
        with TensorMemoryPeak() as tensors:
            yield window
        window.peak_bytes = tensors.peak


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` with the device's queue drained before and after, and its result."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


@dataclass
class Measurement:
    first_s: float  # the warm-up call (kernel selection, allocator growth)
    times_s: list[float]
    peak_bytes: int
    output: Any = None

    @property
    def seconds(self) -> float:
        return statistics.median(self.times_s) if self.times_s else self.first_s


def measure(fn: Callable[[], Any], device: str, budget: Budget, max_repeats: int, keep_output: bool = False):
    """One warm-up call, then up to ``max_repeats`` timed calls while ``budget`` lasts (at least one), and the peak
    memory of a call: on CUDA every timed call is a memory window; on CPU the warm-up is (tensor bytes counted there
    hold no allocator state, so the first call's peak is every call's)."""
    cuda = device.startswith("cuda")
    with peak_window(device) if not cuda else contextlib.nullcontext() as window:
        first, out = timed(fn, device)
    output = out if keep_output else None
    del out
    peak = 0 if cuda else window.peak_bytes
    times: list[float] = []
    for _ in range(max(1, max_repeats)):
        if times and not budget.allows(first):
            break
        if cuda:
            with peak_window(device) as window:
                seconds, _ = timed(fn, device)
            peak = max(peak, window.peak_bytes)
        else:
            seconds, _ = timed(fn, device)
        times.append(seconds)
    return Measurement(first, times, peak, output)


def repeat_steps(step: Callable[[], Any], device: str, budget: Budget, repeats: int, first_s: float) -> list[float]:
    """Timed training steps after the warm-up ones: up to ``repeats`` while ``budget`` allows two more first steps
    (at least one)."""
    times: list[float] = []
    for _ in range(repeats):
        if times and not budget.allows(2 * first_s):
            break
        times.append(timed(step, device)[0])
    return times


class Budget:
    """A deadline: ``left()`` seconds remain; ``allows(s)`` whether ``s`` more seconds fit."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, seconds: float) -> bool:
        return self.left() >= seconds

    def part(self, fraction: float) -> Budget:
        """A budget for a sub-measurement: ``fraction`` of what is left now."""
        return Budget(max(0.0, self.left() * fraction))


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
