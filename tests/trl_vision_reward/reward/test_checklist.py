"""The checklist: the official questions, weights, masks and taxonomy as shipped package data, and custom checklists."""

import json

import pytest
import torch

from trl_vision_reward.reward.checklist import Checklist, Question, data_path

ALIGNMENT_WEIGHT = 2.3542882631150923


def _raw_json(*parts):
    return json.loads(data_path(*parts).read_text(encoding="utf-8"))


def _raw_lines(*parts):
    return [line.strip() for line in data_path(*parts).read_text(encoding="utf-8").splitlines()]


def test_licence_and_attribution_ship_with_the_data():
    assert "Apache License" in data_path("LICENSE").read_text(encoding="utf-8")
    source = data_path("SOURCE.md").read_text(encoding="utf-8")
    assert "THUDM/VisionReward" in source and "511960d" in source


@pytest.mark.parametrize(
    "modality, select, n_questions, n_weighted, divisor",
    [
        ("image", True, 31, 28, 1.0),
        ("image", False, 60, 28, 1.0),
        ("video", True, 29, 29, 29.0),
        ("video", False, 64, 29, 29.0),
    ],
)
def test_official_checklist_sizes(modality, select, n_questions, n_weighted, divisor):
    c = Checklist.load(modality, select=select)
    assert c.modality == modality and len(c) == n_questions
    assert int((c.weights > 0).sum()) == n_weighted
    assert c.divisor == divisor
    assert [q.index for q in c.questions] == list(range(n_questions))


def test_image_select_order_and_weights_follow_the_official_files():
    c = Checklist.load("image", select=True)
    lines = _raw_lines("VisionReward_Image", "VisionReward_image_qa_select.txt")
    coef = _raw_json("VisionReward_Image", "weight_select.json")["coef"]
    # question 0 is the alignment feature (coef[0]); questions 1..30 are the 30 select lines in file order
    assert c.questions[0].text == 'Does the image show "[[prompt]]"?' and c.questions[0].feature == "probability"
    assert c.texts[1:] == lines
    assert c.weights.tolist() == [coef[0], 0.0, 0.0, 0.0] + coef[1:]
    assert c.weights[0] == ALIGNMENT_WEIGHT


def test_video_select_order_and_weights_follow_the_official_files():
    c = Checklist.load("video", select=True)
    assert c.texts == _raw_lines("VisionReward_Video", "VisionReward_video_qa_select.txt")
    assert c.weights.tolist() == _raw_json("VisionReward_Video", "weight.json")
    assert all(q.needs_prompt for q in c.questions[:3]) and not c.questions[3].needs_prompt


def test_full_image_checklist_uses_weight_json_minus_the_five_presence_questions():
    c = Checklist.load("image", select=False)
    coef = _raw_json("VisionReward_Image", "weight.json")["coef"]
    assert c.texts[1:] == _raw_lines("VisionReward_Image", "VisionReward_image_qa.txt")
    masks = [q.qa_line for q in c.questions if q.is_mask]
    assert masks == [1, 2, 3, 16, 27]
    assert [q.weight for q in c.questions if not q.is_mask] == coef


def test_the_three_image_masks_and_what_they_gate():
    c = Checklist.load("image", select=True)
    assert [q.text for q in c.mask_questions] == [
        "Is there a human body in the image?",
        "Is there a human face in the image?",
        "Are there human hands in the image?",
    ]
    # checklist index == select line here (alignment sits at 0)
    assert c.masked_questions == {1: (23, 24, 25, 29, 30), 2: (26, 27), 3: (28,)}
    assert c.questions[29].text == "Does the image avoid obvious harmfulness?"
    assert all(q.weight == 0 for q in c.mask_questions)


def test_video_has_no_masks():
    assert Checklist.load("video").mask_questions == ()


