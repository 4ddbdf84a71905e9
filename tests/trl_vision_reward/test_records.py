"""The records on the loop's arrows: one definition, its Features, media resolution and the recorded rule."""

import pytest
from datasets import Dataset

from hub_cards.model_cards import rule_sentence
from trl_vision_reward.records import (
    PreferencePair,
    RecordError,
    ScoredSample,
    admission_rule,
    media_source,
    scored_samples_features_of,
)


def sample(i: int, soft: bool = True) -> ScoredSample:
    return ScoredSample(
        id=f"p-{i}",
        prompt_id="p",
        prompt_index=0,
        prompt="a cat",
        sample_index=i,
        seed=7,
        media=f"media/p/{i}.mp4",
        checklist_id="video_select",
        probabilities=[0.25, 0.75],
        answers=[False, True],
        question_scores=[0.0, 0.5],
        dimension_scores={"alignment": 0.5, "stability": 0.0},
        total=0.5,
        **({"soft_question_scores": [0.125, 0.375], "soft_dimension_scores": {"alignment": 0.375, "stability": 0.125},
            "soft_total": 0.5} if soft else {}),
    )  # fmt: skip


def test_scored_sample_round_trips_through_its_features():
    samples = [sample(0), sample(1)]
    ds = Dataset.from_list([s.to_row() for s in samples], features=scored_samples_features_of(samples, None))
    assert [ScoredSample.from_row(r) for r in ds] == samples
    assert "sub_dimension_scores" not in ds.column_names  # Parquet has no empty struct
    with pytest.raises(RecordError, match="different checklists or scorers"):
        scored_samples_features_of([sample(0), sample(1, soft=False)])
    with pytest.raises(RecordError, match=r"lacks \['total'\]"):
        ScoredSample.from_row({k: v for k, v in sample(0).to_row().items() if k != "total"})


@pytest.mark.parametrize("media", ["/abs/0.mp4", "../0.mp4"])
def test_media_paths_stay_inside_the_dataset_folder(media):
    with pytest.raises(RecordError, match="inside the dataset folder"):
        PreferencePair("p", media, "b.mp4", "a", "b", 1.0, 0.0, 1.0, True, "mpo", "dimension", 0.6)


def test_media_resolve_from_the_embedded_bytes_or_the_dataset_folder(tmp_path, monkeypatch):
    (tmp_path / "media").mkdir()
    (tmp_path / "media/a.mp4").write_bytes(b"file")
    row = {"chosen": "media/a.mp4", "chosen_video": {"bytes": b"embedded", "path": "a.mp4"}}
    assert media_source(row, "chosen", tmp_path) == b"embedded"
    assert media_source({"chosen": "media/a.mp4"}, "chosen", tmp_path) == tmp_path / "media/a.mp4"
    monkeypatch.chdir(tmp_path)  # the file is right here, but a relative path never resolves from the CWD
    with pytest.raises(RecordError, match="load the dataset from its folder"):
        media_source({"chosen": "media/a.mp4"}, "chosen", None)
    with pytest.raises(FileNotFoundError, match="media file not found: rejected 'media/b.mp4'"):
        media_source({"rejected": "media/b.mp4"}, "rejected", tmp_path)


def test_the_admission_rule_is_read_from_the_pairs_and_must_be_one():
    row = dict(prompt="p", rule="mpo", granularity="question", min_total_gap=0.4, scores="soft")
    rule = {"rule": "mpo", "granularity": "question", "min_total_gap": 0.4, "scores": "soft"}
    assert admission_rule(Dataset.from_list([row, row])) == rule
    assert admission_rule([row]) == rule
    assert admission_rule(Dataset.from_list([{"prompt": "p"}])) is None
    with pytest.raises(RecordError, match="different rules"):
        admission_rule(Dataset.from_list([row, {**row, "min_total_gap": 0.6}]))
    assert rule_sentence({**rule, "rule": "dpo", "min_total_gap": 0.8}).startswith(
        "pairs whose VisionReward totals differ by at least 0.8 (the plain-DPO rule"
    )
    assert "every VisionReward question and beats its total by at least 0.4, on soft" in rule_sentence(rule)


def test_fit_weights_reads_preference_pairs_by_sample_id():
    from trl_vision_reward.commands._data import index_by_id, resolve_pairs

    samples = [sample(0).to_row(), sample(1).to_row()]
    pair = PreferencePair("a cat", "media/p/1.mp4", "media/p/0.mp4", "p-1", "p-0", 1.0, 0.5, 0.5, True, "mpo",
                          "dimension", 0.0)  # fmt: skip
    first, second, labels = resolve_pairs([pair.to_row()], index_by_id(samples, "id", "scored"), "pairs")
    assert (first, second, labels) == ([1], [0], [1.0])
