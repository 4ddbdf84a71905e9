"""Scored samples -> MPO preference-pair dataset (the MPO trainer's input), with admission statistics in its card.

Pair mining itself is :func:`trl_vision_reward.mpo.pairs.mine_pairs` (one rule, one place); this module feeds it the
scored-samples records, turns its pairs into a ``datasets.Dataset`` and writes Parquet plus a card that states the
rule, the threshold and what happened to every candidate pair.

Pair rows are :class:`trl_vision_reward.records.PreferencePair` (defined once, read by ``mpo-train``): ``chosen`` /
``rejected`` are the samples' media paths relative to the dataset folder, and the media themselves are embedded
(``chosen_video`` / ``rejected_video``, or ``*_image``): in memory they point at the scored folder's files, in the
written Parquet they hold the bytes, so the pairs folder is self-contained. Every row carries the rule that admitted
it (``rule``, ``granularity``, ``min_total_gap``, ``scores``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import write_jsonl


def load_scored(source: str | Path | Sequence[Mapping[str, Any]] | Any) -> tuple[list[dict[str, Any]], Path | None]:
    """Scored-sample records from a job folder, a Parquet folder/file, a ``datasets.Dataset`` or a list of dicts,
    and the dataset folder their media paths are relative to (None in memory). Embedded media are kept."""
    from trl_vision_reward.records import load_records

    from .generate_and_score import SHARDS_DIR, load_scored_records

    if isinstance(source, (str, Path)):
        path = Path(source)
        if (path / SHARDS_DIR).is_dir():
            return load_scored_records(path), path
        rows, root = load_records(path, what="scored samples (a generate-score job's shards/ or data/*.parquet)")
        return rows.to_list(), root
    if hasattr(source, "column_names"):
        return [dict(r) for r in source], None
    return [dict(r) for r in source], None


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
    modality: str = "video",
):
    """Mine pairs from scored samples; returns ``(datasets.Dataset of PreferencePair rows, MiningStats)``.

    ``rule`` is a :class:`trl_vision_reward.mpo.pairs.PairRule` (default: the paper's MPO rule at dimension level,
    total gap >= 0.6); ``scores`` picks official or soft scores (see :func:`with_scores`). The media columns point at
    the samples' media under ``media_root`` (default: the scored folder) or carry their embedded bytes.
    """
    from datasets import Dataset

    from trl_vision_reward.mpo.pairs import PairRule, mine_pairs, sample_id
    from trl_vision_reward.records import PreferencePair, media_source, preference_pairs_features_of

    records, folder = load_scored(scored)
    by_id = {sample_id(r, i): r for i, r in enumerate(records)}
    mined, stats = mine_pairs(with_scores(records, scores), rule or PairRule.paper("mpo", "dimension"))
    stats.rule["scores"] = scores
    if not mined:
        return Dataset.from_dict({}), stats
    root = Path(media_root) if media_root is not None else folder
    pairs = [PreferencePair(**pair, scores=scores) for pair in mined]
    rows = [p.to_row() for p in pairs]
    with_media = all(_has_media(by_id[p.chosen_id], root) and _has_media(by_id[p.rejected_id], root) for p in pairs)
    if with_media:
        for pair, row in zip(pairs, rows):
            for side, ident in (("chosen", pair.chosen_id), ("rejected", pair.rejected_id)):
                source = media_source(by_id[ident], "media", root)
                row[f"{side}_{modality}"] = (
                    {"bytes": source, "path": Path(getattr(pair, side)).name}
                    if isinstance(source, bytes)
                    else {"bytes": None, "path": str(source)}
                )
    return Dataset.from_list(
        rows, features=preference_pairs_features_of(pairs, modality if with_media else None)
    ), stats


def _has_media(record: Mapping[str, Any], root: Path | None) -> bool:
    from trl_vision_reward.records import RecordError, media_source

    try:
        media_source(record, "media", root)
    except (RecordError, FileNotFoundError):
        return False
    return True


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
    overwrite: bool = False,
) -> Path:
    """Write ``data/train-00000-of-00001.parquet`` (media embedded; else copied under ``out_dir``), ``stats.json`` and
    ``README.md``, under the output policy (an earlier ``pairs`` output is replaced only with ``overwrite``, once the
    new one is written; a folder with other files, or holding ``source``, is refused)."""
    from diffusers_cogvideox.outputs import OutputFolder

    inputs = [source] if isinstance(source, (str, Path)) else []
    with OutputFolder.claim(out_dir, "vr-datasets pairs", inputs=inputs, overwrite=overwrite) as folder:
        _write_pairs(pairs, stats, folder, modality, source, random_data, embed_media)
    return Path(out_dir)


def _write_pairs(pairs, stats, folder, modality, source, random_data, embed_media) -> None:
    from hub_cards.dataset_cards import render_pairs_card

    from .visionrewarddb import write_parquet

    stats_dict = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
    folder.write_json("stats.json", stats_dict)
    if len(pairs):
        table = pairs
        media_columns = [f"{side}_{modality}" for side in ("chosen", "rejected")]
        if not set(media_columns) <= set(table.column_names):
            raise ValueError(
                f"the pairs have no {modality} media ({media_columns}); mine them from a folder that holds the media "
                "(or pass --modality to match it)"
            )
        if not embed_media:  # the media are copied beside the Parquet, where the relative paths resolve
            _copy_media(table, modality, folder)
            table = table.remove_columns(media_columns)
        write_parquet(table, folder.path("data/train-00000-of-00001.parquet"))
        features = table.features
    else:
        write_jsonl(folder.path("data/EMPTY.jsonl"), [])
        features = None
    flat = {
        "rule": stats_dict["rule"]["kind"],
        "granularity": stats_dict["rule"]["granularity"],
        "threshold": stats_dict["rule"]["min_total_gap"],
        # why that threshold, where the caller chose it (e.g. the quickstart's rule for the tiny world's scale)
        **{
            f"threshold {key}": stats_dict["rule"][f"threshold_{key}"]
            for key in ("rule", "reason")
            if f"threshold_{key}" in stats_dict["rule"]
        },
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
    with folder.atomic("README.md") as tmp:
        card.save(tmp)


def _copy_media(pairs: Any, modality: str, folder: Any) -> None:
    import shutil

    for row in pairs:
        for side in ("chosen", "rejected"):
            if (folder.root / row[side]).exists() and row[side] in folder.manifest["files"]:
                continue
            media = row[f"{side}_{modality}"]
            with folder.atomic(row[side]) as tmp:  # a path leaving the folder is refused, a foreign file kept
                if media.get("bytes"):
                    tmp.write_bytes(media["bytes"])
                else:
                    shutil.copyfile(media["path"], tmp)
