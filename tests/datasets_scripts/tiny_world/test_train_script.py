"""``vr-datasets train-tiny-world`` as a user runs it: seeded (same seed -> same weight hashes), resumable, and it
refuses a folder it would overwrite."""

import json
import os
import subprocess
import sys

import pytest


def cli(*args, check=True):
    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "datasets_scripts.cli", "train-tiny-world", *args],
        capture_output=True,
        text=True,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(result.stderr[-3000:])
    return result


def test_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = cli("--out", str(tmp_path), "--budget", "smoke", check=False)
    assert result.returncode == 2
    assert "--out must be a new or empty folder" in result.stderr and "Traceback" not in result.stderr
    result = cli("--out", str(tmp_path), "--budget", "smoke", "--resume", check=False)
    assert result.returncode == 2 and "has no stages/" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_same_seed_same_hashes_whether_run_at_once_or_in_parts(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    cli("--out", str(whole), "--budget", "smoke", "--no-progress")
    report = json.loads((whole / "report.json").read_text())
    assert set(report["sha256"]) == {"pipeline", "scorer"} and report["sha256"]["scorer"]
    assert (whole / "README.md").read_text().startswith("# The tiny world, trained")
    assert set(report["judgment_accuracy_held_out"]) == set(report["weights"])  # one entry per world question

    # the same seed in another process, in two parts: the generator first, then --resume does the rest
    result = cli("--out", str(parts), "--budget", "smoke", "--no-progress", "--stages", "vae,transformer")
    assert "run the rest with --resume" in result.stdout and not (parts / "scorer").exists()
    cli("--out", str(parts), "--budget", "smoke", "--no-progress", "--resume")
    assert json.loads((parts / "report.json").read_text())["sha256"] == report["sha256"]
