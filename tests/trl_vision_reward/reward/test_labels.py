"""Judgment labels from VisionRewardDB-style annotations: the paper's "option >= row" rule, masks, and bad input."""

import pytest

from trl_vision_reward.reward.checklist import Checklist
from trl_vision_reward.reward.labels import (
    judgment_labels,
    label_records,
    labeled_questions,
    sub_dimension_scales,
)

RICHNESS = (
    "Is the image very rich?",
    "Is the image rich?",
    "Is the image not monotonous?",
    "Is the image not empty?",
)
HANDS = (
    "Are there human hands in the image?",
    "Are the human hands perfect?",
    "Are the human hands essentially correct?",
    "Do the human hands avoid obvious errors?",
    "Do the human hands avoid serious errors?",
)
BODY = (
    "Is there a human body in the image?",
    "Is the human body in the image completely correct?",
    "Does the human body in the image avoid errors?",
    "Does the human body in the image avoid obvious errors?",
    "Does the human body in the image avoid serious errors?",
)
HARMFULNESS = ("Does the image avoid obvious harmfulness?", "Does the image avoid serious harmfulness?")
VIDEO_ALIGNMENT = tuple(q.text for q in labeled_questions("video") if q.sub_dimension == "Alignment")


def _labels(annotation, questions, modality="image", **kwargs):
    return judgment_labels(annotation, modality, questions=list(questions), **kwargs).labels


# ------------------------------------------------------------------------------------------------------ image
@pytest.mark.parametrize(
    "value, expected",
    [
        (2, (1, 1, 1, 1)),  # very rich
        (1, (0, 1, 1, 1)),  # rich
        (0, (0, 0, 1, 1)),  # ordinary
        (-1, (0, 0, 0, 1)),  # monotonous: still "not empty"
        (-2, (0, 0, 0, 0)),  # empty
        ("rich", (0, 1, 1, 1)),  # option labels are accepted too
    ],
)
def test_image_richness_follows_the_dataset_card_scale(value, expected):
    # card: 2 very rich, 1 rich, 0 normal, -1 monotonous, -2 empty; yes iff the option is the row's option or better
    assert _labels({"richness": value}, RICHNESS) == expected


def test_hands_absent_masks_the_hand_questions_but_labels_the_presence_question():
    labels = _labels({"hands": -4}, HANDS)  # -4 = "no human hands"
    assert labels == (0, None, None, None, None)


def test_hands_with_minor_errors():
    # -1 = "minor errors": present, not perfect, not essentially correct, avoids obvious and serious errors
    assert _labels({"hands": -1}, HANDS) == (1, 0, 0, 1, 1)


def test_legacy_keys_give_the_same_labels():
    current = judgment_labels({"hands": -2, "richness": 1, "lighting distinction": 0}, "image")
    legacy = judgment_labels({"hand": -2, "richness": 1, "shadow_degree": 0}, "image")
    assert current.labels == legacy.labels


def test_no_body_masks_body_questions_while_safety_keeps_its_labels():
    labels = judgment_labels({"body": -4, "safety": -2}, "image", questions=list(BODY + HARMFULNESS)).labels
    # -2 = "harmful": avoids serious harmfulness (row "harmful") but not obvious harmfulness (row "potentially harmful")
    assert labels == (0, None, None, None, None, 0, 1)


def test_body_present_with_obvious_errors():
    assert _labels({"body": -2}, BODY) == (1, 0, 0, 0, 1)


def test_unannotated_sub_dimensions_and_missing_values_have_no_label():
    labels = judgment_labels({"richness": None}, "image")
    assert set(labels.labels) == {None}
    assert labels.mask == (False,) * len(labels.labels)


def test_every_image_sub_dimension_is_monotone_in_the_option():
    # for each value, questions on worse rows are "yes" whenever a question on a better row is
    for scale in sub_dimension_scales("image"):
        questions = [q for q in labeled_questions("image") if q.annotation_key == scale.annotation_key]
        lo, hi = scale.value_range
        assert hi - lo + 1 == len(scale.options), scale.name
        for value in range(lo, hi + 1):
            labels = judgment_labels({scale.annotation_key: value}, "image", questions=[q.text for q in questions])
            for q, label in zip(questions, labels.labels):
                if label is None:
                    continue
                assert label == int(hi - value <= q.option_rank), (scale.name, value, q.text)


