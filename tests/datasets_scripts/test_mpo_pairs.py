"""Scored samples -> MPO pairs -> trainer input; the pairs dataset's card carries rule and admission statistics."""

import json

import pytest
from datasets import load_dataset

from datasets_scripts.generate_and_score import load_scored_records, run_generate_and_score
from datasets_scripts.mpo_pairs import build_pairs, with_scores, write_pairs
from trl_vision_reward.mpo.data import MEDIA_COLUMNS, is_media_pairs
from trl_vision_reward.mpo.pairs import PairRule, dominates, mine_pairs
from trl_vision_reward.records import PreferencePair, admission_rule, media_source


@pytest.fixture
def scored_job(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    run_generate_and_score(
        [f"prompt {i}" for i in range(6)], stub_sampler(), stub_scorer(), out, samples_per_prompt=4, progress=False
    )
    return out


def test_pairs_follow_the_rule_and_feed_the_trainer(scored_job, tmp_path):
    rule = PairRule("mpo", "dimension", min_total_gap=0.3)
    pairs, stats = build_pairs(scored_job, rule)
    assert len(pairs) == stats.admitted > 0
    assert stats.candidates == 6 * 6  # C(4, 2) candidates for each of the 6 prompts
    by_media = {r["media"]: r for r in load_scored_records(scored_job)}
    for pair in pairs:
        chosen, rejected = by_media[pair["chosen"]], by_media[pair["rejected"]]
        assert dominates(chosen, rejected, "dimension")
        assert chosen["total"] - rejected["total"] >= 0.3
        assert chosen["prompt"] == rejected["prompt"] == pair["prompt"]
        assert (pair["chosen_id"], pair["rejected_id"]) == (chosen["id"], rejected["id"])
        # one shape in memory and on disk: relative media path, the media itself in chosen_video
        assert pair["chosen_video"]["path"] == str(scored_job / pair["chosen"])
        assert (pair["rule"], pair["granularity"], pair["min_total_gap"], pair["scores"]) == (
            "mpo",
            "dimension",
            0.3,
            "official",
        )
    PreferencePair.from_row(pairs[0])  # every row is the record
    # the trainer's media-pair contract
    assert is_media_pairs(pairs.column_names)
    assert set(MEDIA_COLUMNS) <= set(pairs.column_names)
    # the same pairs as the pure mining function on the raw records
    expected, _ = mine_pairs(load_scored_records(scored_job), rule)
    assert [(p["chosen"], p["rejected"]) for p in expected] == list(zip(pairs["chosen"], pairs["rejected"]))


def test_written_pairs_round_trip_with_embedded_media_and_card(scored_job, tmp_path):
    pairs, stats = build_pairs(scored_job, PairRule("mpo", "dimension", min_total_gap=0.3))
    out = write_pairs(pairs, stats, tmp_path / "pairs", source="job")
    ds = load_dataset("parquet", data_files=str(out / "data" / "train-00000-of-00001.parquet"), split="train")
    assert len(ds) == len(pairs)
    assert list(ds["prompt"]) == list(pairs["prompt"]) and list(ds["chosen"]) == list(pairs["chosen"])
    assert ds.features == pairs.features  # one definition in memory and on disk
    assert not any(c.startswith("/") for c in list(ds["chosen"]) + list(ds["rejected"]))
    row = ds[0]
    assert row["chosen_video"]["bytes"] == (scored_job / row["chosen"]).read_bytes()
    assert row["chosen_dimension_scores"] == pytest.approx(pairs[0]["chosen_dimension_scores"])
    card = (out / "README.md").read_text()
    stats_file = json.loads((out / "stats.json").read_text())
    assert stats_file["admitted"] == stats.admitted
    for text in (
        "## Admission rule",
        "every VisionReward **dimension**",
        f"| admitted | {stats.admitted} |",
        f"| candidate pairs | {stats.candidates} |",
        "| threshold | 0.3 |",
        "rejected: not_dominating",
    ):
        assert text in card
    assert is_media_pairs(ds.column_names)
    assert admission_rule(ds) == {"rule": "mpo", "granularity": "dimension", "min_total_gap": 0.3, "scores": "official"}


def test_pairs_without_embedded_media_carry_their_files(scored_job, tmp_path):
    pairs, stats = build_pairs(scored_job, PairRule("mpo", "dimension", min_total_gap=0.3))
    out = write_pairs(pairs, stats, tmp_path / "pairs", embed_media=False)
    ds = load_dataset("parquet", data_files=str(out / "data" / "train-00000-of-00001.parquet"), split="train")
    assert "chosen_video" not in ds.column_names
    for row in ds:  # the relative paths resolve from the pairs folder, the files equal the scored ones
        assert (out / row["chosen"]).read_bytes() == (scored_job / row["chosen"]).read_bytes()
        assert media_source(row, "rejected", out) == out / row["rejected"]


def test_pairs_mined_from_a_published_scored_dataset_embed_its_media(scored_job, tmp_path, stub_sampler):
    """A scored dataset with embedded media (as on the Hub) needs no media files: the pairs embed its bytes."""
    from datasets_scripts.generate_and_score import collect_scored_samples

    collect_scored_samples(scored_job)
    parquet = tmp_path / "published.parquet"
    (scored_job / "data" / "train-00000-of-00001.parquet").rename(parquet)
    pairs, _ = build_pairs(parquet, PairRule("mpo", "dimension", min_total_gap=0.3))
    assert len(pairs) and pairs[0]["chosen_video"]["bytes"] == (scored_job / pairs[0]["chosen"]).read_bytes()


def test_soft_scores_are_used_when_asked():
    records = [
        {
            "id": "a",
            "prompt": "p",
            "total": 0.0,
            "dimension_scores": {"x": 0.0, "y": 0.0},
            "soft_total": 0.9,
            "soft_dimension_scores": {"x": 0.5, "y": 0.4},
        },
        {
            "id": "b",
            "prompt": "p",
            "total": 0.0,
            "dimension_scores": {"x": 0.0, "y": 0.0},
            "soft_total": 0.2,
            "soft_dimension_scores": {"x": 0.1, "y": 0.1},
        },
    ]
    official, stats = build_pairs(records, PairRule("mpo", "dimension", 0.1))
    assert len(official) == 0 and stats.counts["tie"] == 1
    soft, stats = build_pairs(records, PairRule("mpo", "dimension", 0.1), scores="soft")
    assert len(soft) == 1 and soft[0]["chosen"] == "a" and stats.rule["scores"] == "soft"
    assert with_scores(records, "soft")[0]["official_total"] == 0.0
    with pytest.raises(KeyError, match="has no soft scores"):
        with_scores([{"id": "c", "prompt": "p", "total": 1.0}], "soft")


@pytest.mark.slow
def test_pairs_encode_into_the_trainers_latent_pairs(scored_job, tmp_path):
    """Scored samples -> pairs -> ``precompute_latent_pairs`` -> a dataset the MPO trainer accepts."""
    from diffusers_cogvideox.tiny import tiny_components
    from trl_vision_reward.mpo.data import (
        REQUIRED_COLUMNS,
        check_columns,
        column_names,
        precompute_latent_pairs,
        text_prompt_encoder,
    )

    pairs, _ = build_pairs(scored_job, PairRule("mpo", "dimension", min_total_gap=0.3))
    parts = tiny_components()
    folder = precompute_latent_pairs(
        pairs.select(range(2)),
        tmp_path / "latents",
        vae=parts["vae"],
        encode_prompt=text_prompt_encoder(
            parts["text_encoder"], parts["tokenizer"], parts["transformer"].config.max_text_seq_length
        ),
        num_frames=5,
        height=16,
        width=16,
    )
    assert len(folder) == 2
    row = folder[0]
    check_columns(column_names(folder) or list(row))
    assert set(REQUIRED_COLUMNS) <= set(row) and row["prompt"] == pairs[0]["prompt"]
    assert row["chosen_latents"].shape == row["rejected_latents"].shape and row["chosen_latents"].ndim == 4