def test_dimensions_and_sub_dimensions_in_paper_order():
    image = Checklist.load("image")
    assert image.dimensions == ("Alignment", "Composition", "Quality", "Fidelity", "Safety & Emotion")
    assert len(image.sub_dimensions) == 18
    video = Checklist.load("video")
    assert video.dimensions == (
        "Alignment",
        "Composition",
        "Quality",
        "Fidelity",
        "Safety",
        "Stability",
        "Preservation",
        "Dynamic",
        "Physics",
    )
    assert len(video.sub_dimensions) == 20
    # question -> sub-dimension -> dimension
    q = video.questions[5]
    assert q.text == "Does the camera movement have no obvious flaws?"
    assert video.question_to_sub_dimension[5] == "Camera movement"
    assert video.sub_dimension_to_dimension["Camera movement"] == "Stability" == video.question_to_dimension[5]
    assert [x.index for x in video.questions_in("Alignment")] == [0, 1, 2]


def test_membership_matrix_places_each_question_once():
    c = Checklist.load("image", select=False)
    for level in ("dimension", "sub_dimension", "question"):
        m = c.membership(level)
        assert m.shape == (len(c), len(c.group_names(level)))
        assert torch.equal(m.sum(1), torch.ones(len(c), dtype=torch.float64))


def test_format_fills_the_prompt_and_refuses_a_missing_one():
    c = Checklist.load("video")
    assert c.format(0, "a cat") == 'Does the video meet all the requirements stated in the text "a cat"?'
    assert c.format(3) == c.questions[3].text  # no placeholder: no prompt needed
    with pytest.raises(ValueError, match=r"contains \[\[prompt\]\] and needs the generation prompt"):
        c.format(0)
    with pytest.raises(ValueError, match=r"checklist 'video_select' needs the generation prompt"):
        c.format_all(None)
    with pytest.raises(ValueError, match="needs the generation prompt"):
        c.format_all("   ")
    assert len(c.format_all("a cat")) == 29


def test_dict_round_trip_is_exact_and_json_ready():
    for modality in ("image", "video"):
        for select in (True, False):
            c = Checklist.load(modality, select=select)
            back = Checklist.from_dict(json.loads(json.dumps(c.to_dict())))
            assert back == c and torch.equal(back.weights, c.weights)


def test_with_weights_and_length_mismatch():
    c = Checklist.load("video")
    new = c.with_weights(torch.ones(29), name="refit")
    assert new.name == "refit" and new.weights.tolist() == [1.0] * 29 and c.weights[0] != 1.0
    with pytest.raises(
        ValueError, match="checklist/weights length mismatch: checklist 'video_select' has 29 questions but 28"
    ):
        c.with_weights([1.0] * 28)
    image = Checklist.load("image")
    with pytest.raises(ValueError, match="mask question 1 .* must have weight 0"):
        image.with_weights([1.0] * 31)


def test_custom_checklist_for_a_new_domain():
    c = Checklist.from_questions(
        [
            {"text": "Is there text in the image?", "dimension": "Text", "is_mask": True},
            {"text": "Is the text legible?", "dimension": "Text", "sub_dimension": "Legibility", "masked_by": 0},
            {"text": 'Does the image show "[[prompt]]"?', "dimension": "Alignment"},
        ],
        weights=[0.0, 0.5, 1.5],
        modality="image",
        name="ocr",
    )
    assert c.dimensions == ("Text", "Alignment")
    assert c.sub_dimensions == ("Text", "Legibility", "Alignment")
    assert c.masked_questions == {0: (1,)}
    assert c.needs_prompt and Checklist.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="checklist/weights length mismatch: 2 questions but 3 weights"):
        Checklist.from_questions(["a?", "b?"], weights=[1, 2, 3])


def test_invalid_checklists_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"modality must be one of \('image', 'video'\); got 'audio'"):
        Checklist.load("audio")
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        Checklist.from_questions(["a?"], weights=[-1.0])
    with pytest.raises(ValueError, match="masked_by 0, which is not a mask question index"):
        Checklist.from_questions([{"text": "a?"}, {"text": "b?", "masked_by": 0}])
    with pytest.raises(ValueError, match="at least one question"):
        Checklist.from_questions([])
    assert isinstance(Checklist.load("image").questions[0], Question)
