"""Clip filtering in two steps: score every clip once (resumable), then apply thresholds (re-runnable, no rescoring).

The CogVideoX paper drops clips with negative labels (editing, lack of motion connectivity, low quality, lecture type,
text dominated, noisy screenshots; six trained Video-LLaMA classifiers) and thresholds optical-flow and aesthetic
scores "dynamically" (Sec. 2.3 / App. K; no scorer or value is published except aesthetic >= 4.5). Here each signal is
a score column (``Clip.scores``) computed from the decoded clip, and a rule set turns scores into keep / drop:

==================  ====================================================================================  ============
score               how (frames at ``analysis_width`` px wide, ``num_samples`` positions spread over the clip)  unit
==================  ====================================================================================  ============
``motion``          median over frame pairs ``(i, i+1)`` of the mean Farneback optical-flow magnitude,     frame widths
                    x fps / width (pairs across a detected cut are skipped)                               per second
``still_fraction``  share of those pairs moving less than ``STILL_MOTION`` (0.005 widths/s)                0..1
``cuts``            hard cuts over all consecutive frames (:mod:`.scenes`, PySceneDetect's content metric)  count
``sharpness``       median variance of the Laplacian of the grey frame (0-255)                            grey levels^2
``text_fraction``   median share of the frame covered by text-like boxes (:class:`MorphologicalTextDetector`)  0..1
``aesthetic``       a pluggable model (``aesthetic_scorer``); NaN when none is given                      the model's
``neg_<label>``     P(yes) of a yes/no question per negative label, asked to a VLM (``NegativeLabelScorer``)  0..1
==================  ====================================================================================  ============

Optical flow is OpenCV's Farneback rather than torchvision's RAFT: it needs no weights (none may be downloaded here),
runs on CPU at a few milliseconds per pair at analysis size, and a whole-frame motion statistic does not need RAFT's
per-pixel accuracy. Text detection has no shippable learned model either (OpenCV's EAST/DB detectors need weight
files), so the default is a classical rule (morphological gradient, Otsu, horizontal closing, line-shaped components);
any ``frames -> fraction`` callable can replace it, as can the aesthetic model (``module:callable`` on the CLI).

Rules (:class:`FilterRules`), checked in this order; a clip is dropped by the first that fails and its rejects row
lists every failing rule: ``slideshow`` (cuts >= 1 and still_fraction >= max_still_fraction: stills spliced
together, "lack of motion connectivity"), ``static`` (motion < min_motion), ``editing`` (cuts > max_cuts),
``blurry`` (sharpness < min_sharpness), ``text_dominated`` (text_fraction > max_text_fraction), ``aesthetic``
(aesthetic < min_aesthetic), ``negative_label:<label>`` (P(yes) > max_negative_probability). A threshold may be a
number or a percentile of the job's scores (``"p10"``: the 10th percentile, the paper's dynamic thresholds).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .jobs import (
    Item,
    StageSummary,
    claim_job,
    job_settings,
    open_job,
    pending_rejects,
    results,
    run_stage,
)
from .media import ClipError, analysis_frame, is_image, probe, read_frames
from .scenes import content_scores, detect_cuts

STILL_MOTION = 0.005  # frame widths per second below which a pair of frames counts as still
NEGATIVE_LABELS_FILE = "negative_labels.json"

TextDetector = Callable[[np.ndarray], float]  # one RGB frame -> share of its area covered by text
AestheticScorer = Callable[[list], float]  # the clip's sampled PIL frames -> one aesthetic score


@dataclass(frozen=True)
class ScoreConfig:
    """What decides the scores (recorded in the folder's manifest: a rerun with other settings is refused)."""

    analysis_width: int = 256
    num_samples: int = 8
    cut_threshold: float = 27.0
    text_detector: str = "morphological"
    aesthetic_model: str | None = None
    vlm: str | None = None


# ------------------------------------------------------------------------------------------------ text detector
class MorphologicalTextDetector:
    """Share of the frame covered by text lines, from stroke-shaped gradient components.

    Text is dense, high-contrast strokes arranged in lines: the morphological gradient (3x3) binarised with Otsu
    picks strokes, a horizontal closing (9x1) joins the letters of a line, and a component counts as text when it is
    line-shaped (height 5 px .. 12% of the frame + 6 px, at least twice as wide as high) and its stroke density lies
    in 0.2..0.9 (filled shapes and isolated edges fall outside).
    """

    def __call__(self, frame: np.ndarray) -> float:
        import cv2

        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        gradient = cv2.morphologyEx(grey, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        _, strokes = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        lines = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
        count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
        height = grey.shape[0]
        mask = np.zeros(grey.shape, dtype=bool)
        for x, y, w, h, _area in stats[1:count]:
            if 5 <= h <= 0.12 * height + 6 and w >= 2 * h and w >= 12:
                density = float((strokes[y : y + h, x : x + w] > 0).mean())
                if 0.2 <= density <= 0.9:
                    mask[y : y + h, x : x + w] = True
        return float(mask.mean())


def load_plugin(spec: str) -> Callable:
    """``"package.module:name"`` -> the object (called with no arguments first when it is a class or factory
    marked by a trailing ``()``)."""
    call = spec.endswith("()")
    module_name, _, name = spec.removesuffix("()").partition(":")
    if not module_name or not name:
        raise ValueError(f"a plug-in is given as 'package.module:name' (or 'package.module:Factory()'); got {spec!r}")
    obj = getattr(importlib.import_module(module_name), name)
    return obj() if call else obj


def text_detector_from(spec: str) -> TextDetector:
    return MorphologicalTextDetector() if spec == "morphological" else load_plugin(spec)


# ------------------------------------------------------------------------------------------------ negative labels
def negative_label_questions() -> dict[str, str]:
    """``{label: yes/no question}`` for the paper's six negative labels (package data, ``negative_labels.json``)."""
    from importlib import resources

    data = json.loads(resources.files(__package__).joinpath("data", NEGATIVE_LABELS_FILE).read_text("utf-8"))
    return dict(data["questions"])


class NegativeLabelScorer:
    """P(yes) per negative label from any VLM, through the checklist scorer's machinery: the labels form a yes/no
    checklist answered over one shared encoding of the clip's frames (the official one-frame-per-second sampling)."""

    def __init__(self, scorer: Any, questions: Mapping[str, str] | None = None):
        self.scorer = scorer
        self.questions = dict(questions or negative_label_questions())

    @classmethod
    def from_model(cls, model: str | None, device: str = "cpu") -> NegativeLabelScorer:
        """``model``: a VisionReward-layout folder / repo id, or ``"tiny"`` (random tiny Qwen2-VL, offline)."""
        from trl_vision_reward.reward.checklist import Checklist
        from trl_vision_reward.reward.scoring import VisionRewardScorer

        questions = negative_label_questions()
        checklist = Checklist.from_questions(list(questions.values()), modality="video", name="negative-labels")
        if model is None or model == "tiny":
            from trl_vision_reward.reward.tiny import tiny_qwen2_vl

            backbone, processor = tiny_qwen2_vl()
            return cls(VisionRewardScorer(backbone.to(device), processor, checklist=checklist), questions)
        base = VisionRewardScorer.from_pretrained(model, device=device)
        return cls(VisionRewardScorer(base.backbone, base.processor, checklist=checklist), questions)

    def __call__(self, path: str | Path) -> dict[str, float]:
        images = self.scorer.processor.load_media(str(path), "video")
        read = self.scorer.answer_batched(images, list(self.questions.values()))
        return {f"neg_{label}": float(p) for label, p in zip(self.questions, read["p_yes"].tolist())}


# ------------------------------------------------------------------------------------------------ scoring
def sample_positions(num_frames: int, num_samples: int) -> list[int]:
    """``num_samples`` frame indices spread evenly over a clip, each with a following frame (for a flow pair)."""
    if num_frames < 2:
        return [0]
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 2, min(num_samples, num_frames - 1))})


