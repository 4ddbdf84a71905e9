"""Table 2 metrics: tau (pairwise accuracy with tie calibration) and diff (ties dropped), judgment accuracy, reports."""

import json
import math

import numpy as np
import pytest

from trl_vision_reward.reward.evaluation import (
    EvaluationReport,
    accuracy_with_ties,
    accuracy_without_ties,
    judgment_accuracy,
    preference_accuracy,
)

# human: 1 = first preferred, -1 = second, 0 = tie; margins = score(first) - score(second)
HUMAN = [1, 1, -1, 0, 0, 1]
MARGINS = [0.5, -0.2, -1.0, 0.05, 0.3, 0.0]


def test_diff_drops_human_ties_and_counts_a_zero_margin_as_wrong():
    # non-tied pairs: 0 (right), 1 (wrong), 2 (right), 5 (zero margin: wrong) -> 2 / 4
    assert accuracy_without_ties(HUMAN, MARGINS) == 0.5


def test_tau_hand_computed_with_tie_calibration():
    # epsilon  predicted ties           right
    #   none   -                        pairs 0, 2             2/6
    #   0.0    5 (human: first)         0, 2                   2/6
    #   0.05   3, 5                     0, 2, 3                3/6
    #   0.2    1, 3, 5                  0, 2, 3                3/6
    #   0.3    1, 3, 4, 5               0, 2, 3, 4             4/6  <- best
    #   0.5    0, 1, 3, 4, 5            2, 3, 4                3/6
    #   1.0    all                      3, 4                   2/6
    tau, epsilon = accuracy_with_ties(HUMAN, MARGINS)
    assert tau == pytest.approx(4 / 6)
    assert epsilon == 0.3


def test_tau_with_a_fixed_epsilon():
    assert accuracy_with_ties(HUMAN, MARGINS, epsilon=0.05) == (pytest.approx(3 / 6), 0.05)
    assert accuracy_with_ties(HUMAN, MARGINS, epsilon=-1.0)[0] == pytest.approx(2 / 6)  # no predicted ties


def test_tau_without_human_ties_prefers_no_threshold():
    tau, epsilon = accuracy_with_ties([1, -1, 1], [0.4, -0.1, 0.2])
    assert tau == 1.0 and epsilon == -1.0


def test_tau_matches_the_ties_matter_formula_on_random_data():
    """acc_eq = (C + T_hm) / (C + D + T_h + T_m + T_hm), maximised over every observed threshold."""
    rng = np.random.default_rng(0)
    human = rng.choice([1, -1, 0], size=200, p=[0.4, 0.4, 0.2])
    margins = np.round(rng.normal(size=200) + 0.5 * human, 1)  # rounding makes equal |m| (group thresholds)

    def acc_eq(eps):
        c = d = th = tm = thm = 0
        for h, m in zip(human, margins):
            if h == 0 and abs(m) <= eps:
                thm += 1
            elif h == 0:
                th += 1
            elif abs(m) <= eps:
                tm += 1
            elif h * m > 0:
                c += 1
            else:
                d += 1
        return (c + thm) / (c + d + th + tm + thm)

    best = max(acc_eq(e) for e in [-1.0, *np.abs(margins)])
    tau, epsilon = accuracy_with_ties(human, margins)
    assert tau == pytest.approx(best)
    assert acc_eq(epsilon) == pytest.approx(tau)


def test_preference_accuracy_bundles_both():
    acc = preference_accuracy(HUMAN, MARGINS)
    assert (acc.tau, acc.diff, acc.epsilon, acc.num_pairs, acc.num_human_ties) == (pytest.approx(4 / 6), 0.5, 0.3, 6, 2)


def test_bad_preference_input_names_the_pair():
    with pytest.raises(ValueError, match=r"pair 2: human label 2.0 is not 1 \(first\), -1 \(second\) or 0 \(tie\)"):
        preference_accuracy([1, 0, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"margins must have one entry per pair \(3\)"):
        preference_accuracy([1, 0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="pair 1: margin is not finite"):
        preference_accuracy([1, 0], [0.1, float("nan")])


def test_judgment_accuracy_per_dimension_skips_masked_labels():
    predictions = [[0.9, 0.2, 0.7], [0.4, 0.6, 0.1]]
    labels = [[1, 0, None], [1, None, 0]]  # None: masked (e.g. no hands) -> not counted
    acc = judgment_accuracy(predictions, labels, ["Quality", "Fidelity", "Fidelity"], questions=["a", "b", "c"])
    # Quality: (0.9 -> yes, right) (0.4 -> no, wrong) = 1/2; Fidelity: (0.2 -> no, right) (0.1 -> no, right) = 2/2
    assert acc.per_dimension == {"Quality": 0.5, "Fidelity": 1.0}
    assert acc.counts == {"Quality": 2, "Fidelity": 2}
    assert acc.overall == 0.75 and acc.num_judgments == 4
    assert acc.per_question == {"a": 0.5, "b": 1.0, "c": 1.0}


def test_judgment_accuracy_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"row 1, question 0: label 2.0 is not 1 \(yes\), 0 \(no\) or None"):
        judgment_accuracy([[0.1], [0.2]], [[1], [2]], ["Quality"])
    with pytest.raises(ValueError, match="dimensions must name one dimension per question"):
        judgment_accuracy([[0.1, 0.2]], [[1, 0]], ["Quality"])


def test_report_table_and_json():
    report = EvaluationReport(
        preference={"monetbench": preference_accuracy(HUMAN, MARGINS)},
        judgment=judgment_accuracy([[0.9]], [[None]], ["Safety"]),
        metadata={"checklist": "video_select"},
    )
    table = report.format_table()
    assert "| monetbench | 6 | 2 | 66.7 | 50.0 | 0.3 |" in table
    assert "| Safety | 0 | n/a |" in table
    data = json.loads(report.to_json())  # NaN (no judgments) becomes null, so the file is valid JSON
    assert data["judgment"]["overall"] is None
    assert math.isclose(data["preference"]["monetbench"]["tau"], 4 / 6)