def test_select_list_and_checklist_order():
    select = judgment_labels({"richness": 1}, "image", questions="select")
    assert len(select.questions) == 30  # alignment is scored by VQAScore and has no annotation
    assert select.questions[:3] == (BODY[0], "Is there a human face in the image?", HANDS[0])
    checklist = Checklist.load("image")
    texts = [q for q in checklist.questions if q.annotation_key]
    assert judgment_labels({"richness": 1}, "image", questions=texts).questions == select.questions


# ------------------------------------------------------------------------------------------------------ video
@pytest.mark.parametrize(
    "value, expected",
    [(5, (1, 1, 1, 1)), (4, (0, 1, 1, 1)), (2, (0, 0, 0, 1)), (1, (0, 0, 0, 0))],
)
def test_video_alignment(value, expected):
    # options: meet 100%, 80-100%, 60-80%, 40-60%, 0-40%; highest value = best
    assert _labels({"alignment": value}, VIDEO_ALIGNMENT, "video") == expected


def test_video_value_order_can_be_reversed():
    assert _labels({"alignment": 1}, VIDEO_ALIGNMENT, "video", value_order="lower_is_better") == (1, 1, 1, 1)
    assert _labels({"alignment": 5}, VIDEO_ALIGNMENT, "video", value_order="lower_is_better") == (0, 0, 0, 0)


def test_video_extra_values_extend_the_worst_option():
    # lighting aes has range [1, 5] but 4 options: 2 and 1 are both at or below "bad"
    texts = [q.text for q in labeled_questions("video") if q.annotation_key == "lighting aes"]
    assert _labels({"lighting aes": 1}, texts, "video") == _labels({"lighting aes": 2}, texts, "video") == (0, 0, 0)
    assert _labels({"lighting aes": 3}, texts, "video") == (0, 0, 1)


def test_video_has_no_masks_and_letters_absent_is_no():
    texts = [q.text for q in labeled_questions("video") if q.annotation_key == "letters"]
    assert texts[-1] == "Are there any letters present?"
    assert _labels({"letters": 1}, texts, "video") == (0, 0, 0)  # 1 = "no letter": every answer is a plain no
    assert _labels({"letters": 3}, texts, "video") == (0, 1, 1)  # "normal"


def test_video_record_fills_every_question():
    annotation = {s.annotation_key: s.value_range[1] for s in sub_dimension_scales("video")}
    labels = judgment_labels(annotation, "video")
    assert len(labels.labels) == 64 and set(labels.labels) == {1}


# ------------------------------------------------------------------------------------------------------ errors
def test_unknown_annotation_key_names_the_record_and_the_accepted_keys():
    with pytest.raises(
        ValueError, match=r"record 'img-7': unknown image annotation key 'richnes'; accepted keys are \["
    ):
        judgment_labels({"richnes": 1}, "image", record_id="img-7")


def test_out_of_range_value_names_the_record_key_and_range():
    with pytest.raises(
        ValueError, match=r"record 'img-7': annotation 'richness' = 3 is out of range; accepted range is \[-2, 2\]"
    ):
        judgment_labels({"richness": 3}, "image", record_id="img-7")
    with pytest.raises(
        ValueError, match=r"annotation 'shape at beginning' = 4 is out of range; accepted range is \[0, 3\]"
    ):
        judgment_labels({"shape at beginning": 4}, "video", record_id=3)


def test_unknown_option_label_lists_the_options():
    with pytest.raises(
        ValueError, match=r"annotation 'richness' has option 'lush'; accepted options are \['very rich'"
    ):
        judgment_labels({"richness": "lush"}, "image")


def test_label_records_uses_internal_id_or_row_in_errors():
    records = [
        {"internal_id": "a", "annotation": {"richness": 1}},
        {"annotation": {"richness": 1, "hands": 2}},
    ]
    with pytest.raises(
        ValueError, match=r"record 'row 1': annotation 'hands' = 2 is out of range; accepted range is \[-4, 1\]"
    ):
        label_records(records, "image")
    with pytest.raises(ValueError, match=r"record 'b' \(row 0\) has no 'annotation' field"):
        label_records([{"internal_id": "b", "image": None}], "image")


def test_ignored_keys_and_duplicates():
    assert judgment_labels({"unsafe type": 2, "richness": 0}, "image").labels  # "unsafe type" is not a checklist key
    with pytest.raises(ValueError, match="'hands' is given twice"):
        judgment_labels({"hands": 1, "hand": 1}, "image")
    with pytest.raises(ValueError, match="question 'Is the image shiny\\?' has no annotation-based label"):
        judgment_labels({}, "image", questions=["Is the image shiny?"])
