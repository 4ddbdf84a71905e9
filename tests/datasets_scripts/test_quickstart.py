"""The end-to-end quickstart on the embedded tiny default: every stage runs and the report shows each one."""

import json
import re

import pytest
from datasets import load_dataset
from huggingface_hub import ModelCard

from datasets_scripts.quickstart import STAGE_TITLES, STAGES, Quickstart, QuickstartConfig, svg_bar_chart
from hub_cards.validation import validate_model_card

# load_dataset(folder) caches by the folder's name and card, so two test folders named alike would share a cache:
# each test loads with its own cache_dir.


class TruthScorer:
    """A stand-in for the world's scorer that answers its ten questions from each clip's procedural truth, so the
    scores differ between clips whatever the shipped weights are (the real scorer's accuracy has its own test)."""

    modality = "video"

    def __init__(self):
        from datasets_scripts.tiny_world.checklist import world_checklist

        self.checklist = world_checklist()
        self.checklist_id = self.checklist.name

    def __call__(self, paths, prompt):
        import torch

        from datasets_scripts.quickstart.clips import decoded_frames
        from datasets_scripts.tiny_world import checklist, truth
        from trl_vision_reward.reward import scoring_rule

        c, out = self.checklist, []
        for path in paths:
            yes = checklist.answers(truth.levels(decoded_frames(path)))
            a = torch.tensor([float(yes[q.text]) for q in c.questions], dtype=torch.float64)

            def named(level, values):
                return {n: float(v) for n, v in zip(c.group_names(level), values)}

            dims = named("dimension", scoring_rule.dimension_scores(c, a))
            subs = named("sub_dimension", scoring_rule.dimension_scores(c, a, "sub_dimension"))
            total = float(scoring_rule.official_score(c, a, a))
            out.append(
                dict(
                    probabilities=a.tolist(),
                    answers=[bool(x) for x in a],
                    question_scores=scoring_rule.dimension_scores(c, a, "question").tolist(),
                    dimension_scores=dims,
                    sub_dimension_scores=subs,
                    total=total,
                    soft_question_scores=scoring_rule.dimension_scores(c, a, "question").tolist(),
                    soft_dimension_scores=dims,
                    soft_sub_dimension_scores=subs,
                    soft_total=total,
                )
            )
        return out


