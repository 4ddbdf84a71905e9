"""Splitting raw videos: cuts at the true frames, windows of exactly the model's frame count, frame-accurate times."""

from __future__ import annotations

import imageio.v2 as imageio
import pytest

from datasets_scripts.video_data.media import ClipError
from datasets_scripts.video_data.split import SplitConfig, collect_split, plan_windows, run_split, split_video
from diffusers_cogvideox.records import load_clips

from . import synthetic


def test_windows_sample_the_source_by_nearest_timestamp():
    plans, short = plan_windows([(0, 40), (40, 45)], source_fps=24.0, config=SplitConfig(num_frames=5, fps=8.0))
    # 24 -> 8 fps: every third source frame; a window covers 13 source frames, the next starts 15 later
    assert [p.source_indices for p in plans] == [(0, 3, 6, 9, 12), (15, 18, 21, 24, 27)]
    assert short == [{"scene": 1, "start_frame": 40, "end_frame": 45, "frames": 5}]
    with pytest.raises(ValueError, match=r"num_frames must be 4\*k\+1"):
        SplitConfig(num_frames=50)


def test_split_cuts_at_scene_changes_with_exact_frame_ranges(tmp_path):
    raw = synthetic.moving(0, 20) + synthetic.moving(5, 30, (-2, 1)) + synthetic.moving(9, 5)
    synthetic.write(raw, tmp_path / "raw.mp4")
    rows = split_video(tmp_path / "raw.mp4", "raw.mp4", tmp_path / "out", SplitConfig(num_frames=9, fps=8))
    clips = [r for r in rows if r["kind"] == "clip"]
    assert [(c["source_start_frame"], c["source_end_frame"]) for c in clips] == [
        (0, 9),
        (9, 18),
        (20, 29),
        (29, 38),
        (38, 47),
    ]
    assert [c["start_time"] for c in clips] == [0.0, 1.125, 2.5, 3.625, 4.75]
    short = [r for r in rows if r["kind"] == "short_scene"]
    assert [(r["start_frame"], r["end_frame"]) for r in short] == [(50, 55)] and "shorter than one clip" in short[0][
        "reason"
    ]
    with imageio.get_reader(str(tmp_path / "out" / clips[2]["media"]), format="FFMPEG") as reader:
        assert reader.count_frames() == 9 and reader.get_meta_data()["fps"] == 8
    with pytest.raises(ClipError, match="below the clips' 16 fps"):
        split_video(tmp_path / "raw.mp4", "raw.mp4", tmp_path / "out2", SplitConfig(num_frames=9, fps=16))


def test_split_job_resumes_and_refuses_other_settings(tmp_path):
    for i in range(2):
        synthetic.write(synthetic.moving(i, 20), tmp_path / "raw" / f"{i}.mp4")
    videos = [(p, p.name) for p in sorted((tmp_path / "raw").glob("*.mp4"))]
    config = SplitConfig(num_frames=9, fps=8)
    first = run_split(videos[:1], tmp_path / "job", config, progress=False)
    second = run_split(videos, tmp_path / "job", config, progress=False)
    assert (first.done, second.skipped, second.done) == (1, 1, 1)
    collect_split(tmp_path / "job", config)
    clips = load_clips(tmp_path / "job")
    assert len(clips) == 4 and len({c.clip_id for c in clips}) == 4
    with pytest.raises(ValueError, match=r"num_frames: 9 -> 13"):  # the output policy names the differing key
        run_split(videos, tmp_path / "job", SplitConfig(num_frames=13, fps=8), progress=False)


def test_split_job_follows_the_output_policy(tmp_path):
    """A folder of someone else's files is refused; --overwrite replaces exactly what the earlier run wrote."""
    from diffusers_cogvideox.errors import OutputExistsError

    synthetic.write(synthetic.moving(0, 20), tmp_path / "raw" / "0.mp4")
    videos = [(tmp_path / "raw" / "0.mp4", "0.mp4")]
    config = SplitConfig(num_frames=9, fps=8)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="no manifest"):
        run_split(videos, tmp_path / "theirs", config, progress=False)
    assert sorted(p.name for p in (tmp_path / "theirs").iterdir()) == ["notes.txt"]

    run_split(videos, tmp_path / "job", config, progress=False)
    collect_split(tmp_path / "job", config)
    (tmp_path / "job" / "clips" / "extra.txt").write_text("added by the user")
    before = sorted(p.relative_to(tmp_path / "job").as_posix() for p in (tmp_path / "job").rglob("*") if p.is_file())
    again = run_split(videos, tmp_path / "job", config, progress=False, overwrite=True)
    assert (again.skipped, again.done) == (0, 1)  # started afresh: nothing was taken from the earlier run
    collect_split(tmp_path / "job", config)
    after = sorted(p.relative_to(tmp_path / "job").as_posix() for p in (tmp_path / "job").rglob("*") if p.is_file())
    assert after == before and (tmp_path / "job" / "clips" / "extra.txt").read_text() == "added by the user"
    assert len(load_clips(tmp_path / "job")) == 2
