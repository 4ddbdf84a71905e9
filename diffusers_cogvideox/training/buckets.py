"""Frame-pack buckets: every batch holds clips of one (frames, height, width) shape, so nothing is padded.

**Policy for a clip** (``assign_bucket``), written once here and logged by the precompute step:

1. Candidates are the buckets with ``frames <= clip frames`` (a clip is never stretched in time). None: the clip is
   **rejected** (``shorter than the smallest bucket``).
2. Among them, the bucket whose aspect ratio is closest to the clip's (``|log(ar_clip / ar_bucket)|``) wins; ties go
   to more frames, then to the larger area. If even the closest one changes the aspect ratio by more than
   ``max_aspect_change`` (a fraction, default 0.25) the clip is **rejected** (``aspect ratio fits no bucket``) rather
   than distorted.
3. The clip is resized keeping its aspect ratio so that it covers the bucket (short-side resize, bicubic) and
   center-cropped to it - the official SAT ``SFTDataset`` rule - and ``frames`` frames are taken at the stride
   ``clip_frames // frames`` from the first one (the official ``finetune/`` sampling).

Images are 1-frame clips and only go to 1-frame buckets (``1xHxW``), so mixed image + video training is a matter
of listing both kinds of buckets in a stage.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True, order=True)
class Bucket:
    """One batch shape in pixels: ``frames`` (4k+1, or 1 for images), ``height``, ``width``."""

    frames: int
    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.frames}x{self.height}x{self.width}"

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def is_image(self) -> bool:
        return self.frames == 1


def parse_bucket(text: str | Sequence[int] | Bucket) -> Bucket:
    """``"49x480x720"`` or ``[49, 480, 720]`` -> ``Bucket(49, 480, 720)``."""
    if isinstance(text, Bucket):
        return text
    parts = text.lower().split("x") if isinstance(text, str) else list(text)
    try:
        frames, height, width = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"a bucket is FRAMESxHEIGHTxWIDTH (e.g. 49x480x720); got {text!r}") from None
    if min(frames, height, width) < 1:
        raise ValueError(f"bucket sizes must be positive; got {text!r}")
    return Bucket(frames, height, width)


def check_bucket(bucket: Bucket, transformer_config: Mapping, vae_scale_factor_spatial: int = 8) -> None:
    """Raise a ``ValueError`` naming what the transformer accepts if it cannot take ``bucket``."""
    get = transformer_config.get
    step = vae_scale_factor_spatial * get("patch_size", 2)
    temporal = get("temporal_compression_ratio", 4)
    if (bucket.frames - 1) % temporal:
        raise ValueError(
            f"bucket {bucket}: frames must be {temporal}k+1 (1, {temporal + 1}, {2 * temporal + 1}, ...); "
            f"got {bucket.frames}"
        )
    if bucket.height % step or bucket.width % step:
        raise ValueError(f"bucket {bucket}: height and width must be multiples of {step} for this transformer")
    if get("use_learned_positional_embeddings", False):  # 5b-I2V: positions exist for one grid only
        fixed = Bucket(
            get("sample_frames", 49),
            get("sample_height", 60) * vae_scale_factor_spatial,
            get("sample_width", 90) * vae_scale_factor_spatial,
        )
        if bucket != fixed:
            raise ValueError(
                f"bucket {bucket}: this checkpoint has learned positional embeddings for {fixed} only "
                f"(CogVideoX-5b-I2V); use that single bucket"
            )


def assign_bucket(
    num_frames: int, height: int, width: int, buckets: Sequence[Bucket], max_aspect_change: float = 0.25
) -> tuple[Bucket | None, str | None]:
    """The bucket of a clip under the module's policy, or ``(None, reason)`` when it is rejected."""
    candidates = [b for b in buckets if b.frames <= num_frames and (b.is_image == (num_frames == 1))]
    if not candidates:
        kind = "images need a 1-frame bucket" if num_frames == 1 else "shorter than the smallest bucket"
        smallest = min((b.frames for b in buckets if not b.is_image), default=None)
        return None, f"{num_frames} frames: {kind}" + (f" ({smallest} frames)" if smallest and num_frames > 1 else "")
    aspect = width / height

    def distance(b: Bucket) -> float:
        return abs(math.log(aspect / b.aspect))

    best = min(candidates, key=lambda b: (round(distance(b), 9), -b.frames, -b.height * b.width))
    if distance(best) > math.log1p(max_aspect_change):
        return None, (
            f"aspect ratio {width}x{height} fits no bucket within {max_aspect_change:.0%} (closest {best.width}x"
            f"{best.height})"
        )
    return best, None


