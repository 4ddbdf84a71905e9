"""The training dataset over cached latents: one row per (stage, clip), read lazily from the cache files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


class CachedLatentDataset(torch.utils.data.Dataset):
    """Rows ``{"latents": path, "prompt_embeds": path, "bucket": "FxHxW", "stage": int, ...}``; items are tensors.

    ``__getitem__`` returns ``latent_mean`` / ``latent_std`` ``[F_lat, C, h, w]`` (scaled), ``prompt_embeds``
    ``[L, D]``, optionally ``image_latents`` ``[1, C, h, w]`` and ``first_frame`` ``[3, H, W]`` (I2V), and the row's ``stage`` and ``bucket``.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        self.rows = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from safetensors.torch import load_file

        row = self.rows[index]
        item = dict(load_file(row["latents"]))
        item["prompt_embeds"] = load_file(row["prompt_embeds"])["prompt_embeds"]
        item["stage"] = row.get("stage", 0)
        item["bucket"] = row["bucket"]
        item["index"] = index
        return item

    def buckets_by_stage(self, num_stages: int) -> list[dict[str, list[int]]]:
        """Per stage, the row indices of each bucket (the sampler's input)."""
        out: list[dict[str, list[int]]] = [{} for _ in range(num_stages)]
        for i, row in enumerate(self.rows):
            out[row.get("stage", 0)].setdefault(row["bucket"], []).append(i)
        return out


class ClipFrameDataset(CachedLatentDataset):
    """On-the-fly rows ``{"path": clip file, "bucket": "FxHxW", "caption": str, "stage": int}``: items are the
    bucket's ``frames`` ``[F, 3, H, W]`` in [0, 1] and the ``caption``; the trainer encodes them per batch."""

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .buckets import parse_bucket
        from .precompute import clip_frames, load_media

        row = self.rows[index]
        frames = clip_frames(load_media(row["path"]), parse_bucket(row["bucket"]))
        return {"frames": frames, "caption": row["caption"], "stage": row.get("stage", 0), "bucket": row["bucket"],
                "index": index}  # fmt: skip


def collate_latents(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack one bucket's items (the sampler guarantees a single shape; a mixed batch is an error)."""
    buckets = {it["bucket"] for it in items}
    if len(buckets) != 1:
        raise ValueError(f"a batch must hold one bucket; got {sorted(buckets)} (use the bucket sampler)")
    batch: dict[str, Any] = {
        k: torch.stack([it[k] for it in items])
        for k in ("latent_mean", "latent_std", "prompt_embeds", "image_latents", "first_frame", "frames")
        if k in items[0]
    }
    if "caption" in items[0]:
        batch["captions"] = [it["caption"] for it in items]
    batch["stage"] = torch.tensor([it["stage"] for it in items])
    batch["rows"] = torch.tensor([it["index"] for it in items])
    return batch
