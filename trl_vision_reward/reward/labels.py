"""Checklist judgment labels from VisionRewardDB-style annotations (paper, Appendix 7).

An annotation gives, for every sub-dimension, one option on a scale ordered by degree (best first in the paper's
tables, e.g. richness: very rich, rich, ordinary, monotonous, empty). Every checklist question sits on the row of one
option (``option_row`` in the taxonomy), and the paper labels it "yes" iff the annotated option is that option or a
better one. "Is the image rich?" (row "rich") is therefore yes for "very rich" and "rich", no for the rest; "Is the
image not empty?" (row "monotonous") is no only for "empty".

How an integer annotation value maps onto the option scale
-----------------------------------------------------------
The dataset cards give each key an integer range ``[lo, hi]``. The image card documents the direction with its
richness example (2 very rich, 1 rich, 0 normal, -1 monotonous, -2 empty): the **highest value is the best option**
and each step down is one option worse, so value ``v`` is option rank ``hi - v`` (rank 0 = best). Every image range
has exactly as many values as the paper has options, and 0 always lands on the neutral option ("ordinary", "normal",
"neutral"), which confirms the reading. The question on row rank ``r`` is then yes iff ``v >= hi - r``.

The video card gives only positive ranges and no example. We apply the same direction (highest value = best) by
default; three video ranges have more values than options (``lighting aes`` [1, 5] for 4 options, ``movement
smoothness`` and ``movement reality`` [0, 4] for 3), and the extra values extend the worst end, so they answer every
question of that sub-dimension with the same answers as the worst option. If your video data uses the opposite
direction, pass ``value_order="lower_is_better"``; option labels (strings such as ``"rich"``) are also accepted as
values and are unambiguous.

Masks
-----
Body, face and hands have an "absent" option at the worst end ("no human figure", "no human face", "no human hands").
Their presence question (``is_mask``, e.g. "Is there a human body in the image?") is labelled like any other question
(yes iff the option is better than "absent"). When the part is absent, every *other* question of that sub-dimension
gets **no label** (``None``), not "no": "Are the human hands perfect?" has no answer for an image without hands. The
released scoring code also zeroes the two harmfulness features when there is no body; that is a scoring-time rule and
the safety annotation exists for every image, so safety questions keep their labels here.

Image alignment has no annotation key (the paper scores it with VQAScore), so it is not a labelled question.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

Modality = Literal["image", "video"]
ValueOrder = Literal["higher_is_better", "lower_is_better"]

MODALITIES: tuple[str, ...] = ("image", "video")
# Keys of the annotation struct that are not checklist sub-dimensions (e.g. "unsafe type"); accepted and ignored.
_ID_KEYS = ("internal_id", "id", "sample_id")


@dataclass(frozen=True)
class LabeledQuestion:
    """One checklist question that annotations can label, with what the rule needs to know about it."""

    text: str
    dimension: str
    sub_dimension: str
    annotation_key: str
    option_row: str
    option_rank: int  # 0 = best option of the sub-dimension
    qa_line: int
    select_line: int | None
    is_mask: bool
    gates_sub_dimension: bool  # a presence question whose "no" leaves the rest of its sub-dimension unlabelled


@dataclass(frozen=True)
class SubDimensionScale:
    """A sub-dimension's annotation key, value range and options (best first)."""

    name: str
    dimension: str
    annotation_key: str
    legacy_annotation_key: str | None
    value_range: tuple[int, int]
    options: tuple[str, ...]


@dataclass(frozen=True)
class JudgmentLabels:
    """Per-question labels of one annotated sample: 1 = yes, 0 = no, None = no label (masked or not annotated)."""

    record_id: Any
    questions: tuple[str, ...]
    labels: tuple[int | None, ...]

    @property
    def mask(self) -> tuple[bool, ...]:
        """True where the question has a label."""
        return tuple(label is not None for label in self.labels)

    def as_dict(self) -> dict[str, int | None]:
        return dict(zip(self.questions, self.labels))


def _taxonomy(modality: str) -> dict:
    from .taxonomy import load_taxonomy

    return load_taxonomy(modality).raw


@lru_cache(maxsize=2)
def sub_dimension_scales(modality: Modality) -> tuple[SubDimensionScale, ...]:
    """Every annotated sub-dimension of ``modality``, in the taxonomy's order."""
    scales = []
    for dimension in _taxonomy(modality)["dimensions"]:
        for sub in dimension["sub_dimensions"]:
            if sub.get("annotation_key") is None:
                continue  # image alignment: scored by VQAScore, no annotation field
            lo, hi = sub["annotation_range"]
            scales.append(
                SubDimensionScale(
                    name=sub["name"],
                    dimension=dimension["name"],
                    annotation_key=sub["annotation_key"],
                    legacy_annotation_key=sub.get("legacy_annotation_key"),
                    value_range=(int(lo), int(hi)),
                    options=tuple(sub["options"]),
                )
            )
    return tuple(scales)


