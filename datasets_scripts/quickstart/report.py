"""``report.html`` and ``report.json``: the videos, score breakdowns, pair statistics and training curve of a run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .charts import esc as _esc
from .charts import svg_bar_chart, svg_line_chart
from .config import STAGE_TITLES
from .runner import model_name, scorer_name

if TYPE_CHECKING:
    from .runner import Quickstart


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(mapping: dict[str, Any]) -> str:
    return _table(
        [{"name": k, "value": json.dumps(v) if isinstance(v, (dict, list)) else v} for k, v in mapping.items()]
    )


def _poster(video: Path) -> str | None:
    """Write the first frame of ``video`` as a PNG beside it (so the page shows a frame before playback)."""
    try:
        from diffusers_cogvideox.video_io import load_video

        poster = video.with_suffix(".png")
        if not poster.exists():
            frame = load_video(video, max_frames=1)[0]
            scale = max(1, 128 // max(frame.size))
            frame.resize((frame.width * scale, frame.height * scale), resample=0).save(poster)
        return poster.name
    except Exception:  # a missing poster only costs the preview frame
        return None


def _strip(video: Path) -> str | None:
    """The clip's enlarged frame strip (see :mod:`.clips`), written beside it; ``None`` if it cannot be made."""
    try:
        from .clips import write_strip

        return write_strip(video).name
    except Exception:  # a missing strip only costs the still frames; the video is still linked
        return None


def _video_cell(root: Path, rel: str, caption: str, detail: str = "") -> str:
    poster = _poster(root / rel)
    strip = _strip(root / rel)
    poster_attr = f' poster="{_esc(str(Path(rel).parent / poster))}"' if poster else ""
    strip_img = (
        f'<img class="strip" src="{_esc(str(Path(rel).parent / strip))}" alt="frames of {_esc(rel)}">' if strip else ""
    )
    detail_html = f'<br><span class="detail">{_esc(detail)}</span>' if detail else ""
    return (
        f'<figure><video src="{_esc(rel)}"{poster_attr} controls loop muted autoplay playsinline></video>'
        f"{strip_img}<figcaption>{_esc(caption)}{detail_html}</figcaption></figure>"
    )


def _truth_text(levels: dict[str, int] | None) -> str:
    return "truth " + ", ".join(f"{d} {v}" for d, v in levels.items()) if levels else ""


def _videos_by_prompt(q: Quickstart, folder: str) -> tuple[str, list[dict[str, Any]]]:
    from ..generate_and_score import load_scored_records

    path = q.out / folder
    if not (path / "shards").exists():
        return "<p><em>not produced</em></p>", []
    records = load_scored_records(path)
    truth = q.truth.get(folder, {})
    rows = []
    for prompt in dict.fromkeys(r["prompt"] for r in records):
        cells = "".join(
            _video_cell(
                q.out,
                f"{folder}/{r['media']}",
                f"#{r['sample_index']} total {r['total']:.4f} / soft {r.get('soft_total', 0):.4f}",
                _truth_text(truth.get(r["id"])),
            )
            for r in records
            if r["prompt"] == prompt
        )
        rows.append(f'<div class="prompt"><p>{_esc(prompt)}</p><div class="videos">{cells}</div></div>')
    return "".join(rows), records


def _dimension_means(records: list[dict[str, Any]], key: str) -> dict[str, float]:
    if not records or key not in records[0]:
        return {}
    dims = list(records[0][key])
    return {d: sum(r[key][d] for r in records) / len(records) for d in dims}


def _signed(value: float) -> str:
    return "" if value != value else f"{value:+.4g}"  # NaN (not produced): blank


def _direction(value: float) -> str:
    return "" if value != value else "up" if value > 0 else "down" if value < 0 else "unchanged"


