"""The official VisionReward scoring rule on fixed answer vectors, with expected totals worked out by hand."""

import json
import math

import pytest
import torch

from trl_vision_reward.reward import scoring_rule as rule
from trl_vision_reward.reward.checklist import Checklist, data_path

IMAGE = Checklist.load("image", select=True)  # 0: alignment, 1-3: masks (body, face, hands), 4-30: weighted
VIDEO = Checklist.load("video", select=True)
COEF = json.loads(data_path("VisionReward_Image", "weight_select.json").read_text())["coef"]  # 28 = alignment + 27
VIDEO_W = json.loads(data_path("VisionReward_Video", "weight.json").read_text())  # 29


def released_image_score(select_answers: list[int], vqa: float) -> float:
    """The released inference-image.py flow, restated: 30 select answers (1 yes / 0 no) -> +1/-1, masks, drop the 3
    mask entries, prepend the VQAScore probability, dot with weight_select coef."""
    x = [1 if a else -1 for a in select_answers]
    if x[0] == -1:  # no body: body (select lines 23-25) and harmfulness (29-30) features are 0
        for line in (23, 24, 25, 29, 30):
            x[line - 1] = 0
    if x[1] == -1:  # no face
        for line in (26, 27):
            x[line - 1] = 0
    if x[2] == -1:  # no hands
        x[28 - 1] = 0
    feats = [vqa] + x[3:]
    return sum(f * w for f, w in zip(feats, COEF))


def image_answers(select_answers: list[int]) -> torch.Tensor:
    return torch.tensor([0.0] + [float(a) for a in select_answers])  # alignment slot's hard answer is not used


def test_image_all_yes_people_present():
    answers = [1] * 30
    expected = 0.7 * COEF[0] + sum(COEF[1:])  # every feature +1, alignment 0.7
    got = rule.official_score(IMAGE, image_answers(answers), alignment=0.7)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert got.item() == pytest.approx(released_image_score(answers, 0.7), abs=1e-12)


def test_image_all_no_masks_zero_people_features():
    # all "no": body/face/hands absent, so select lines 23-30 are 0; lines 4-22 are -1 (coef[1..19])
    answers = [0] * 30
    expected = 0.25 * COEF[0] - sum(COEF[1:20])
    # written out: select lines 4-22 (symmetry .. detail refinement / fragmentation)
    lines_4_to_22 = [
        0.06884638950983572,
        0.10183602465324491,
        0.13065931709231515,
        0.06950163043882204,
        0.055586526962739594,
        0.043667179730282585,
        0.21147753430256036,
        0.5828223926159606,
        0.050970475125495074,
        0.06795294324813127,
        0.06490948537019271,
        0.3247595671294795,
        0.07562963582524587,
        0.07747325725869728,
        0.04220313071020716,
        0.0514756964680454,
        0.010243704179493112,
        0.01737524212080004,
        0.11455097588617139,
    ]
    assert sum(lines_4_to_22) == pytest.approx(2.1619411086277203, abs=1e-12)
    assert expected == pytest.approx(0.25 * 2.3542882631150923 - 2.1619411086277203, abs=1e-12)
    got = rule.official_score(IMAGE, image_answers(answers), alignment=0.25)
    assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("absent", ["body", "face", "hands"])
def test_each_mask_zeroes_exactly_its_features(absent):
    answers = [1] * 30
    answers[{"body": 0, "face": 1, "hands": 2}[absent]] = 0
    gated = {"body": (23, 24, 25, 29, 30), "face": (26, 27), "hands": (28,)}[absent]
    # with everything else "yes", masking removes +w for each gated line (select line L has coef[L - 3])
    expected = 0.5 * COEF[0] + sum(COEF[1:]) - sum(COEF[line - 3] for line in gated)
    got = rule.official_score(IMAGE, image_answers(answers), alignment=0.5)
    assert got.item() == pytest.approx(expected, abs=1e-12)
    assert got.item() == pytest.approx(released_image_score(answers, 0.5), abs=1e-12)