@lru_cache(maxsize=2)
def labeled_questions(modality: Modality) -> tuple[LabeledQuestion, ...]:
    """Every question that annotations can label, in question-file order (``qa_line``)."""
    questions = []
    for dimension in _taxonomy(modality)["dimensions"]:
        for sub in dimension["sub_dimensions"]:
            key = sub.get("annotation_key")
            if key is None:
                continue
            options = list(sub["options"])
            for q in sub["questions"]:
                row = q["option_row"]
                questions.append(
                    LabeledQuestion(
                        text=q["text"],
                        dimension=dimension["name"],
                        sub_dimension=sub["name"],
                        annotation_key=key,
                        option_row=row,
                        option_rank=options.index(row),  # first match: image "Main object" repeats "prominent"
                        qa_line=int(q["qa_line"]),
                        select_line=q.get("select_line"),
                        is_mask=bool(q.get("is_mask", False)),
                        gates_sub_dimension=bool(q.get("mask_in_released_code", False)),
                    )
                )
    return tuple(sorted(questions, key=lambda q: q.qa_line))


def _resolve_questions(modality: Modality, questions: str | Sequence[str] | None) -> tuple[LabeledQuestion, ...]:
    every = labeled_questions(modality)
    if questions is None or questions == "all":
        return every
    if questions == "select":
        selected = [q for q in every if q.select_line is not None]
        return tuple(sorted(selected, key=lambda q: q.select_line))
    if isinstance(questions, str):
        raise ValueError(f"questions must be 'all', 'select' or a list of question texts; got {questions!r}")
    by_text = {q.text.strip(): q for q in every}
    resolved = []
    for text in questions:
        text = getattr(text, "text", text)  # accept Checklist question objects as well as strings
        q = by_text.get(str(text).strip())
        if q is None:
            raise ValueError(
                f"question {text!r} has no annotation-based label for {modality}; labelled questions are the "
                f"{len(every)} lines of the {modality} question file (image alignment is scored by VQAScore)"
            )
        resolved.append(q)
    return tuple(resolved)


def _key_index(modality: Modality) -> dict[str, SubDimensionScale]:
    index: dict[str, SubDimensionScale] = {}
    for scale in sub_dimension_scales(modality):
        index[scale.annotation_key] = scale
        if scale.legacy_annotation_key:
            index[scale.legacy_annotation_key] = scale
    return index


def _ignored_keys(modality: Modality) -> set[str]:
    keys = set()
    for other in _taxonomy(modality).get("other_annotation_keys", []):
        keys.add(other["key"])
        if other.get("legacy_key"):
            keys.add(other["legacy_key"])
    return keys


def _record_name(record_id: Any) -> str:
    return f"record {record_id!r}" if record_id is not None else "record"


