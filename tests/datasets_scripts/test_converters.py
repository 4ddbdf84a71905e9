"""Converters from Pick-a-Pic v2, HPDv2 and ImageRewardDB records to the common pair format."""

import io

import pytest
from PIL import Image

from datasets_scripts.converters import convert, pairs_to_dataset


def _jpeg(color):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_pickapic_v2_labels_ties_and_unlabelled_rows():
    red, blue = _jpeg("red"), _jpeg("blue")
    base = {
        "caption": "a red cube",
        "jpg_0": red,
        "jpg_1": blue,
        "image_0_uid": "r",
        "image_1_uid": "b",
        "has_label": True,
        "are_different": True,
    }
    rows = [
        {**base, "ranking_id": 1, "label_0": 1.0, "label_1": 0.0},
        {**base, "ranking_id": 2, "label_0": 0.0, "label_1": 1.0},
        {**base, "ranking_id": 3, "label_0": 0.5, "label_1": 0.5},
        {**base, "ranking_id": 4, "label_0": 1.0, "label_1": 0.0, "has_label": False},
        {**base, "ranking_id": 5, "label_0": 1.0, "label_1": 0.0, "are_different": False},
        {"ranking_id": 6, "caption": "x", "label_0": 1.0},
    ]
    pairs, rejects = convert(rows, "pickapic_v2")
    assert [(p["chosen_id"], p["rejected_id"]) for p in pairs] == [("r", "b"), ("b", "r")]
    assert pairs[0]["chosen"]["bytes"] == red and pairs[1]["chosen"]["bytes"] == blue
    assert [r["reason"] for r in rejects] == [
        "tie: label_0 = label_1 = 0.5",
        "unlabelled: has_label is false",
        "identical images: are_different is false",
        "missing column: label_1",
    ]
    ds = pairs_to_dataset(pairs)
    assert ds[0]["chosen"].getpixel((4, 4))[0] > 200  # decoded red JPEG


def test_hpdv2_train_and_test_formats():
    train = [
        {"prompt": "p", "file_path": ["a.jpg", "b.jpg"], "human_preference": [0, 1]},
        {"prompt": "q", "file_path": ["c.jpg", "d.jpg"], "human_preference": [1, 1]},
    ]
    pairs, rejects = convert(train, "hpdv2")
    assert [(p["chosen"]["path"], p["rejected"]["path"]) for p in pairs] == [("b.jpg", "a.jpg")]
    assert rejects[0]["reason"].startswith("tie")
    test = [{"prompt": "r", "image_path": ["x.jpg", "y.jpg", "z.jpg"], "rank": [2, 1, 2]}]
    pairs, rejects = convert(test, "hpdv2")
    assert sorted((p["chosen"]["path"], p["rejected"]["path"]) for p in pairs) == [
        ("y.jpg", "x.jpg"),
        ("y.jpg", "z.jpg"),
    ]
    assert rejects == []


def test_imagerewarddb_groups_by_prompt_and_ranks(tmp_path):
    for name, color in (("a.png", "red"), ("b.png", "green"), ("c.png", "blue")):
        Image.new("RGB", (8, 8), color).save(tmp_path / name)
    rows = [
        {"image_path": "a.png", "prompt_id": "1", "prompt": "p", "rank": 3},
        {"image_path": "b.png", "prompt_id": "1", "prompt": "p", "rank": 1},
        {"image_path": "c.png", "prompt_id": "1", "prompt": "p", "rank": 2},
        {"image_path": "d.png", "prompt_id": "2", "prompt": "q", "rank": 1},
        {"image_path": "e.png", "prompt_id": "3", "prompt": "s"},
    ]
    pairs, rejects = convert(rows, "imagerewarddb")
    assert sorted((p["chosen_id"], p["rejected_id"]) for p in pairs) == [
        ("b.png", "a.png"),
        ("b.png", "c.png"),
        ("c.png", "a.png"),
    ]
    assert {r["reason"] for r in rejects} == {"single image: no pair to form", "missing column: rank"}
    ds = pairs_to_dataset(pairs, image_root=str(tmp_path))
    assert len(ds) == 3 and ds[0]["chosen"].size == (8, 8)


def test_unknown_format_is_named():
    with pytest.raises(ValueError, match="source_format must be one of"):
        convert([], "laion")
