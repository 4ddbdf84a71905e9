"""benchmarks/mpo_vs_dpo.py: the statistics it reports, its argument checks, and the smoke run CI makes (that it runs
and writes its table, results and plot - not the effect, which needs the full run)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "mpo_vs_dpo.py"
DIMENSIONS = ["Quality", "Dynamic", "Stability", "Preservation", "Composition"]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("mpo_vs_dpo", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_benchmark()


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COGVIDEOX_VR_DEBUG"}  # the user's view: one-line errors
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout
    )


# ---------------------------------------------------------------------------------------------------------------------
# Statistics


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile_matches_the_tables(df, expected):
    assert bench.t_quantile(0.975, df) == pytest.approx(expected, abs=2e-3)


def test_interval_is_mean_plus_minus_t_sd_over_root_n():
    stat = bench.interval([1.0, 2.0, 3.0])
    half = 4.3027 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd (ddof 1) / sqrt(n)
    assert stat["n"] == 3 and stat["mean"] == pytest.approx(2.0)
    assert stat["half_width"] == pytest.approx(half, abs=1e-3)
    assert (stat["low"], stat["high"]) == pytest.approx((2.0 - half, 2.0 + half), abs=1e-3)
    assert bench.interval([0.5]) == {"n": 1, "mean": 0.5, "half_width": None, "low": None, "high": None}
    assert bench.interval([])["mean"] is None


def record(ident, truth, dims, total, prompt="a red circle on a grey background"):
    truth = dict(zip(DIMENSIONS, truth))
    return {
        "id": ident,
        "prompt": prompt,
        "truth": truth,
        "truth_total": bench_utility(truth),
        "dimension_scores": dict(zip(DIMENSIONS, dims)),
        "total": total,
    }


def bench_utility(levels):
    from datasets_scripts.tiny_world import truth

    return truth.utility(levels)


def test_changes_are_paired_means_by_truth_and_scorer():
    before = [record("a", [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], 0.0), record("b", [2, 0, 2, 1, 1], [1, 0, 1, 0, 0], 2.0)]
    after = [record("b", [2, 2, 0, 1, 1], [1, 1, 0, 0, 0], 2.0), record("a", [1, 2, 1, 1, 0], [0, 1, 0, 0, 0], 1.0)]
    out = bench.changes(before, after)
    assert out["Dynamic"] == {"truth": 1.5, "scorer": 1.0}
    assert out["Stability"] == {"truth": -1.0, "scorer": -0.5}
    assert out["Composition"] == {"truth": -0.5, "scorer": 0.0}
    assert out["total"] == {"truth": ((2 * 2 - 2) + (2 * 1 - 1)) / 2, "scorer": 0.5}  # utility: Dynamic weight 2
    with pytest.raises(RuntimeError, match="do not pair"):
        bench.changes(before, after[:1])


def test_pair_statistics_count_non_dominating_pairs_by_scorer_and_by_truth():
    from trl_vision_reward.mpo.pairs import mine_pairs

    # by the scorer, b dominates a and c (highest total) is worse than both on Stability; by the truth, b is worse
    # than a on Composition, and c is worse than both and ranked below both by the world's utility
    a = record("a", [1, 0, 2, 1, 1], [0, 0, 1, 0, 0], 1.0)  # utility 5
    b = record("b", [1, 1, 2, 1, 0], [0, 1, 1, 0, 0], 2.0)  # utility 6
    c = record("c", [1, 1, 0, 0, 1], [0, 3, 0, 0, 0], 3.0)  # utility 4
    by_id = {r["id"]: r for r in (a, b, c)}
    pairs, stats = mine_pairs([a, b, c], bench.pair_rule("dpo", gap_scale=1.0))
    out = bench.pair_statistics(pairs, stats, by_id)
    assert (out["candidates"], out["admitted"]) == (3, 3)  # gaps 1, 2, 1 all pass 0.8
    assert out["non_dominating_scorer"] == stats.admitted_non_dominating == 2
    assert (out["non_dominating_truth"], out["truth_inverted"]) == (3, 2)
    pairs, stats = mine_pairs([a, b, c], bench.pair_rule("mpo-dimension", 1.0))
    out = bench.pair_statistics(pairs, stats, by_id)
    assert (out["admitted"], out["non_dominating_scorer"], out["non_dominating_truth"]) == (1, 0, 1)


def test_pair_rules_use_the_paper_gaps_scaled():
    assert {n: bench.pair_rule(n, 1.0).min_total_gap for n in bench.RULES} == {
        "dpo": 0.8,
        "mpo-dimension": 0.6,
        "mpo-sub_dimension": 0.5,
        "mpo-question": 0.4,
    }
    assert bench.pair_rule("mpo-question", 0.5).min_total_gap == pytest.approx(0.2)
    assert bench.pair_rule("dpo", 1.0).kind == "dpo" and bench.pair_rule("mpo-question", 1.0).granularity == "question"


def test_world_prompts_are_a_fixed_spread_of_the_world():
    from datasets_scripts.tiny_world import world

    eight = bench.world_prompts(8)
    assert eight == bench.world_prompts(8) and len(set(eight)) == 8 and set(eight) <= set(world.all_prompts())
    assert {world.parse_prompt(p)[0] for p in eight} == set(world.SHAPES)


# ---------------------------------------------------------------------------------------------------------------------
# The command


@pytest.mark.parametrize(
    "args, message",
    [
        (["--samples-per-prompt", "1"], "--samples-per-prompt must be >= 2"),
        (["--prompts", "a cat on a sofa"], "--prompts: a tiny-world prompt names a colour"),
        (["--seeds", "0", "0"], "--seeds must be distinct seeds >= 0"),
        (["--num-prompts", "33"], "--num-prompts must be 1..32"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0"),
    ],
)
def test_bad_arguments_are_refused_naming_what_is_accepted(args, message):
    from diffusers_cogvideox.errors import UsageError

    with pytest.raises(UsageError, match=message.replace(".", r"\.")):
        bench.parse_args(args)


def test_a_bad_argument_exits_2_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    done = run_script("--out", str(out), "--samples-per-prompt", "1", timeout=120)
    assert done.returncode == 2, done.stderr
    assert "error: --samples-per-prompt must be >= 2" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.slow
def test_smoke_run_writes_one_row_per_rule_and_dimension(tmp_path):
    out = tmp_path / "out"
    done = run_script("--smoke", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    table = (out / "table.md").read_text()
    assert table in done.stdout  # the table is printed too
    assert f"--smoke --out {out}" in table  # with the exact command
    rules = list(bench.RULES)
    assert list(results["summary"]) == rules
    assert [s["seed"] for s in results["per_seed"]] == bench.SMOKE["seeds"]
    rows = [line for line in table.splitlines() if line.startswith("| ") and " | " in line]
    for rule in rules:
        for dim in [*DIMENSIONS, "total"]:
            assert sum(r.startswith(f"| {rule} | {dim} |") for r in rows) == 1, (rule, dim)
        entry = results["summary"][rule]
        # every candidate pair is judged: all unordered pairs of one prompt's clips, per seed
        clips = bench.SMOKE["samples_per_prompt"]
        per_seed = bench.SMOKE["num_prompts"] * clips * (clips - 1) // 2
        assert entry["pairs"]["candidates"] == per_seed * len(bench.SMOKE["seeds"])
        assert sorted(entry["seeds_trained"] + entry["seeds_without_pairs"]) == bench.SMOKE["seeds"]
        for seed in results["per_seed"]:
            cell = seed["rules"][rule]
            assert (cell["status"] == "trained") == (cell["pairs"]["admitted"] > 0)
            if cell["status"] == "trained":
                assert cell["training"]["steps"] == bench.SMOKE["train_steps"]
                assert (out / f"seed-{seed['seed']}" / rule / "adapter").is_dir()
    svg = ET.fromstring((out / "plot.svg").read_text())
    labels = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert set(rules) <= labels and set(DIMENSIONS) <= labels
    # --overwrite replaces an earlier run (its nested job folders with their clips included)
    small = (
        "--smoke",
        "--out",
        str(out),
        "--no-progress",
        "--rules",
        "dpo",
        "--seeds",
        "5",
        "--samples-per-prompt",
        "2",
    )
    replaced = run_script(*small, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "plot.svg",
        "results.json",
        "seed-5",
        "table.md",
    ]  # the earlier run's seeds, clips included, are gone


@pytest.mark.slow
def test_a_cell_trains_the_adapter_and_regenerates_the_same_clips(tmp_path):
    """The training path on a hand-made pair (the smoke run trains only where its scores admit a pair)."""
    import torch

    from diffusers_cogvideox.outputs import OutputFolder
    from trl_vision_reward.mpo.pairs import PairRule, make_pair

    torch.set_num_threads(1)
    args = bench.parse_args(["--num-prompts", "1", "--samples-per-prompt", "2", "--train-steps", "2", "--no-progress"])
    folder = OutputFolder.claim(tmp_path / "out", bench.COMMAND)
    experiment = bench.Experiment(args, folder)
    base = experiment.generate_scored(experiment.base_pipe, "seed-0/base", 0, "base")
    assert [r["id"].rsplit("-", 1)[1] for r in base] == ["0", "1"]
    assert all(set(r["truth"]) == set(DIMENSIONS) and r["truth_total"] == bench_utility(r["truth"]) for r in base)
    pair = make_pair(base[0], base[1], PairRule("dpo"), False, base[0]["id"], base[1]["id"])
    cell = experiment.train_and_regenerate(base, "seed-0/base", "seed-0/dpo", 0, [pair])
    assert cell["status"] == "trained" and cell["training"]["steps"] == 2
    assert cell["training"]["pairs_encoded"] == args.batch_size  # one pair repeated to fill the batch
    assert sorted(cell["change"]) == sorted([*DIMENSIONS, "total"])
    assert any(p.name.endswith(".safetensors") for p in (tmp_path / "out" / "seed-0" / "dpo" / "adapter").iterdir())
    regenerated = tmp_path / "out" / "seed-0" / "dpo" / "regenerated"
    assert sorted(p.name for p in (regenerated / "media").rglob("*.mp4")) == ["0.mp4", "1.mp4"]