def option_rank(
    scale: SubDimensionScale, value: Any, *, value_order: ValueOrder = "higher_is_better", record_id: Any = None
) -> int | None:
    """Rank (0 = best) of an annotated value on ``scale``; ``None`` for a missing value.

    Integers follow the dataset range (see the module docstring); strings must be one of the options.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    lo, hi = scale.value_range
    key = scale.annotation_key
    if isinstance(value, str):
        if value not in scale.options:
            raise ValueError(
                f"{_record_name(record_id)}: annotation {key!r} has option {value!r}; accepted options are "
                f"{list(scale.options)} or an integer in [{lo}, {hi}]"
            )
        return scale.options.index(value)
    if isinstance(value, bool) or not isinstance(value, int | float) and not hasattr(value, "__index__"):
        raise ValueError(
            f"{_record_name(record_id)}: annotation {key!r} must be an integer in [{lo}, {hi}] or an option label; "
            f"got {value!r}"
        )
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(
                f"{_record_name(record_id)}: annotation {key!r} must be an integer in [{lo}, {hi}]; got {value!r}"
            )
        value = int(value)
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(
            f"{_record_name(record_id)}: annotation {key!r} = {value} is out of range; accepted range is [{lo}, {hi}]"
        )
    steps_from_best = hi - value if value_order == "higher_is_better" else value - lo
    return min(steps_from_best, len(scale.options) - 1)  # extra values (some video ranges) extend the worst end


def annotation_ranks(
    annotation: Mapping[str, Any],
    modality: Modality,
    *,
    record_id: Any = None,
    value_order: ValueOrder | None = None,
) -> dict[str, int | None]:
    """Validate one annotation struct and return each sub-dimension's option rank, keyed by current annotation key.

    Raises ``ValueError`` naming the record, the key and the accepted keys or range for an unknown key, an
    out-of-range value, or a key given twice (current and legacy name).
    """
    order = value_order or "higher_is_better"
    if order not in ("higher_is_better", "lower_is_better"):
        raise ValueError(f"value_order must be 'higher_is_better' or 'lower_is_better'; got {value_order!r}")
    if not isinstance(annotation, Mapping):
        raise ValueError(
            f"{_record_name(record_id)}: annotation must be a mapping of annotation keys to options; got {type(annotation).__name__}"
        )
    index = _key_index(modality)
    ignored = _ignored_keys(modality)
    ranks: dict[str, int | None] = {}
    for key, value in annotation.items():
        if key in ignored:
            continue
        scale = index.get(key)
        if scale is None:
            accepted = sorted({s.annotation_key for s in sub_dimension_scales(modality)})
            legacy = sorted(
                {s.legacy_annotation_key for s in sub_dimension_scales(modality) if s.legacy_annotation_key}
            )
            hint = f" (legacy names {legacy} are also accepted)" if legacy else ""
            raise ValueError(
                f"{_record_name(record_id)}: unknown {modality} annotation key {key!r}; accepted keys are "
                f"{accepted}{hint}, plus {sorted(ignored)} which are ignored"
            )
        if scale.annotation_key in ranks:
            raise ValueError(
                f"{_record_name(record_id)}: annotation {scale.annotation_key!r} is given twice (current and legacy key)"
            )
        ranks[scale.annotation_key] = option_rank(scale, value, value_order=order, record_id=record_id)
    return ranks


def judgment_labels(
    annotation: Mapping[str, Any],
    modality: Modality,
    *,
    questions: str | Sequence[str] | None = None,
    record_id: Any = None,
    value_order: ValueOrder | None = None,
) -> JudgmentLabels:
    """Per-question yes/no labels of one annotation by the paper's rule, with absent body/face/hands masked.

    ``questions``: ``None``/``"all"`` (every line of the question file), ``"select"`` (the select list, image masks
    included) or question texts (e.g. ``[q.text for q in checklist.questions]``), which fixes the output order.
    A sub-dimension missing from the annotation leaves its questions unlabelled.
    """
    ranks = annotation_ranks(annotation, modality, record_id=record_id, value_order=value_order)
    scales = {s.annotation_key: s for s in sub_dimension_scales(modality)}
    chosen = _resolve_questions(modality, questions)
    labels: list[int | None] = []
    for q in chosen:
        rank = ranks.get(q.annotation_key)
        if rank is None:
            labels.append(None)
            continue
        absent_rank = len(scales[q.annotation_key].options) - 1
        part_absent = _has_presence_gate(modality, q.sub_dimension) and rank == absent_rank
        if part_absent and not q.is_mask:
            labels.append(None)  # "Are the hands perfect?" has no answer when there are no hands
        else:
            labels.append(int(rank <= q.option_rank))
    return JudgmentLabels(record_id=record_id, questions=tuple(q.text for q in chosen), labels=tuple(labels))


@lru_cache(maxsize=4)
def _gated_sub_dimensions(modality: str) -> frozenset[str]:
    return frozenset(q.sub_dimension for q in labeled_questions(modality) if q.gates_sub_dimension)


def _has_presence_gate(modality: Modality, sub_dimension: str) -> bool:
    return sub_dimension in _gated_sub_dimensions(modality)


def record_id_of(record: Mapping[str, Any], row: int) -> Any:
    """The record's id (``internal_id``, ``id`` or ``sample_id``), else ``row <n>``."""
    for key in _ID_KEYS:
        if key in record and record[key] is not None:
            return record[key]
    return f"row {row}"


def label_records(
    records: Iterable[Mapping[str, Any]],
    modality: Modality,
    *,
    questions: str | Sequence[str] | None = None,
    annotation_field: str = "annotation",
    value_order: ValueOrder | None = None,
) -> list[JudgmentLabels]:
    """Labels for VisionRewardDB-style rows (``{"internal_id": ..., "annotation": {key: value, ...}, ...}``)."""
    out = []
    for row, record in enumerate(records):
        record_id = record_id_of(record, row)
        if annotation_field not in record:
            raise ValueError(
                f"{_record_name(record_id)} (row {row}) has no {annotation_field!r} field; its keys are {sorted(record)}"
            )
        out.append(
            judgment_labels(
                record[annotation_field], modality, questions=questions, record_id=record_id, value_order=value_order
            )
        )
    return out
