"""MPO training data: the pair columns, row checks, the collator, pair folders, and media -> latents precompute.

Columns of a pairs dataset (a ``datasets.Dataset``, any map-style dataset of dicts, or a pair folder):

=========================  ==========================================================================================
column                     meaning
=========================  ==========================================================================================
``prompt``                 the text prompt (str); both samples of a pair were generated from it
``chosen_latents``         winner's VAE latents, already multiplied by ``vae.config.scaling_factor``:
                           ``[F, C, H, W]`` for CogVideoX (frames first, as the transformer takes them),
                           ``[C, H, W]`` for SD 1.5 / SDXL
``rejected_latents``       loser's latents, same shape
``prompt_embeds``          text-encoder hidden states ``[L, D]`` (T5 for CogVideoX: 226 x 4096; CLIP for SD)
``pooled_prompt_embeds``   SDXL only: pooled text embedding ``[D2]``
``add_time_ids``           SDXL only: ``[6]`` (original size, crop top-left, target size)
``image_latents``          CogVideoX image-to-video only: the conditioning latents ``[F, C, H, W]`` (first-frame
                           latent, zero-padded over frames), concatenated to the noisy latents on channels
``chosen_prompt``,         optional; when present each must equal ``prompt`` (a pair across prompts is an error)
``rejected_prompt``
=========================  ==========================================================================================

Any other columns (scores, the rule that admitted the pair, media paths) are carried along and ignored. A pairs
dataset with **media** instead of latents holds :class:`trl_vision_reward.records.PreferencePair` rows (as
``vr-datasets pairs`` writes them): ``prompt``, ``chosen`` and ``rejected`` (media paths relative to the dataset
folder) and the embedded media (``chosen_video`` / ``rejected_video`` or ``*_image``, preferred when present);
:func:`precompute_latent_pairs` encodes it once with the VAE and the text encoder into a pair folder (a cache: files
already there are reused).

A **pair folder** holds ``pairs.jsonl`` (one object per pair: ``prompt`` plus the tensor columns above, each the
relative path of a one-tensor ``.safetensors`` file or an inline list) and the tensor files; samples and prompts
shared by several pairs are stored once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..records import RecordError, media_source, media_suffix

PAIRS_FILE = "pairs.jsonl"
REQUIRED_COLUMNS: tuple[str, ...] = ("prompt", "chosen_latents", "rejected_latents", "prompt_embeds")
MEDIA_COLUMNS: tuple[str, ...] = ("prompt", "chosen", "rejected")
OPTIONAL_TENSOR_COLUMNS: tuple[str, ...] = ("pooled_prompt_embeds", "add_time_ids", "image_latents")
TENSOR_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS[1:] + OPTIONAL_TENSOR_COLUMNS
ROW_KEY = "__row__"


class PairDataError(ValueError):
    """A pairs dataset or one of its rows is malformed; the message names the row."""


# ---------------------------------------------------------------------------------------------------------------------
# Columns


def column_names(dataset: Any) -> list[str] | None:
    """The dataset's column names (``datasets`` datasets, pair folders), or None when it cannot say without reading."""
    names = getattr(dataset, "column_names", None)
    if isinstance(names, dict):  # DatasetDict
        raise PairDataError(
            f"expected one split, got a DatasetDict with splits {sorted(names)}; pick one, e.g. dataset['train']"
        )
    return list(names) if names is not None else None


def is_media_pairs(names: Sequence[str]) -> bool:
    """Whether columns describe media pairs (to encode) rather than latent pairs."""
    return set(MEDIA_COLUMNS) <= set(names) and not {"chosen_latents", "rejected_latents"} & set(names)


