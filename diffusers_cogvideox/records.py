"""The ``Clip`` record: one training clip of the CogVideoX SFT dataset, defined once for its writer and its readers.

Written by ``vr-datasets split`` / ``filter`` / ``caption`` (:mod:`datasets_scripts.video_data`) and read by the SFT
trainer (:mod:`diffusers_cogvideox.training`). A dataset folder holds ``data/<split>-*.parquet`` rows with these
columns and the media under the folder (``media`` is a POSIX path relative to the folder), so it can be moved,
published and loaded with ``datasets.load_dataset("parquet", ...)``.

Time fields are frame-accurate: ``source_start_frame`` / ``source_end_frame`` (end exclusive) index the frames of the
raw video the clip was cut from, and ``start_time`` / ``end_time`` are those indices divided by the source frame rate.
``scores`` holds the filter scores (``vr-datasets filter``; their names and units are documented in
:mod:`datasets_scripts.video_data.filter`); a NaN means "not scored".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CLIP_SPLITS = ("train", "validation", "test")


@dataclass
class Clip:
    """One clip: where its media is, what it shows (``caption``), its shape in time and space, and its scores."""

    clip_id: str
    media: str  # POSIX path relative to the dataset folder
    caption: str = ""
    duration: float = 0.0  # seconds = num_frames / fps
    fps: float = 0.0
    num_frames: int = 0
    width: int = 0
    height: int = 0
    split: str = "train"
    source: str = ""  # the raw video (path relative to the split job's input, or the name given)
    source_start_frame: int = 0
    source_end_frame: int = 0  # exclusive
    start_time: float = 0.0  # seconds in the source
    end_time: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in CLIP_SPLITS:
            raise ValueError(f"clip {self.clip_id!r}: split must be one of {CLIP_SPLITS}; got {self.split!r}")
        if Path(self.media).is_absolute() or ".." in Path(self.media).parts:
            raise ValueError(
                f"clip {self.clip_id!r}: media must be a path inside the dataset folder; got {self.media!r}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["scores"] = {k: (float("nan") if v is None else float(v)) for k, v in self.scores.items()}
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Clip:
        names = {f.name for f in fields(cls)}
        missing = {"clip_id", "media"} - set(row)
        if missing:
            raise ValueError(f"a clip row needs {sorted(missing)}; got columns {sorted(row)}")
        kwargs = {k: row[k] for k in names if k in row and row[k] is not None}
        kwargs["scores"] = {
            k: float("nan") if v is None else float(v) for k, v in dict(row.get("scores") or {}).items()
        }
        return cls(**kwargs)


def clip_features(score_names: Sequence[str] = ()):
    """``datasets.Features`` of clip rows; ``score_names`` are the keys of the ``scores`` struct (one per filter
    score). With no scores the column is left out (Parquet has no empty struct)."""
    from datasets import Features, Value

    features = {
        "clip_id": Value("string"),
        "media": Value("string"),
        "caption": Value("string"),
        "duration": Value("float64"),
        "fps": Value("float64"),
        "num_frames": Value("int32"),
        "width": Value("int32"),
        "height": Value("int32"),
        "split": Value("string"),
        "source": Value("string"),
        "source_start_frame": Value("int64"),
        "source_end_frame": Value("int64"),
        "start_time": Value("float64"),
        "end_time": Value("float64"),
    }
    if score_names:
        features["scores"] = {name: Value("float64") for name in score_names}
    return Features(features)


def score_names_of(clips: Iterable[Clip]) -> list[str]:
    """Every score name of ``clips``, in first-seen order (rows lacking one get NaN)."""
    names: dict[str, None] = {}
    for clip in clips:
        names.update(dict.fromkeys(clip.scores))
    return list(names)


def clips_to_dataset(clips: Sequence[Clip]):
    """A ``datasets.Dataset`` of clip rows with :func:`clip_features`."""
    from datasets import Dataset

    names = score_names_of(clips)
    rows = []
    for clip in clips:
        row = clip.to_row()
        if names:
            row["scores"] = {n: row["scores"].get(n, math.nan) for n in names}
        else:
            row.pop("scores")
        rows.append(row)
    return Dataset.from_list(rows, features=clip_features(names))


def load_clips(folder: str | Path, split: str | None = None) -> list[Clip]:
    """The clips of a dataset folder (``data/*.parquet``), optionally one split; ``media`` stays folder-relative
    (join it with ``folder`` to open the file)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = sorted((folder / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no clip dataset in {folder.name!r}: expected Parquet files under data/")
    clips = []
    for path in files:
        for row in pq.read_table(path).to_pylist():
            clip = Clip.from_row(row)
            if split is None or clip.split == split:
                clips.append(clip)
    return clips


__all__ = ["CLIP_SPLITS", "Clip", "clip_features", "clips_to_dataset", "load_clips", "score_names_of"]