def farneback_motion(a: np.ndarray, b: np.ndarray) -> float:
    """Mean optical-flow magnitude (pixels) from ``a`` to ``b`` (OpenCV Farneback, standard parameters)."""
    import cv2

    grey_a, grey_b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (a, b))
    flow = cv2.calcOpticalFlowFarneback(grey_a, grey_b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return float(np.linalg.norm(flow, axis=-1).mean())


def laplacian_variance(frame: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@dataclass
class ClipScorer:
    """Scores one clip (a video or an image file); see the module docstring for what each score means."""

    config: ScoreConfig = field(default_factory=ScoreConfig)
    text_detector: TextDetector | None = None
    aesthetic_scorer: AestheticScorer | None = None
    negative_labels: NegativeLabelScorer | None = None

    def __post_init__(self) -> None:
        if self.text_detector is None:
            self.text_detector = text_detector_from(self.config.text_detector)

    def __call__(self, path: str | Path) -> dict[str, Any]:
        from PIL import Image

        path = Path(path)
        if is_image(path):
            frame = np.asarray(Image.open(path).convert("RGB"))
            info = {"fps": 0.0, "num_frames": 1, "width": frame.shape[1], "height": frame.shape[0]}
            frames, cut_scores = {0: frame}, []
            positions: list[int] = []
        else:
            video = probe(path)
            info = {"fps": video.fps, "num_frames": video.num_frames, "width": video.width, "height": video.height}
            positions = sample_positions(video.num_frames, self.config.num_samples)
            wanted = {p for i in positions for p in (i, i + 1)}
            all_frames = read_frames(path)  # clips are short: one decode serves the cut scan and the samples
            if len(all_frames) < 1:
                raise ClipError(f"video {path.name!r} decodes no frames")
            cut_scores = content_scores(all_frames[i] for i in sorted(all_frames))
            frames = {i: all_frames[i] for i in wanted if i in all_frames}
        width = min(self.config.analysis_width, info["width"])
        small = {i: analysis_frame(f, width) for i, f in frames.items()}
        cuts = detect_cuts(cut_scores, self.config.cut_threshold)
        pair_motion = [
            farneback_motion(small[i], small[i + 1]) * info["fps"] / width
            for i in positions
            if i + 1 in small and (i + 1) not in cuts
        ]
        singles = [small[i] for i in (positions or [0]) if i in small]
        scores = {
            "motion": float(np.median(pair_motion)) if pair_motion else 0.0,
            "still_fraction": float(np.mean([m < STILL_MOTION for m in pair_motion])) if pair_motion else 1.0,
            "cuts": float(len(cuts)),
            "sharpness": float(np.median([laplacian_variance(f) for f in singles])),
            "text_fraction": float(np.median([self.text_detector(f) for f in singles])),
            "aesthetic": math.nan,
        }
        if self.aesthetic_scorer is not None:
            scores["aesthetic"] = float(self.aesthetic_scorer([Image.fromarray(frames[i]) for i in sorted(frames)]))
        if self.negative_labels is not None:
            scores.update(self.negative_labels(path))
        return {**info, "duration": info["num_frames"] / info["fps"] if info["fps"] else 0.0, "scores": scores}


# ------------------------------------------------------------------------------------------------ rules
Threshold = float | str | None


@dataclass(frozen=True)
class FilterRules:
    """Thresholds; each is a number, a percentile of the job's scores (``"p10"``) or ``None`` (rule off)."""

    max_still_fraction: Threshold = 0.5
    min_motion: Threshold = 0.01
    max_cuts: Threshold = 0
    min_sharpness: Threshold = 20.0
    max_text_fraction: Threshold = 0.15
    min_aesthetic: Threshold = None
    max_negative_probability: Threshold = 0.5
    min_duration: Threshold = None


RULE_ORDER = ("slideshow", "static", "editing", "blurry", "text_dominated", "aesthetic", "too_short")


def parse_threshold(value: Any) -> Threshold:
    """``None``/"none"/"off" -> None; "p10" -> "p10" (checked); anything else -> float."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "off", "")):
        return None
    if isinstance(value, str) and value.lower().startswith("p"):
        q = float(value[1:])
        if not 0 <= q <= 100:
            raise ValueError(f"a percentile threshold is p0..p100; got {value!r}")
        return f"p{value[1:]}"
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"a threshold is a number, a percentile like 'p10', or 'none'; got {value!r}") from None


def resolve_thresholds(rules: FilterRules, rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Numbers for every threshold; percentiles are taken over the job's scored clips (NaNs ignored)."""
    score_of = {
        "max_still_fraction": "still_fraction",
        "min_motion": "motion",
        "max_cuts": "cuts",
        "min_sharpness": "sharpness",
        "max_text_fraction": "text_fraction",
        "min_aesthetic": "aesthetic",
        "min_duration": "duration",
    }
    out: dict[str, float | None] = {}
    for name, raw in asdict(rules).items():
        value = parse_threshold(raw)
        if isinstance(value, str):
            if name == "max_negative_probability":
                values = [v for r in rows for k, v in r["scores"].items() if k.startswith("neg_")]
            else:
                key = score_of[name]
                values = [r["duration"] if key == "duration" else r["scores"].get(key, math.nan) for r in rows]
            values = [v for v in values if v is not None and not math.isnan(v)]
            if not values:
                raise ValueError(
                    f"{name}={raw!r}: the job has no {name.split('_', 1)[1]} scores to take a percentile of"
                )
            value = float(np.percentile(values, float(value[1:])))
        out[name] = value
    if out["min_aesthetic"] is not None and all(math.isnan(r["scores"].get("aesthetic", math.nan)) for r in rows):
        raise ValueError("min_aesthetic is set but no clip has an aesthetic score: score with --aesthetic-model")
    return out


def failing_rules(row: Mapping[str, Any], t: Mapping[str, float | None]) -> list[str]:
    """Every rule a scored clip fails, in :data:`RULE_ORDER` then negative labels by name."""
    s = row["scores"]
    failed = []
    if t["max_still_fraction"] is not None and s["cuts"] >= 1 and s["still_fraction"] >= t["max_still_fraction"]:
        failed.append("slideshow")
    if t["min_motion"] is not None and row["num_frames"] > 1 and s["motion"] < t["min_motion"]:
        failed.append("static")
    if t["max_cuts"] is not None and s["cuts"] > t["max_cuts"]:
        failed.append("editing")
    if t["min_sharpness"] is not None and s["sharpness"] < t["min_sharpness"]:
        failed.append("blurry")
    if t["max_text_fraction"] is not None and s["text_fraction"] > t["max_text_fraction"]:
        failed.append("text_dominated")
    if t["min_aesthetic"] is not None and not (s.get("aesthetic", math.nan) >= t["min_aesthetic"]):
        failed.append("aesthetic")
    if t["min_duration"] is not None and row["duration"] < t["min_duration"]:
        failed.append("too_short")
    if t["max_negative_probability"] is not None:
        failed += [
            f"negative_label:{k[4:]}"
            for k, v in s.items()
            if k.startswith("neg_") and v > t["max_negative_probability"]
        ]
    return failed


def apply_rules(
    rows: Sequence[Mapping[str, Any]], rules: FilterRules = FilterRules()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, float | None]]:
    """``(kept, dropped, thresholds)``: dropped rows carry ``rule`` (the first failing) and ``failed_rules``."""
    thresholds = resolve_thresholds(rules, rows)
    kept, dropped = [], []
    for row in rows:
        failed = failing_rules(row, thresholds)
        if failed:
            dropped.append({**row, "rule": failed[0], "failed_rules": failed})
        else:
            kept.append(dict(row))
    return kept, dropped, thresholds


# ------------------------------------------------------------------------------------------------ the job
def filter_items(clips: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Items from clip inputs: dicts with ``path`` (to open), ``media`` (relative name) and optional Clip fields."""
    seen: set[str] = set()
    items = []
    for index, clip in enumerate(clips):
        clip_id = str(clip["clip_id"])
        if clip_id in seen:
            raise ValueError(f"clip id {clip_id!r} appears twice in the input")
        seen.add(clip_id)
        items.append(Item(clip_id, index, dict(clip)))
    return items


def run_filter_scores(
    clips: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    scorer: ClipScorer,
    *,
    state: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    force: bool = False,
) -> StageSummary:
    """Score every clip not scored yet (this process's share); :func:`collect_filter` applies the rules."""
    from accelerate import PartialState

    state = state or PartialState()
    items = filter_items(clips)
    inputs = [c.get("path") for c in clips]
    claim_job(out_dir, "filter", asdict(scorer.config), state, inputs=inputs, overwrite=overwrite, force=force)

    def work(item: Item) -> list[dict[str, Any]]:
        measured = scorer(item.payload["path"])
        base = {k: v for k, v in item.payload.items() if k != "path"}
        scores = {**base.get("scores", {}), **measured["scores"]}
        return [{**base, **measured, "clip_id": item.item_id, "source_path": item.payload["path"], "scores": scores}]

    return run_stage(items, work, out_dir, desc="filter", state=state, progress=progress)


def scored_rows(out_dir: str | Path) -> list[dict[str, Any]]:
    return results(out_dir)


def collect_filter(
    out_dir: str | Path, rules: FilterRules = FilterRules(), *, media_root: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Apply ``rules`` to the job's scores and write the kept clips (``data/``, media under ``clips/``), the rejects
    table (``rejects.parquet`` + ``rejects.jsonl``: every score and the rule that dropped the clip), ``rules.json``
    and ``README.md``. Re-runnable with other rules: nothing is rescored. Returns counts and thresholds."""
    from diffusers_cogvideox.records import Clip, clips_to_dataset

    from ..files import write_jsonl
    from ..visionrewarddb import write_parquet
    from .cards import render_stage_card
    from .media import link_or_copy

    out_dir = Path(out_dir)
    with open_job(out_dir, "filter") as folder:  # an --overwrite's earlier output is deleted on success
        rows = scored_rows(out_dir)
        unreadable = [{**r, "rule": "unreadable"} for r in pending_rejects(out_dir)]
        if not rows:
            raise ValueError(f"no scored clips in {out_dir.name!r}: run the scoring first (or every clip failed)")
        kept, dropped, thresholds = apply_rules(rows, rules)
        clips = []
        for row in kept:
            rel = Path("clips") / f"{row['clip_id']}{Path(row['media']).suffix or '.mp4'}"
            link_or_copy(row["source_path"], folder.path(rel))
            fields = {k: v for k, v in row.items() if k in Clip.__dataclass_fields__}
            clips.append(Clip(**{**fields, "media": rel.as_posix()}))
        remove_stale_media(folder, {c.media for c in clips})  # clips an earlier apply kept and these rules drop
        data = "data/train-00000-of-00001.parquet"
        if clips:
            write_parquet(clips_to_dataset(clips), folder.path(data))
        else:
            (out_dir / data).unlink(missing_ok=True)  # ours (recorded), from an earlier apply
        reject_rows = [
            {
                "clip_id": r["clip_id"],
                "media": r.get("media", ""),
                "rule": r["rule"],
                "failed_rules": r.get("failed_rules", [r["rule"]]),
                "reason": r.get("reason", ""),
                **{f"score_{k}": v for k, v in r.get("scores", {}).items()},
            }
            for r in [*dropped, *unreadable]
        ]
        write_jsonl(folder.path("rejects.jsonl"), reject_rows)
        _write_rejects_parquet(folder, "rejects.parquet", reject_rows)
        folder.write_text(
            "rules.json", json.dumps({"rules": asdict(rules), "thresholds": thresholds}, indent=2, default=str) + "\n"
        )
        summary = {"scored": len(rows), "kept": len(kept), "dropped": len(dropped), "unreadable": len(unreadable)}
        by_rule: dict[str, int] = {}
        for r in reject_rows:
            by_rule[r["rule"]] = by_rule.get(r["rule"], 0) + 1
        job = job_settings(folder)
        card = render_stage_card(
            pretty_name="CogVideoX clips (filtered)",
            summary=(
                f"{len(kept)} of {len(rows) + len(unreadable)} clips kept by `vr-datasets filter` (scores as columns; "
                "the dropped ones are in `rejects.parquet` with every score and the rule that dropped them)."
            ),
            num_rows=len(kept),
            features=clips_to_dataset(clips).features if clips else None,
            settings={
                **job,
                **{f"threshold {k}": v for k, v in thresholds.items()},
            },
            statistics={**summary, **{f"dropped by {k}": v for k, v in sorted(by_rule.items())}},
            rejects=reject_rows,
            random_data=job.get("vlm") == "tiny",
        )
        folder.write_text("README.md", str(card))
        return {**summary, "by_rule": by_rule, "thresholds": thresholds}


def remove_stale_media(folder: Any, keep: set[str], media_dir: str = "clips") -> None:
    """Delete the media an earlier apply placed under ``media_dir`` that is not in ``keep`` (recorded files only;
    they stay in the manifest, so a later apply that keeps them again may write them back)."""
    for name in folder.manifest["files"]:
        if name.startswith(f"{media_dir}/") and name not in keep:
            (folder.root / name).unlink(missing_ok=True)


def _write_rejects_parquet(folder: Any, name: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with folder.atomic(name) as tmp:
        pq.write_table(pa.Table.from_pylist(rows) if rows else pa.table({"clip_id": pa.array([], pa.string())}), tmp)
