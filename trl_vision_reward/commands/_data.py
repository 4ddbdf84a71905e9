"""Reading records for the training and evaluation commands: local JSON / JSONL / Parquet files, a ``datasets`` folder
(``save_to_disk``), a folder of Parquet files, or a Hub dataset id (only when online)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def load_records(source: str, split: str | None = None, config: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``source`` as a list of dicts.

    ``source``: ``.json`` (a list of rows, ``{"data": [...]}`` or the scorer's ``{"results": [...]}``), ``.jsonl``,
    ``.parquet``, a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (``split`` picks the
    split), a folder of Parquet files, or ``owner/name`` on the Hub (needs network access; ``config`` and ``split`` as
    in ``load_dataset``).
    """
    path = Path(source)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            rows = []
            with path.open(encoding="utf-8") as f:
                for line_no, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as err:
                            raise ValueError(f"{source}: line {line_no} is not valid JSON ({err.msg})") from err
            return rows
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, Mapping):  # {"data": rows}, or what ``vision-reward score --json`` writes
                data = data.get("data", data.get("results", data))
            if not isinstance(data, list):
                raise ValueError(
                    f"{source}: expected a JSON list of rows (or {{'data': [...]}} / {{'results': [...]}}); "
                    f"got {type(data).__name__}"
                )
            return data
        if suffix == ".parquet":
            from datasets import Dataset

            return Dataset.from_parquet(str(path)).to_list()
        raise ValueError(f"{source}: unsupported file type {suffix!r}; use .json, .jsonl, .parquet or a dataset folder")
    if path.is_dir():
        from datasets import Dataset, DatasetDict, load_from_disk

        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            data = load_from_disk(str(path))
            if isinstance(data, DatasetDict):
                if split is None:
                    if len(data) != 1:
                        raise ValueError(f"{source} has splits {list(data)}; choose one with --split")
                    split = next(iter(data))
                if split not in data:
                    raise ValueError(f"{source} has no split {split!r}; it has {list(data)}")
                data = data[split]
            return data.to_list()
        from trl_vision_reward.records import load_records as load_dataset_records

        try:  # a dataset folder (data/*.parquet beside its card), or a folder of Parquet/JSON files
            return load_dataset_records(path, split=split or "train", what="records")[0].to_list()
        except ValueError:
            raise ValueError(f"{source} is a folder with neither a saved dataset nor Parquet files") from None
    if "/" in source and not source.startswith((".", "/")) and not os.path.exists(source):
        if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
            raise ValueError(f"{source!r} is not a local file or folder, and Hub access is off (HF_HUB_OFFLINE=1)")
        from datasets import load_dataset

        return load_dataset(source, config, split=split or "train").to_list()
    raise ValueError(f"{source!r} is not a file, a folder or a Hub dataset id (owner/name)")


def index_by_id(rows: Sequence[Mapping[str, Any]], id_field: str, source: str) -> dict[str, int]:
    """Map each row's id (as a string) to its position; duplicate or missing ids are errors naming the row."""
    index: dict[str, int] = {}
    for row_no, row in enumerate(rows):
        if id_field not in row or row[id_field] is None:
            raise ValueError(f"{source}: row {row_no} has no {id_field!r} field; its keys are {sorted(row)}")
        key = str(row[id_field])
        if key in index:
            raise ValueError(f"{source}: rows {index[key]} and {row_no} share the id {key!r}")
        index[key] = row_no
    return index