@pytest.mark.slow
def test_quickstart_on_the_trained_tiny_world_reports_scorer_and_truth_per_dimension(tmp_path, monkeypatch):
    from datasets_scripts.quickstart import TINY_WORLD_PROMPTS
    from datasets_scripts.quickstart.runner import Quickstart as Runner

    monkeypatch.setattr(Runner, "scorer", lambda self: self.__dict__.setdefault("_truth_scorer", TruthScorer()))
    out = tmp_path / "quickstart"
    config = QuickstartConfig(
        out=str(out), prompts=list(TINY_WORLD_PROMPTS[:2]), samples_per_prompt=3, train_steps=2, num_inference_steps=4
    )
    q = Quickstart(config, progress=False)
    assert (q.config.pair_scores, q.config.lora_r, q.config.world) == ("official", 8, True)
    assert q.run()

    report = json.loads((out / "report.json").read_text())
    assert all(s["status"] == "done" for s in report["stages"]), report["stages"]
    assert report["models"]["tiny_world"] is True and report["dimensions"]["scores"] == "dimension_scores"
    rows = {r["dimension"]: r for r in report["dimensions"]["rows"]}
    assert set(rows) == {"Quality", "Dynamic", "Stability", "Preservation", "Composition"}
    clips = report["clips"]
    assert len(clips["before"]) == len(clips["after"]) == 6
    for d, row in rows.items():  # the table is the means over the clips, and the change is after - before
        for side in ("before", "after"):
            assert row[f"truth {side}"] == pytest.approx(sum(c["truth"][d] for c in clips[side]) / 6)
            assert row[f"scorer {side}"] == pytest.approx(sum(c["dimension_scores"][d] for c in clips[side]) / 6)
        change = row["truth after"] - row["truth before"]
        assert row["truth direction"] == ("up" if change > 0 else "down" if change < 0 else "unchanged")
    assert report["distinct_totals"]["before"] == len({c["total"] for c in clips["before"]}) > 1

    # the threshold: the paper's was tried first on the official scores; the rule used is stated, with its reason
    choice = report["pair_threshold"]
    assert choice["tried"][0] == {"rule": "paper", "threshold": 0.6, "admitted": choice["tried"][0]["admitted"]}
    assert choice["rule"] == choice["tried"][-1]["rule"] in ("paper", "one_answer", "any_gap")
    assert choice["tried"][-1]["admitted"] > 0 and all(t["admitted"] == 0 for t in choice["tried"][:-1])
    assert report["config"]["pair_threshold"] == choice["threshold"]
    stats = json.loads((out / "2_pairs" / "stats.json").read_text())
    assert stats["rule"]["scores"] == "official" and stats["rule"]["min_total_gap"] == choice["threshold"]
    assert stats["rule"]["threshold_rule"] == choice["rule"] and stats["admitted"] == choice["tried"][-1]["admitted"]
    pairs_card = (out / "2_pairs" / "README.md").read_text()
    assert choice["reason"] in pairs_card and "Made with random weights" not in pairs_card

    page = (out / "report.html").read_text()
    assert "The tiny world." in page and "meaningful within this world only" in page
    assert '<p class="warn"><strong>Random weights.' not in page
    assert "<th>truth before</th>" in page and "<th>scorer change</th>" in page
    assert f"Threshold rule: {choice['rule']}" in page
    strips = re.findall(r'<img class="strip" src="([^"]+)"', page)
    videos = re.findall(r'<video src="([^"]+)"', page)
    assert len(strips) == len(videos) >= 12 and all((out / p).is_file() for p in strips + videos)
    from PIL import Image

    with Image.open(out / strips[0]) as strip:  # 9 frames, each enlarged 3x
        assert strip.size == (9 * 96 + 8 * 2, 96)
    assert {c["strip"] for c in clips["before"]} <= set(strips)


