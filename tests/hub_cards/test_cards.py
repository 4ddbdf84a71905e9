"""Model, dataset and Space cards: rendered metadata is valid by the local checks and says what it should."""

import pytest
import yaml
from huggingface_hub import DatasetCard, EvalResult, ModelCard, RepoCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from hub_cards.dataset_cards import (
    render_converted_pairs_card,
    render_pairs_card,
    render_scored_samples_card,
    render_visionrewarddb_card,
)
from hub_cards.model_cards import render_mpo_model_card, render_vision_reward_model_card
from hub_cards.space_cards import SPACES, render_space_readme
from hub_cards.validation import CardValidationError, validate_dataset_card, validate_model_card, validate_space_card


def _meta(card):
    return yaml.safe_load(str(card).split("---")[1])


def test_mpo_model_card_has_base_model_data_hyperparameters_and_model_index():
    card = render_mpo_model_card(
        model_name="cogvideox-2b-mpo",
        base_model="THUDM/CogVideoX-2b",
        dataset_name="me/mpo-pairs",
        hyperparameters={"beta": 500, "learning_rate": 5e-6, "max_steps": 500, "not_shown": object()},
        lora={"rank": 64, "alpha": 64, "target_modules": ["to_q", "to_v"]},
        pair_statistics={"rule": "mpo", "granularity": "dimension", "threshold": 0.6, "admitted": 9400},
        eval_results=[
            {
                "metric_type": "vision_reward",
                "metric_name": "VisionReward (mean)",
                "metric_value": 4.57,
                "dataset_name": "VidProM prompts",
                "dataset_type": "prompts",
                "dataset_split": "validation",
            }
        ],
        seed=42,
    )
    meta = _meta(card)
    assert meta["base_model"] == "THUDM/CogVideoX-2b" and meta["datasets"] == ["me/mpo-pairs"]
    assert (
        meta["pipeline_tag"] == "text-to-video"
        and meta["library_name"] == "diffusers"
        and meta["license"] == "apache-2.0"
    )
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "cogvideox-2b-mpo" and results[0].metric_value == 4.57 and results[0].dataset_split == "validation"
    text = card.text
    for expected in (
        "| beta | 500 |",
        "| rank | 64 |",
        "| admitted | 9400 |",
        "VisionReward (mean)",
        "| seed | 42 |",
        'pipe.load_lora_weights("cogvideox-2b-mpo")',
        "arXiv:2412.21059",
    ):
        assert expected in text
    assert "not_shown" not in text and "Random weights" not in text
    assert ModelCard(str(card)).data.to_dict() == card.data.to_dict()


def test_mpo_model_card_for_a_local_tiny_base_keeps_paths_out_of_metadata(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "random-tiny-cogvideox").mkdir(parents=True)
    card = render_mpo_model_card(base_model="outputs/random-tiny-cogvideox", hyperparameters={"beta": 5.0})
    meta = _meta(card)
    assert "base_model" not in meta and "model-index" not in meta
    assert "`outputs/random-tiny-cogvideox` (local)" in card.text and "Random weights" in card.text


def test_mpo_model_card_for_the_tiny_world_shows_its_pipeline():
    card = render_mpo_model_card(base_model=None, model_name="world-mpo")
    assert "Tiny world." in card.text and "Random weights" not in card.text
    assert "pipe = tiny_world_pipeline()" in card.text and 'pipe.load_lora_weights("world-mpo")' in card.text


def test_vision_reward_card_lists_checklist_weights_and_accuracy():
    card = render_vision_reward_model_card(modality="video", model_name="vr-video", accuracy={"accuracy_tau": 0.64})
    meta = _meta(card)
    assert meta["license"] == "other" and meta["license_name"] == "cogvlm2"
    assert model_index_to_eval_results(meta["model-index"])[1][0].metric_value == 0.64
    assert "29 questions in 9 dimensions" in card.text or "29 questions in" in card.text
    assert "| Physics |" in card.text and "THUDM/VisionReward" in card.text