def resolve_pairs(
    pairs: Sequence[Mapping[str, Any]], index: Mapping[str, int], source: str
) -> tuple[list[int], list[int], list[float]]:
    """Pairs -> (first positions, second positions, labels in {1, -1, 0}).

    A pair is a :class:`~trl_vision_reward.records.PreferencePair` row (its ``chosen_id`` over ``rejected_id``),
    ``{"chosen": id, "rejected": id}`` (label 1) or ``{"first": id, "second": id, "label": 1 | -1 | 0}``
    (1: first preferred, -1: second preferred, 0: tie). A pair naming a sample that is not in the samples is an error
    naming the pair's row and the id.
    """
    first, second, labels = [], [], []
    for row_no, pair in enumerate(pairs):
        if "chosen_id" in pair and "rejected_id" in pair:  # a PreferencePair (vr-datasets pairs): ids, not media
            a, b, label = pair["chosen_id"], pair["rejected_id"], 1.0
            pair = {"chosen": a, "rejected": b}
        elif "chosen" in pair and "rejected" in pair:
            a, b, label = pair["chosen"], pair["rejected"], 1.0
        elif "first" in pair and "second" in pair:
            a, b = pair["first"], pair["second"]
            if "label" not in pair:
                raise ValueError(f"{source}: pair row {row_no} has first/second but no 'label' (1, -1 or 0)")
            try:
                label = float(pair["label"])
            except (TypeError, ValueError):
                label = float("nan")
            if label not in (1.0, -1.0, 0.0):
                raise ValueError(
                    f"{source}: pair row {row_no} has label {pair['label']!r}; accepted labels are 1 (first preferred), "
                    "-1 (second preferred), 0 (tie)"
                )
        else:
            raise ValueError(
                f"{source}: pair row {row_no} needs 'chosen' and 'rejected', or 'first', 'second' and 'label'; "
                f"its keys are {sorted(pair)}"
            )
        for name, sample_id in (
            ("first" if "first" in pair else "chosen", a),
            ("second" if "second" in pair else "rejected", b),
        ):
            if str(sample_id) not in index:
                raise ValueError(
                    f"{source}: pair row {row_no} references {name} sample {sample_id!r}, which is not among the samples"
                )
        first.append(index[str(a)])
        second.append(index[str(b)])
        labels.append(label)
    if not first:
        raise ValueError(f"{source}: no pairs")
    return first, second, labels


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def load_checklist(spec: str, full: bool = False):
    """``image`` / ``video`` (official select lists; ``full`` for every question) or a checklist JSON file (a
    ``Checklist.to_dict()``, or a config.json holding one under ``checklist``)."""
    from trl_vision_reward.reward.checklist import Checklist

    if spec in ("image", "video"):
        return Checklist.load(spec, select=not full)
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"--checklist must be 'image', 'video' or a checklist/config JSON file; got {spec!r}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if "checklist" in data and "questions" not in data:
        data = data["checklist"]
    return Checklist.from_dict(data)


def sample_matrix(
    rows: Sequence[Mapping[str, Any]], field: str, width: int, source: str, *, binary: bool = False
) -> list[list[float]]:
    """The per-question list ``field`` of every row (checklist order), checked for length and values."""
    out = []
    for row_no, row in enumerate(rows):
        values = row.get(field)
        if values is None:
            raise ValueError(f"{source}: row {row_no} has no {field!r} field; its keys are {sorted(row)}")
        values = [float(v) for v in values]
        if len(values) != width:
            raise ValueError(
                f"{source}: row {row_no} has {len(values)} {field}, but the checklist has {width} questions"
            )
        if binary and any(v not in (0.0, 1.0) for v in values):
            raise ValueError(f"{source}: row {row_no}: {field} must be 0/1 (1 = yes); got {values}")
        if not binary and any(not 0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"{source}: row {row_no}: {field} must be probabilities in [0, 1]; got {values}")
        out.append(values)
    return out


ID_FIELDS = ("id", "source", "internal_id")  # "source" is what ``vision-reward score`` writes
PROBABILITY_FIELDS = ("p_yes", "probabilities")


def pick_field(
    rows: Sequence[Mapping[str, Any]], explicit: str | None, candidates: Sequence[str], source: str, what: str
) -> str:
    """``explicit`` if given, else the first of ``candidates`` present in the first row."""
    if explicit:
        return explicit
    first = rows[0] if rows else {}
    for name in candidates:
        if name in first:
            return name
    raise ValueError(
        f"{source}: no {what} field found; expected one of {list(candidates)} (or name it explicitly); "
        f"the first row's keys are {sorted(first)}"
    )
