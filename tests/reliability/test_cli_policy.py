"""Every console script as a user runs it: one-line errors (exit 2), nothing of the user's lost or replaced."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from .helpers import assert_one_line_error, cli, snapshot


# ---- one-line errors, --debug and the env var -----------------------------------------------------------------------
def test_known_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    argv = ["convert-sat", "--input", tmp_path / "missing", "--out", tmp_path / "out"]
    assert_one_line_error(cli("vision-reward", *argv, subprocess_run=True), "missing", "SAT checkpoint")
    with_flag = cli("vision-reward", *argv, "--debug", subprocess_run=True)
    with_env = cli("vision-reward", *argv, env={"COGVIDEOX_VR_DEBUG": "1"}, subprocess_run=True)
    for result in (with_flag, with_env):
        assert result.returncode != 0 and "Traceback" in result.stderr and "FileNotFoundError" in result.stderr
    assert not (tmp_path / "out").exists()  # the input was checked before the output was created


@pytest.mark.parametrize(
    "name, argv, needle",
    [
        ("cogvideox", ["generate", "--steps", "-3"], "--steps: must be an integer >= 1; got -3"),
        ("cogvideox", ["generate", "--guidance-scale", "nan"], "--guidance-scale: must be a finite number"),
        ("cogvideox", ["generate", "--guidance-scale", "inf"], "--guidance-scale: must be a finite number"),
        ("cogvideox", ["generate", "--fps", "0"], "--fps: must be an integer >= 1"),
        ("cogvideox", ["generate", "--steps", "0"], "--steps: must be an integer >= 1; got 0"),
        ("cogvideox", ["generate", "--strength", "1.5"], "--strength: must be > 0 and <= 1"),
        ("vision-reward", ["score", "x.png", "--question-batch-size", "0"], "--question-batch-size"),
        (
            "vr-datasets",
            [
                "build-vrdb",
                "--media-dir",
                ".",
                "--annotations",
                "a.json",
                "--modality",
                "image",
                "--out",
                "o",
                "--fractions",
                "0.9",
                "nan",
                "0.1",
            ],
            "--fractions",
        ),
    ],
)
def test_numeric_ranges_are_refused_while_parsing(tmp_path, name, argv, needle):
    assert_one_line_error(cli(name, *argv, cwd=tmp_path), needle)
    assert list(tmp_path.iterdir()) == []


def test_mpo_train_errors_are_one_line(tmp_path):
    result = cli("mpo-train", "--output_dir", tmp_path / "run", subprocess_run=True)
    assert_one_line_error(result, "--dataset_name is required")
    assert not (tmp_path / "run").exists()


# ---- data loss ------------------------------------------------------------------------------------------------------
def test_quickstart_keeps_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "report.json").write_text("{}")  # what vision-reward evaluate writes
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert_one_line_error(cli("vr-quickstart", "--out", tmp_path, subprocess_run=True), "holds no manifest")
    assert snapshot(tmp_path) == before


def test_convert_sat_overwrite_checks_the_input_first_and_never_deletes_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "user.bin").write_bytes(b"weights")
    before = snapshot(tmp_path)
    assert_one_line_error(
        cli("vision-reward", "convert-sat", "--input", out / "user.bin", "--out", out, "--overwrite"),
        "lies inside the output folder",
    )
    assert_one_line_error(
        cli("vision-reward", "convert-sat", "--input", tmp_path / "nope.pt", "--out", out, "--overwrite"), "nope.pt"
    )
    assert snapshot(tmp_path) == before


def test_score_never_writes_over_an_input_or_an_existing_file(tmp_path):
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    before = snapshot(tmp_path)
    assert_one_line_error(cli("vision-reward", "score", image, "--json", image), "--json", "must end with .json")
    assert_one_line_error(cli("vision-reward", "score", image, "--json", image, "--overwrite"), "--json")
    (tmp_path / "vision_reward_scores.json").write_text('{"mine": 1}')
    before = snapshot(tmp_path)
    assert_one_line_error(cli("vision-reward", "score", image, cwd=tmp_path), "already exists", "--overwrite")
    assert_one_line_error(cli("vision-reward", "score", image, image, cwd=tmp_path), "same file")
    assert snapshot(tmp_path) == before


def test_generate_refuses_to_replace_an_existing_clip_or_its_input(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"my video")
    assert_one_line_error(cli("cogvideox", "generate", "--out", clip), "already exists", "--overwrite")
    assert_one_line_error(cli("cogvideox", "generate", "--video", clip, "--out", clip, "--overwrite"), "also an input")
    assert_one_line_error(cli("cogvideox", "generate", "--out", tmp_path / "clip.gif"), "must end with .mp4")
    assert clip.read_bytes() == b"my video"


def test_mpo_train_refuses_an_output_dir_with_the_users_files(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "a", "chosen": "a.png", "rejected": "b.png"}) + "\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    (out / "checkpoint-5").mkdir()
    before = snapshot(tmp_path)
    result = cli("mpo-train", "--dataset_name", pairs, "--output_dir", out, "--max_steps", "1")
    assert_one_line_error(result, "--output_dir", "holds no manifest")
    assert snapshot(tmp_path) == before


# ---- path containment -----------------------------------------------------------------------------------------------
def test_build_vrdb_rejects_media_outside_the_media_dir(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    private = tmp_path / "private"
    private.mkdir()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(private / "x.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(media / "ok.png")
    (media / "link.png").symlink_to(private / "x.png")
    annotation = {"symmetry": 1}
    rows = [
        {"internal_id": str(i), "prompt": f"p{i}", "image_path": path, "annotation": annotation}
        for i, path in enumerate(["ok.png", "../private/x.png", str(private / "x.png"), "link.png"])
    ]
    (tmp_path / "ann.json").write_text(json.dumps(rows))
    out = tmp_path / "out"
    result = cli(
        "vr-datasets",
        "build-vrdb",
        "--media-dir",
        media,
        "--annotations",
        tmp_path / "ann.json",
        "--modality",
        "image",
        "--out",
        out,
        "--media",
        "external",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["internal_id"]: r["reason"] for r in rejects}
    assert set(reasons) == {"1", "2", "3"}, reasons
    assert "'..'" in reasons["1"] and "absolute" in reasons["2"] and "outside its root" in reasons["3"]
    assert sorted(p.name for p in (out / "media").rglob("*.png")) == ["ok.png"]
    assert not (tmp_path / "private" / "x.png").read_bytes() == b""  # untouched, never copied


def test_build_vrdb_rebuild_needs_overwrite_and_leaves_no_stale_split(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    rows = []
    for i in range(12):
        Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(media / f"{i}.png")
        rows.append(
            {
                "internal_id": str(i),
                "prompt": f"prompt {i}",
                "image_path": f"{i}.png",
                "annotation": {"symmetry": 1},
            }
        )
    (tmp_path / "ann.json").write_text(json.dumps(rows))
    out = tmp_path / "out"
    base = [
        "build-vrdb",
        "--media-dir",
        media,
        "--annotations",
        tmp_path / "ann.json",
        "--modality",
        "image",
        "--out",
        out,
    ]
    assert cli("vr-datasets", *base, "--fractions", "0.5", "0.25", "0.25").returncode == 0
    assert {p.name.split("-")[0] for p in (out / "data").glob("*.parquet")} == {"train", "validation", "test"}
    (out / "my_notes.txt").write_text("keep")
    assert_one_line_error(cli("vr-datasets", *base, "--fractions", "1", "0", "0"), "--overwrite")
    assert cli("vr-datasets", *base, "--fractions", "1", "0", "0", "--overwrite").returncode == 0
    assert [p.name.split("-")[0] for p in (out / "data").glob("*.parquet")] == ["train"]
    assert (out / "my_notes.txt").read_text() == "keep"
