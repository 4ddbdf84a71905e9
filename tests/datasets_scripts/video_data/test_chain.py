"""raw videos -> split -> filter -> caption -> the SFT dataset, as a user runs it: subprocesses chained from files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from diffusers_cogvideox.records import load_clips

from . import synthetic


def vr(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}  # the user's view: one-line errors
    return subprocess.run(
        [sys.executable, "-m", "datasets_scripts.cli", *args, "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_raw_videos_to_sft_dataset(tmp_path):
    raw = tmp_path / "raw"
    # one long video: moving scene (20 frames), hard cut, moving scene (30), a still scene (12), a short tail (5)
    synthetic.write(
        synthetic.moving(0, 20) + synthetic.moving(5, 30, (-2, 1)) + synthetic.static(9, 12) + synthetic.moving(3, 5),
        raw / "long.mp4",
    )
    synthetic.write(synthetic.text_heavy(1, 20), raw / "slides.mp4")
    (raw / "broken.mp4").write_bytes(b"not a video")

    split = vr("split", "--videos", str(raw), "--out", str(tmp_path / "split"), "--num-frames", "9")
    assert split.returncode == 0, split.stderr
    clips = load_clips(tmp_path / "split")
    assert len(clips) == 8 and all(c.num_frames == 9 and c.fps == 8 for c in clips)

    filtered = vr("filter", "--clips", str(tmp_path / "split"), "--out", str(tmp_path / "filter"))
    assert filtered.returncode == 0, filtered.stderr
    kept = load_clips(tmp_path / "filter")
    assert {c.source for c in kept} == {"long.mp4"} and all(c.scores["motion"] > 0.01 for c in kept)

    sft = vr("caption", "--clips", str(tmp_path / "filter"), "--out", str(tmp_path / "sft"), "--truncated", "keep")
    assert sft.returncode == 0, sft.stderr
    dataset = load_clips(tmp_path / "sft")
    assert [c.clip_id for c in dataset] == [c.clip_id for c in kept]
    assert all(c.caption and (tmp_path / "sft" / c.media).is_file() for c in dataset)
    assert "Made with random weights" in (tmp_path / "sft" / "README.md").read_text()

    # bad input: one line, exit status 2
    bad = vr("split", "--videos", str(raw), "--out", str(tmp_path / "split"), "--num-frames", "50")
    assert bad.returncode == 2, bad.stderr
    assert "num_frames must be 4*k+1" in bad.stderr and "Traceback" not in bad.stderr
