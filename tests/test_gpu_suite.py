"""benchmarks/gpu_suite.py as CI runs it: --quick, every case end to end at tiny size, results written per case."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"
CASES = ["transformer", "vae", "scoring", "mpo", "sft"]


def run_suite(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}  # the user's view: one-line errors
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="2")
    return subprocess.run(
        [sys.executable, str(SUITE), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
    )


def sft_trainer_exists() -> bool:
    try:
        from diffusers_cogvideox.training import CogVideoXSFTTrainer  # noqa: F401
    except (ImportError, AttributeError):
        return False
    return True


@pytest.mark.slow
def test_quick_runs_every_case_and_writes_json_and_markdown(tmp_path):
    done = run_suite("--quick", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stem = f"quick-{datetime.date.today().isoformat()}"
    results = json.loads((tmp_path / f"{stem}.json").read_text())
    table = (tmp_path / f"{stem}.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}.json", f"{stem}.md"]  # nothing else left there
    assert results["quick"] is True and results["environment"]["device"] == "cpu"
    cases = {case["name"]: case for case in results["cases"]}
    assert list(cases) == CASES
    expected_ok = CASES if sft_trainer_exists() else CASES[:-1]
    for name in expected_ok:
        case = cases[name]
        assert case["status"] == "ok", (name, case["message"])
        measured = [row for row in case["rows"] if not row["skipped"]]
        assert measured and not [row for row in case["rows"] if row["skipped"]], (name, case["rows"])
        for row in measured:
            assert row["ours"] is not None and row["ours"] > 0, (name, row)
        assert case["title"] in table
    if not sft_trainer_exists():
        assert cases["sft"]["status"] == "skipped" and "CogVideoXSFTTrainer" in cases["sft"]["message"]
    # side by side where a reference exists: every transformer and VAE figure has a reference value and a ratio
    for name in ("transformer", "vae"):
        assert all(row["reference"] is not None and row["ratio"] is not None for row in cases[name]["rows"])
    steps = [row["measure"] for row in cases["transformer"]["rows"] if row["measure"].endswith("CFG step")]
    assert [measure.split()[0] for measure in steps] == ["2b", "5b", "1.5-5b"]
    assert any("TeaCache" in row["measure"] for row in cases["transformer"]["rows"])
    # ours and diffusers' class share the weights: their outputs agree to bf16 rounding
    for row in cases["transformer"]["rows"]:
        if row["measure"].endswith("CFG step"):
            assert float(row["note"].rsplit("max abs diff ", 1)[1]) < 0.1, row


def test_budget_too_small_skips_every_case_with_a_message_and_still_writes(tmp_path):
    done = run_suite("--quick", "--budget", "1", "--out", str(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(next(tmp_path.glob("quick-*.json")).read_text())
    assert [case["status"] for case in results["cases"]] == ["skipped"] * len(CASES)
    assert all("needs at least" in case["message"] for case in results["cases"])
    assert "**skipped**: needs at least" in next(tmp_path.glob("quick-*.md")).read_text()


def test_refuses_existing_results_and_full_size_without_cuda(tmp_path):
    stem = f"quick-{datetime.date.today().isoformat()}"
    (tmp_path / f"{stem}.json").write_text("{}")
    done = run_suite("--quick", "--cases", "vae", "--out", str(tmp_path), timeout=120)
    assert done.returncode == 2 and "already exists" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / f"{stem}.json").read_text() == "{}" and not (tmp_path / f"{stem}.md").exists()
    done = run_suite("--device", "cpu", "--out", str(tmp_path / "full"), timeout=120)
    assert done.returncode == 2 and "needs a CUDA device" in done.stderr
    assert not (tmp_path / "full").exists()
