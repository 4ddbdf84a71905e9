"""Progressive training as data: a list of stages run back to back in one job, with one step counter.

The CogVideoX paper trains low resolution first, then higher, then a short high-quality fine-tune on a filtered
subset (arXiv 2408.06072, sec. 3.3 and Table 5). Here a stage names its buckets, its length (optimizer steps or
epochs over its clips), its data (another clip folder, or score thresholds on the default one) and its learning
rate; a stage change only switches which cached latents the sampler draws and the learning-rate multiplier, so the
model is never rebuilt, reloaded or recompiled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .buckets import Bucket, parse_bucket

LR_SHAPES = ("constant", "cosine")


@dataclass
class Stage:
    """One stage of a progressive schedule (a YAML mapping with these keys)."""

    name: str
    buckets: list[str]
    max_steps: int | None = None
    num_epochs: float | None = None
    learning_rate: float | None = None  # None: the config's learning_rate
    warmup_steps: int = 0
    lr_shape: str = "constant"  # after warm-up: "constant" (the official finetune default) or "cosine" (the paper)
    dataset: str | None = None  # None: the job's dataset
    min_scores: dict[str, float] = field(default_factory=dict)  # keep clips with score >= value for each key
    batch_size: int | None = None  # None: per_device_train_batch_size
    image_ratio: float | None = None  # probability of a 1-frame (image) batch; None: in proportion to clip counts

    def __post_init__(self):
        if not self.buckets:
            raise ValueError(f"stage {self.name!r}: buckets must list at least one FRAMESxHEIGHTxWIDTH")
        self.buckets = [str(parse_bucket(b)) for b in self.buckets]
        if (self.max_steps is None) == (self.num_epochs is None):
            raise ValueError(f"stage {self.name!r}: give exactly one of max_steps or num_epochs")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"stage {self.name!r}: max_steps must be >= 1; got {self.max_steps}")
        if self.num_epochs is not None and self.num_epochs <= 0:
            raise ValueError(f"stage {self.name!r}: num_epochs must be > 0; got {self.num_epochs}")
        if self.lr_shape not in LR_SHAPES:
            raise ValueError(f"stage {self.name!r}: lr_shape must be one of {LR_SHAPES}; got {self.lr_shape!r}")
        if self.image_ratio is not None and not 0.0 <= self.image_ratio <= 1.0:
            raise ValueError(f"stage {self.name!r}: image_ratio must be in [0, 1]; got {self.image_ratio}")

    @property
    def bucket_list(self) -> list[Bucket]:
        return [parse_bucket(b) for b in self.buckets]

    def steps_for(self, num_clips: int, global_batch: int) -> int:
        """Optimizer steps of this stage: ``max_steps``, or ``ceil(num_epochs * clips / global batch)``."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.num_epochs * num_clips / global_batch))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_stages(stages: Sequence[Mapping[str, Any] | Stage]) -> list[Stage]:
    """Stages from YAML/JSON mappings; names must be unique."""
    out = []
    for i, s in enumerate(stages):
        if isinstance(s, Stage):
            out.append(s)
            continue
        if not isinstance(s, Mapping):
            raise ValueError(f"stage {i}: a stage is a mapping of {sorted(Stage.__dataclass_fields__)}; got {s!r}")
        unknown = set(s) - set(Stage.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"stage {i}: unknown keys {sorted(unknown)}; accepted: {sorted(Stage.__dataclass_fields__)}"
            )
        out.append(Stage(**{"name": f"stage{i}", **s}))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique; got {names}")
    if not out:
        raise ValueError("the schedule needs at least one stage")
    return out


@dataclass
class StageSchedule:
    """Stages with their resolved step counts: which stage a global optimizer step belongs to."""

    stages: list[Stage]
    steps: list[int]

    @property
    def total_steps(self) -> int:
        return sum(self.steps)

    def stage_at(self, step: int) -> tuple[int, int]:
        """``(stage index, step within the stage)`` of the 0-based optimizer ``step`` (the last stage past the end)."""
        start = 0
        for i, n in enumerate(self.steps):
            if step < start + n:
                return i, step - start
            start += n
        return len(self.steps) - 1, step - (start - self.steps[-1])

    def lr_multiplier(self, step: int, base_lr: float) -> float:
        """The learning rate of ``step`` divided by ``base_lr``: the stage's rate, its warm-up and its shape."""
        i, k = self.stage_at(step)
        stage = self.stages[i]
        factor = (stage.learning_rate if stage.learning_rate is not None else base_lr) / base_lr
        if stage.warmup_steps and k < stage.warmup_steps:
            return factor * (k + 1) / stage.warmup_steps
        if stage.lr_shape == "cosine":
            span = max(self.steps[i] - stage.warmup_steps, 1)
            factor *= 0.5 * (1 + math.cos(math.pi * min(k - stage.warmup_steps, span) / span))
        return factor
