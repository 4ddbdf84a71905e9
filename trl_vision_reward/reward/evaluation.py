"""Evaluation as in the paper's Table 2: preference accuracy with ties (tau) and without ties (diff), and judgment
accuracy per dimension.

A preference pair has a human label ``h`` in {1, -1, 0} (first better, second better, tie) and a model margin
``m = score(first) - score(second)``.

- **diff** (accuracy without ties): pairs with a tied human label are dropped; a pair counts as correct when ``m``
  has the sign of ``h``. A zero margin is a wrong answer (the model did not pick the preferred one):
  ``diff = C / (C + D)``.
- **tau** (accuracy with ties, Deutsch et al. 2023, "Ties Matter", pairwise accuracy with tie calibration): the model
  predicts a tie when ``|m| <= epsilon``; with C concordant, D discordant, T_h ties only in the human label, T_m ties
  only in the model and T_hm ties in both, ``acc_eq = (C + T_hm) / (C + D + T_h + T_m + T_hm)``, i.e. the share of
  pairs whose three-way label (first / second / tie) is right. Tie calibration picks the ``epsilon`` that maximises
  ``acc_eq`` over every candidate threshold (no ties at all, or any observed ``|m|``); pass ``epsilon`` to use a
  threshold calibrated elsewhere (e.g. on a dev split) instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PreferenceAccuracy:
    """tau (with ties) and diff (without ties) accuracies of one model on one set of pairs."""

    tau: float
    diff: float
    epsilon: float
    num_pairs: int
    num_human_ties: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_labels(human: Sequence[float] | np.ndarray) -> np.ndarray:
    h = np.asarray(human, dtype=np.float64)
    if h.ndim != 1:
        raise ValueError(f"human labels must be one-dimensional; got shape {h.shape}")
    bad = np.flatnonzero(~np.isin(h, (1.0, -1.0, 0.0)))
    if bad.size:
        raise ValueError(f"pair {int(bad[0])}: human label {h[bad[0]]} is not 1 (first), -1 (second) or 0 (tie)")
    return h


def _as_margins(margins: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    m = np.asarray(margins, dtype=np.float64)
    if m.shape != (n,):
        raise ValueError(f"margins must have one entry per pair ({n}); got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"pair {int(np.flatnonzero(~np.isfinite(m))[0])}: margin is not finite")
    return m


def accuracy_without_ties(human: Sequence[float] | np.ndarray, margins: Sequence[float] | np.ndarray) -> float:
    """diff: ``C / (C + D)`` over the pairs whose human label is not a tie (a zero margin counts as D)."""
    h = _as_labels(human)
    m = _as_margins(margins, len(h))
    decided = h != 0
    if not decided.any():
        return float("nan")
    return float(np.mean(h[decided] * m[decided] > 0))


def accuracy_with_ties(
    human: Sequence[float] | np.ndarray, margins: Sequence[float] | np.ndarray, epsilon: float | None = None
) -> tuple[float, float]:
    """tau: ``acc_eq`` with tie calibration; returns ``(accuracy, epsilon)``.

    With ``epsilon`` given, |m| <= epsilon is a predicted tie (a negative epsilon predicts no ties). Otherwise every
    candidate threshold is tried in O(n log n) and the best is returned (the smallest one among equals).
    """
    h = _as_labels(human)
    m = _as_margins(margins, len(h))
    n = len(h)
    if n == 0:
        return float("nan"), 0.0 if epsilon is None else float(epsilon)
    abs_m = np.abs(m)
    concordant = h * m > 0
    human_tie = h == 0
    if epsilon is not None:
        model_tie = abs_m <= epsilon
        correct = np.where(model_tie, human_tie, concordant)
        return float(correct.mean()), float(epsilon)
    # Sweep thresholds in increasing |m|: at threshold t, pairs with |m| <= t predict a tie (correct iff human tie),
    # the others predict a side (correct iff concordant). Start with no predicted ties.
    order = np.argsort(abs_m, kind="stable")
    sorted_abs = abs_m[order]
    gain = human_tie[order].astype(np.int64) - concordant[order].astype(np.int64)
    cumulative = np.cumsum(gain)
    last_of_group = np.r_[sorted_abs[1:] != sorted_abs[:-1], True]  # a threshold takes all pairs with equal |m|
    base = int(concordant.sum())
    best_correct, best_eps = base, -1.0
    for k in np.flatnonzero(last_of_group):
        correct = base + int(cumulative[k])
        if correct > best_correct:
            best_correct, best_eps = correct, float(sorted_abs[k])
    return best_correct / n, best_eps


def preference_accuracy(
    human: Sequence[float] | np.ndarray, margins: Sequence[float] | np.ndarray, epsilon: float | None = None
) -> PreferenceAccuracy:
    """Both Table 2 accuracies of margins ``m = score(first) - score(second)`` against human labels {1, -1, 0}."""
    h = _as_labels(human)
    tau, eps = accuracy_with_ties(h, margins, epsilon)
    return PreferenceAccuracy(
        tau=tau,
        diff=accuracy_without_ties(h, margins),
        epsilon=eps,
        num_pairs=len(h),
        num_human_ties=int(np.sum(h == 0)),
    )


# ---------------------------------------------------------------------------------------------------------- judgments
@dataclass(frozen=True)
class JudgmentAccuracy:
    """Accuracy of yes/no judgments (answers against labels, masked entries skipped), overall and per group."""

    overall: float
    num_judgments: int
    per_dimension: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    per_question: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judgment_accuracy(
    predictions: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[Sequence[float | None]] | np.ndarray,
    dimensions: Sequence[str],
    *,
    questions: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> JudgmentAccuracy:
    """Judgment accuracy: a prediction (P(yes) or 0/1 answer) is "yes" when above ``threshold``; it is right when it
    equals the label (1 yes / 0 no). Labels ``None`` or NaN (masked questions) are skipped.

    ``predictions`` and ``labels`` are (samples, questions); ``dimensions[i]`` names question i's dimension.
    """
    p = np.asarray(predictions, dtype=np.float64)
    lab = np.asarray([[np.nan if v is None else v for v in row] for row in labels], dtype=np.float64)
    if p.ndim != 2 or p.shape != lab.shape:
        raise ValueError(
            f"predictions and labels must be (samples, questions) of the same shape; got {p.shape} and {lab.shape}"
        )
    if len(dimensions) != p.shape[1]:
        raise ValueError(f"dimensions must name one dimension per question ({p.shape[1]}); got {len(dimensions)}")
    known = ~np.isnan(lab)
    bad = np.argwhere(known & ~np.isin(np.nan_to_num(lab, nan=0.0), (0.0, 1.0)))
    if bad.size:
        r, c = bad[0]
        raise ValueError(f"row {int(r)}, question {int(c)}: label {lab[r, c]} is not 1 (yes), 0 (no) or None (masked)")
    correct = ((p > threshold) == (lab == 1.0)) & known
    per_dim, counts = {}, {}
    for name in dict.fromkeys(dimensions):
        cols = np.array([d == name for d in dimensions])
        n = int(known[:, cols].sum())
        counts[name] = n
        per_dim[name] = float(correct[:, cols].sum() / n) if n else float("nan")
    per_question = {}
    if questions is not None:
        if len(questions) != p.shape[1]:
            raise ValueError(f"questions must have {p.shape[1]} entries; got {len(questions)}")
        for j, text in enumerate(questions):
            n = int(known[:, j].sum())
            per_question[text] = float(correct[:, j].sum() / n) if n else float("nan")
    total = int(known.sum())
    return JudgmentAccuracy(
        overall=float(correct.sum() / total) if total else float("nan"),
        num_judgments=total,
        per_dimension=per_dim,
        counts=counts,
        per_question=per_question,
    )


# ---------------------------------------------------------------------------------------------------------- reports
@dataclass
class EvaluationReport:
    """What ``vision-reward evaluate`` writes: preference accuracies per benchmark and judgment accuracy."""

    preference: dict[str, PreferenceAccuracy] = field(default_factory=dict)
    judgment: JudgmentAccuracy | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preference": {name: acc.to_dict() for name, acc in self.preference.items()},
            "judgment": self.judgment.to_dict() if self.judgment is not None else None,
            "metadata": dict(self.metadata),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(_finite(self.to_dict()), indent=kwargs.pop("indent", 2), **kwargs)

    def format_table(self) -> str:
        """Markdown tables: tau / diff per benchmark (in %, as in Table 2), then judgment accuracy per dimension."""
        lines = []
        if self.preference:
            lines += [
                "| benchmark | pairs | human ties | tau (w/ ties) % | diff (w/o ties) % | epsilon |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for name, acc in self.preference.items():
                lines.append(
                    f"| {name} | {acc.num_pairs} | {acc.num_human_ties} | {_pct(acc.tau)} | {_pct(acc.diff)} | "
                    f"{acc.epsilon:.4g} |"
                )
        if self.judgment is not None:
            if lines:
                lines.append("")
            lines += ["| dimension | judgments | accuracy % |", "| --- | ---: | ---: |"]
            for name, value in self.judgment.per_dimension.items():
                lines.append(f"| {name} | {self.judgment.counts[name]} | {_pct(value)} |")
            lines.append(f"| **all** | {self.judgment.num_judgments} | {_pct(self.judgment.overall)} |")
        return "\n".join(lines)


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}"


def _finite(obj: Any) -> Any:
    """JSON has no NaN: write None instead."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
