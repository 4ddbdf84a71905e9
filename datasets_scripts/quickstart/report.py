"""``report.html`` and ``report.json``: the videos, score breakdowns, pair statistics and training curve of a run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .charts import esc as _esc
from .charts import svg_bar_chart, svg_line_chart
from .config import STAGE_TITLES

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


def _video_cell(root: Path, rel: str, caption: str) -> str:
    poster = _poster(root / rel)
    poster_attr = f' poster="{_esc(str(Path(rel).parent / poster))}"' if poster else ""
    return (
        f'<figure><video src="{_esc(rel)}"{poster_attr} controls loop muted autoplay playsinline></video>'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _videos_by_prompt(q: Quickstart, folder: str) -> tuple[str, list[dict[str, Any]]]:
    from ..generate_and_score import load_scored_records

    path = q.out / folder
    if not (path / "shards").exists():
        return "<p><em>not produced</em></p>", []
    records = load_scored_records(path)
    rows = []
    for prompt in dict.fromkeys(r["prompt"] for r in records):
        cells = "".join(
            _video_cell(
                q.out,
                f"{folder}/{r['media']}",
                f"#{r['sample_index']} total {r['total']:.3f} / soft {r.get('soft_total', 0):.4f}",
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
    compare_rows = [
        {
            "dimension": d,
            "before": dims_before[d],
            "after": dims_after.get(d, float("nan")),
            "change": dims_after.get(d, float("nan")) - dims_before[d],
        }
        for d in dims_before
    ]
    charts = ""
    if dims_before:
        series = {"before": list(dims_before.values())}
        if dims_after:
            series["after MPO"] = [dims_after[d] for d in dims_before]
        charts += svg_bar_chart(
            list(dims_before), series, f"Mean {'soft ' if c.pair_scores == 'soft' else ''}score per dimension"
        )
    per_sample = []
    if before and after:
        after_by_id = {r["id"]: r for r in after}
        per_sample = [
            {
                "sample": r["id"],
                "prompt": r["prompt"][:40],
                "total before": r["total"],
                "total after": after_by_id[r["id"]]["total"],
                f"{total_key} before": r.get(total_key),
                f"{total_key} after": after_by_id[r["id"]].get(total_key),
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
    warning = (
        '<p class="warn"><strong>Random weights.</strong> This run used the embedded tiny default: CogVideoX and '
        "VisionReward with random weights built locally, so the videos are noise and the scores carry no meaning. "
        "It shows every stage of the loop working end to end. Pass <code>--model</code> and <code>--scorer</code> for "
        "real models.</p>"
        if c.tiny or c.scorer is None
        else ""
    )
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
            f"{c.pair_scores} scores. Dataset: <code>2_pairs/</code>.</p>" + pairs_html,
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
        ("report", charts + _table(compare_rows) + "<h3>Per sample</h3>" + _table(per_sample)),
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
        json.dumps({"config": asdict(c), "stages": [asdict(r) for r in q.results.values()]}, indent=2, default=str),
        encoding="utf-8",
    )
    return out / "report.html"