def check_columns(names: Sequence[str], needs: Sequence[str] = ()) -> None:
    """Raise a :class:`PairDataError` naming the missing columns (and what the dataset has)."""
    missing = [c for c in (*REQUIRED_COLUMNS, *needs) if c not in names]
    if missing:
        hint = (
            " It holds media pairs: encode them first with trl_vision_reward.mpo.data.precompute_latent_pairs "
            "(mpo-train does this when given a VAE and a text encoder)."
            if is_media_pairs(names)
            else ""
        )
        raise PairDataError(
            f"pairs dataset is missing column(s) {missing}; it has {sorted(names)}. Required: {list(REQUIRED_COLUMNS)}"
            f"{' plus ' + str(list(needs)) if needs else ''}.{hint}"
        )


# ---------------------------------------------------------------------------------------------------------------------
# Rows -> batch


def _tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.float()
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


def check_pair_row(row: Mapping[str, Any], index: int, needs: Sequence[str] = ()) -> dict[str, Any]:
    """One pair row as float32 tensors, checked: columns present, equal chosen/rejected shapes, same prompt, finite."""
    missing = [c for c in (*REQUIRED_COLUMNS, *needs) if c not in row or row[c] is None]
    if missing:
        raise PairDataError(f"row {index}: missing {missing}; the row has {sorted(k for k in row if k != ROW_KEY)}")
    prompt = row["prompt"]
    where = f"row {index} (prompt {str(prompt)[:60]!r})"
    for side in ("chosen", "rejected"):
        other = row.get(f"{side}_prompt")
        if other is not None and str(other) != str(prompt):
            raise PairDataError(
                f"{where}: {side}_prompt {str(other)[:60]!r} differs from prompt; both samples of a pair must share one prompt"
            )
    out: dict[str, Any] = {"prompt": str(prompt), "row": index}
    for name in (*TENSOR_COLUMNS,):
        if name in row and row[name] is not None:
            try:
                out[name] = _tensor(row[name])
            except (TypeError, ValueError) as exc:
                raise PairDataError(f"{where}: {name} is not a numeric array ({exc})") from exc
    chosen, rejected = out["chosen_latents"], out["rejected_latents"]
    if chosen.shape != rejected.shape:
        raise PairDataError(
            f"{where}: chosen_latents shape {list(chosen.shape)} != rejected_latents shape {list(rejected.shape)}; "
            "chosen and rejected must have the same resolution and frame count"
        )
    if chosen.ndim not in (3, 4):
        raise PairDataError(
            f"{where}: latents must be [C, H, W] (images) or [F, C, H, W] (videos); got shape {list(chosen.shape)}"
        )
    if out["prompt_embeds"].ndim != 2:
        raise PairDataError(f"{where}: prompt_embeds must be [L, D]; got shape {list(out['prompt_embeds'].shape)}")
    if (
        "image_latents" in out
        and out["image_latents"].shape[:1] + out["image_latents"].shape[2:] != chosen.shape[:1] + chosen.shape[2:]
    ):
        raise PairDataError(
            f"{where}: image_latents shape {list(out['image_latents'].shape)} does not match latents {list(chosen.shape)} on frames/height/width"
        )
    for name, value in out.items():
        if isinstance(value, torch.Tensor) and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise PairDataError(f"{where}: {name} contains {bad} NaN/inf value(s)")
    return out


