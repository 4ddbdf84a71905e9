"""Peak bytes of live tensors on the CPU: what ``torch.cuda.max_memory_allocated`` reports on a GPU.

The resident set size of a CPU process also counts allocator caching, fragmentation and one-off workspaces, which hide
differences of a few tens of MiB. Here the storage of every tensor an operator returns is counted once, from its creation
until it is freed, so the figure is the sum of tensor storages alive at the worst moment.
Tensors created before the block are not counted (as on CUDA after ``reset_peak_memory_stats`` with the starting
allocation subtracted).
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorMemoryPeak(TorchDispatchMode):
    """``with TensorMemoryPeak() as m: ...`` then ``m.peak`` (bytes); ``m.current`` is what is still alive."""

    def __init__(self):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}  # storage data pointer -> bytes counted
        self._lock = threading.Lock()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu":
                self._track(tensor.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        # a storage's Python object lives exactly as long as the storage (PyTorch preserves it while C++ holds the
        # storage), so its finalizer marks the moment the memory is freed
        key, size = storage.data_ptr(), storage.nbytes()
        if key == 0:
            return
        with self._lock:
            known = self._sizes.get(key)
            if known is not None and size <= known:
                return
            self._sizes[key] = size  # new, or resized in place
            self.current += size - (known or 0)
            self.peak = max(self.peak, self.current)
        if known is None:
            weakref.finalize(storage, self._release, key)

    def _release(self, key: int) -> None:
        with self._lock:
            self.current -= self._sizes.pop(key, 0)
