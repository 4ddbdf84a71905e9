"""Dataset cards: VisionRewardDB layouts, scored samples, MPO preference pairs and converted public pair datasets.

Each renderer returns a :class:`huggingface_hub.DatasetCard` whose metadata passed
:func:`hub_cards.validation.validate_dataset_card`. Cards carry the taxonomy, statistics, licence and attribution;
``Dataset.push_to_hub`` later adds ``dataset_info`` (features, split sizes) to the same README.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from ._render import fmt, kv_table, rows_table, size_category
from .validation import validate_dataset_card

ATTRIBUTION = (
    "The VisionReward checklist, weights and annotation taxonomy come from THUDM/VisionReward "
    '(Apache-2.0; Xu et al., "VisionReward: Fine-Grained Multi-Dimensional Human Preference Learning for Image and '
    'Video Generation", arXiv:2412.21059). The VisionRewardDB datasets on the Hub (THUDM/VisionRewardDB-Image, '
    "THUDM/VisionRewardDB-Video) are released under Apache-2.0."
)
CITATION = """```bibtex
@article{xu2024visionreward,
  title   = {VisionReward: Fine-Grained Multi-Dimensional Human Preference Learning for Image and Video Generation},
  author  = {Xu, Jiazheng and others},
  journal = {arXiv preprint arXiv:2412.21059},
  year    = {2024}
}
```"""


def features_table(features: Any) -> str:
    """A Markdown table of a ``datasets.Features`` (or ``{name: description}``) mapping."""
    if not features:
        return ""
    return rows_table([{"column": name, "type": _feature_repr(ft)} for name, ft in dict(features).items()])


def _feature_repr(ft: Any) -> str:
    name = type(ft).__name__
    if name == "Value":
        return ft.dtype
    if name in ("Image", "Video"):
        return f"{name}(decode={ft.decode})"
    if name in ("List", "Sequence", "LargeList"):
        return f"list[{_feature_repr(ft.feature)}]"
    if isinstance(ft, dict):
        return "struct{" + ", ".join(f"{k}: {_feature_repr(v)}" for k, v in ft.items()) + "}"
    return str(ft) if not isinstance(ft, str) else ft


def _card(
    *,
    pretty_name: str,
    summary: str,
    sections: Sequence[tuple[str, str]],
    num_rows: int,
    tags: Sequence[str],
    task_categories: Sequence[str],
    license: str = "apache-2.0",
    source_datasets: Sequence[str] | None = None,
    configs: list[dict] | None = None,
    random_data: bool = False,
    validate: bool = True,
) -> DatasetCard:
    data = DatasetCardData(
        license=license,
        language=["en"],
        pretty_name=pretty_name,
        size_categories=[size_category(num_rows)],
        task_categories=list(task_categories),
        source_datasets=list(source_datasets) if source_datasets else None,
        tags=["vision-reward", "preference", "arxiv:2412.21059", *tags],
        configs=configs,
    )
    body = [f"# {pretty_name}", "", summary, ""]
    if random_data:
        body += [
            "> **Made with random weights.** The media were generated and/or scored by the embedded tiny default "
            "(random weights built locally); the scores are noise. It shows the data layout and the pipeline.",
            "",
        ]
    for title, text in sections:
        if text:
            body += [f"## {title}", "", text.strip(), ""]
    body += ["## Licence and attribution", "", ATTRIBUTION, "", "## Citation", "", CITATION, ""]
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    if validate:
        validate_dataset_card(card)
    return card


def split_configs(splits: Sequence[str], data_dir: str = "data", config_name: str = "default") -> list[dict]:
    """``configs`` metadata for Parquet shards laid out as ``push_to_hub`` writes them."""
    return [
        {
            "config_name": config_name,
            "data_files": [{"split": s, "path": f"{data_dir}/{s}-*"} for s in splits],
        }
    ]


def render_visionrewarddb_card(
    *,
    modality: str,
    split_sizes: Mapping[str, int],
    features: Any = None,
    media: str = "embedded",
    rejects: Mapping[str, int] | None = None,
    split_rule: str = "",
    annotation_stats: Sequence[Mapping[str, Any]] | None = None,
    pretty_name: str | None = None,
    validate: bool = True,
) -> DatasetCard:
    """Card of a VisionRewardDB-layout dataset built by :mod:`datasets_scripts.visionrewarddb`.

    ``media`` says how media are stored: ``"embedded"`` (bytes inside the Parquet shards) or ``"external"``
    (path strings; the media files must be shipped beside the shards). ``rejects`` counts rejected rows by reason.
    """
    from trl_vision_reward.reward.taxonomy import taxonomy_markdown

    total = int(sum(split_sizes.values()))
    column = "image" if modality == "image" else "video"
    media_note = (
        f"The `{column}` column embeds the file bytes in the Parquet shards."
        if media == "embedded"
        else f"Media stay external: `{column}_path` holds paths relative to the dataset root; ship the files beside "
        "the shards."
    )
    if modality == "video" and media == "embedded":
        media_note += (
            " It is a `datasets.Video(decode=False)` feature (`{'bytes', 'path'}`), so it loads without a video "
            "decoder; with `torchcodec` and FFmpeg installed, `ds.cast_column('video', Video())` decodes frames."
        )
    stats = [{"split": s, "rows": n} for s, n in split_sizes.items()]
    sections = [
        ("Layout", media_note + "\n\n" + features_table(features)),
        ("Splits", (split_rule + "\n\n" if split_rule else "") + rows_table(stats)),
        (
            "Annotation taxonomy",
            "Each annotation is an integer within the key's range below; the highest value is the best option "
            "(options are listed best first), as in the VisionRewardDB cards. A checklist question written for "
            "option k is labelled 'yes' iff the annotated option is k or better (paper, Appendix 7).\n\n"
            + taxonomy_markdown(modality),
        ),
        ("Annotation statistics", rows_table(annotation_stats or [])),
        (
            "Rejected rows",
            kv_table(dict(rejects), ("reason", "rows")) + "\n\nEvery rejected row is listed with its reason in "
            "`rejects.jsonl`."
            if rejects
            else "",
        ),
    ]
    return _card(
        pretty_name=pretty_name or f"VisionRewardDB-{modality.capitalize()} (local build)",
        summary=f"Fine-grained human annotations of generated {modality}s on the VisionReward taxonomy, "
        f"{total} rows, packaged as Parquet.",
        sections=sections,
        num_rows=total,
        tags=[modality, "human-annotations"],
        task_categories=["text-to-video" if modality == "video" else "text-to-image"],
        source_datasets=[f"THUDM/VisionRewardDB-{modality.capitalize()}"],
        configs=split_configs(list(split_sizes)),
        validate=validate,
    )


def render_scored_samples_card(
    *,
    num_rows: int,
    num_prompts: int,
    samples_per_prompt: int,
    checklist_id: str,
    generator: str,
    scorer: str,
    features: Any = None,
    score_summary: Mapping[str, Any] | None = None,
    rejects: Mapping[str, int] | None = None,
    generation_config: Mapping[str, Any] | None = None,
    random_data: bool = False,
    validate: bool = True,
) -> DatasetCard:
    """Card of a scored-samples dataset written by :mod:`datasets_scripts.generate_and_score`."""
    sections = [
        (
            "How it was made",
            kv_table(
                {
                    "generator": generator,
                    "scorer": scorer,
                    "checklist": checklist_id,
                    "prompts": num_prompts,
                    "samples per prompt": samples_per_prompt,
                    **dict(generation_config or {}),
                }
            ),
        ),
        (
            "Record",
            "One row per generated sample: the prompt, the media, the checklist id, per-question P(yes) and answers "
            "(checklist order), per-dimension scores and the total.\n\n" + features_table(features),
        ),
        ("Scores", kv_table(dict(score_summary) if score_summary else None)),
        ("Failures", kv_table(dict(rejects), ("reason", "samples")) if rejects else ""),
    ]
    return _card(
        pretty_name="VisionReward-scored samples",
        summary=f"{num_rows} samples for {num_prompts} prompts, each scored on the VisionReward `{checklist_id}` "
        "checklist.",
        sections=sections,
        num_rows=num_rows,
        tags=["scored-samples", "synthetic"],
        task_categories=["text-to-video"],
        configs=split_configs(["train"]),
        random_data=random_data,
        validate=validate,
    )


def render_pairs_card(
    *,
    num_pairs: int,
    statistics: Mapping[str, Any],
    features: Any = None,
    source: str | None = None,
    per_dimension: Sequence[Mapping[str, Any]] | None = None,
    random_data: bool = False,
    validate: bool = True,
) -> DatasetCard:
    """Card of an MPO preference-pair dataset: the rule, threshold and admission statistics."""
    rule = statistics.get("granularity", statistics.get("rule", "dimension"))
    threshold = statistics.get("threshold", statistics.get("min_total_gap"))
    sections = [
        (
            "Admission rule",
            f"A pair (chosen, rejected) of samples for the same prompt is admitted when the chosen sample's score is "
            f"at least the rejected one's on every VisionReward **{fmt(rule)}** (dominance, MPO; arXiv:2412.21059 "
            f"section 3.3) and their total scores differ by at least **{fmt(threshold)}**.",
        ),
        ("Admission statistics", kv_table(dict(statistics))),
        ("Per-dimension margins", rows_table(per_dimension or [])),
        (
            "Record",
            "Columns follow the MPO trainer's input: prompt, chosen and rejected media, both samples' dimension "
            "scores, and the rule and threshold that admitted the pair.\n\n" + features_table(features),
        ),
        ("Source", f"Scored samples: `{source}`" if source else ""),
    ]
    return _card(
        pretty_name="MPO preference pairs",
        summary=f"{num_pairs} preference pairs mined by multi-dimensional dominance from VisionReward-scored samples.",
        sections=sections,
        num_rows=num_pairs,
        tags=["dpo", "mpo", "preference-pairs"],
        task_categories=["text-to-video"],
        configs=split_configs(["train"]),
        random_data=random_data,
        validate=validate,
    )


def render_converted_pairs_card(
    *,
    source_format: str,
    source_dataset: str,
    num_pairs: int,
    statistics: Mapping[str, Any] | None = None,
    features: Any = None,
    license: str = "other",
    validate: bool = True,
) -> DatasetCard:
    """Card of public preference data (Pick-a-Pic v2, HPDv2, ImageRewardDB) converted to the common pair format.

    The source datasets keep their own licences: pass the right identifier (``license``); the default "other"
    points readers to the source card.
    """
    sections = [
        (
            "Conversion",
            f"Converted from the `{source_format}` record format of "
            f"[{source_dataset}](https://huggingface.co/datasets/{source_dataset}) to the common pair format "
            "(prompt, chosen, rejected, source ids).",
        ),
        ("Statistics", kv_table(dict(statistics) if statistics else None)),
        ("Record", features_table(features)),
        ("Licence of the source", f"See the source dataset's card: {source_dataset}."),
    ]
    data_license = license
    card = _card(
        pretty_name=f"{source_dataset} pairs",
        summary=f"{num_pairs} image preference pairs from {source_dataset}.",
        sections=sections,
        num_rows=num_pairs,
        tags=["dpo", "preference-pairs", "converted"],
        task_categories=["text-to-image"],
        license=data_license,
        source_datasets=[source_dataset],
        configs=split_configs(["train"]),
        validate=False,
    )
    if data_license == "other":
        card.data.license_name = "source-dataset-license"
    if validate:
        validate_dataset_card(card)
    return card


__all__ = [
    "features_table",
    "render_converted_pairs_card",
    "render_pairs_card",
    "render_scored_samples_card",
    "render_visionrewarddb_card",
    "split_configs",
]
