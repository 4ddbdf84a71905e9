"""Which total-score gap the pairs stage uses, and why (stated in the report and the pairs card).

The paper's thresholds (:data:`trl_vision_reward.mpo.pairs.PAPER_THRESHOLDS`) are gaps on the official total of the
released checklist. The tiny world's scorer answers ten questions with weights fitted to the world's preference, so
its totals live on a much smaller scale and the paper's gap can admit nothing. With that scorer and no
``--pair_threshold`` the stage tries, in order, and keeps the first rule that admits a pair:

1. ``paper``: the paper's threshold, as published;
2. ``one_answer``: the change of the total when one answer of average weight turns from no to yes
   (``2 * mean(w) / divisor``): the smallest difference the world's scorer can be said to see;
3. ``any_gap``: threshold 0, i.e. any positive gap (ties are never admitted, so an MPO pair strictly dominates).

A threshold the user passed, the paper's for a full-size scorer and 0 for a random scorer are used as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RULE_NAMES = ("given", "paper", "one_answer", "any_gap", "random_scorer")


@dataclass
class ThresholdChoice:
    rule: str  # one of RULE_NAMES
    threshold: float
    reason: str
    tried: list[dict[str, Any]] = field(default_factory=list)  # {"rule", "threshold", "admitted"} in order

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_threshold(kind: str, granularity: str) -> float:
    from trl_vision_reward.mpo.pairs import PAPER_THRESHOLDS

    return PAPER_THRESHOLDS["dpo" if kind == "dpo" else granularity]


def one_answer_gap(checklist: Any) -> float:
    """``2 * mean(|w|) / divisor``: how much one answer of average weight moves the official total (answers are +-1)."""
    weights = [abs(float(w)) for w in checklist.weights]
    return 2.0 * sum(weights) / len(weights) / float(checklist.divisor)


def total_span(checklist: Any) -> float:
    """The official total's range, all answers no to all yes (ungated)."""
    return 2.0 * sum(abs(float(w)) for w in checklist.weights) / float(checklist.divisor)


def mine(scored: str | Path, kind: str, granularity: str, threshold: float, scores: str):
    from trl_vision_reward.mpo.pairs import PairRule

    from ..mpo_pairs import build_pairs

    return build_pairs(scored, PairRule(kind, granularity, threshold), scores=scores)


def choose_pair_threshold(
    scored: str | Path,
    *,
    kind: str,
    granularity: str,
    scores: str,
    threshold: float | None,
    checklist: Any = None,
    random_scorer: bool = False,
    user_given: bool = False,
):
    """Mine the pairs under the chosen threshold: ``(ThresholdChoice, pairs, MiningStats)``.

    ``threshold=None`` means "the tiny world's rule": the cascade of the module docstring (``checklist`` is the
    scorer's, for its scale). Any other value is used as it is, its reason taken from ``user_given`` /
    ``random_scorer``.
    """
    paper = paper_threshold(kind, granularity)
    what = f"{kind} rule" + (f" at {granularity} level" if kind == "mpo" else "")
    if threshold is not None:
        if user_given:
            rule, reason = "given", f"passed with --pair_threshold ({threshold:g}); the paper's is {paper:g}"
        elif random_scorer:
            rule, reason = (
                "random_scorer",
                "a random scorer answers no to every question, so the pairs are mined on soft scores and any "
                "positive gap is admitted (threshold 0); the pairs carry no meaning",
            )
        else:
            rule, reason = "paper", f"the paper's threshold for the {what} (arXiv:2412.21059, section 3.3)"
        pairs, stats = mine(scored, kind, granularity, threshold, scores)
        tried = [{"rule": rule, "threshold": threshold, "admitted": stats.admitted}]
        return ThresholdChoice(rule, float(threshold), reason, tried), pairs, stats
    if checklist is None:
        raise ValueError("choose_pair_threshold: the tiny world's rule needs the scorer's checklist (its scale)")
    span = total_span(checklist)
    scale = (
        f"the paper's thresholds are gaps on the official total of the released checklist; this scorer asks "
        f"{len(checklist.weights)} questions with fitted weights (divisor {float(checklist.divisor):g}), so its "
        f"totals span only {span:.3g} from all-no to all-yes"
    )
    candidates = [
        ("paper", paper, f"the paper's threshold for the {what} ({paper:g}) admits pairs at this scale"),
        (
            "one_answer",
            one_answer_gap(checklist),
            f"{scale}, and the paper's {paper:g} admitted no pair; the nearest rule that admits pairs is the same "
            f"{what} with the gap of one answer of average weight turning to yes (2 x mean weight / divisor)",
        ),
        (
            "any_gap",
            0.0,
            f"{scale}; neither the paper's {paper:g} nor one answer's worth admitted a pair, so the nearest rule that "
            f"admits pairs is the {what} with any positive total gap (threshold 0; ties are refused, so a pair's "
            "chosen clip strictly dominates)",
        ),
    ]
    tried: list[dict[str, Any]] = []
    chosen = candidates[0]
    for rule, value, reason in candidates:
        if tried and value >= tried[-1]["threshold"]:  # no looser than a gap that already admitted nothing
            continue
        if rule == "one_answer" and value <= 0:  # all weights zero: that is the any-gap rule, tried next
            continue
        pairs, stats = mine(scored, kind, granularity, value, scores)
        tried.append({"rule": rule, "threshold": value, "admitted": stats.admitted})
        chosen = (rule, value, reason)
        if stats.admitted:
            break
    # the first rule that admitted pairs (or the last tried: the pairs stage then reports that none was admitted)
    rule, value, reason = chosen
    return ThresholdChoice(rule, float(value), reason, tried), pairs, stats