def test_image_random_answer_vectors_match_the_released_flow():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        answers = torch.randint(0, 2, (30,), generator=g).tolist()
        vqa = torch.rand((), generator=g).item()
        got = rule.official_score(IMAGE, image_answers(answers), alignment=vqa).item()
        assert got == pytest.approx(released_image_score(answers, vqa), abs=1e-12)


def test_image_alignment_comes_from_probabilities_when_no_external_scorer():
    p = torch.full((31,), 0.5, dtype=torch.float64)
    p[0] = 0.9
    a = image_answers([1] * 30)
    assert rule.official_score(IMAGE, a, p).item() == pytest.approx(0.9 * COEF[0] + sum(COEF[1:]), abs=1e-12)
    with pytest.raises(ValueError, match="alignment probability"):
        rule.official_score(IMAGE, a)


def test_full_image_list_gives_the_same_official_score():
    full = Checklist.load("image", select=False)
    select_lines = [q.qa_line for q in IMAGE.questions[1:]]
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        sel = torch.randint(0, 2, (30,), generator=g).tolist()
        by_line = dict(zip(select_lines, sel))
        answers = [0.0] + [float(by_line.get(q.qa_line, 1)) for q in full.questions[1:]]
        got = rule.official_score(full, answers, alignment=0.3).item()
        assert got == pytest.approx(released_image_score(sel, 0.3), abs=1e-12)


def test_issue_26_all_no_video_is_minus_sum_of_weights_over_29():
    got = rule.official_score(VIDEO, torch.zeros(29)).item()
    assert got == pytest.approx(-sum(VIDEO_W) / 29, abs=1e-15)
    assert got == pytest.approx(-0.21645422762093167, abs=1e-15)  # the constant reported in the issue


def test_video_mean_of_signed_answers_times_weights():
    answers = [1, 0] * 14 + [1]
    expected = sum((1 if a else -1) * w for a, w in zip(answers, VIDEO_W)) / 29
    assert rule.official_score(VIDEO, answers).item() == pytest.approx(expected, abs=1e-15)
    # the full 64-question list scores the same (35 unselected questions weigh 0, still / 29)
    full = Checklist.load("video", select=False)
    by_text = dict(zip(VIDEO.texts, answers))
    full_answers = [by_text.get(t, 1) for t in full.texts]
    assert rule.official_score(full, full_answers).item() == pytest.approx(expected, abs=1e-15)


def test_batch_dimensions_broadcast():
    answers = torch.stack([torch.zeros(29), torch.ones(29)])
    got = rule.official_score(VIDEO, answers)
    assert got.shape == (2,)
    assert got[1].item() == pytest.approx(sum(VIDEO_W) / 29)


def test_compare_is_the_sign_of_the_score_difference():
    yes, no = torch.ones(29), torch.zeros(29)
    assert rule.compare(VIDEO, yes, no).item() == 1
    assert rule.compare(VIDEO, no, yes).item() == -1
    assert rule.compare(VIDEO, yes, yes).item() == 0
    # the released video comparison: sum((a1 - a2) * w) > 0
    a1 = torch.tensor([1, 0] * 14 + [1.0])
    a2 = 1 - a1
    released = sum((x - y) * w for x, y, w in zip(a1.tolist(), a2.tolist(), VIDEO_W)) > 0
    assert (rule.compare(VIDEO, a1, a2).item() == 1) == released
    # image: alignment enters through the per-image probabilities
    a = image_answers([1] * 30)
    assert rule.compare(IMAGE, a, a, alignment_a=0.9, alignment_b=0.1).item() == 1


