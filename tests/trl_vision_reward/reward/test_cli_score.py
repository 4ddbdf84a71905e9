"""``vision-reward score``: the tiny world's scorer by default (videos), the random tiny one for images or with
``--model random``, a saved scorer folder with --model, JSON/CSV files."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from tests.fixtures import save_tiny_vision_reward
from trl_vision_reward.cli import main


def _write_image(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def _write_video(path, frames=9, fps=4):
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1) as writer:
        for _ in range(frames):
            writer.append_data(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return path


def test_score_images_with_the_embedded_tiny_scorer(tmp_path, capsys):
    good = _write_image(tmp_path / "a.png")
    (tmp_path / "empty.png").write_bytes(b"")
    out_json, out_csv = tmp_path / "scores.json", tmp_path / "scores.csv"
    code = main(
        [
            "score",
            str(good),
            str(tmp_path / "empty.png"),
            "--prompt",
            "a cat",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert "using the embedded tiny RANDOM scorer (Qwen2-VL, random weights) (the tiny world's scorer takes videos" in (
        printed
    )
    assert "FAILED: MediaError: image file is empty" in printed and "1 of 2 file(s) failed" in printed
    assert code == 1  # a failure is reported in the exit status, the good file is still scored
    data = json.loads(out_json.read_text())
    (result,) = data["results"]
    assert result["source"] == str(good) and result["checklist"] == "image_select"
    assert len(result["p_yes"]) == 31 and set(result["dimension_scores"]) == {
        "Alignment",
        "Composition",
        "Quality",
        "Fidelity",
        "Safety & Emotion",
    }
    assert data["failures"][0]["error"].startswith("MediaError: image file is empty")
    rows = list(csv.DictReader(out_csv.open()))
    assert rows[0]["source"] == str(good) and float(rows[0]["score"]) == result["score"]


def test_score_a_video_with_the_tiny_world_scorer_by_default(tmp_path, capsys):
    from trl_vision_reward.reward.scoring import VisionRewardScorer
    from trl_vision_reward.reward.tiny import tiny_world_scorer_folder

    video = _write_video(tmp_path / "clip.mp4")
    out_json = tmp_path / "v.json"
    argv = ["score", str(video), "--prompt", "a red circle on a grey background", "--json", str(out_json), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "tiny world's scorer shipped with the package" in printed and "RANDOM" not in printed
    (result,) = json.loads(out_json.read_text())["results"]
    world = VisionRewardScorer.from_pretrained(str(tiny_world_scorer_folder())).checklist
    assert result["checklist"] == world.name == "tiny-world-video"
    assert list(result["dimension_scores"]) == list(world.dimensions) and len(result["p_yes"]) == len(world)


def test_model_random_scores_a_video_with_the_random_tiny_scorer(tmp_path, capsys):
    video = _write_video(tmp_path / "clip.mp4")
    argv = [
        "score",
        str(video),
        "--model",
        "random",
        "--prompt",
        "a dog",
        "--json",
        str(tmp_path / "v.json"),
        "--quiet",
    ]
    assert main(argv) == 0
    assert "RANDOM scorer (Qwen2-VL, random weights): scores are noise" in capsys.readouterr().out
    (result,) = json.loads((tmp_path / "v.json").read_text())["results"]
    assert result["checklist"] == "video_select"


def test_model_tiny_refuses_what_the_world_scorer_cannot_score(tmp_path):
    from diffusers_cogvideox.errors import UsageError

    image = _write_image(tmp_path / "a.png")
    with pytest.raises(
        UsageError, match=r"--model tiny: the tiny world's scorer cannot score here \(.*a\.png is not a video\)"
    ):
        main(["score", str(image), "--model", "tiny", "--prompt", "a", "--json", str(tmp_path / "o.json")])
    assert not (tmp_path / "o.json").exists()


def test_score_a_video_with_a_saved_scorer_folder(tmp_path, capsys):
    model_dir = save_tiny_vision_reward(tmp_path / "scorer", "video")
    video = _write_video(tmp_path / "clip.mp4")
    out_json = tmp_path / "v.json"
    code = main(
        ["score", str(video), "--model", str(model_dir), "--prompt", "a dog", "--json", str(out_json), "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "RANDOM" not in printed and "Stability" in printed
    (result,) = json.loads(out_json.read_text())["results"]
    assert result["num_frames"] == 3 and result["checklist"] == "video_select"  # 9 frames at 4 fps: t = 0, 1, 2 s


def test_missing_prompt_is_reported_per_file(tmp_path, capsys):
    video = _write_video(tmp_path / "clip.mp4")
    code = main(["score", str(video), "--checklist", "video", "--json", str(tmp_path / "o.json"), "--quiet"])
    assert code == 1
    assert "needs the generation prompt" in capsys.readouterr().out
