"""Clip folders in, cached latents and text embeddings out: encode once, train without the VAE or T5 in memory.

**Clip folder.** Either ``metadata.jsonl`` (one JSON object per clip: ``file_name`` - a video or image path relative
to the folder - and ``caption``; any other numeric field is a score that stages can filter on, e.g. ``aesthetic``),
or the official ``finetune/`` layout: ``prompts.txt`` and ``videos.txt`` with one line per clip.

**Cache.** ``<cache_dir>/manifest.json`` records the identity (class, config and a hash of the weights) of the VAE
and text encoder that wrote it; a cache is refused with a named error when opened with other encoders. One
safetensors file per (clip, bucket) holds the VAE posterior's ``latent_mean`` and ``latent_std`` already multiplied
by ``scaling_factor`` (the trainer draws a fresh sample each step, as diffusers' script does with ``latent_dist``)
and, for image-to-video, ``image_latents`` of the first frame. One file per prompt holds its T5 embedding. Files are
named by a hash of the clip (path, size, modification time), the bucket, the frame indices and the encoders, so a
changed clip or encoder never reuses a stale entry. Clips that fit no bucket or cannot be read are listed in
``rejects.jsonl`` with the reason, and counted in the log; nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .buckets import Bucket, assign_bucket, frame_indices, resize_and_crop

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MANIFEST = "manifest.json"
REJECTS = "rejects.jsonl"
EMPTY_PROMPT = ""  # the unconditional prompt, cached for caption dropout


class ClipDataError(ValueError):
    """A clip folder or cache that cannot be used as it is (the message names what is wrong)."""


class CacheIdentityError(ClipDataError):
    """A cache written with another VAE or text encoder than the one given."""


# ---------------------------------------------------------------------------------------------------------------------
# Clip folders


@dataclass
class ClipRecord:
    path: str  # absolute
    caption: str
    scores: dict[str, float] = field(default_factory=dict)


def read_clip_folder(root: str | os.PathLike) -> list[ClipRecord]:
    """The clips of a folder (``metadata.jsonl``, or ``prompts.txt`` + ``videos.txt``); errors name the line."""
    root = Path(root)
    if (root / "metadata.jsonl").is_file():
        records = []
        for n, line in enumerate((root / "metadata.jsonl").read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ClipDataError(f"{root}/metadata.jsonl line {n}: not JSON ({exc.msg})") from None
            name = row.get("file_name") or row.get("video") or row.get("image")
            caption = row.get("caption", row.get("prompt"))
            if not name or not isinstance(caption, str):
                raise ClipDataError(f"{root}/metadata.jsonl line {n}: needs 'file_name' and a 'caption' string")
            scores = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            records.append(ClipRecord(str((root / name).resolve()), caption, scores))
        return records
    if (root / "prompts.txt").is_file() and (root / "videos.txt").is_file():
        prompts = [p for p in (root / "prompts.txt").read_text().splitlines() if p.strip()]
        videos = [v for v in (root / "videos.txt").read_text().splitlines() if v.strip()]
        if len(prompts) != len(videos):
            raise ClipDataError(
                f"{root}: prompts.txt has {len(prompts)} lines but videos.txt has {len(videos)}; they pair line by line"
            )
        return [ClipRecord(str((root / v).resolve()), p) for p, v in zip(prompts, videos)]
    raise ClipDataError(f"{root}: no metadata.jsonl, and no prompts.txt + videos.txt pair")


def load_media(path: str) -> torch.Tensor:
    """A video or image as ``[F, 3, H, W]`` float in [0, 1] (images: F = 1)."""
    import numpy as np
    import PIL.Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no file at {path}")
    if path.lower().endswith(IMAGE_SUFFIXES):
        frames = [np.asarray(PIL.Image.open(path).convert("RGB"))]
    else:
        from ..video_io import load_video

        frames = [np.asarray(f) for f in load_video(path)]
    if not frames:
        raise ValueError("no frames")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0


def clip_fingerprint(path: str) -> str:
    stat = os.stat(path)
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


# ---------------------------------------------------------------------------------------------------------------------
# Encoder identity and the cache folder


def module_identity(module: nn.Module) -> str:
    """A short hash of a module's class, config and weights: two caches agree only if their encoders do."""
    digest = hashlib.sha256(type(module).__name__.encode())
    config = getattr(module, "config", None)
    if config is not None:
        as_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
        as_dict = {k: v for k, v in as_dict.items() if not k.startswith("_")}
        digest.update(json.dumps(as_dict, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _atomic_save(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=dict(metadata or {}))
    os.replace(tmp, path)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def open_cache(cache_dir: str | os.PathLike, vae_id: str, text_encoder_id: str, encode_mode: str) -> Path:
    """Create or reopen a cache folder; refuse one written by other encoders or another encode mode."""
    root = Path(cache_dir)
    wanted = {"vae": vae_id, "text_encoder": text_encoder_id, "encode_mode": encode_mode}
    manifest = root / MANIFEST
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        for key, value in wanted.items():
            if found.get(key) != value:
                raise CacheIdentityError(
                    f"{root}: latents were cached with {key} {found.get(key)!r}, this run has {value!r}; use another "
                    "cache_dir (or delete this one to re-encode)"
                )
    else:
        _atomic_write_text(manifest, json.dumps(wanted, indent=2) + "\n")
    return root


def check_cache(cache_dir: str | os.PathLike, vae_id: str | None = None, text_encoder_id: str | None = None) -> dict:
    """The manifest of a cache; with ids given, a :class:`CacheIdentityError` if they differ."""
    manifest = Path(cache_dir) / MANIFEST
    if not manifest.is_file():
        raise ClipDataError(f"{cache_dir}: not a latent cache (no {MANIFEST})")
    found = json.loads(manifest.read_text())
    for key, value in (("vae", vae_id), ("text_encoder", text_encoder_id)):
        if value is not None and found.get(key) != value:
            raise CacheIdentityError(f"{cache_dir}: latents were cached with {key} {found.get(key)!r}, not {value!r}")
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Encoding


def t5_prompt_encoder(text_encoder: nn.Module, tokenizer: Any, max_length: int) -> Callable[[str], torch.Tensor]:
    """``prompt -> [max_length, D]`` T5 hidden states, padded to ``max_length`` with no mask (as CogVideoX trains)."""

    @torch.no_grad()
    def encode(prompt: str) -> torch.Tensor:
        ids = tokenizer(
            [prompt], padding="max_length", max_length=max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return text_encoder(ids.to(next(text_encoder.parameters()).device))[0][0].float().cpu()

    return encode


@torch.no_grad()
def encode_clip(vae: nn.Module, frames: torch.Tensor, whole_clip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``[F, 3, H, W]`` in [0, 1] -> the posterior's ``(mean, std)`` ``[F_lat, C, h, w]`` x ``scaling_factor``."""
    device = next(vae.parameters()).device
    dtype = next(vae.parameters()).dtype
    x = (frames * 2 - 1).permute(1, 0, 2, 3).unsqueeze(0).to(device, dtype)  # [1, 3, F, H, W] in [-1, 1]
    previous = getattr(vae, "use_whole_clip_encoding", False)
    if hasattr(vae, "use_whole_clip_encoding"):
        vae.use_whole_clip_encoding = whole_clip
    elif whole_clip:
        raise TypeError(f"{type(vae).__name__} has no whole-clip encoding; use encode_mode='batched'")
    try:
        posterior = vae.encode(x).latent_dist
    finally:
        if hasattr(vae, "use_whole_clip_encoding"):
            vae.use_whole_clip_encoding = previous
    scale = vae.config.scaling_factor
    mean = (posterior.mean[0] * scale).permute(1, 0, 2, 3).float().cpu()
    std = (posterior.std[0] * scale).permute(1, 0, 2, 3).float().cpu()
    return mean.contiguous(), std.contiguous()


def image_latent(vae: nn.Module, frame: torch.Tensor) -> torch.Tensor:
    """The I2V condition of a first frame ``[3, H, W]``: its posterior mean, scaled as the pipeline scales it.

    CogVideoX 1.0 multiplies by ``scaling_factor``; 1.5 (``invert_scale_latents``) divides, like this package's and
    diffusers' image-to-video pipelines (the official trainer multiplies; we follow what inference feeds the model).
    """
    mean, _ = encode_clip(vae, frame.unsqueeze(0), whole_clip=False)
    return pipeline_image_scale(vae, mean)


def pipeline_image_scale(vae: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    """Latents already x ``scaling_factor`` rescaled as the image-to-video pipelines scale the image condition."""
    scale = vae.config.scaling_factor
    return latents / scale**2 if getattr(vae.config, "invert_scale_latents", False) else latents


def noised_image_latents(
    vae: nn.Module, frames: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The official finetune/ I2V condition of first frames ``[B, 3, H, W]`` in [0, 1]: Gaussian noise of one
    ``sigma = exp(N(-3, 0.5))`` per batch added in [-1, 1] pixels, a posterior sample of the VAE x ``scaling_factor``
    (pipeline-scaled); ``[B, 1, C, h, w]``."""
    device, dtype = next(vae.parameters()).device, next(vae.parameters()).dtype
    x = frames.float() * 2 - 1
    sigma = torch.exp(torch.randn(1, generator=generator) * 0.5 - 3.0)
    noise = torch.randn(x.shape, generator=generator).to(x.device) if generator else torch.randn_like(x)
    x = x + noise * sigma.to(x.device)
    with torch.no_grad():
        posterior = vae.encode(x.unsqueeze(2).to(device, dtype)).latent_dist
        sample = posterior.sample(generator=generator) if generator else posterior.sample()
    latents = (sample.float() * vae.config.scaling_factor).permute(0, 2, 1, 3, 4)
    return pipeline_image_scale(vae, latents)


def clip_frames(video: torch.Tensor, bucket: Bucket) -> torch.Tensor:
    """The bucket's frames of a loaded clip ``[F, 3, H, W]``: strided frame indices, short-side resize, center crop."""
    indices = frame_indices(video.shape[0], bucket.frames)
    return resize_and_crop(video[indices], bucket.height, bucket.width).clamp(0, 1)


def encode_frames(
    vae: nn.Module, frames: torch.Tensor, whole_clip: bool = True, image_to_video: bool = False
) -> dict[str, torch.Tensor]:
    """What the cache stores of one clip's bucket frames ``[F, 3, H, W]``: ``latent_mean`` and ``latent_std``, and
    for image-to-video the clean ``image_latents`` and the ``first_frame`` the official recipe noises every step.
    The on-the-fly trainer calls this too, so both paths train on the same tensors."""
    mean, std = encode_clip(vae, frames, whole_clip)
    tensors = {"latent_mean": mean, "latent_std": std}
    if image_to_video:
        tensors["image_latents"] = image_latent(vae, frames[0])
        tensors["first_frame"] = frames[0].float().contiguous()
    return tensors


@dataclass
class CachedStage:
    """What one stage's precompute produced: cached items per bucket and the rejects with reasons."""

    items: list[dict[str, Any]]
    rejects: list[dict[str, Any]]


def precompute_stage(
    records: Sequence[ClipRecord],
    buckets: Sequence[Bucket],
    cache_dir: Path,
    vae: nn.Module,
    encode_prompt: Callable[[str], torch.Tensor],
    ids: tuple[str, str],
    min_scores: Mapping[str, float] | None = None,
    image_to_video: bool = False,
    whole_clip: bool = True,
    max_aspect_change: float = 0.25,
    stage_name: str = "stage",
    encode: bool = True,
) -> CachedStage:
    """Assign, load, resize, encode and cache the clips of one stage (already cached entries are reused).

    ``encode=False`` only assigns buckets and records rejects: rows name the clip file, nothing is written, and
    the trainer encodes each batch with :func:`encode_frames` (the same encoding as the cache's)."""
    from tqdm.auto import tqdm

    vae_id, te_id = ids
    items, rejects = [], []
    empty = str(cache_prompt(cache_dir, EMPTY_PROMPT, encode_prompt, te_id)) if encode else None
    kept = [r for r in records if all(r.scores.get(k, float("-inf")) >= v for k, v in (min_scores or {}).items())]
    if len(kept) < len(records):
        logger.info("stage %s: %d of %d clips pass min_scores %s", stage_name, len(kept), len(records), min_scores)
    for record in tqdm(kept, desc=f"encoding {stage_name}", disable=len(kept) < 2):
        try:
            video = load_media(record.path)
        except Exception as exc:  # unreadable media become rejects, never a crash halfway through a cache
            rejects.append({"path": record.path, "stage": stage_name, "reason": f"unreadable: {exc}"})
            continue
        bucket, reason = assign_bucket(video.shape[0], video.shape[2], video.shape[3], buckets, max_aspect_change)
        if bucket is None:
            rejects.append({"path": record.path, "stage": stage_name, "reason": reason})
            continue
        indices = frame_indices(video.shape[0], bucket.frames)
        key = hashlib.sha256(
            f"{clip_fingerprint(record.path)}|{bucket}|{indices}|{vae_id}|{whole_clip}|{image_to_video}".encode()
        ).hexdigest()[:24]
        if not encode:  # on-the-fly training: the row points at the clip, the trainer encodes it per batch
            items.append({"path": record.path, "bucket": str(bucket), "caption": record.caption})
            continue
        latent_path = cache_dir / "latents" / str(bucket) / f"{key}.safetensors"
        if not latent_path.is_file():
            tensors = encode_frames(vae, clip_frames(video, bucket), whole_clip, image_to_video)
            _atomic_save(tensors, latent_path, {"path": os.path.basename(record.path), "bucket": str(bucket)})
        items.append(
            {
                "latents": str(latent_path),
                "prompt_embeds": str(cache_prompt(cache_dir, record.caption, encode_prompt, te_id)),
                "empty_prompt_embeds": empty,
                "bucket": str(bucket),
                "caption": record.caption,
            }
        )
    if rejects:
        logger.warning("stage %s: %d clips rejected (reasons in %s)", stage_name, len(rejects), cache_dir / REJECTS)
    return CachedStage(items, rejects)


def prompt_path(cache_dir: Path, prompt: str, te_id: str) -> Path:
    return cache_dir / "text" / f"{hashlib.sha256(f'{te_id}|{prompt}'.encode()).hexdigest()[:24]}.safetensors"


def cache_prompt(cache_dir: Path, prompt: str, encode_prompt: Callable[[str], torch.Tensor], te_id: str) -> Path:
    path = prompt_path(cache_dir, prompt, te_id)
    if not path.is_file():
        _atomic_save({"prompt_embeds": encode_prompt(prompt)}, path)
    return path


def write_rejects(cache_dir: Path, rejects: Sequence[Mapping[str, Any]]) -> None:
    _atomic_write_text(cache_dir / REJECTS, "".join(json.dumps(dict(r)) + "\n" for r in rejects))
