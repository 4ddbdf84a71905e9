"""Dataset cards for the video data stages (split clips, filtered clips, the SFT caption dataset, rewritten prompts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from hub_cards._render import kv_table, rows_table, size_category
from hub_cards.dataset_cards import features_table, split_configs
from hub_cards.validation import validate_dataset_card

COGVIDEOX_CITATION = """```bibtex
@article{yang2024cogvideox,
  title   = {CogVideoX: Text-to-Video Diffusion Models with An Expert Transformer},
  author  = {Yang, Zhuoyi and others},
  journal = {arXiv preprint arXiv:2408.06072},
  year    = {2024}
}
```"""


def render_stage_card(
    *,
    pretty_name: str,
    summary: str,
    num_rows: int,
    features: Any = None,
    settings: Mapping[str, Any] | None = None,
    statistics: Mapping[str, Any] | None = None,
    rejects: Sequence[Mapping[str, Any]] = (),
    sections: Sequence[tuple[str, str]] = (),
    splits: Sequence[str] = ("train",),
    task_categories: Sequence[str] = ("text-to-video",),
    random_data: bool = False,
    attribution: str = "",
) -> DatasetCard:
    """A validated card: summary, columns, settings, statistics, a rejects tally by reason, licence and citation."""
    data = DatasetCardData(
        license="other",
        license_name="licences-of-the-sources",
        language=["en"],
        pretty_name=pretty_name,
        size_categories=[size_category(num_rows)],
        task_categories=list(task_categories),
        tags=["cogvideox", "video", "arxiv:2408.06072"],
        configs=split_configs(splits),
    )
    body = [f"# {pretty_name}", "", summary, ""]
    if random_data:
        body += [
            "> **Made with random weights.** A stage ran the embedded tiny default model (random weights built "
            "locally): its outputs (captions, labels or prompts) are noise. It shows the data layout and the pipeline.",
            "",
        ]
    tally: dict[str, int] = {}
    for r in rejects:
        key = str(r.get("rule") or r.get("reason") or "unknown").split(":")[0]
        tally[key] = tally.get(key, 0) + 1
    parts = [
        ("Columns", features_table(features) if features is not None else ""),
        ("Settings", kv_table(settings) if settings else ""),
        ("Statistics", kv_table(statistics) if statistics else ""),
        ("Rejects", rows_table([{"reason": k, "count": v} for k, v in sorted(tally.items())]) if tally else ""),
        *sections,
    ]
    for title, text in parts:
        if text:
            body += [f"## {title}", "", text.strip(), ""]
    body += [
        "## Licence and attribution",
        "",
        "The media keep the licences of their sources; this card makes no claim over them. "
        + (attribution or "")
        + " The pipeline follows the data section of the CogVideoX paper (Yang et al., arXiv:2408.06072).",
        "",
        "## Citation",
        "",
        COGVIDEOX_CITATION,
        "",
    ]
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
    validate_dataset_card(card)
    return card
