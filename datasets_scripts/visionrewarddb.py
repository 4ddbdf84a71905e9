"""VisionRewardDB layouts (image and video): build from a media folder plus annotations, validate, split, write Parquet.

The layout mirrors the Hub datasets THUDM/VisionRewardDB-Image and -Video: ``internal_id``, ``prompt``, ``url``, the
media, ``annotation`` (a struct with one integer per annotation key of the taxonomy, null where not annotated),
``meta_result`` and ``meta_mask`` (integer lists, passed through). Differences, on purpose:

- the media column is ``image`` (``datasets.Image``) or ``video`` (``datasets.Video(decode=False)``) with the bytes
  embedded, or, with ``media="external"``, a relative path string ``image_path``/``video_path`` whose files stay
  beside the shards. ``Video`` decoding needs ``torchcodec`` plus FFmpeg, which are optional here; ``decode=False``
  keeps the dataset loadable everywhere, and ``ds.cast_column("video", Video())`` decodes where torchcodec exists;
- annotation keys are the current names (legacy names such as ``sharpness`` are accepted and renamed);
- there are train/validation/test splits, assigned deterministically from a hash of the normalised prompt, so that
  every sample of a prompt lands in the same split, on every machine and every run.

Rows that fail validation are not published: each one is listed in ``rejects.jsonl`` with every reason found.
"""

from __future__ import annotations

import contextlib
import json
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffusers_cogvideox.errors import UsageError
from diffusers_cogvideox.outputs import resolve_inside
from trl_vision_reward.reward.taxonomy import load_taxonomy

from .files import probe_media, read_records, stable_hash, write_jsonl

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS = (0.90, 0.05, 0.05)
MEDIA_FIELDS = {
    "image": ("file_name", "image", "image_path", "path"),
    "video": ("file_name", "video", "video_path", "path"),
}


def normalise_prompt(prompt: str) -> str:
    """The split key of a prompt: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", prompt).casefold().split())


def split_of(prompt: str, fractions: Sequence[float] = DEFAULT_FRACTIONS, salt: str = "") -> str:
    """Deterministic split of ``prompt``: a 64-bit SHA-256 hash of the normalised prompt picks the bucket."""
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be 3 non-negative numbers (train, validation, test) summing to 1; got {fractions}"
        )
    u = stable_hash(salt + normalise_prompt(prompt)) / 2**64
    edge = 0.0
    for name, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]


@dataclass
class BuildResult:
    """What a build wrote: the dataset, its split sizes, the rejects and the output folder."""

    dataset: Any  # datasets.DatasetDict
    rejects: list[dict[str, Any]]
    out_dir: Path | None
    media: str
    modality: str
    split_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def reject_reasons(self) -> dict[str, int]:
        return dict(Counter(r["reason"].split(":")[0] for r in self.rejects))


def _media_field(record: Mapping[str, Any], modality: str) -> str | None:
    for key in MEDIA_FIELDS[modality]:
        if isinstance(record.get(key), str) and record[key]:
            return key
    return None


def _normalise_annotation(annotation: Mapping[str, Any], modality: str) -> dict[str, int | None]:
    """Validate with the labels module's rules (single source) and return ``{current_key: int value}``."""
    from trl_vision_reward.reward.labels import annotation_ranks

    annotation_ranks(annotation, modality)  # raises ValueError naming the key and the accepted range/keys
    tax = load_taxonomy(modality)
    out: dict[str, int | None] = dict.fromkeys(tax.keys)
    for key, value in annotation.items():
        spec = tax.resolve(key)
        if spec is None:  # keys the labels module ignores (e.g. legacy harm names) and we do not know
            continue
        if isinstance(value, str):
            # option label -> integer value (highest value = best option; see trl_vision_reward.reward.labels)
            value = spec.high - spec.options.index(value)
        out[spec.key] = None if value is None else int(value)
    return out