def dimension_rows(
    scores_before: dict[str, float],
    scores_after: dict[str, float],
    truth_before: dict[str, float] | None = None,
    truth_after: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per dimension: the scorer's mean before / after / change and, for the tiny world, the procedural
    truth's mean level before / after / change (with the sign of each change spelled out)."""
    nan = float("nan")
    rows = []
    for d in scores_before or truth_before or {}:
        before, after = scores_before.get(d, nan), scores_after.get(d, nan)
        row: dict[str, Any] = {
            "dimension": d,
            "scorer before": before,
            "scorer after": after,
            "scorer change": _signed(after - before),
            "scorer direction": _direction(after - before),
        }
        if truth_before is not None:
            tb, ta = truth_before.get(d, nan), (truth_after or {}).get(d, nan)
            row.update(
                {
                    "truth before": tb,
                    "truth after": ta,
                    "truth change": _signed(ta - tb),
                    "truth direction": _direction(ta - tb),
                }
            )
        rows.append(row)
    return rows


def _truth_means(truth: dict[str, dict[str, int]]) -> dict[str, float]:
    if not truth:
        return {}
    dims = list(next(iter(truth.values())))
    return {d: sum(t[d] for t in truth.values()) / len(truth) for d in dims}


def _clip_rows(q: Quickstart, folder: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What report.json keeps of each clip (the strip and truth when there are)."""
    from .clips import STRIP_SUFFIX

    truth = q.truth.get(folder, {})
    rows = []
    for r in records:
        media = f"{folder}/{r['media']}"
        strip = Path(media).with_name(Path(media).stem + STRIP_SUFFIX)
        row = {
            "id": r["id"],
            "prompt": r["prompt"],
            "seed": r.get("seed"),
            "media": media,
            "strip": strip.as_posix() if (q.out / strip).exists() else None,
            "total": r["total"],
            "soft_total": r.get("soft_total"),
            "dimension_scores": r.get("dimension_scores"),
            "soft_dimension_scores": r.get("soft_dimension_scores"),
        }
        if r["id"] in truth:
            row["truth"] = truth[r["id"]]
        rows.append(row)
    return rows


WORLD_TEXT = (
    "<p><strong>The tiny world.</strong> This run used the embedded default: a CogVideoX (4-layer transformer, "
    "16-channel VAE, tiny T5) and a VisionReward-Video scorer (tiny CogVLM2-Video) trained on a procedural world and "
    "shipped with the package. Its clips are 9 frames of 32 x 32 at 8 fps: one shape (circle or square, four colours) "
    "moving over a plain background (four colours), named by the prompt. Five attributes decide five checklist "
    "dimensions, each measured back from the pixels by a fixed rule, the <em>procedural truth</em> (level 0 worst .. "
    "2 best): lighting &rarr; Quality, speed &rarr; Dynamic, flicker &rarr; Stability, pulsing &rarr; Preservation, "
    "size &rarr; Composition. In the generator's training data fast motion mostly comes with flicker (the confounder). "
    "The scorer answers ten official checklist questions, two per dimension, with weights fitted to the world's "
    "preference. <strong>The scores are meaningful within this world only</strong>: the models know these clips and "
    "nothing about real video. The before/after table gives both the scorer's view and the truth's, so a gain the "
    "scorer sees but the truth does not (reward hacking) shows.</p>"
)
RANDOM_TEXT = (
    '<p class="warn"><strong>Random weights.</strong> This run used random tiny models (<code>--random</code>): '
    "CogVideoX and VisionReward with random weights built locally, so the videos are noise and the scores carry no "
    "meaning. It shows every stage of the loop working end to end. Drop <code>--random</code> for the trained tiny "
    "world, or pass <code>--model</code> and <code>--scorer</code> for real models.</p>"
)


def write_report(q: Quickstart) -> Path:
    """Write ``report.json`` and ``report.html`` for whatever stages have run."""
    c = q.config
    out = q.out
    out.mkdir(parents=True, exist_ok=True)
    before_html, before = _videos_by_prompt(q, "1_generate_score")
    after_html, after = _videos_by_prompt(q, "4_regenerate")
    score_key = "soft_dimension_scores" if c.pair_scores == "soft" else "dimension_scores"
    total_key = "soft_total" if c.pair_scores == "soft" else "total"
    dims_before, dims_after = _dimension_means(before, score_key), _dimension_means(after, score_key)
    truth_before, truth_after = (
        _truth_means(q.truth.get("1_generate_score", {})),
        _truth_means(q.truth.get("4_regenerate", {})),
    )
    compare_rows = dimension_rows(dims_before, dims_after, truth_before if c.world else None, truth_after)
    charts = ""
    if dims_before:
        series = {"before": list(dims_before.values())}
        if dims_after:
            series["after MPO"] = [dims_after[d] for d in dims_before]
        charts += svg_bar_chart(
            list(dims_before), series, f"Scorer: mean {'soft ' if c.pair_scores == 'soft' else ''}score per dimension"
        )
    if truth_before:
        series = {"before": list(truth_before.values())}
        if truth_after:
            series["after MPO"] = [truth_after[d] for d in truth_before]
        charts += svg_bar_chart(list(truth_before), series, "Procedural truth: mean level per dimension (0..2)")
    per_sample = []
    if before and after:
        after_by_id = {r["id"]: r for r in after}
        truth_b, truth_a = q.truth.get("1_generate_score", {}), q.truth.get("4_regenerate", {})
        per_sample = [
            {
                "sample": r["id"],
                "prompt": r["prompt"][:40],
                "total before": r["total"],
                "total after": after_by_id[r["id"]]["total"],
                f"{total_key} before": r.get(total_key),
                f"{total_key} after": after_by_id[r["id"]].get(total_key),
                **(
                    {
                        "truth before": _truth_text(truth_b.get(r["id"]))[6:],
                        "truth after": _truth_text(truth_a.get(r["id"]))[6:],
                    }
                    if truth_b
                    else {}
                ),
            }
            for r in before
            if r["id"] in after_by_id
        ]
    history = getattr(q, "_log_history", None) or []
    loss_chart = ""
    for name, title in (
        ("loss", "MPO training loss"),
        ("rewards/margins", "Implicit reward margin (chosen - rejected)"),
    ):
        points = [(e["step"], e[name]) for e in history if name in e]
        if points:
            loss_chart += svg_line_chart({name: points}, title, width=480, height=200)
    pairs_html = ""
    pairs_stats_path = out / "2_pairs" / "stats.json"
    if pairs_stats_path.exists():
        stats = json.loads(pairs_stats_path.read_text())
        pairs = getattr(q, "_pairs", None)
        pair_rows = ""
        if pairs is not None and len(pairs):
            for p in list(pairs)[:4]:  # a few examples; every pair is in 2_pairs/
                pair_rows += (
                    f'<div class="pair"><p>{_esc(p["prompt"])} - gap {p["total_gap"]:.4g}</p><div class="videos">'
                    + _video_cell(out, f"1_generate_score/{p['chosen']}", "chosen")
                    + _video_cell(out, f"1_generate_score/{p['rejected']}", "rejected")
                    + "</div></div>"
                )
        pairs_html = (
            _kv(
                {
                    **{k: v for k, v in stats.items() if k not in ("rule", "counts")},
                    **stats["counts"],
                    "rule": stats["rule"],
                }
            )
            + pair_rows
        )
    card_path = out / "3_mpo" / "adapter" / "README.md"
    card_html = (
        f"<details><summary>Model card (3_mpo/adapter/README.md)</summary><pre>{_esc(card_path.read_text())}</pre></details>"
        if card_path.exists()
        else ""
    )
    stage_rows = [
        {"stage": STAGE_TITLES[r.name], "status": r.status, "seconds": round(r.seconds, 1), "error": r.error or ""}
        for r in q.results.values()
    ]
    warning = (RANDOM_TEXT if c.random_model or c.random_scorer else "") + (
        WORLD_TEXT if c.world or c.world_scorer else ""
    )
    choice = q.threshold_choice
    threshold_html = (
        f"<p><strong>Threshold rule: {_esc(choice.rule)}</strong>, total gap &ge; {choice.threshold:.4g}: "
        f"{_esc(choice.reason)}.</p>" + _table([{k: v for k, v in t.items()} for t in choice.tried])
        if choice is not None
        else ""
    )
    distinct = {
        name: f"{len({r['total'] for r in recs})} distinct official totals among {len(recs)} clips"
        for name, recs in (("before", before), ("after", after))
        if recs
    }
    sections = [
        (
            "generate_score",
            f"<p>{len(c.prompts)} prompts x {c.samples_per_prompt} samples, {c.num_frames} frames "
            f"{c.height}x{c.width}, {c.num_inference_steps} steps. Dataset: <code>1_generate_score/</code>.</p>"
            + _kv(q.results["generate_score"].summary)
            + before_html,
        ),
        (
            "pairs",
            f"<p>Rule: {c.pair_kind} at {c.pair_granularity} level, total gap &ge; {c.pair_threshold}, on "
            f"{c.pair_scores} scores. Dataset: <code>2_pairs/</code>.</p>" + threshold_html + pairs_html,
        ),
        (
            "train_mpo",
            _kv({k: v for k, v in q.results["train_mpo"].summary.items() if k != "last_logged"})
            + "<h3>Last logged metrics</h3>"
            + _kv(q.results["train_mpo"].summary.get("last_logged", {}))
            + loss_chart
            + card_html,
        ),
        (
            "regenerate",
            "<p>The same prompts and seeds, generated with the saved adapter loaded into a fresh base "
            "pipeline (<code>load_lora_weights</code>).</p>" + _kv(q.results["regenerate"].summary) + after_html,
        ),
        (
            "report",
            "<h3>Before / after, per dimension</h3>"
            + (
                "<p>Scorer: the mean "
                + ("soft " if c.pair_scores == "soft" else "official (hard-answer) ")
                + "dimension score over the clips; truth: the mean procedural level (0..2) of the same clips, read "
                "from the written files. Before = <code>1_generate_score/</code>, after = <code>4_regenerate/</code> "
                "(same prompts and seeds).</p>"
            )
            + _table(compare_rows)
            + charts
            + "".join(f"<p>{_esc(k)}: {_esc(v)}.</p>" for k, v in distinct.items())
            + "<h3>Per sample</h3>"
            + _table(per_sample),
        ),
    ]
    body = "".join(
        f'<section id="{name}"><h2>{_esc(STAGE_TITLES[name])} <span class="status {q.results[name].status}">'
        f"{_esc(q.results[name].status)}</span></h2>{content}</section>"
        for name, content in sections
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quickstart report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
th {{ background: #f3f3f3; }}
.videos {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; text-align: center; font-size: 11px; }}
video {{ width: 128px; height: 128px; image-rendering: pixelated; background: #000; }}
img.strip {{ display: block; height: 48px; image-rendering: pixelated; margin-top: 2px; }}
.detail {{ color: #555; }}
.warn {{ background: #fff3cd; border: 1px solid #e0c36a; padding: 8px 12px; }}
.status {{ font-size: 12px; padding: 2px 6px; border-radius: 4px; background: #ddd; }}
.status.done {{ background: #cfeccf; }} .status.failed {{ background: #f5c2c2; }}
section {{ border-top: 1px solid #ddd; margin-top: 18px; }}
</style></head><body>
<h1>CogVideoX + VisionReward + MPO: the whole loop</h1>
{warning}
{_table(stage_rows)}
<details><summary>Configuration</summary>{_kv(asdict(c))}</details>
{body}
</body></html>
"""
    (out / "report.html").write_text(page, encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(
            {
                "config": asdict(c),
                "models": {"generator": model_name(c), "scorer": scorer_name(c), "tiny_world": c.world},
                "stages": [asdict(r) for r in q.results.values()],
                "pair_threshold": choice.as_dict() if choice is not None else None,
                "dimensions": {"scores": score_key, "rows": compare_rows},
                "distinct_totals": {
                    name: len({r["total"] for r in recs}) for name, recs in (("before", before), ("after", after))
                },
                "clips": {
                    "before": _clip_rows(q, "1_generate_score", before),
                    "after": _clip_rows(q, "4_regenerate", after),
                },
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    return out / "report.html"
