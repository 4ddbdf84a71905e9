"""Gradient checkpointing for diffusers models trained by a ``transformers.Trainer`` (the SFT and MPO trainers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def trainer_checkpointing_off(args: Any) -> Iterator[None]:
    """Within the block the ``TrainingArguments`` checkpointing flag reads False, and its value is restored after.

    ``Trainer.train`` enables checkpointing through the transformers API (``gradient_checkpointing_enable``), which
    diffusers models do not have; the trainers enable it with ``enable_gradient_checkpointing()`` themselves.
    """
    name = "activation_checkpointing" if hasattr(args, "activation_checkpointing") else "gradient_checkpointing"
    value = getattr(args, name)
    setattr(args, name, False)
    try:
        yield
    finally:
        setattr(args, name, value)
