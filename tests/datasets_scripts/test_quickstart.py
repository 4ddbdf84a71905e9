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


@pytest.mark.slow
def test_quickstart_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "quickstart"
    config = QuickstartConfig(
        out=str(out), prompts=["a red ball bouncing", "a cat on a sofa"], samples_per_prompt=2, train_steps=2
    )
    assert Quickstart(config, progress=False).run()

    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["stages"]] == list(STAGES)
    assert all(s["status"] == "done" for s in report["stages"]), report["stages"]

    page = (out / "report.html").read_text()
    for name in STAGES:
        assert re.search(rf'<section id="{name}"><h2>{re.escape(STAGE_TITLES[name])} <span class="status done">', page)
    assert "Random weights." in page and "<svg" in page
    videos = re.findall(r'<video src="([^"]+)"', page)
    assert len(videos) >= 2 * 4  # before and after, 4 samples each (plus pair examples)
    assert all((out / v).is_file() for v in videos)

    before = load_dataset(str(out / "1_generate_score"), split="train", cache_dir=str(tmp_path / "hf_cache"))
    after = load_dataset(str(out / "4_regenerate"), split="train", cache_dir=str(tmp_path / "hf_cache"))
    assert len(before) == len(after) == 4 and list(before["seed"]) == list(after["seed"])
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
    assert "mpo" in card.data.tags and "Random weights" in card.text
    assert str(tmp_path) not in card.text  # no machine path in the card


def test_quickstart_refuses_to_wipe_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds no manifest"):
        Quickstart(QuickstartConfig(out=str(tmp_path))).run()
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_full_size_defaults_follow_the_paper():
    tiny = QuickstartConfig().resolved()
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
