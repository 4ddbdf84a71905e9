"""The filter separates static, slideshow, cut, blurry and text-heavy clips from moving ones by its documented rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from datasets_scripts.video_data.filter import (
    ClipScorer,
    FilterRules,
    MorphologicalTextDetector,
    apply_rules,
    collect_filter,
    run_filter_scores,
)
from datasets_scripts.video_data.inputs import clip_inputs
from diffusers_cogvideox.records import load_clips

from . import synthetic

EXPECTED_RULE = {
    "static": "static",
    "cut": "editing",
    "slideshow": "slideshow",
    "blurry": "blurry",
    "text": "text_dominated",
}


@pytest.fixture(scope="module")
def scored(clip_set):
    scorer = ClipScorer()
    return {kind: [{**scorer(p), "clip_id": p.stem} for p in paths] for kind, paths in clip_set.items()}


def test_each_kind_is_dropped_by_its_rule_and_moving_clips_are_kept(scored):
    rows = [r for rows in scored.values() for r in rows]
    kept, dropped, _ = apply_rules(rows, FilterRules())
    assert sorted(r["clip_id"] for r in kept) == ["moving-0", "moving-1"]
    rule_of = {r["clip_id"]: r["rule"] for r in dropped}
    for kind, rule in EXPECTED_RULE.items():
        assert [rule_of[f"{kind}-{s}"] for s in (0, 1)] == [rule, rule], kind


def test_scores_measure_what_they_say(scored):
    moving, static = scored["moving"][0]["scores"], scored["static"][0]["scores"]
    # 3 px right + 1 px down per frame on a 128-px-wide frame at 8 fps: |(3, 1)| * 8 / 128 = 0.198 widths/s
    assert moving["motion"] == pytest.approx(0.198, rel=0.15)
    assert static["motion"] < 0.01 and static["still_fraction"] == 1.0
    assert [r["scores"]["cuts"] for r in scored["cut"]] == [1.0, 1.0]
    assert [r["scores"]["cuts"] for r in scored["slideshow"]] == [2.0, 2.0]
    assert max(r["scores"]["sharpness"] for r in scored["blurry"]) < min(
        r["scores"]["sharpness"] for r in scored["moving"]
    )
    assert math.isnan(moving["aesthetic"])


def test_text_detector_sees_text_pages_not_textures():
    detect = MorphologicalTextDetector()
    assert detect(synthetic.text_page(0)[: synthetic.H]) > 0.15
    assert detect(synthetic.moving(0, 1)[0]) < 0.1


def test_percentile_thresholds_follow_the_jobs_scores(scored):
    rows = scored["moving"] + scored["text"]  # motion: the text pages scroll slower than the textures move
    kept, dropped, thresholds = apply_rules(
        rows, FilterRules(min_motion="p50", max_text_fraction=None, min_sharpness=None)
    )
    assert thresholds["min_motion"] == pytest.approx(np.percentile([r["scores"]["motion"] for r in rows], 50))
    assert len(kept) == 2 and all(r["rule"] == "static" for r in dropped)
    with pytest.raises(ValueError, match="no aesthetic scores|no clip has an aesthetic"):
        apply_rules(rows, FilterRules(min_aesthetic=4.5))


def test_rejects_table_keeps_every_score_and_rules_reapply_without_rescoring(clip_set, tmp_path):
    calls = []
    base = ClipScorer()

    def counting(path):
        calls.append(path)
        return base(path)

    counting.config = base.config
    folder = clip_set["moving"][0].parent
    clips = clip_inputs(folder)
    out = tmp_path / "filter"
    run_filter_scores(clips, out, counting, progress=False)
    first = collect_filter(out, FilterRules())
    assert first["kept"] == 2 and len(calls) == len(clips)
    import pyarrow.parquet as pq

    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert {r["rule"] for r in rejects} == set(EXPECTED_RULE.values())
    assert all({"score_motion", "score_sharpness", "score_text_fraction", "score_cuts"} <= set(r) for r in rejects)
    # a rerun re-applies other thresholds and rescores nothing
    run_filter_scores(clips, out, counting, progress=False)
    second = collect_filter(out, FilterRules(max_text_fraction=None))
    assert len(calls) == len(clips)
    assert second["kept"] == 4 and second["by_rule"].get("text_dominated") is None
    kept = load_clips(out)
    assert sorted(c.clip_id.split("-")[0] for c in kept) == ["moving", "moving", "text", "text"]
    assert all((out / c.media).is_file() and c.scores["motion"] > 0.01 for c in kept)


def test_unreadable_clips_become_rejects_with_the_reason(tmp_path):
    folder = tmp_path / "in"
    synthetic.write(synthetic.moving(0), folder / "good.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "junk.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    summary = run_filter_scores(clip_inputs(folder), out, ClipScorer(), progress=False)
    assert (summary.done, summary.failed) == (1, 2)
    result = collect_filter(out)
    reasons = sorted(r["reason"] for r in summary.rejects)
    assert "empty video file 'empty.mp4' (0 bytes)" in reasons[0] and "unreadable video 'junk.mp4'" in reasons[1]
    assert result["unreadable"] == 2