class MPODataCollator:
    """Stack checked pair rows into one batch with chosen first: ``latents`` is ``[chosen_1..B; rejected_1..B]``.

    Output keys: ``latents`` ``[2B, ...]``, ``prompt_embeds`` ``[B, L, D]`` (and the optional tensor columns, ``[B, ...]``,
    shared by both halves), ``rows`` (dataset row indices, ``[B]``) and ``prompts`` (list of str) for error messages.
    """

    def __init__(self, needs: Sequence[str] = ()):
        self.needs = tuple(needs)

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, Any]:
        rows = [check_pair_row(f, int(f.get(ROW_KEY, i)), self.needs) for i, f in enumerate(features)]
        first = rows[0]
        for r in rows[1:]:
            for name in (*TENSOR_COLUMNS,):
                if (name in first) != (name in r) or (name in r and r[name].shape != first[name].shape):
                    raise PairDataError(
                        f"rows {first['row']} and {r['row']} are in one batch but their {name} differ "
                        f"({list(first[name].shape) if name in first else 'absent'} vs "
                        f"{list(r[name].shape) if name in r else 'absent'}); batch pairs of equal shapes (bucket by "
                        "resolution / frames / text length) or use per_device_train_batch_size=1"
                    )
        batch: dict[str, Any] = {
            "latents": torch.cat(
                [torch.stack([r["chosen_latents"] for r in rows]), torch.stack([r["rejected_latents"] for r in rows])]
            ),
            "rows": torch.tensor([r["row"] for r in rows]),
            "prompts": [r["prompt"] for r in rows],
        }
        for name in ("prompt_embeds", *OPTIONAL_TENSOR_COLUMNS):
            if name in first:
                batch[name] = torch.stack([r[name] for r in rows])
        return batch


class RowIndexed(torch.utils.data.Dataset):
    """A pairs dataset whose rows carry their index, so the collator and the trainer can name a bad row."""

    def __init__(self, dataset: Any):
        if hasattr(dataset, "with_format") and hasattr(dataset, "column_names"):
            tensors = [c for c in dataset.column_names if c in TENSOR_COLUMNS]
            dataset = dataset.with_format("numpy", columns=tensors, output_all_columns=True)
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.dataset[index]
        if not isinstance(row, Mapping):
            raise PairDataError(f"row {index}: expected a mapping of columns, got {type(row).__name__}")
        return {**row, ROW_KEY: index}


# ---------------------------------------------------------------------------------------------------------------------
# Pair folders


