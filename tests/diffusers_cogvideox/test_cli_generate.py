"""``cogvideox generate``: the tiny random default, a local model folder, image- and video-to-video."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from diffusers_cogvideox import cli
from diffusers_cogvideox.errors import UsageError
from diffusers_cogvideox.tiny import save_tiny_hub_folder
from diffusers_cogvideox.video_io import export_to_video, load_video

FAST = ["--steps", "2"]


def test_no_model_runs_the_tiny_default_and_says_its_output_is_noise(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert cli.main(["generate", "--out", str(out), *FAST]) == 0
    stdout = capsys.readouterr().out
    assert "random weights, output is noise" in stdout
    assert f"wrote {out}" in stdout
    frames = load_video(out)
    assert len(frames) == 9 and frames[0].size == (32, 32)


def test_progress_bar_is_shown(tmp_path, capsys):
    cli.main(["generate", "--out", str(tmp_path / "clip.mp4"), *FAST])
    assert "2/2" in capsys.readouterr().err


def test_local_model_folder_with_options(tmp_path, capsys):
    folder = save_tiny_hub_folder(tmp_path / "model", "5b")
    out = tmp_path / "clip.mp4"
    argv = ["generate", "--model", str(folder), "--out", str(out), "--num-frames", "17", "--height", "16",
            "--width", "32", "--scheduler", "dpm", "--dynamic-cfg", "--num-videos", "2", "--fps", "4", *FAST]  # fmt: skip
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "random weights" not in stdout
    assert len(load_video(out)) == 17 and load_video(out)[0].size == (32, 16)
    assert (tmp_path / "clip_1.mp4").exists()


def test_image_to_video(tmp_path):
    image = tmp_path / "first.png"
    PIL.Image.fromarray(np.full((16, 16, 3), 200, dtype=np.uint8)).save(image)
    out = tmp_path / "i2v.mp4"
    assert (
        cli.main(["generate", "--image", str(image), "--out", str(out), "--height", "16", "--width", "16", *FAST]) == 0
    )
    assert len(load_video(out)) == 17


def test_video_to_video_takes_the_longest_valid_prefix(tmp_path, capsys):
    source = tmp_path / "in.mp4"
    export_to_video(np.random.default_rng(0).random((12, 32, 32, 3)), source)
    out = tmp_path / "v2v.mp4"
    assert cli.main(["generate", "--video", str(source), "--strength", "0.5", "--out", str(out), *FAST]) == 0
    assert "first 9 of the video's 12 frames" in capsys.readouterr().out
    assert len(load_video(out)) == 9


def test_too_short_video_is_refused(tmp_path):
    source = tmp_path / "in.mp4"
    export_to_video(np.zeros((5, 32, 32, 3)), source)
    with pytest.raises(UsageError, match="has 5 frames; CogVideoX 1.0 needs 8\\*k\\+1"):
        cli.main(["generate", "--video", str(source), "--out", str(tmp_path / "x.mp4"), *FAST])


def test_bad_frame_count_is_a_clear_error(tmp_path):
    with pytest.raises(
        ValueError, match=r"num_frames must be 8\*k\+1 \(9, 17, \.\.\., 49\) for CogVideoX 1\.0; got 10"
    ):
        cli.main(["generate", "--num-frames", "10", "--out", str(tmp_path / "x.mp4"), *FAST])


def test_image_and_video_together_are_refused(tmp_path):
    with pytest.raises(UsageError, match="not both"):
        cli.main(["generate", "--image", "a.png", "--video", "b.mp4", "--out", str(tmp_path / "x.mp4")])
