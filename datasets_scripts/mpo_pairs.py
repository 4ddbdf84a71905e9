"""Scored samples -> MPO preference-pair dataset (the MPO trainer's input), with admission statistics in its card.

Pair mining itself is :func:`trl_vision_reward.mpo.pairs.mine_pairs` (one rule, one place); this module feeds it the
scored-samples records, turns its pairs into a ``datasets.Dataset`` and writes Parquet plus a card that states the
rule, the threshold and what happened to every candidate pair.

Pair columns: ``prompt``, ``chosen``/``rejected`` (media paths; absolute in memory so the trainer can open them,
relative to the scored-samples folder in the written Parquet), both samples' totals and dimension scores, ``total_gap``,
``dominating``, and the rule (``rule``, ``granularity``, ``min_total_gap``). The written Parquet also embeds the two
media files (``chosen_video``/``rejected_video`` or ``chosen_image``/``rejected_image``) so it is self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import write_jsonl


def load_scored(source: str | Path | Sequence[Mapping[str, Any]] | Any) -> tuple[list[dict[str, Any]], Path | None]:
    """Scored-sample records from a job folder, a Parquet folder/file, a ``datasets.Dataset`` or a list of dicts."""
    from .generate_and_score import SHARDS_DIR, load_scored_records

    if isinstance(source, (str, Path)):
        path = Path(source)
        if (path / SHARDS_DIR).is_dir():
            return load_scored_records(path), path
        from datasets import load_dataset

        files = [str(p) for p in sorted(path.glob("data/*.parquet"))] if path.is_dir() else [str(path)]
        if not files:
            raise ValueError(
                f"{path.name!r} holds neither a generate-and-score job (shards/) nor Parquet files (data/)"
            )
        ds = load_dataset("parquet", data_files=files, split="train")
        return [_drop_media(r) for r in ds], path if path.is_dir() else path.parent
    if hasattr(source, "column_names"):
        return [_drop_media(r) for r in source], None
    return [dict(r) for r in source], None


def _drop_media(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("video", "image")}


SCORE_FIELDS = ("total", "dimension_scores", "sub_dimension_scores", "question_scores")


def with_scores(records: Sequence[Mapping[str, Any]], scores: str = "official") -> list[dict[str, Any]]:
    """Records whose ``total``/``*_scores`` fields are the ``scores`` variant: ``"official"`` (hard answers, the
    paper's rule) or ``"soft"`` (answers replaced by P(yes); continuous, so near-ties from an uncertain scorer are
    still ordered)."""
    if scores == "official":
        return [dict(r) for r in records]
    if scores != "soft":
        raise ValueError(f"scores must be 'official' or 'soft'; got {scores!r}")
    out = []
    for r in records:
        if "soft_total" not in r:
            raise KeyError(
                f"scored sample {r.get('id')!r} has no soft scores (soft_total); score it with soft scores or use scores='official'"
            )
        row = dict(r)
        for key in SCORE_FIELDS:
            if f"soft_{key}" in r:
                row[f"official_{key}"], row[key] = r.get(key), r[f"soft_{key}"]
        out.append(row)
    return out


def build_pairs(
    scored: str | Path | Sequence[Mapping[str, Any]] | Any,
    rule: Any = None,
    *,
    scores: str = "official",
    media_root: str | Path | None = None,
):
    """Mine pairs from scored samples; returns ``(datasets.Dataset, MiningStats)``.

    ``rule`` is a :class:`trl_vision_reward.mpo.pairs.PairRule` (default: the paper's MPO rule at dimension level,
    total gap >= 0.6); ``scores`` picks official or soft scores (see :func:`with_scores`). ``chosen``/``rejected``
    are resolved against ``media_root`` (default: the scored folder).
    """
    from datasets import Dataset

    from trl_vision_reward.mpo.pairs import PairRule, mine_pairs

    records, folder = load_scored(scored)
    records = with_scores(records, scores)
    rule = rule or PairRule.paper("mpo", "dimension")
    pairs, stats = mine_pairs(records, rule)
    stats.rule["scores"] = scores
    root = Path(media_root) if media_root is not None else folder
    for pair in pairs:
        for side in ("chosen", "rejected"):
            pair[f"{side}_media"] = pair[side]
            if root is not None:
                pair[side] = str(root / pair[side])
    if not pairs:
        return Dataset.from_dict({}), stats
    return Dataset.from_list(pairs), stats


def per_dimension_margins(pairs: Any) -> list[dict[str, Any]]:
    """Mean chosen-minus-rejected score per dimension over the admitted pairs."""
    if len(pairs) == 0 or "chosen_dimension_scores" not in pairs.column_names:
        return []
    chosen, rejected = pairs["chosen_dimension_scores"], pairs["rejected_dimension_scores"]
    dims = list(chosen[0])
    return [
        {
            "dimension": d,
            "mean margin": sum(c[d] - r[d] for c, r in zip(chosen, rejected)) / len(chosen),
            "min margin": min(c[d] - r[d] for c, r in zip(chosen, rejected)),
        }
        for d in dims
    ]


def write_pairs(
    pairs: Any,
    stats: Any,
    out_dir: str | Path,
    *,
    modality: str = "video",
    source: str | None = None,
    random_data: bool = False,
    embed_media: bool = True,
) -> Path:
    """Write ``data/train-00000-of-00001.parquet`` (media embedded), ``stats.json`` and ``README.md``."""
    import json

    from datasets import Image, Video

    from hub_cards.dataset_cards import render_pairs_card

    from .visionrewarddb import write_parquet

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_dict = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
    (out_dir / "stats.json").write_text(json.dumps(stats_dict, indent=2) + "\n", encoding="utf-8")
    if len(pairs):
        table = pairs
        if embed_media:
            feature = Video(decode=False) if modality == "video" else Image()
            for side in ("chosen", "rejected"):
                table = table.add_column(f"{side}_{modality}", list(pairs[side])).cast_column(
                    f"{side}_{modality}", feature
                )
        # paths in the published table are relative to the scored-samples folder, never this machine's
        table = table.remove_columns(["chosen", "rejected"]).rename_columns(
            {"chosen_media": "chosen", "rejected_media": "rejected"}
        )
        write_parquet(table, out_dir / "data" / "train-00000-of-00001.parquet")
        features = table.features
    else:
        write_jsonl(out_dir / "data" / "EMPTY.jsonl", [])
        features = None
    flat = {
        "rule": stats_dict["rule"]["kind"],
        "granularity": stats_dict["rule"]["granularity"],
        "threshold": stats_dict["rule"]["min_total_gap"],
        "tolerance": stats_dict["rule"]["tolerance"],
        "scores": stats_dict["rule"].get("scores", "official"),
        "scored samples": stats_dict["num_records"],
        "prompts": stats_dict["num_prompts"],
        "candidate pairs": stats_dict["candidates"],
        "admitted": stats_dict["admitted"],
        "admission rate": round(stats_dict["admitted"] / stats_dict["candidates"], 4)
        if stats_dict["candidates"]
        else 0.0,
        **{f"rejected: {k}": v for k, v in stats_dict["counts"].items() if k != "admitted"},
        "admitted dominating": stats_dict["admitted_dominating"],
        "admitted non-dominating": stats_dict["admitted_non_dominating"],
        "duplicate samples dropped": stats_dict["duplicate_samples"],
    }
    card = render_pairs_card(
        num_pairs=len(pairs),
        statistics=flat,
        features=features,
        source=source,
        per_dimension=per_dimension_margins(pairs),
        random_data=random_data,
    )
    card.save(out_dir / "README.md")
    return out_dir