def frame_indices(num_frames: int, bucket_frames: int) -> list[int]:
    """``bucket_frames`` indices at the stride ``num_frames // bucket_frames`` from frame 0."""
    stride = max(num_frames // bucket_frames, 1)
    return [i * stride for i in range(bucket_frames)]


def resize_and_crop(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[F, C, h, w]`` -> ``[F, C, height, width]``: aspect-preserving cover resize (bicubic), then a center crop."""
    import torch.nn.functional as F

    h, w = video.shape[-2:]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        video = F.interpolate(video, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=scale < 1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return video[..., top : top + height, left : left + width]


class StagedBucketBatchSampler:
    """Batches of dataset indices, one bucket per batch, following a progressive schedule.

    ``stage_buckets[s]`` maps a bucket name to the dataset indices of stage ``s``; stage ``s`` lasts
    ``stage_steps[s]`` optimizer steps of ``batches_per_step`` batches (gradient accumulation x processes), all drawn
    from that stage. Within a stage a bucket is drawn in proportion to its size (``image_ratio``, when given, is the
    probability of a 1-frame bucket), and each bucket walks a shuffled queue that is reshuffled when exhausted; a
    bucket smaller than the batch size repeats items (logged by the caller). The whole sequence depends only on
    ``seed``, so resuming by skipping batches reproduces it exactly.
    """

    def __init__(
        self,
        stage_buckets: Sequence[Mapping[str, Sequence[int]]],
        stage_steps: Sequence[int],
        batch_sizes: Sequence[int],
        batches_per_step: int = 1,
        seed: int = 0,
        image_ratio: Sequence[float | None] | None = None,
    ):
        if len(stage_buckets) != len(stage_steps) or len(stage_steps) != len(batch_sizes):
            raise ValueError("stage_buckets, stage_steps and batch_sizes need one entry per stage")
        for s, buckets in enumerate(stage_buckets):
            if stage_steps[s] and not any(len(v) for v in buckets.values()):
                raise ValueError(f"stage {s} has no clips in any bucket")
        self.stage_buckets = [{k: list(v) for k, v in b.items() if len(v)} for b in stage_buckets]
        self.stage_steps = list(stage_steps)
        self.batch_sizes = list(batch_sizes)
        self.batches_per_step = batches_per_step
        self.seed = seed
        self.image_ratio = list(image_ratio) if image_ratio is not None else [None] * len(stage_steps)

    def __len__(self) -> int:
        return sum(self.stage_steps) * self.batches_per_step

    def set_epoch(self, epoch: int) -> None:  # the schedule is one pass; Trainer calls this
        pass

    def _weights(self, stage: int, names: list[str]) -> list[float]:
        sizes = [len(self.stage_buckets[stage][n]) for n in names]
        ratio = self.image_ratio[stage]
        if ratio is None:
            return [float(s) for s in sizes]
        images = [parse_bucket(n).is_image for n in names]
        image_total = sum(s for s, i in zip(sizes, images) if i)
        video_total = sum(s for s, i in zip(sizes, images) if not i)
        return [
            (ratio * s / image_total if i else (1 - ratio) * s / video_total)
            if (image_total if i else video_total)
            else 0
            for s, i in zip(sizes, images)
        ]

    def __iter__(self) -> Iterator[list[int]]:
        for stage, steps in enumerate(self.stage_steps):
            rng = random.Random(f"{self.seed}-{stage}")
            names = sorted(self.stage_buckets[stage])
            weights = self._weights(stage, names)
            queues: dict[str, list[int]] = {n: [] for n in names}
            size = self.batch_sizes[stage]
            for _ in range(steps * self.batches_per_step):
                name = rng.choices(names, weights=weights)[0]
                batch = []
                while len(batch) < size:
                    if not queues[name]:
                        queues[name] = list(self.stage_buckets[stage][name])
                        rng.shuffle(queues[name])
                    batch.append(queues[name].pop())
                yield batch