def validate_records(
    records: Sequence[Mapping[str, Any]], media_root: str | Path, modality: str, *, check_media: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split records into (valid normalised rows, rejects with reasons).

    Checks: required columns (``internal_id``, ``prompt``, a media field, ``annotation``), duplicate ids (every
    occurrence after the first is rejected), annotation keys and value ranges per the taxonomy, and that the media
    file exists and decodes. A row with several problems lists them all.
    """
    if modality not in MEDIA_FIELDS:
        raise ValueError(f"modality must be 'image' or 'video'; got {modality!r}")
    media_root = Path(media_root)
    seen: dict[str, int] = {}
    valid, rejects = [], []
    for row, record in enumerate(records):
        reasons: list[str] = []
        if not isinstance(record, Mapping):
            rejects.append({"row": row, "internal_id": None, "reason": f"not an object: {type(record).__name__}"})
            continue
        rid = record.get("internal_id", record.get("id"))
        rid = None if rid is None else str(rid)
        if rid is None or not rid.strip():
            reasons.append("missing column: internal_id")
        elif rid in seen:
            reasons.append(f"duplicate id: {rid!r} first seen at row {seen[rid]}")
        else:
            seen[rid] = row
        prompt = record.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            reasons.append("missing column: prompt")
        media_key = _media_field(record, modality)
        if media_key is None:
            reasons.append(f"missing column: media (one of {list(MEDIA_FIELDS[modality])})")
        else:
            try:  # a path that leaves the media folder (absolute, '..', a symlink out) is never read or copied
                media_path = resolve_inside(media_root, str(record[media_key]), what="media path")
                if check_media:
                    probe_media(media_path, modality)
            except ValueError as exc:
                reasons.append(f"bad media: {exc}")
        annotation = record.get("annotation")
        normalised = None
        if not isinstance(annotation, Mapping):
            reasons.append("missing column: annotation")
        else:
            try:
                normalised = _normalise_annotation(annotation, modality)
            except ValueError as exc:
                reasons.append(f"bad annotation: {exc}")
        for key in ("meta_result", "meta_mask"):
            value = record.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, int) for v in value)):
                reasons.append(f"bad column: {key} must be a list of integers")
        if reasons:
            rejects.append({"row": row, "internal_id": rid, "reason": "; ".join(reasons)})
            continue
        valid.append(
            {
                "internal_id": rid,
                "prompt": prompt,
                "url": record.get("url"),
                "media": str(record[media_key]),
                "annotation": normalised,
                "meta_result": record.get("meta_result"),
                "meta_mask": record.get("meta_mask"),
            }
        )
    return valid, rejects


def features_for(modality: str, media: str = "embedded"):
    """The ``datasets.Features`` of a VisionRewardDB layout."""
    from datasets import Features, Image, List, Value, Video

    tax = load_taxonomy(modality)
    if media == "embedded":
        media_feature = {modality: Image() if modality == "image" else Video(decode=False)}
    elif media == "external":
        media_feature = {f"{modality}_path": Value("string")}
    else:
        raise ValueError(f"media must be 'embedded' or 'external'; got {media!r}")
    return Features(
        {
            "internal_id": Value("string"),
            "prompt": Value("string"),
            "url": Value("string"),
            **media_feature,
            "annotation": {key: Value("int64") for key in tax.keys},
            "meta_result": List(Value("int64")),
            "meta_mask": List(Value("int64")),
            "split_key": Value("string"),
        }
    )


def build_visionrewarddb(
    media_root: str | Path,
    annotations: str | Path | Sequence[Mapping[str, Any]],
    modality: str,
    out_dir: str | Path | None = None,
    *,
    media: str = "embedded",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    salt: str = "",
    check_media: bool = True,
    overwrite: bool = False,
) -> BuildResult:
    """Build a VisionRewardDB-layout ``DatasetDict`` from a media folder and annotations (JSON/JSONL or records).

    With ``out_dir`` it writes ``data/{split}-00000-of-00001.parquet`` (the ``push_to_hub`` layout, so the folder
    loads with ``load_dataset(out_dir)``), ``README.md`` (the dataset card) and ``rejects.jsonl``; with
    ``media="external"`` it also copies the media under ``media/`` so that the relative paths resolve. The folder
    follows the output policy (:class:`diffusers_cogvideox.outputs.OutputFolder`): ``overwrite`` replaces an earlier
    build there - its shards included, so a rebuild with other fractions leaves no stale split behind.
    """

    media_root = Path(media_root)
    if not media_root.is_dir():
        raise FileNotFoundError(2, "no media folder at", str(media_root))
    records = read_records(annotations) if isinstance(annotations, (str, Path)) else list(annotations)
    folder = None
    if out_dir is not None:  # the inputs are read; the output is checked before the long media probing
        folder = claim_output(out_dir, overwrite, inputs=[media_root, annotations])
    with folder or contextlib.nullcontext():  # an earlier build is deleted only once this one is written
        return _build(records, media_root, modality, folder, media, fractions, salt, check_media)


def _build(records, media_root, modality, folder, media, fractions, salt, check_media) -> BuildResult:
    from datasets import Dataset, DatasetDict

    valid, rejects = validate_records(records, media_root, modality, check_media=check_media)
    if not valid:
        reasons = Counter(r["reason"] for r in rejects).most_common(3)
        raise UsageError(f"no valid row among {len(records)} (most common reasons: {reasons}); nothing was written")
    features = features_for(modality, media)
    media_col = modality if media == "embedded" else f"{modality}_path"
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for row in valid:
        split = split_of(row["prompt"], fractions, salt)
        media_value = str(media_root / row["media"]) if media == "embedded" else f"media/{row['media']}"
        by_split[split].append(
            {
                **{k: v for k, v in row.items() if k != "media"},
                media_col: media_value,
                "split_key": normalise_prompt(row["prompt"]),
            }
        )
    # Empty splits are left out (a Parquet split with no rows cannot be loaded); the card lists the splits present.
    dataset = DatasetDict(
        {split: Dataset.from_list(rows, features=features) for split, rows in by_split.items() if rows}
    )
    result = BuildResult(dataset, rejects, None, media, modality, {s: len(d) for s, d in dataset.items()})
    if folder is not None:
        write_visionrewarddb(result, folder, media_root=media_root)
    return result


def claim_output(out_dir: str | Path, overwrite: bool = False, inputs=()):
    """The output folder of a build (refused when it holds someone else's files or, without ``overwrite``, an
    earlier build)."""
    from diffusers_cogvideox.outputs import OutputFolder

    inputs = [p for p in inputs if isinstance(p, (str, Path))]
    return OutputFolder.claim(out_dir, "vr-datasets build-vrdb", inputs=inputs, overwrite=overwrite)


def annotation_statistics(dataset: Any, modality: str) -> list[dict[str, Any]]:
    """Per annotation key: how many rows are annotated, and the mean and histogram of the values."""
    tax = load_taxonomy(modality)
    stats = []
    for key in tax.keys:
        values = [a[key] for split in dataset.values() for a in split["annotation"] if a[key] is not None]
        stats.append(
            {
                "key": key,
                "annotated": len(values),
                "mean": round(sum(values) / len(values), 3) if values else None,
                "histogram": dict(sorted(Counter(values).items())),
            }
        )
    return stats


def write_visionrewarddb(
    result: BuildResult, out_dir: str | Path | Any, *, media_root: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Write the shards, card and rejects of a build to ``out_dir`` (a path, or an ``OutputFolder`` already
    claimed; see :func:`build_visionrewarddb`)."""
    from diffusers_cogvideox.outputs import OutputFolder

    if isinstance(out_dir, OutputFolder):
        return _write(result, out_dir, media_root)
    with claim_output(out_dir, overwrite, inputs=[media_root]) as folder:  # an earlier build goes once this is written
        return _write(result, folder, media_root)


def _write(result: BuildResult, folder: Any, media_root: str | Path | None) -> Path:
    import shutil

    from hub_cards.dataset_cards import render_visionrewarddb_card

    out_dir = folder.root
    for split, ds in result.dataset.items():
        write_parquet(ds, folder.path(f"data/{split}-00000-of-00001.parquet"))
    if result.media == "external" and media_root is not None:
        for ds in result.dataset.values():
            for rel in ds[f"{result.modality}_path"]:
                source = resolve_inside(media_root, rel.removeprefix("media/"), what="media path")
                with folder.atomic(resolve_inside(out_dir, rel).relative_to(out_dir).as_posix()) as tmp:
                    shutil.copy2(source, tmp)
    write_jsonl(folder.path("rejects.jsonl"), result.rejects)
    card = render_visionrewarddb_card(
        modality=result.modality,
        split_sizes=result.split_sizes,
        features=next(iter(result.dataset.values())).features,
        media=result.media,
        rejects=result.reject_reasons,
        split_rule="Splits are assigned by a SHA-256 hash of the normalised prompt (NFKC, case-folded, whitespace "
        "collapsed; column `split_key`), so all samples of a prompt share a split and rebuilding gives the same "
        "splits.",
        annotation_stats=[
            {**s, "histogram": json.dumps(s["histogram"])}
            for s in annotation_statistics(result.dataset, result.modality)
        ],
    )
    with folder.atomic("README.md") as tmp:
        card.save(tmp)
    result.out_dir = out_dir
    return out_dir


def write_parquet(dataset: Any, path: str | Path) -> Path:
    """Write one split to Parquet with Image/Video bytes embedded (``to_parquet`` alone keeps only the paths)."""
    from datasets.table import embed_table_storage

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = dataset.format
    embedded = dataset.with_format("arrow").map(embed_table_storage, batched=True, keep_in_memory=True)
    embedded = embedded.with_format(**{k: v for k, v in fmt.items() if k in ("type", "columns", "output_all_columns")})
    tmp = path.with_name(f".{path.name}.tmp")
    embedded.to_parquet(str(tmp))
    tmp.replace(path)
    return path


def load_built(out_dir: str | Path):
    """Load a folder written by this module back with ``datasets`` (the Parquet builder, one split per file)."""
    from datasets import load_dataset

    out_dir = Path(out_dir)
    files = {p.name.split("-")[0]: str(p) for p in sorted((out_dir / "data").glob("*.parquet"))}
    return load_dataset("parquet", data_files=files)