def test_dataset_cards_are_valid_and_carry_statistics_licence_attribution():
    vrdb = render_visionrewarddb_card(
        modality="video", split_sizes={"train": 90, "validation": 5, "test": 5}, rejects={"bad media": 2}
    )
    meta = _meta(vrdb)
    assert meta["license"] == "apache-2.0" and meta["size_categories"] == ["n<1K"]
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["train", "validation", "test"]
    assert "`physics law` | [1, 5]" in vrdb.text and "Apache-2.0" in vrdb.text and "| bad media | 2 |" in vrdb.text
    scored = render_scored_samples_card(
        num_rows=8,
        num_prompts=2,
        samples_per_prompt=4,
        checklist_id="video_select",
        generator="tiny",
        scorer="tiny",
        random_data=True,
    )
    assert "Made with random weights" in scored.text
    pairs = render_pairs_card(num_pairs=3, statistics={"granularity": "sub_dimension", "threshold": 0.5, "admitted": 3})
    assert "every VisionReward **sub_dimension**" in pairs.text and "at least **0.5**" in pairs.text
    converted = render_converted_pairs_card(
        source_format="pickapic_v2", source_dataset="yuvalkirstain/pickapic_v2", num_pairs=2
    )
    assert _meta(converted)["license_name"] == "source-dataset-license"
    for card in (vrdb, scored, pairs, converted):
        validate_dataset_card(DatasetCard(str(card)))


@pytest.mark.parametrize("app", sorted(SPACES))
def test_space_readmes_are_valid(app):
    card = render_space_readme(app, models=["THUDM/CogVideoX-2b", "./local"], suggested_hardware="a10g-small")
    meta = _meta(card)
    assert meta["sdk"] == "gradio" and meta["app_file"] == SPACES[app]["app_file"]
    assert meta["models"] == ["THUDM/CogVideoX-2b"] and len(meta["short_description"]) <= 60


def test_validation_names_every_problem():
    bad = ModelCard("---\nlicense: apache-3\nbase_model: not a repo id\npipeline_tag: video-magic\n---\n\ntext\n")
    with pytest.raises(CardValidationError) as info:
        validate_model_card(bad)
    problems = "\n".join(info.value.problems)
    assert (
        "license: 'apache-3'" in problems and "base_model: 'not a repo id'" in problems and "pipeline_tag" in problems
    )
    with pytest.raises(CardValidationError, match="size_categories"):
        validate_dataset_card(DatasetCard("---\nlicense: mit\nsize_categories: [tiny]\n---\n\ntext\n"))
    with pytest.raises(CardValidationError, match="configs: every entry needs config_name"):
        validate_dataset_card(DatasetCard("---\nlicense: mit\nconfigs: [{data_files: x}]\n---\n\ntext\n"))
    space = RepoCard("---\ntitle: t\nsdk: flask\ncolorFrom: teal\n---\n\ntext\n")
    with pytest.raises(CardValidationError) as info:
        validate_space_card(space)
    assert any("sdk: 'flask'" in p for p in info.value.problems) and any(
        "colorFrom: 'teal'" in p for p in info.value.problems
    )
    with pytest.raises(CardValidationError, match="license: 'other' needs license_name"):
        validate_model_card(ModelCard("---\nlicense: other\n---\n\ntext\n"))


def test_eval_results_accept_objects_dicts_and_mappings():
    from hub_cards.model_cards import to_eval_results

    res = EvalResult(
        task_type="text-to-video", dataset_type="prompts", dataset_name="p", metric_type="m", metric_value=1.0
    )
    assert to_eval_results([res]) == [res]
    assert to_eval_results({"total": 2})[0].metric_value == 2
    with pytest.raises(ValueError, match="unknown keys"):
        to_eval_results([{"metric_type": "m", "metric_value": 1, "colour": "red"}])


def test_cards_never_show_absolute_paths_of_the_training_machine():
    card = render_mpo_model_card(base_model="/data/models/cogvideox-2b", output_dir="/scratch/run7/adapter")
    assert "/data/models" not in str(card) and "/scratch/run7" not in str(card)
    assert "`cogvideox-2b` (local)" in card.text and 'pipe.load_lora_weights("adapter")' in card.text
