"""The whole loop in one command: generate -> score -> mine pairs -> train MPO -> save the adapter and its card ->
regenerate with it -> report.

``vr-quickstart`` (or ``vr-datasets quickstart``) runs it on the embedded tiny default (random CogVideoX and VisionReward
weights built locally: no download, a few minutes on 2 CPU cores; the videos are noise and the report says so). With
real models (``--model THUDM/CogVideoX-2b --scorer <VisionReward-Video folder or repo>``) the same stages run at full
size. Every stage writes its own folder under ``--out``; ``report.html`` (open it in a browser) shows the videos, the
score breakdowns before and after training, the pair statistics and the training curve, with SVG plots.

Stages and folders::

    1_generate_score/   scored samples (resumable job: media/, shards/, data/*.parquet, README.md card)
    2_pairs/            MPO preference pairs (data/*.parquet with the videos embedded, stats.json, README.md card)
    3_mpo/              latents cache, the LoRA adapter (pytorch_lora_weights.safetensors) and its model card
    4_regenerate/       the same prompts and seeds regenerated with the adapter, scored
    report.html, report.json
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROMPTS = (
    "a panda playing a guitar in a bamboo forest, cinematic lighting",
    "waves crash on a rocky beach while seagulls fly overhead",
    "a cat sleeping on a red sofa next to a window at sunset",
)
STAGES = ("generate_score", "pairs", "train_mpo", "regenerate", "report")
STAGE_TITLES = {
    "generate_score": "1. Generate and score",
    "pairs": "2. Mine MPO pairs",
    "train_mpo": "3. Train MPO (LoRA) and save the adapter with its card",
    "regenerate": "4. Regenerate with the adapter and score",
    "report": "5. Report",
}


@dataclass
class QuickstartConfig:
    """Every knob of the quickstart. ``None`` fields take the tiny or full-size default (see :meth:`resolved`)."""

    out: str = "outputs/quickstart"
    model: str | None = None
    scorer: str | None = None
    prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    samples_per_prompt: int = 4
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    fps: int = 8
    pair_kind: str = "mpo"
    pair_granularity: str = "dimension"
    pair_threshold: float | None = None
    pair_scores: str | None = None
    train_steps: int | None = None
    learning_rate: float | None = None
    beta: float | None = None
    lora_r: int | None = None
    batch_size: int = 1
    seed: int = 0
    device: str = "cpu"

    @property
    def tiny(self) -> bool:
        from .backends import is_tiny

        return is_tiny(self.model)

    def resolved(self) -> QuickstartConfig:
        """Fill the ``None`` fields: tiny (fast, random) or full-size (paper-like) defaults."""
        from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS

        tiny = self.tiny
        defaults = dict(
            num_frames=9 if tiny else 49,
            height=32 if tiny else 480,
            width=32 if tiny else 720,
            num_inference_steps=2 if tiny else 50,
            guidance_scale=1.0 if tiny else 6.0,
            # A random scorer answers "no" to every question, so its official scores are all equal; the soft
            # (P(yes)-based) scores still order the samples. Real scorers use the paper's rule and thresholds.
            pair_scores="soft" if self.scorer is None else "official",
            pair_threshold=0.0
            if self.scorer is None
            else PAPER_THRESHOLDS["dpo" if self.pair_kind == "dpo" else self.pair_granularity],
            train_steps=4 if tiny else 100,
            learning_rate=1e-3 if tiny else 5e-6,
            beta=500.0,
            lora_r=4 if tiny else 64,
        )
        values = asdict(self)
        values.update({k: v for k, v in defaults.items() if values.get(k) is None})
        return QuickstartConfig(**values)


@dataclass
class StageResult:
    name: str
    status: str = "pending"  # pending | done | failed | skipped
    seconds: float = 0.0
    output: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Quickstart:
    """Runs the stages in order; each stage records its outputs for the report (a failure stops the chain)."""

    def __init__(self, config: QuickstartConfig, progress: bool = True):
        self.config = config.resolved()
        self.out = Path(self.config.out)
        self.progress = progress
        self.results = {name: StageResult(name) for name in STAGES}
        self._pipe = None
        self._scorer = None

    # ---------------------------------------------------------------- shared models
    def pipeline(self):
        from .backends import load_pipeline

        if self._pipe is None:
            self._pipe = load_pipeline(self.config.model, device=self.config.device, seed=self.config.seed)
        return self._pipe

    def scorer(self):
        from .backends import VisionRewardSampleScorer, load_vision_reward

        if self._scorer is None:
            self._scorer = VisionRewardSampleScorer(
                load_vision_reward(self.config.scorer, "video", device=self.config.device), "video"
            )
        return self._scorer

    def sampler(self, pipe):
        from .backends import PipelineSampler

        c = self.config
        return PipelineSampler(
            pipe,
            num_frames=c.num_frames,
            height=c.height,
            width=c.width,
            num_inference_steps=c.num_inference_steps,
            guidance_scale=c.guidance_scale,
            fps=c.fps,
        )

    # ---------------------------------------------------------------- stages
    def stage_generate_score(self) -> dict[str, Any]:
        return self._generate_and_score(self.pipeline(), self.out / "1_generate_score", "base model")

    def _generate_and_score(self, pipe, folder: Path, label: str) -> dict[str, Any]:
        from .generate_and_score import (
            collect_scored_samples,
            load_scored_records,
            run_generate_and_score,
            score_summary,
        )

        sampler = self.sampler(pipe)
        summary = run_generate_and_score(
            self.config.prompts,
            sampler,
            self.scorer(),
            folder,
            samples_per_prompt=self.config.samples_per_prompt,
            seed=self.config.seed,
            progress=self.progress,
        )
        collect_scored_samples(
            folder,
            modality="video",
            generator=f"{self.config.model or 'tiny CogVideoX (random weights)'} ({label})",
            scorer=self.config.scorer or "tiny VisionReward (random weights)",
            generation_config=sampler.config(),
            random_data=self.config.tiny or self.config.scorer is None,
        )
        records = load_scored_records(folder)
        if summary.failed:
            raise RuntimeError(f"{summary.failed} prompts failed; see {folder / 'rejects.jsonl'}")
        return {"samples": len(records), "prompts": len(self.config.prompts), **score_summary(records)}

    def stage_pairs(self) -> dict[str, Any]:
        from trl_vision_reward.mpo.pairs import PairRule

        from .mpo_pairs import build_pairs, write_pairs

        c = self.config
        rule = PairRule(c.pair_kind, c.pair_granularity, c.pair_threshold)
        pairs, stats = build_pairs(self.out / "1_generate_score", rule, scores=c.pair_scores)
        write_pairs(pairs, stats, self.out / "2_pairs", source="1_generate_score", random_data=c.tiny)
        self._pairs = pairs
        if len(pairs) == 0:
            hint = (
                "every candidate was a tie on the official (hard-answer) scores: try --pair-scores soft"
                if stats.counts["tie"] == stats.candidates
                else "use more samples per prompt or a lower --pair-threshold"
            )
            raise RuntimeError(f"no pair was admitted ({stats}); {hint}")
        return {**{k: v for k, v in stats.as_dict().items() if k != "rule"}, "rule": dict(stats.rule)}

    def stage_train_mpo(self) -> dict[str, Any]:
        from trl_vision_reward.mpo.config import MPOConfig
        from trl_vision_reward.mpo.data import precompute_latent_pairs, text_prompt_encoder
        from trl_vision_reward.mpo.trainer import MPOTrainer

        c = self.config
        pipe = self.pipeline()
        folder = self.out / "3_mpo"
        max_length = getattr(pipe.transformer.config, "max_text_seq_length", None)
        pair_folder = precompute_latent_pairs(
            self._pairs,
            folder / "latents_cache",
            vae=pipe.vae,
            encode_prompt=text_prompt_encoder(pipe.text_encoder, pipe.tokenizer, max_length),
            height=c.height,
            width=c.width,
            num_frames=c.num_frames,
            seed=c.seed,
        )
        args = MPOConfig(
            output_dir=str(folder / "adapter"),
            max_steps=c.train_steps,
            per_device_train_batch_size=c.batch_size,
            learning_rate=c.learning_rate,
            beta=c.beta,
            lora_r=c.lora_r,
            lora_alpha=c.lora_r,
            pair_rule=c.pair_kind,
            pair_granularity=c.pair_granularity,
            pair_threshold=c.pair_threshold,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=c.seed,
            disable_tqdm=not self.progress,
            **{
                "gradient_checkpointing"
                if "gradient_checkpointing" in MPOConfig.__dataclass_fields__
                else "activation_checkpointing": False
            },
            use_cpu=c.device == "cpu",
            dataloader_num_workers=0,
        )
        trainer = MPOTrainer(
            model=pipe.transformer,
            args=args,
            train_dataset=pair_folder,
            noise_scheduler=pipe.scheduler,
            model_name=c.model or "tiny CogVideoX (random weights)",
            dataset_name="2_pairs",
        )
        result = trainer.train()
        trainer.save_model()
        self._log_history = list(trainer.state.log_history)
        # the pipeline's transformer now carries the trained adapter; regeneration reloads a fresh base instead
        self._pipe = None
        files = sorted(p.name for p in (folder / "adapter").iterdir() if p.is_file())
        last = next((e for e in reversed(self._log_history) if "loss" in e), {})
        return {
            "steps": trainer.state.global_step,
            "train_loss": float(result.training_loss),
            "last_logged": {k: v for k, v in last.items() if isinstance(v, (int, float))},
            "adapter_files": files,
            "pairs_encoded": len(pair_folder),
        }

    def stage_regenerate(self) -> dict[str, Any]:
        pipe = self.pipeline()  # a fresh base pipeline, then the saved adapter
        pipe.load_lora_weights(str(self.out / "3_mpo" / "adapter"))
        return self._generate_and_score(pipe, self.out / "4_regenerate", "with the MPO adapter")

    def stage_report(self) -> dict[str, Any]:
        path = write_report(self)
        return {"html": path.name}

    # ---------------------------------------------------------------- driver
    def run(self) -> bool:
        _prepare_out(self.out)
        ok = True
        for name in STAGES:
            result = self.results[name]
            if not ok and name != "report":
                result.status = "skipped"
                continue
            print(f"== {STAGE_TITLES[name]}", flush=True)
            start = time.perf_counter()
            try:
                fn: Callable[[], dict[str, Any]] = getattr(self, f"stage_{name}")
                result.summary = fn()
                result.status = "done"
            except Exception as exc:
                result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
                print(traceback.format_exc(), flush=True)
                ok = False
                if name == "report":
                    raise
            result.seconds = time.perf_counter() - start
            print(f"   {result.status} in {result.seconds:.1f}s", flush=True)
        write_report(self)  # final timings
        return ok


def _prepare_out(out: Path) -> None:
    """Start from a clean output folder, refusing to delete a folder that is not a quickstart output."""
    if out.exists() and any(out.iterdir()):
        if not (out / "report.json").exists() and not (out / "1_generate_score").exists():
            raise FileExistsError(f"{out} exists and is not a quickstart output folder; choose another --out")
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    out.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------------------------------- report


def _esc(value: Any) -> str:
    return html.escape(str(value))


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


def svg_bar_chart(
    groups: list[str], series: dict[str, list[float]], title: str, width: int = 640, height: int = 260
) -> str:
    """A grouped bar chart as inline SVG (one group per label, one bar per series), zero line included."""
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756"]
    values = [v for vals in series.values() for v in vals] or [0.0]
    lo, hi = min(0.0, min(values)), max(0.0, max(values))
    span = (hi - lo) or 1.0
    left, top, bottom = 48, 28, 70
    plot_h = height - top - bottom
    group_w = (width - left - 10) / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))

    def y(v: float) -> float:
        return top + (hi - v) / span * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{_esc(title)}</text>',
        f'<line x1="{left}" x2="{width - 10}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#333"/>',
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{left - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="10">{tick:.3g}</text>')
    for gi, label in enumerate(groups):
        x0 = left + gi * group_w + group_w * 0.1
        for si, (name, vals) in enumerate(series.items()):
            v = vals[gi]
            y1, y2 = sorted((y(v), y(0)))
            parts.append(
                f'<rect x="{x0 + si * bar_w:.1f}" y="{y1:.1f}" width="{bar_w - 1:.1f}" height="{max(y2 - y1, 0.5):.1f}" '
                f'fill="{colors[si % len(colors)]}"><title>{_esc(name)} {_esc(label)}: {v:.4g}</title></rect>'
            )
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {x0 + group_w * 0.4:.1f} {height - bottom + 14})">{_esc(label)}</text>'
        )
    for si, name in enumerate(series):
        parts.append(
            f'<rect x="{left + si * 120}" y="{height - 14}" width="10" height="10" fill="{colors[si % len(colors)]}"/>'
            f'<text x="{left + si * 120 + 14}" y="{height - 5}" font-size="11">{_esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_line_chart(
    points: dict[str, list[tuple[float, float]]], title: str, width: int = 640, height: int = 220
) -> str:
    """Line chart(s) as inline SVG: ``{series: [(x, y), ...]}``."""
    colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756"]
    xs = [x for pts in points.values() for x, _ in pts] or [0.0, 1.0]
    ys = [v for pts in points.values() for _, v in pts] or [0.0, 1.0]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    left, top, bottom, right = 56, 28, 36, 10

    def px(x: float) -> float:
        return left + (x - x_lo) / x_span * (width - left - right)

    def py(v: float) -> float:
        return top + (y_hi - v) / y_span * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{_esc(title)}</text>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - bottom}" stroke="#333"/>',
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{y_hi:.3g}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10">{y_lo:.3g}</text>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">step</text>',
    ]
    for si, (name, pts) in enumerate(points.items()):
        if not pts:
            continue
        color = colors[si % len(colors)]
        path = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in pts)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{color}"><title>{_esc(name)} step {x:g}: {v:.4g}</title></circle>'
            for x, v in pts
        ]
        parts.append(
            f'<text x="{width - right - 140}" y="{top + 14 * (si + 1)}" font-size="11" fill="{color}">{_esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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
    from .generate_and_score import load_scored_records

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
                    + _video_cell(out, f"1_generate_score/{p['chosen_media']}", "chosen")
                    + _video_cell(out, f"1_generate_score/{p['rejected_media']}", "rejected")
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


# --------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="outputs/quickstart", help="output folder (recreated on every run)")
    parser.add_argument("--model", default=None, help="CogVideoX folder or repo id (default: tiny random weights)")
    parser.add_argument("--scorer", default=None, help="VisionReward video folder or repo id (default: tiny random)")
    parser.add_argument(
        "--prompts", default=None, help="a .txt file with one prompt a line (default: 3 built-in prompts)"
    )
    parser.add_argument("--samples-per-prompt", type=int, default=4)
    parser.add_argument("--num-frames", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--num-inference-steps", type=int, default=None)
    parser.add_argument("--pair-granularity", choices=["dimension", "sub_dimension", "question"], default="dimension")
    parser.add_argument("--pair-threshold", type=float, default=None)
    parser.add_argument("--pair-scores", choices=["official", "soft"], default=None)
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--lora-r", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    config = QuickstartConfig(
        out=args.out,
        model=args.model,
        scorer=args.scorer,
        samples_per_prompt=args.samples_per_prompt,
        num_frames=args.num_frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.num_inference_steps,
        pair_granularity=args.pair_granularity,
        pair_threshold=args.pair_threshold,
        pair_scores=args.pair_scores,
        train_steps=args.train_steps,
        learning_rate=args.learning_rate,
        beta=args.beta,
        lora_r=args.lora_r,
        seed=args.seed,
        device=args.device,
    )
    if args.prompts:
        from .commands.generate_score import read_prompts

        config.prompts = read_prompts(args.prompts)
    quickstart = Quickstart(config, progress=not args.no_progress)
    ok = quickstart.run()
    print(f"report: {Path(config.out) / 'report.html'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vr-quickstart", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
