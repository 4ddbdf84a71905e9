"""The VisionReward taxonomy (dimensions, sub-dimensions, questions, annotation keys and ranges): the one loader.

The single source is ``trl_vision_reward/data/{image,video}_taxonomy.json`` (THUDM/VisionReward, Apache-2.0); the
checklist (:mod:`.checklist`), the judgment labels (:mod:`.labels`), VisionRewardDB validation
(:mod:`datasets_scripts.visionrewarddb`) and the cards all read it through :func:`load_taxonomy`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

MODALITIES = ("image", "video")


@dataclass(frozen=True)
class AnnotationKey:
    """One annotation column of VisionRewardDB: its key, the option range ``[low, high]`` and where it belongs."""

    key: str
    low: int
    high: int
    dimension: str | None
    sub_dimension: str | None
    options: tuple[str, ...] = ()
    legacy_key: str | None = None


@dataclass(frozen=True)
class Taxonomy:
    modality: str
    keys: dict[str, AnnotationKey]
    questions: tuple[dict[str, Any], ...]
    dimensions: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def resolve(self, key: str) -> AnnotationKey | None:
        """The annotation key for ``key``, accepting the dataset's legacy names (e.g. ``sharpness`` -> ``clarity``)."""
        if key in self.keys:
            return self.keys[key]
        for spec in self.keys.values():
            if spec.legacy_key == key:
                return spec
        return None


@cache
def load_taxonomy(modality: str) -> Taxonomy:
    """The taxonomy of ``modality`` ("image" or "video")."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}; got {modality!r}")
    path = resources.files("trl_vision_reward").joinpath("data", f"{modality}_taxonomy.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    keys: dict[str, AnnotationKey] = {}
    questions: list[dict[str, Any]] = []
    dims: list[str] = []
    for dim in raw["dimensions"]:
        dims.append(dim["name"])
        for sub in dim["sub_dimensions"]:
            if sub.get("annotation_key") and sub.get("annotation_range"):
                low, high = sub["annotation_range"]
                keys[sub["annotation_key"]] = AnnotationKey(
                    sub["annotation_key"],
                    int(low),
                    int(high),
                    dim["name"],
                    sub["name"],
                    tuple(sub.get("options") or ()),
                    sub.get("legacy_annotation_key"),
                )
            for q in sub["questions"]:
                questions.append(
                    {
                        "dimension": dim["name"],
                        "sub_dimension": sub["name"],
                        "text": q["text"],
                        "weight": float(q.get("weight") or 0.0),
                        "is_mask": bool(q.get("is_mask")),
                    }
                )
    for other in raw.get("other_annotation_keys", []):
        low, high = other["range"]
        keys[other["key"]] = AnnotationKey(other["key"], int(low), int(high), None, None, (), other.get("legacy_key"))
    return Taxonomy(modality, keys, tuple(questions), tuple(dims), raw)


def taxonomy_markdown(modality: str) -> str:
    """A Markdown table of the annotation keys (dimension, sub-dimension, key, range) for dataset cards."""
    tax = load_taxonomy(modality)
    lines = [
        "| dimension | sub-dimension | annotation key | range | options (best first) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in tax.keys.values():
        lines.append(
            f"| {spec.dimension or '-'} | {spec.sub_dimension or '-'} | `{spec.key}` | [{spec.low}, {spec.high}] | "
            f"{', '.join(spec.options) or '-'} |"
        )
    return "\n".join(lines)