@pytest.mark.slow
def test_quickstart_random_keeps_the_random_tiny_models(tmp_path):
    out = tmp_path / "quickstart"
    config = QuickstartConfig(out=str(out), random=True, prompts=["a red ball bouncing"], samples_per_prompt=2)
    q = Quickstart(config, progress=False)
    assert (q.config.model, q.config.scorer, q.config.pair_scores, q.config.pair_threshold) == (
        "random",
        "random",
        "soft",
        0.0,
    )
    assert (q.config.num_inference_steps, q.config.train_steps, q.config.world) == (2, 4, False)
    assert q.run()

    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == list(STAGES)
    assert all(s["status"] == "done" for s in report["stages"]), report["stages"]
    assert report["pair_threshold"]["rule"] == "random_scorer" and report["models"]["tiny_world"] is False
    assert "truth before" not in report["dimensions"]["rows"][0]
    page = (out / "report.html").read_text()
    for name in STAGES:
        assert re.search(rf'<section id="{name}"><h2>{re.escape(STAGE_TITLES[name])} <span class="status done">', page)
    assert "Random weights." in page and "<svg" in page and "The tiny world." not in page
    videos = re.findall(r'<video src="([^"]+)"', page)
    assert len(videos) >= 2 * 2 and all((out / v).is_file() for v in videos)

    before = load_dataset(str(out / "1_generate_score"), split="train", cache_dir=str(tmp_path / "hf_cache"))
    after = load_dataset(str(out / "4_regenerate"), split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert len(before) == len(after) == 2 and list(before["seed"]) == list(after["seed"])
    # same seeds, different weights: the adapter changed what the pipeline generates
    assert any(b["video"]["bytes"] != a["video"]["bytes"] for b, a in zip(before, after))
    assert (
        load_dataset(str(out / "2_pairs"), split="train", cache_dir=str(tmp_path / "hf_cache")).num_rows
        == report["stages"][1]["summary"]["admitted"]
        > 0
    )
    adapter = out / "3_mpo" / "adapter"
    assert (adapter / "pytorch_lora_weights.safetensors").is_file()
    card = ModelCard.load(adapter / "README.md")
    validate_model_card(card)
    assert "mpo" in card.data.tags and "random weights" in card.text
    assert str(tmp_path) not in card.text  # no machine path in the card


def test_random_refuses_explicit_models_and_the_tiny_world_default_is_the_trained_one(capsys, tmp_path):
    from datasets_scripts.quickstart.cli import main

    out = tmp_path / "out"
    assert main(["--random", "--model", "THUDM/CogVideoX-2b", "--out", str(out)]) == 2
    assert "--random selects the random tiny models" in capsys.readouterr().err and not out.exists()
    assert QuickstartConfig(random=True, scorer="random").resolved().scorer == "random"
    from datasets_scripts.quickstart import TINY_WORLD_PROMPTS
    from datasets_scripts.tiny_world import world
    from diffusers_cogvideox.tiny import TINY_WORLD_RESOLUTION, TINY_WORLD_STEPS

    default = QuickstartConfig().resolved()
    assert (default.model, default.scorer, default.world, default.world_scorer) == (None, None, True, True)
    assert default.prompts == list(TINY_WORLD_PROMPTS) and set(TINY_WORLD_PROMPTS) <= set(world.all_prompts())
    assert {world.parse_prompt(p)[0] for p in TINY_WORLD_PROMPTS} == set(world.SHAPES)
    assert {world.parse_prompt(p)[1] for p in TINY_WORLD_PROMPTS} == set(world.COLOURS)
    assert (default.num_frames, default.height, default.width) == tuple(TINY_WORLD_RESOLUTION.values())
    assert (default.num_inference_steps, default.guidance_scale) == (TINY_WORLD_STEPS, 1.0)
    assert (default.pair_scores, default.pair_threshold, default.samples_per_prompt) == ("official", None, 8)
    # a threshold the user passes is kept as it is
    assert QuickstartConfig(pair_threshold=0.25).resolved().pair_threshold == 0.25


def _records(totals_and_dims):
    return [
        {"id": f"s{i}", "prompt": "p", "total": t, "dimension_scores": dict(zip("ab", dims))}
        for i, (t, dims) in enumerate(totals_and_dims)
    ]


@pytest.mark.parametrize(
    "rows, rule, threshold",
    [
        ([(0.9, (1, 1)), (0.1, (0, 0))], "paper", 0.6),  # gap 0.8 >= 0.6: the paper's rule as published
        ([(0.2, (1, 1)), (0.05, (0, 0))], "one_answer", 2 / 29),  # 0.15 < 0.6, >= one answer (2 x 1 / 29)
        ([(0.06, (1, 1)), (0.05, (0, 0))], "any_gap", 0.0),  # 0.01: only a positive gap admits it
    ],
)
def test_the_tiny_world_threshold_is_the_papers_when_it_admits_pairs_else_the_nearest_that_does(rows, rule, threshold):
    from types import SimpleNamespace

    from datasets_scripts.quickstart.thresholds import choose_pair_threshold

    checklist = SimpleNamespace(weights=[1.0] * 10, divisor=29.0)
    choice, pairs, stats = choose_pair_threshold(
        _records(rows), kind="mpo", granularity="dimension", scores="official", threshold=None, checklist=checklist
    )
    assert (choice.rule, choice.threshold, stats.admitted, len(pairs)) == (rule, pytest.approx(threshold), 1, 1)
    assert [t["rule"] for t in choice.tried] == ["paper", "one_answer", "any_gap"][: len(choice.tried)]
    assert choice.tried[-1]["rule"] == rule and "admit" in choice.reason
    # a dominated-nowhere pair (trade-off) is refused by every rule: no threshold is lowered to force it in
    choice, _, stats = choose_pair_threshold(
        _records([(0.9, (1, 0)), (0.1, (0, 1))]),
        kind="mpo",
        granularity="dimension",
        scores="official",
        threshold=None,
        checklist=checklist,
    )
    assert stats.admitted == 0 and [t["admitted"] for t in choice.tried] == [0, 0, 0]
    # a threshold passed by the user is used as it is, even if it admits nothing
    choice, _, stats = choose_pair_threshold(
        _records(rows), kind="mpo", granularity="dimension", scores="official", threshold=5.0, user_given=True
    )
    assert (choice.rule, choice.threshold, stats.admitted) == ("given", 5.0, 0)
    # all weights zero (every total ties): the rule named is the last one tried, and nothing is admitted
    choice, _, stats = choose_pair_threshold(
        _records([(0.0, (1, 1)), (0.0, (0, 0))]),
        kind="mpo",
        granularity="dimension",
        scores="official",
        threshold=None,
        checklist=SimpleNamespace(weights=[0.0] * 10, divisor=29.0),
    )
    assert [t["rule"] for t in choice.tried] == ["paper", "any_gap"] and choice.rule == "any_gap"
    assert stats.admitted == 0 and stats.counts["tie"] == 1


def test_quickstart_refuses_to_wipe_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no manifest"):
        Quickstart(QuickstartConfig(out=str(tmp_path))).run()
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_full_size_defaults_follow_the_paper():
    tiny = QuickstartConfig(random=True).resolved()
    full = QuickstartConfig(model="THUDM/CogVideoX-2b", scorer="some/vision-reward-video").resolved()
    assert (tiny.num_frames, tiny.pair_scores, tiny.pair_threshold) == (9, "soft", 0.0)
    assert (full.num_frames, full.height, full.width, full.num_inference_steps) == (49, 480, 720, 50)
    assert (full.pair_scores, full.pair_threshold, full.beta) == ("official", 0.6, 500.0)


def test_svg_bar_chart_draws_one_bar_per_value():
    svg = svg_bar_chart(["a", "b"], {"before": [1.0, -0.5], "after": [0.5, 0.25]}, "t")
    assert svg.startswith("<svg") and svg.count("<rect") == 4 + 2  # bars + legend swatches


def test_every_config_field_is_a_flag_of_both_entry_points():
    from dataclasses import fields

    from datasets_scripts.quickstart.cli import config_from_args, make_parser

    args = make_parser().parse_args(
        ["--out", "o", "--samples-per-prompt", "2", "--pair_scores", "soft", "--prompts", "a cat", "a dog"]
    )
    config = config_from_args(args)
    assert (config.out, config.samples_per_prompt, config.pair_scores, config.prompts) == (
        "o",
        2,
        "soft",
        ["a cat", "a dog"],
    )
    assert config_from_args(make_parser().parse_args(["--no-progress"])).progress is False
    help_text = make_parser().format_help()
    for f in fields(QuickstartConfig):
        assert f"--{f.name}" in help_text, f.name
    with pytest.raises(SystemExit):
        make_parser().parse_args(["--pair_granularity", "pixel"])


def test_prompt_files_are_read_and_a_missing_one_is_refused(tmp_path, capsys):
    from datasets_scripts.quickstart.cli import expand_prompts, main

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red ball\n\na cat\n")
    assert expand_prompts([str(prompts), "a dog"]) == ["a red ball", "a cat", "a dog"]
    out = tmp_path / "out"
    assert main(["--out", str(out), "--prompts", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    from datasets_scripts.cli import main as vr_datasets

    assert vr_datasets(["quickstart", "--out", str(out), "--prompts", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err
    assert not out.exists()  # refused before the first write
