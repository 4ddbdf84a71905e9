"""VisionRewardDB layouts: build -> Parquet -> load_dataset round trips, validation and rejects, splits."""

import json

import pytest
from datasets import Image, Video, load_dataset

from datasets_scripts.visionrewarddb import SPLITS, build_visionrewarddb, features_for, split_of
from trl_vision_reward.reward.taxonomy import load_taxonomy

# load_dataset(folder) caches by the folder's name and card, so two test folders named alike would share a cache:
# each test loads with its own cache_dir.


def _published_ids(out):
    ds = load_dataset("parquet", data_files={p.name.split("-")[0]: str(p) for p in (out / "data").glob("*.parquet")})
    return ds, sorted(i for split in ds.values() for i in split["internal_id"])


@pytest.mark.parametrize("modality", ["image", "video"])
def test_round_trip_gives_same_records_and_features(vrdb_folder, tmp_path, modality):
    media, ann, records = vrdb_folder(modality, n=8, bad=False)
    result = build_visionrewarddb(media, ann, modality, tmp_path / "out")
    loaded, ids = _published_ids(tmp_path / "out")
    assert ids == sorted(r["internal_id"] for r in records)
    for split, ds in result.dataset.items():
        assert loaded[split].features == ds.features == features_for(modality)
        media_col = modality
        for built, back in zip(ds.remove_columns(media_col), loaded[split].remove_columns(media_col)):
            assert built == back
    feature = loaded[next(iter(loaded))].features[modality]
    assert isinstance(feature, Image if modality == "image" else Video)
    row = loaded[next(iter(loaded))][0]
    original = next(r for r in records if r["internal_id"] == row["internal_id"])
    if modality == "image":
        assert row["image"].size == (16, 16)
    else:  # Video(decode=False): the bytes travel inside the Parquet file
        assert row["video"]["bytes"] == (media / original["file_name"]).read_bytes()
    # legacy key renamed, every taxonomy key present (null where not annotated), values unchanged
    assert set(row["annotation"]) == set(load_taxonomy(modality).keys)
    if modality == "image":
        assert row["annotation"]["clarity"] == original["annotation"]["sharpness"]
    assert (tmp_path / "out" / "README.md").read_text().count("## Annotation taxonomy") == 1
    assert load_dataset(
        str(tmp_path / "out"), cache_dir=str(tmp_path / "hf_cache")
    )  # the card's configs make the folder loadable as is


def test_bad_rows_are_listed_with_reasons_and_the_rest_published(vrdb_folder, tmp_path):
    media, ann, records = vrdb_folder("image", n=8, bad=True)
    out = tmp_path / "out"
    result = build_visionrewarddb(media, ann, "image", out)
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["internal_id"]: r["reason"] for r in rejects}
    assert "duplicate id: 'image-0' first seen at row 0" in reasons["image-0"]
    assert "missing media file 'nowhere.png'" in reasons["missing-media"]
    assert "unreadable image" in reasons["corrupt-media"]
    assert "is out of range; accepted range is" in reasons["out-of-range"]
    assert "unknown image annotation key 'not a key'" in reasons["unknown-key"]
    assert "missing column: prompt" in reasons["no-prompt"]
    assert len(rejects) == 6
    _, ids = _published_ids(out)
    assert ids == sorted(f"image-{i}" for i in range(8))
    assert sum(result.split_sizes.values()) == 8
    card = (out / "README.md").read_text()
    assert "## Rejected rows" in card and "rejects.jsonl" in card


def test_video_rejects_corrupt_and_missing_files(vrdb_folder, tmp_path):
    media, ann, _ = vrdb_folder("video", n=4, bad=True)
    result = build_visionrewarddb(media, ann, "video", tmp_path / "out")
    reasons = {r["internal_id"]: r["reason"] for r in result.rejects}
    assert "unreadable video" in reasons["corrupt-media"]
    assert "missing media file" in reasons["missing-media"]
    assert sum(result.split_sizes.values()) == 4


def test_external_media_keeps_relative_paths_and_copies_files(vrdb_folder, tmp_path):
    media, ann, _ = vrdb_folder("video", n=4, bad=False)
    out = tmp_path / "out"
    build_visionrewarddb(media, ann, "video", out, media="external")
    loaded, _ = _published_ids(out)
    for split in loaded.values():
        for rel in split["video_path"]:
            assert not rel.startswith("/") and (out / rel).is_file()


def test_splits_are_deterministic_by_prompt():
    prompts = [f"a prompt about thing {i}" for i in range(2000)]
    first = [split_of(p) for p in prompts]
    assert first == [split_of(p) for p in prompts]
    # normalisation: case and whitespace do not move a prompt
    assert split_of("A Prompt  about thing 7 ") == split_of("a prompt about thing 7")
    counts = {s: first.count(s) for s in SPLITS}
    assert 0.85 < counts["train"] / 2000 < 0.95 and counts["validation"] > 40 and counts["test"] > 40
    assert split_of("x", (1.0, 0.0, 0.0)) == "train"
    with pytest.raises(ValueError, match="summing to 1"):
        split_of("x", (0.5, 0.5, 0.5))


def test_all_samples_of_a_prompt_share_a_split(vrdb_folder, tmp_path):
    media, ann, _ = vrdb_folder("image", n=12, bad=False)
    result = build_visionrewarddb(media, ann, "image", None, fractions=(0.5, 0.25, 0.25))
    where = {}
    for split, ds in result.dataset.items():
        for prompt in ds["prompt"]:
            where.setdefault(prompt, set()).add(split)
    assert all(len(s) == 1 for s in where.values())


def test_unknown_modality_is_named():
    with pytest.raises(ValueError, match="modality must be 'image' or 'video'"):
        build_visionrewarddb(".", [], "audio")