class PairFolder(torch.utils.data.Dataset):
    """A pair folder (``pairs.jsonl`` + one-tensor safetensors files) as a map-style dataset of pair rows."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        index = self.folder / PAIRS_FILE
        if not index.is_file():
            raise PairDataError(f"{self.folder} is not a pair folder: it has no {PAIRS_FILE}")
        with open(index, encoding="utf-8") as f:
            self.records = [json.loads(line) for line in f if line.strip()]
        names = set().union(*(r.keys() for r in self.records)) if self.records else set()
        self.column_names = sorted(names)
        for i, r in enumerate(self.records):
            missing = [c for c in REQUIRED_COLUMNS if c not in r]
            if missing:
                raise PairDataError(f"{PAIRS_FILE} line {i + 1} (row {i}): missing {missing}; it has {sorted(r)}")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = dict(self.records[index])
        for name in TENSOR_COLUMNS:
            if isinstance(row.get(name), str):
                tensors = load_file(str(self.folder / row[name]))
                if len(tensors) != 1:
                    raise PairDataError(
                        f"row {index}: {row[name]} must hold exactly one tensor; it holds {sorted(tensors)}"
                    )
                row[name] = next(iter(tensors.values()))
        return row


def write_pair_folder(folder: str | os.PathLike, pairs: Sequence[Mapping[str, Any]]) -> Path:
    """Write latent pairs (tensors in the columns above) as a pair folder; identical tensors are stored once."""
    folder = Path(folder)
    (folder / "tensors").mkdir(parents=True, exist_ok=True)
    lines = []
    for pair in pairs:
        record = {}
        for key, value in pair.items():
            if key in TENSOR_COLUMNS and value is not None:
                tensor = _tensor(value).contiguous()
                name = f"tensors/{_tensor_digest(tensor)}.safetensors"
                if not (folder / name).exists():
                    save_file({key: tensor}, str(folder / name))
                record[key] = name
            elif isinstance(value, (str, int, float, bool, list, dict, type(None))):
                record[key] = value
        lines.append(json.dumps(record))
    (folder / PAIRS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _tensor_digest(tensor: torch.Tensor) -> str:
    h = hashlib.sha1(str((tuple(tensor.shape), str(tensor.dtype))).encode())
    h.update(tensor.numpy().tobytes())
    return h.hexdigest()[:24]


# ---------------------------------------------------------------------------------------------------------------------
# Media -> latents (precomputed once, cached)


def load_media(
    path: str | os.PathLike, height: int | None = None, width: int | None = None, num_frames: int | None = None
) -> torch.Tensor:
    """An image as ``[3, H, W]`` or a video as ``[F, 3, H, W]``, in [-1, 1], resized to (height, width) if given."""
    import PIL.Image

    from diffusers_cogvideox.video_io import guess_modality, load_image, load_video

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"media file not found: {path}")
    video = guess_modality(path) == "video"
    if video:
        frames = load_video(path, num_frames)
        if num_frames is not None and len(frames) < num_frames:
            raise PairDataError(f"{path.name}: has {len(frames)} frames, need num_frames={num_frames}")
    else:
        frames = [load_image(path)]
    if height is not None and width is not None:
        frames = [f if f.size == (width, height) else f.resize((width, height), PIL.Image.BICUBIC) for f in frames]
    array = np.stack([np.asarray(f, dtype=np.float32) for f in frames]) / 127.5 - 1.0  # [F, H, W, 3] in [-1, 1]
    pixels = torch.from_numpy(array).permute(0, 3, 1, 2)
    return pixels if video else pixels[0]


@torch.no_grad()
def encode_media(vae: Any, pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """VAE latents x ``scaling_factor``: video ``[F, 3, H, W]`` -> ``[f, C, h, w]``; image ``[3, H, W]`` -> ``[C, h, w]``."""
    param = next(vae.parameters())
    x = pixels.to(device=param.device, dtype=param.dtype)
    if x.ndim == 4:  # the video VAE takes [B, C, F, H, W]
        dist = vae.encode(x.permute(1, 0, 2, 3).unsqueeze(0)).latent_dist
        return (dist.sample(generator) * vae.config.scaling_factor)[0].permute(1, 0, 2, 3).float().cpu()
    dist = vae.encode(x.unsqueeze(0)).latent_dist
    return (dist.sample(generator) * vae.config.scaling_factor)[0].float().cpu()


def text_prompt_encoder(
    text_encoder: Any, tokenizer: Any, max_length: int | None = None
) -> Callable[[str], dict[str, torch.Tensor]]:
    """``prompt -> {"prompt_embeds": [L, D]}`` with one text encoder (T5 for CogVideoX: max_length 226; CLIP for SD).

    SDXL needs two encoders, a pooled embedding and ``add_time_ids``: pass your own ``encode_prompt`` returning those
    keys instead.
    """
    length = max_length or tokenizer.model_max_length
    if length > 100_000:  # transformers' "no limit" sentinel (int(1e30)): the model, not the tokenizer, sets it
        raise ValueError(
            f"the tokenizer sets no text length (model_max_length={tokenizer.model_max_length}); pass max_length "
            "(the denoiser's text length, e.g. CogVideoX's config.max_text_seq_length)"
        )

    @torch.no_grad()
    def encode(prompt: str) -> dict[str, torch.Tensor]:
        ids = tokenizer(
            [prompt], padding="max_length", max_length=length, truncation=True, return_tensors="pt"
        ).input_ids
        hidden = text_encoder(ids.to(next(text_encoder.parameters()).device))[0]
        return {"prompt_embeds": hidden[0].float().cpu()}

    config = getattr(text_encoder, "config", None)
    config = config.to_dict() if hasattr(config, "to_dict") else {}
    encode.cache_key = json.dumps([config, length, getattr(tokenizer, "name_or_path", "")], sort_keys=True, default=str)
    return encode


def precompute_latent_pairs(
    pairs: Any,
    cache_dir: str | os.PathLike,
    *,
    vae: Any,
    encode_prompt: Callable[[str], Mapping[str, torch.Tensor]],
    height: int | None = None,
    width: int | None = None,
    num_frames: int | None = None,
    media_root: str | os.PathLike | None = None,
    seed: int = 0,
) -> PairFolder:
    """Encode media pairs once into a pair folder at ``cache_dir``: embedded media, else ``chosen`` / ``rejected``
    resolved under ``media_root`` (the dataset folder; never the working directory).

    Each distinct media file and prompt is encoded once; a file whose name (content key of path, size, mtime, VAE
    config and size settings) is already in the cache is reused, so re-running costs nothing. Latents are one sample of
    the VAE posterior (seeded), as CogVideoX's and Diffusion-DPO's trainers use.
    """
    from tqdm.auto import tqdm

    names = column_names(pairs) or (list(pairs[0]) if len(pairs) else [])
    missing = [c for c in MEDIA_COLUMNS if c not in names]
    if missing:
        raise PairDataError(f"media pairs need columns {list(MEDIA_COLUMNS)}; missing {missing}, has {sorted(names)}")
    cache = Path(cache_dir)
    (cache / "latents").mkdir(parents=True, exist_ok=True)
    (cache / "embeds").mkdir(parents=True, exist_ok=True)
    root = Path(media_root) if media_root is not None else None
    vae_id = json.dumps(
        {k: v for k, v in dict(vae.config).items() if not k.startswith("_")}, sort_keys=True, default=str
    )
    text_id = str(getattr(encode_prompt, "__qualname__", "")) + repr(getattr(encode_prompt, "cache_key", ""))
    generator = torch.Generator().manual_seed(seed)

    def media_file(row: Mapping[str, Any], side: str) -> str:
        source = media_source(row, side, root)  # embedded bytes, else a path under the dataset folder
        if isinstance(source, bytes):
            origin = hashlib.sha1(source).hexdigest()
        else:
            st = source.stat()
            origin = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        key = _digest(f"{origin}|{vae_id}|{height}|{width}|{num_frames}")
        name = f"latents/{key}.safetensors"
        if not (cache / name).exists():
            if isinstance(source, bytes):  # decoded from a file in the cache (the decoders read files)
                (cache / "media").mkdir(exist_ok=True)
                path = cache / "media" / f"{key}{media_suffix(row, side)}"
                path.write_bytes(source)
            else:
                path = source
            latents = encode_media(vae, load_media(path, height, width, num_frames), generator)
            save_file({"latents": latents.contiguous()}, str(cache / name))
            if isinstance(source, bytes):
                path.unlink()
        return name

    def prompt_files(prompt: str) -> dict[str, str]:
        key = _digest(f"{prompt}|{text_id}")
        out = {}
        existing = sorted((cache / "embeds").glob(f"{key}.*.safetensors"))
        if not existing:
            for col, tensor in encode_prompt(prompt).items():
                save_file({col: tensor.contiguous()}, str(cache / "embeds" / f"{key}.{col}.safetensors"))
            existing = sorted((cache / "embeds").glob(f"{key}.*.safetensors"))
        for path in existing:
            out[path.name[len(key) + 1 : -len(".safetensors")]] = f"embeds/{path.name}"
        return out

    lines = []
    for i in tqdm(range(len(pairs)), desc="encoding media pairs"):
        row = pairs[i]
        try:
            record = {k: v for k, v in row.items() if isinstance(v, (str, int, float, bool, type(None)))}
            record["chosen_latents"] = media_file(row, "chosen")
            record["rejected_latents"] = media_file(row, "rejected")
            record.update(prompt_files(str(row["prompt"])))
        except (FileNotFoundError, PairDataError, RecordError) as exc:
            raise PairDataError(f"row {i} (prompt {str(row['prompt'])[:60]!r}): {exc}") from exc
        lines.append(json.dumps(record))
    (cache / PAIRS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return PairFolder(cache)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:24]
