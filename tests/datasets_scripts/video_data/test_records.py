"""The Clip record: one definition, round trip through Parquet, bad rows refused."""

from __future__ import annotations

import math

import pytest

from datasets_scripts.visionrewarddb import write_parquet
from diffusers_cogvideox.records import Clip, clips_to_dataset, load_clips


def test_clip_round_trips_through_parquet(tmp_path):
    clips = [
        Clip(
            "a",
            "clips/a.mp4",
            "a cat",
            6.125,
            8.0,
            49,
            720,
            480,
            "train",
            "raw.mp4",
            0,
            49,
            0.0,
            6.125,
            {"motion": 0.1, "cuts": 0.0},
        ),
        Clip("b", "clips/b.mp4", "a dog", 1.0, 8.0, 9, 64, 48, "validation", scores={"motion": 0.2}),
    ]
    write_parquet(clips_to_dataset(clips), tmp_path / "data" / "train-00000-of-00001.parquet")
    back = load_clips(tmp_path)
    assert back[0] == clips[0]
    assert back[1].scores["motion"] == pytest.approx(0.2) and math.isnan(back[1].scores["cuts"])
    assert back[1].size == (64, 48)
    assert [c.clip_id for c in load_clips(tmp_path, split="validation")] == ["b"]


def test_bad_clip_rows_are_refused():
    with pytest.raises(ValueError, match="split must be one of"):
        Clip("a", "a.mp4", split="dev")
    with pytest.raises(ValueError, match="inside the dataset folder"):
        Clip("a", "../a.mp4")
    with pytest.raises(ValueError, match=r"needs \['media'\]"):
        Clip.from_row({"clip_id": "a"})
