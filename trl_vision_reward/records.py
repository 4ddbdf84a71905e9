"""The records on the loop's arrows, defined once for their writers and readers.

``ScoredSample`` (prompts -> videos -> scores): written by generate-and-score (``vr-datasets generate-score``, the
Spaces' backends) and read by pair mining, ``fit-weights``, ``evaluate``, the quickstart report and the cards.
``PreferencePair`` (scores -> pairs -> trainer): written by pair mining (``vr-datasets pairs``) and read by
``mpo-train`` and the MPO model card.

A dataset folder holds ``data/*.parquet`` rows with these columns and a ``README.md`` card. Media paths are POSIX
paths relative to the dataset folder (``media/<prompt_id>/<k>.mp4``) and are resolved from there, never from the
working directory; a pairs dataset also embeds both videos (``chosen_video`` / ``rejected_video``, or ``*_image``), so
it is self-contained on the Hub. Every pair carries the rule that admitted it (``rule``, ``granularity``,
``min_total_gap``, ``scores``): :func:`admission_rule` reads it back, e.g. for the model card.

This module depends on nothing but the standard library (``datasets`` is imported when Features are built), so every
package of the project can import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

MODALITIES = ("video", "image")
SCORE_KINDS = ("official", "soft")
#: Columns of a pair that state the rule that admitted it (one value for the whole dataset).
RULE_COLUMNS = ("rule", "granularity", "min_total_gap", "scores")


class RecordError(ValueError):
    """A record or a dataset of records is malformed; the message names the record and what is accepted."""


def _relative_media(path: str, who: str) -> str:
    if not isinstance(path, str) or not path:
        raise RecordError(f"{who}: media must be a non-empty path relative to the dataset folder; got {path!r}")
    posix = PurePosixPath(path.replace(os.sep, "/"))
    if posix.is_absolute() or ".." in posix.parts:
        raise RecordError(f"{who}: media must be a path inside the dataset folder; got {path!r}")
    return posix.as_posix()


def _from_row(cls, row: Mapping[str, Any], who: str):
    names = {f.name for f in fields(cls)}
    required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
    missing = [n for n in required if row.get(n) is None]
    if missing:
        raise RecordError(f"{who} lacks {missing}; it has {sorted(row)}")
    return cls(**{k: row[k] for k in names if k in row and row[k] is not None})


# ---------------------------------------------------------------------------------------------------------------------
# ScoredSample


@dataclass
class ScoredSample:
    """One generated sample and its VisionReward scores.

    ``probabilities`` (P(yes)) and ``answers`` are per checklist question, in checklist order; ``question_scores``
    are the weighted per-question scores; ``dimension_scores`` / ``sub_dimension_scores`` map the taxonomy's names to
    scores; ``total`` is the official score. The ``soft_*`` variants replace answers by P(yes) (present when the
    scorer reports them).
    """

    id: str
    prompt_id: str
    prompt_index: int
    prompt: str
    sample_index: int
    seed: int
    media: str  # POSIX path relative to the dataset folder
    checklist_id: str
    probabilities: list[float]
    answers: list[bool]
    question_scores: list[float]
    dimension_scores: dict[str, float]
    total: float
    sub_dimension_scores: dict[str, float] = field(default_factory=dict)
    soft_question_scores: list[float] | None = None
    soft_dimension_scores: dict[str, float] | None = None
    soft_sub_dimension_scores: dict[str, float] | None = None
    soft_total: float | None = None

    def __post_init__(self) -> None:
        self.media = _relative_media(self.media, f"scored sample {self.id!r}")

    @property
    def has_soft_scores(self) -> bool:
        return self.soft_total is not None

    def to_row(self) -> dict[str, Any]:
        """The Parquet row (optional fields that are unset are left out)."""
        row = asdict(self)
        for key in ("soft_question_scores", "soft_dimension_scores", "soft_sub_dimension_scores", "soft_total"):
            if row[key] is None:
                del row[key]
        if not row["sub_dimension_scores"]:
            del row["sub_dimension_scores"]
        if not row.get("soft_sub_dimension_scores", True):
            del row["soft_sub_dimension_scores"]
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ScoredSample:
        return _from_row(cls, row, f"scored sample {row.get('id')!r}")


def scored_sample_features(
    dimensions: Sequence[str],
    sub_dimensions: Sequence[str] = (),
    *,
    soft: bool = True,
    modality: str | None = "video",
):
    """``datasets.Features`` of :class:`ScoredSample` rows (score structs keyed by the taxonomy's names).

    ``modality`` adds the embedded media column (``video`` undecoded, or ``image``); ``None`` leaves it out.
    Parquet has no empty struct, so an empty ``sub_dimensions`` leaves those columns out.
    """
    from datasets import Features, List, Value

    scores = {k: Value("float32") for k in dimensions}
    subs = {k: Value("float32") for k in sub_dimensions}
    features: dict[str, Any] = {
        "id": Value("string"),
        "prompt_id": Value("string"),
        "prompt_index": Value("int64"),
        "prompt": Value("string"),
        "sample_index": Value("int64"),
        "seed": Value("int64"),
        "media": Value("string"),
        "checklist_id": Value("string"),
        "probabilities": List(Value("float32")),
        "answers": List(Value("bool")),
        "question_scores": List(Value("float32")),
        "dimension_scores": scores,
        **({"sub_dimension_scores": subs} if subs else {}),
        "total": Value("float32"),
    }
    if soft:
        features["soft_question_scores"] = List(Value("float32"))
        features["soft_dimension_scores"] = dict(scores)
        if subs:
            features["soft_sub_dimension_scores"] = dict(subs)
        features["soft_total"] = Value("float32")
    if modality is not None:
        features[modality] = media_feature(modality)
    return Features(features)


def scored_samples_features_of(samples: Sequence[ScoredSample], modality: str | None = "video"):
    """The Features of these samples (names from the first; all must agree)."""
    if not samples:
        raise RecordError("no scored samples: the Features of an empty dataset are unknown")
    first = samples[0]
    for s in samples[1:]:
        if list(s.dimension_scores) != list(first.dimension_scores) or s.has_soft_scores != first.has_soft_scores:
            raise RecordError(
                f"scored samples {first.id!r} and {s.id!r} come from different checklists or scorers "
                "(dimension names or soft scores differ); score a dataset with one scorer"
            )
    return scored_sample_features(
        list(first.dimension_scores), list(first.sub_dimension_scores), soft=first.has_soft_scores, modality=modality
    )


# ---------------------------------------------------------------------------------------------------------------------
# PreferencePair


@dataclass
class PreferencePair:
    """Two samples of one prompt, the chosen one preferred under ``rule`` (``mpo``: dominance at ``granularity`` plus
    a total gap >= ``min_total_gap``; ``dpo``: the gap only), judged on ``scores`` (``official`` or ``soft``).

    ``chosen`` / ``rejected`` are media paths relative to the pairs dataset folder; the written dataset also embeds
    the media (:func:`media_source` prefers the embedded bytes). ``*_scores`` at the rule's granularity are present
    when it is not ``dimension``.
    """

    prompt: str
    chosen: str
    rejected: str
    chosen_id: str
    rejected_id: str
    chosen_total: float
    rejected_total: float
    total_gap: float
    dominating: bool
    rule: str
    granularity: str
    min_total_gap: float
    scores: str = "official"
    chosen_dimension_scores: dict[str, float] = field(default_factory=dict)
    rejected_dimension_scores: dict[str, float] = field(default_factory=dict)
    chosen_sub_dimension_scores: dict[str, float] | None = None
    rejected_sub_dimension_scores: dict[str, float] | None = None
    chosen_question_scores: list[float] | None = None
    rejected_question_scores: list[float] | None = None

    def __post_init__(self) -> None:
        who = f"pair ({self.chosen_id!r} over {self.rejected_id!r})"
        self.chosen = _relative_media(self.chosen, who)
        self.rejected = _relative_media(self.rejected, who)
        if self.scores not in SCORE_KINDS:
            raise RecordError(f"{who}: scores must be one of {SCORE_KINDS}; got {self.scores!r}")

    def to_row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PreferencePair:
        return _from_row(cls, row, f"pair ({row.get('chosen_id')!r} over {row.get('rejected_id')!r})")


def preference_pair_features(
    dimensions: Sequence[str],
    *,
    granularity: str = "dimension",
    entries: Sequence[str] | None = None,
    modality: str | None = "video",
):
    """``datasets.Features`` of :class:`PreferencePair` rows; ``entries`` names the sub-dimensions when
    ``granularity="sub_dimension"``; ``modality`` adds the embedded ``chosen_<modality>`` / ``rejected_<modality>``."""
    from datasets import Features, List, Value

    features: dict[str, Any] = {
        "prompt": Value("string"),
        "chosen": Value("string"),
        "rejected": Value("string"),
        "chosen_id": Value("string"),
        "rejected_id": Value("string"),
        "chosen_total": Value("float64"),
        "rejected_total": Value("float64"),
        "total_gap": Value("float64"),
        "dominating": Value("bool"),
        "rule": Value("string"),
        "granularity": Value("string"),
        "min_total_gap": Value("float64"),
        "scores": Value("string"),
    }
    for side in ("chosen", "rejected"):
        features[f"{side}_dimension_scores"] = {k: Value("float64") for k in dimensions}
        if granularity == "sub_dimension":
            features[f"{side}_sub_dimension_scores"] = {k: Value("float64") for k in entries or ()}
        elif granularity == "question":
            features[f"{side}_question_scores"] = List(Value("float64"))
    if modality is not None:
        for side in ("chosen", "rejected"):
            features[f"{side}_{modality}"] = media_feature(modality)
    return Features(features)


def preference_pairs_features_of(pairs: Sequence[PreferencePair], modality: str | None = "video"):
    if not pairs:
        raise RecordError("no pairs: the Features of an empty dataset are unknown")
    first = pairs[0]
    return preference_pair_features(
        list(first.chosen_dimension_scores),
        granularity=first.granularity,
        entries=list(first.chosen_sub_dimension_scores or ()),
        modality=modality,
    )


def admission_rule(dataset: Any) -> dict[str, Any] | None:
    """The rule that admitted a pairs dataset's rows (``{"rule", "granularity", "min_total_gap", "scores"}``), read
    from its rule columns; ``None`` when the dataset does not record it. A dataset mixing rules is an error.

    ``dataset`` is a ``datasets.Dataset``, anything with a ``records`` list (a pair folder), or a list of dicts;
    for other datasets the rule is unknown (``None``).
    """
    names = getattr(dataset, "column_names", None)
    if names is not None and not isinstance(names, dict) and hasattr(dataset, "unique"):
        if not set(RULE_COLUMNS[:3]) <= set(names):
            return None
        values = {c: dataset.unique(c) for c in RULE_COLUMNS if c in names}
    else:
        rows = getattr(dataset, "records", dataset)
        if not isinstance(
            rows, (list, tuple)
        ):  # another map-style dataset: reading every row to find out costs too much
            return None
        if not rows or not all(set(RULE_COLUMNS[:3]) <= set(r) for r in rows):
            return None
        values = {c: list(dict.fromkeys(r.get(c) for r in rows)) for c in RULE_COLUMNS}
    mixed = {c: v for c, v in values.items() if len(v) > 1}
    if mixed:
        raise RecordError(f"the pairs were admitted by different rules ({mixed}); train on pairs of one rule")
    rule = {c: v[0] for c, v in values.items() if v}
    rule["scores"] = rule.get("scores") or "official"
    rule["min_total_gap"] = float(rule["min_total_gap"])
    return rule


# ---------------------------------------------------------------------------------------------------------------------
# Reading records from a path


DATA_SUFFIXES = (".parquet", ".jsonl", ".json")


def dataset_root(path: str | os.PathLike) -> Path:
    """The dataset folder a local path belongs to (where its relative media paths resolve): the folder itself, the
    parent of its ``data/`` folder, or the folder holding a data file (its parent when that is ``data/``)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return folder.parent if folder.name == "data" else folder


def load_records(source: str | os.PathLike, *, split: str = "train", config: str | None = None, what: str = "records"):
    """A ``datasets.Dataset`` of records from ``source`` and the dataset folder its media paths resolve from (``None``
    for a Hub dataset, whose media are embedded).

    ``source``: a dataset folder (``data/*.parquet`` or ``data/*.jsonl``; the card and ``stats.json`` beside them are
    not data), its ``data/`` folder, one Parquet / JSON(L) file, a ``save_to_disk`` folder, or a Hub dataset id.
    ``what`` names the expected records in the error of a path that holds none.
    """
    import datasets

    path = Path(source)
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise RecordError(f"{path.name}: no split {split!r}; it has {sorted(loaded)}")
            loaded = loaded[split]
        return loaded, path
    if path.exists():
        if path.is_file():
            files = [path]
        else:
            data = path / "data" if (path / "data").is_dir() else path
            files = sorted(p for p in data.glob("*") if p.suffix in DATA_SUFFIXES and p.stat().st_size)
            by_split = [p for p in files if p.name.split("-")[0] == split]
            files = by_split or files
        if not files or files[0].suffix not in DATA_SUFFIXES:
            raise RecordError(
                f"{path.name}: holds no {what}; expected a dataset folder with data/*.parquet (or .jsonl), a Parquet "
                "or JSON(L) file, a save_to_disk folder or a Hub dataset id"
            )
        kind = "parquet" if files[0].suffix == ".parquet" else "json"
        rows = datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")
        return rows, dataset_root(path)
    return datasets.load_dataset(str(source), config, split=split), None


# ---------------------------------------------------------------------------------------------------------------------
# Media


def media_feature(modality: str):
    """The embedded media column's feature: an undecoded ``Video`` (bytes + name) or an ``Image``."""
    from datasets import Image, Video

    if modality not in MODALITIES:
        raise RecordError(f"modality must be one of {MODALITIES}; got {modality!r}")
    return Video(decode=False) if modality == "video" else Image()


def media_source(row: Mapping[str, Any], side: str, root: str | os.PathLike | None = None) -> bytes | Path:
    """Where a record's media is: the embedded bytes (``<side>_video`` / ``<side>_image``, or ``video`` / ``image``
    for a scored sample when ``side`` is ``"media"``), else the file ``row[side]`` under the dataset folder ``root``.

    Never resolves from the working directory: a relative path without ``root`` is an error.
    """
    prefix = "" if side == "media" else f"{side}_"
    for modality in MODALITIES:
        value = row.get(f"{prefix}{modality}")
        if isinstance(value, Mapping) and value.get("bytes"):
            return bytes(value["bytes"])
        if isinstance(value, Mapping) and value.get("path") and Path(value["path"]).is_absolute():
            if Path(value["path"]).is_file():  # an in-memory dataset, before its media are embedded
                return Path(value["path"])
    rel = row.get(side)
    if not isinstance(rel, str) or not rel:
        raise RecordError(f"the record has neither embedded media nor a {side!r} path; it has {sorted(row)}")
    path = Path(rel)
    if not path.is_absolute():
        if root is None:
            raise RecordError(
                f"{side} {rel!r} is relative and its media is not embedded: load the dataset from its folder "
                "(the path is resolved from there)"
            )
        from diffusers_cogvideox.outputs import resolve_inside

        path = resolve_inside(root, rel, what=side)  # no '..' or symlink out of the dataset folder
    if not path.is_file():
        raise FileNotFoundError(
            f"media file not found: {side} {rel!r} (looked in the dataset folder {Path(root or '.').name!r})"
        )
    return path


def media_suffix(row: Mapping[str, Any], side: str) -> str:
    """The file suffix of a record's media (from its path, or the embedded media's name)."""
    for key in (side, f"{side}_video", f"{side}_image"):
        value = row.get(key)
        name = value.get("path") if isinstance(value, Mapping) else value
        if isinstance(name, str) and Path(name).suffix:
            return Path(name).suffix.lower()
    return ".mp4"


__all__ = [
    "MODALITIES",
    "RULE_COLUMNS",
    "PreferencePair",
    "RecordError",
    "ScoredSample",
    "admission_rule",
    "dataset_root",
    "load_records",
    "media_feature",
    "media_source",
    "media_suffix",
    "preference_pair_features",
    "preference_pairs_features_of",
    "scored_sample_features",
    "scored_samples_features_of",
]
