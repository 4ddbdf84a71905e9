"""How both Spaces read a VisionReward result: the ranking rule, dimension rows in checklist order, and the page text
that says how the total relates to the dimension scores (the rule of ``trl_vision_reward.reward.scoring_rule``).

Plain functions of plain data (checklists and score dicts), so the apps and their tests share one definition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: example prompts of the trained tiny world (one shape of four colours over a plain background of four colours)
TINY_WORLD_PROMPTS = (
    "a red circle on a grey background",
    "a blue square on a teal background",
    "a green circle on a purple background",
    "a red square on a teal background",
)

#: what "random" selects in both apps: the same-sized tiny models with random weights (their output is noise)
RANDOM = "random"


def default_kind(model: str | None) -> str:
    """``"tiny world"`` (the trained default), ``"random"`` or ``"custom"`` (a folder or repo id)."""
    if model is None or str(model).lower() == "tiny":
        return "tiny world"
    return RANDOM if str(model).lower() == RANDOM else "custom"


def rank_samples(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Samples sorted by official total, ties broken by the soft total (both descending), with ``rank`` (1 = best)
    and ``tie_broken_by_soft`` (another sample has the same official total)."""
    ranked = sorted((dict(s) for s in samples), key=lambda s: (s["total"], s.get("soft_total", 0.0)), reverse=True)
    totals = [s["total"] for s in ranked]
    for rank, s in enumerate(ranked, start=1):
        s["rank"] = rank
        s["tie_broken_by_soft"] = totals.count(s["total"]) > 1
    return ranked


def ordered_dimensions(checklist: Any, scores: Mapping[str, float]) -> list[str]:
    """The dimensions of ``scores`` in the checklist's order (``checklist.dimensions``); unknown names are an error."""
    unknown = sorted(set(scores) - set(checklist.dimensions))
    if unknown:
        raise ValueError(f"dimension scores {unknown} are not dimensions of checklist {checklist.name!r}")
    return [d for d in checklist.dimensions if d in scores]


def _simple(checklist: Any) -> bool:
    """No masks and no probability features: then total = (2 * sum of dimension scores - sum of weights) / divisor."""
    return all(q.masked_by is None and not q.is_mask and q.feature != "probability" for q in checklist.questions)


def total_rule(checklist: Any) -> str:
    """Markdown: how the official total and the dimension scores are computed from the answers."""
    d = f"{checklist.divisor:g}"
    text = (
        f"**How the total relates to the dimension scores.** Each of the {len(checklist)} checklist questions has a "
        "fitted non-negative weight w; an answer counts +1 for yes and -1 for no. "
        f"The **total** is the weighted sum of those ±1 answers divided by {d}: total = Σ w·(±1) / {d}. "
        "A **dimension score** is the sum of the weights of that dimension's questions answered yes "
        "(paper Eq. 6: R(dim) = Σ_{i in dim} w_i·1[yes_i]). "
    )
    if _simple(checklist):
        text += f"So total = (2 × Σ_dims R(dim) − Σ w) / {d}: a higher dimension score always raises the total. "
    else:
        text += (
            "Questions gated by a mask question count 0 when their mask is answered no, and a probability feature "
            "(image alignment) enters the total as P(yes). "
        )
    text += (
        "The **soft** scores replace each yes/no by P(yes) (the expected score); they are shown beside the official "
        "ones and break ties between equal totals."
    )
    return text


def total_identity(checklist: Any, dimension_scores: Mapping[str, float], total: float) -> str | None:
    """``"total = (2 × 1.2 − 2.0) / 29 = 0.0138"`` for this result, or None where masks or probability features
    make the total not a function of the dimension scores alone."""
    if not _simple(checklist):
        return None
    dims, weights = sum(dimension_scores.values()), float(checklist.weights.sum())
    return f"total = (2 × {dims:.4g} − {weights:.4g}) / {checklist.divisor:g} = {total:.4g}"


def model_note(kind: str, what: str) -> str:
    """One italic line on what the default models are (``what``: "CogVideoX and scorer" or "scorer")."""
    if kind == RANDOM:
        return (
            f"*Tiny random {what}: the output is noise. Start the app without `--random` for the trained tiny world.*"
        )
    if kind == "tiny world":
        return (
            f"*Trained tiny-world {what} (shipped with the package): 9-frame 32×32 clips of one shape over a plain "
            'background, prompts like "a red circle on a grey background"; the checklist is the 10 questions that '
            "world decides.*"
        )
    return ""


__all__ = [
    "RANDOM",
    "TINY_WORLD_PROMPTS",
    "default_kind",
    "model_note",
    "ordered_dimensions",
    "rank_samples",
    "total_identity",
    "total_rule",
]