def test_dimension_scores_paper_eq6():
    yes = torch.ones(29)
    dims = dict(zip(VIDEO.dimensions, rule.dimension_scores(VIDEO, yes).tolist()))
    assert dims["Alignment"] == pytest.approx(0.9543901856422174 + 0.25239747290239256 + 1.141818673357406)
    assert dims["Safety"] == 0.0
    assert sum(dims.values()) == pytest.approx(sum(VIDEO_W))
    subs = dict(zip(VIDEO.sub_dimensions, rule.dimension_scores(VIDEO, yes, "sub_dimension").tolist()))
    assert subs["Camera movement"] == pytest.approx(0.12600844108184325)
    assert sum(rule.dimension_scores(VIDEO, torch.zeros(29)).tolist()) == 0.0
    per_q = rule.dimension_scores(VIDEO, yes, "question")
    assert torch.allclose(per_q, VIDEO.weights)


def test_dimension_scores_respect_image_masks():
    answers = image_answers([0] + [1] * 29)  # no body, everything else yes
    subs = dict(zip(IMAGE.sub_dimensions, rule.dimension_scores(IMAGE, answers, "sub_dimension").tolist()))
    assert subs["Body"] == 0.0 and subs["Safety"] == 0.0
    assert subs["Face"] == pytest.approx(COEF[23] + COEF[24])  # select lines 26, 27
    assert subs["Hands"] == pytest.approx(COEF[25])


def test_soft_scores_equal_hard_ones_at_certainty_and_expectation_in_between():
    for c in (IMAGE, VIDEO):
        g = torch.Generator().manual_seed(2)
        answers = torch.randint(0, 2, (len(c),), generator=g).double()
        assert rule.soft_score(c, answers).item() == pytest.approx(rule.official_score(c, answers, answers).item())
        assert torch.allclose(rule.soft_dimension_scores(c, answers), rule.dimension_scores(c, answers))
    # p = 0.5 everywhere: every +1/-1 feature has expectation 0; the image keeps only the alignment term
    assert rule.soft_score(VIDEO, torch.full((29,), 0.5)).item() == 0.0
    assert rule.soft_score(IMAGE, torch.full((31,), 0.5)).item() == pytest.approx(0.5 * COEF[0])
    # soft video total = mean over questions of (2p - 1) w
    p = torch.linspace(0, 1, 29, dtype=torch.float64)
    assert rule.soft_score(VIDEO, p).item() == pytest.approx(((2 * p - 1) * VIDEO.weights).sum().item() / 29)


def test_soft_image_total_is_the_expected_official_score_under_independent_answers():
    # exact expectation by enumeration on a 3-question custom checklist with a mask
    c = Checklist.from_questions(
        [{"text": "person?", "is_mask": True}, {"text": "hands ok?", "masked_by": 0}, {"text": "sharp?"}],
        weights=[0.0, 0.7, 0.2],
    )
    p = torch.tensor([0.6, 0.3, 0.9], dtype=torch.float64)
    expected = 0.0
    for bits in range(8):
        a = torch.tensor([(bits >> i) & 1 for i in range(3)], dtype=torch.float64)
        prob = torch.prod(torch.where(a == 1, p, 1 - p)).item()
        expected += prob * rule.official_score(c, a).item()
    assert rule.soft_score(c, p).item() == pytest.approx(expected, abs=1e-12)


def test_soft_dimension_scores_use_probabilities():
    p = torch.full((29,), 0.25, dtype=torch.float64)
    dims = rule.soft_dimension_scores(VIDEO, p)
    assert dims.sum().item() == pytest.approx(0.25 * sum(VIDEO_W))


def test_bad_inputs_name_the_expected_shape_and_values():
    with pytest.raises(ValueError, match=r"answers must have 29 entries .* got shape \(28,\)"):
        rule.official_score(VIDEO, torch.zeros(28))
    with pytest.raises(ValueError, match="answers must be 0/1"):
        rule.official_score(VIDEO, torch.full((29,), 0.5))
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        rule.soft_score(VIDEO, torch.full((29,), 1.5))
    assert math.isclose(rule.answers_from_probabilities([0.2, 0.7]).sum().item(), 1.0)
