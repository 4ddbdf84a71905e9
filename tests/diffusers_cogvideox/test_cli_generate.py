"""``cogvideox generate``: the trained tiny world by default, ``--model random``, a local model folder, image- and
video-to-video (random tiny variants with no ``--model``)."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from diffusers_cogvideox import cli, tiny
from diffusers_cogvideox.errors import UsageError
from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS, save_tiny_hub_folder
from diffusers_cogvideox.video_io import export_to_video, load_video

FAST = ["--steps", "2"]


@pytest.fixture
def loaded(monkeypatch):
    """The pipelines the command builds, by which builder built them."""
    built = {}
    for name in ("tiny_world_pipeline", "tiny_pipeline"):
        original = getattr(tiny, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            built[_name] = _original(*args, **kwargs)
            return built[_name]

        monkeypatch.setattr(tiny, name, spy)
    return built


def _world_transformer_config():
    import json

    return json.loads((tiny.tiny_world_folder() / "transformer" / "config.json").read_text())


def test_no_model_runs_the_trained_tiny_world(tmp_path, capsys, loaded):
    out = tmp_path / "clip.mp4"
    assert cli.main(["generate", "--out", str(out)]) == 0  # the world's own steps, resolution, guidance and prompt
    captured = capsys.readouterr()
    assert "tiny world shipped with the package" in captured.out and "procedural clips" in captured.out
    assert "random" not in captured.out.lower()
    assert f"{TINY_WORLD_STEPS}/{TINY_WORLD_STEPS}" in captured.err
    assert list(loaded) == ["tiny_world_pipeline"]
    pipe = loaded["tiny_world_pipeline"]
    shipped = {k: v for k, v in _world_transformer_config().items() if not k.startswith("_")}
    assert {k: pipe.transformer.config[k] for k in shipped} == shipped
    assert pipe.transformer.config.num_layers != tiny.TINY_TRANSFORMER_CONFIGS["2b"]["num_layers"]
    frames = load_video(out)
    shape = TINY_WORLD_RESOLUTION
    assert (len(frames), frames[0].size) == (shape["num_frames"], (shape["width"], shape["height"])) == (9, (32, 32))


def test_tiny_world_defaults_reach_the_pipeline(tmp_path, monkeypatch):
    """Prompt, guidance 1 (no CFG pass), steps and size of the world when not given; flags still win."""
    from diffusers_cogvideox import CogVideoXPipeline
    from diffusers_cogvideox.commands import generate

    calls = []
    original = CogVideoXPipeline.__call__

    def recording(self, **kwargs):
        calls.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(CogVideoXPipeline, "__call__", recording)
    assert cli.main(["generate", "--out", str(tmp_path / "a.mp4"), *FAST]) == 0
    assert cli.main(["generate", "--out", str(tmp_path / "b.mp4"), "--prompt", "a blue square on a white background",
                     "--guidance-scale", "3", *FAST]) == 0  # fmt: skip
    first, second = calls
    assert first["prompt"] == generate.WORLD_PROMPT == "a red circle on a grey background"
    assert first["guidance_scale"] == 1.0 and first["num_inference_steps"] == 2
    assert (first["num_frames"], first["height"], first["width"]) == (9, 32, 32)
    assert second["prompt"] == "a blue square on a white background" and second["guidance_scale"] == 3.0


def test_model_random_runs_the_random_tiny_pipeline_and_says_its_output_is_noise(tmp_path, capsys, loaded):
    out = tmp_path / "clip.mp4"
    assert cli.main(["generate", "--model", "random", "--out", str(out), *FAST]) == 0
    stdout = capsys.readouterr().out
    assert "random weights, output is noise" in stdout and "tiny world shipped" not in stdout
    assert f"wrote {out}" in stdout
    assert list(loaded) == ["tiny_pipeline"]
    assert loaded["tiny_pipeline"].transformer.config.in_channels == tiny.TINY_TRANSFORMER_CONFIGS["2b"]["in_channels"]
    frames = load_video(out)
    assert len(frames) == 9 and frames[0].size == (32, 32)


def test_the_tiny_world_is_text_to_video_only(tmp_path, capsys):
    image = tmp_path / "first.png"
    PIL.Image.fromarray(np.full((16, 16, 3), 200, dtype=np.uint8)).save(image)
    with pytest.raises(
        UsageError, match="--model tiny: the tiny world is text-to-video only; for i2v pass --model random"
    ):
        cli.main(["generate", "--model", "tiny", "--image", str(image), "--out", str(tmp_path / "x.mp4")])
    assert not (tmp_path / "x.mp4").exists()


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


def test_image_to_video_with_no_model_runs_the_random_tiny_i2v(tmp_path, capsys):
    image = tmp_path / "first.png"
    PIL.Image.fromarray(np.full((16, 16, 3), 200, dtype=np.uint8)).save(image)
    out = tmp_path / "i2v.mp4"
    assert (
        cli.main(["generate", "--image", str(image), "--out", str(out), "--height", "16", "--width", "16", *FAST]) == 0
    )
    stdout = capsys.readouterr().out
    assert "(1.5-5b-i2v) (the tiny world is text-to-video only)" in stdout and "output is noise" in stdout
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
