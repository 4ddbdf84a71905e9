"""Stage 2 of VisionReward: non-negative checklist weights from preference pairs (paper, Algorithm 1).

The model is a logistic regression on feature differences with no intercept::

    P(i preferred over j) = sigmoid((x_i - x_j) . w)

trained in epochs; after every epoch negative weights are set to 0, and epochs repeat until the weights stop changing
(the authors confirmed this procedure in the official repository's issue #14). Questions whose weight ends at (near)
zero are then dropped from the checklist (the official ``*_select`` files).

Everything here is a pure function of numpy arrays, plus :class:`WeightFit` to carry the result; nothing depends on
how the features were produced (hard +1/-1 answers, P(yes), or the paper's 0/1 indicators).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from diffusers_cogvideox.checks import check_finite


@dataclass
class WeightFit:
    """The result of :func:`fit_nonnegative_logistic`: weights (all >= 0) and how the fit went."""

    weights: np.ndarray
    epochs: int
    converged: bool
    loss: float
    accuracy: float
    loss_history: list[float] = field(default_factory=list)
    feature_names: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["weights"] = [float(w) for w in self.weights]
        return out


# ---------------------------------------------------------------------------------------------------------- pairs
def pair_differences(
    features: np.ndarray,
    first: Sequence[int] | np.ndarray,
    second: Sequence[int] | np.ndarray,
    labels: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature differences ``x_first - x_second`` and targets (1 = first preferred, 0 = second, 0.5 = tie).

    ``labels`` in {1, -1, 0} (first better, second better, tie) or {1, 0, 0.5}; ``None`` means the first is always the
    preferred one (chosen/rejected pairs).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a (samples, questions) matrix; got shape {x.shape}")
    check_finite("features", x)  # a NaN answer probability would silently poison every weight
    a = np.asarray(first, dtype=np.int64)
    b = np.asarray(second, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"first and second must be 1-D index arrays of equal length; got {a.shape} and {b.shape}")
    for name, idx in (("first", a), ("second", b)):
        bad = np.flatnonzero((idx < 0) | (idx >= len(x)))
        if bad.size:
            raise ValueError(f"pair {int(bad[0])}: {name} index {int(idx[bad[0]])} is not a sample (0..{len(x) - 1})")
    if labels is None:
        y = np.ones(len(a))
    else:
        y = preference_targets(labels)
        if len(y) != len(a):
            raise ValueError(f"labels must have one entry per pair ({len(a)}); got {len(y)}")
    return x[a] - x[b], y


def preference_targets(labels: Sequence[float] | np.ndarray) -> np.ndarray:
    """Map labels in {1, -1, 0} (first better, second better, tie) to logistic targets {1, 0, 0.5}.

    Targets already in {1, 0, 0.5} are accepted when no -1 appears (a 0 then means "second preferred").
    """
    raw = np.asarray(labels, dtype=np.float64)
    if raw.ndim != 1:
        raise ValueError(f"labels must be one-dimensional; got shape {raw.shape}")
    if np.any(raw == -1):
        bad = np.flatnonzero(~np.isin(raw, (1.0, -1.0, 0.0)))
        if bad.size:
            raise ValueError(f"pair {int(bad[0])}: label {raw[bad[0]]} is not one of 1 (first), -1 (second), 0 (tie)")
        return (raw + 1.0) / 2.0
    bad = np.flatnonzero(~np.isin(raw, (1.0, 0.0, 0.5)))
    if bad.size:
        raise ValueError(f"pair {int(bad[0])}: label {raw[bad[0]]} is not one of 1/-1/0 or 1/0/0.5")
    return raw


# ---------------------------------------------------------------------------------------------------------- fitting
def logistic_loss(diffs: np.ndarray, targets: np.ndarray, weights: np.ndarray, l2: float = 0.0) -> float:
    """Mean binary cross-entropy of ``sigmoid(diffs @ w)`` against ``targets`` (+ ``l2/2 * |w|^2``)."""
    z = diffs @ weights
    # log(1 + e^z) - y z, computed stably
    loss = np.mean(np.logaddexp(0.0, z) - targets * z)
    return float(loss + 0.5 * l2 * weights @ weights)


def _gradient(diffs: np.ndarray, targets: np.ndarray, weights: np.ndarray, l2: float) -> np.ndarray:
    p = 0.5 * (1.0 + np.tanh(0.5 * (diffs @ weights)))  # sigmoid without overflow warnings
    return diffs.T @ (p - targets) / len(targets) + l2 * weights


def pairwise_accuracy(diffs: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """Share of non-tied pairs whose margin ``diffs @ w`` has the sign of the preference (a zero margin is wrong)."""
    z = diffs @ weights
    decided = targets != 0.5
    if not decided.any():
        return float("nan")
    correct = np.where(targets[decided] == 1.0, z[decided] > 0, z[decided] < 0)
    return float(correct.mean())


def fit_nonnegative_logistic(
    diffs: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    method: Literal["gd", "sgd"] = "gd",
    learning_rate: float | None = None,
    batch_size: int = 256,
    max_epochs: int = 5000,
    tol: float = 1e-7,
    patience: int = 3,
    l2: float = 0.0,
    init: np.ndarray | None = None,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> WeightFit:
    """Algorithm 1: logistic regression on feature differences, no intercept, negative weights set to 0 after every
    epoch, repeated until stable.

    ``method="gd"``: one full-batch gradient step per epoch with step ``1/L`` (``L`` = the loss's Lipschitz constant,
    unless ``learning_rate`` is given) and Nesterov momentum; with the clamp this is accelerated projected gradient
    descent, which converges to the constrained optimum. ``method="sgd"``: shuffled mini-batches of ``batch_size`` per
    epoch (the paper's wording) with a ``1/sqrt(epoch)`` step decay, shuffled by ``seed``; the clamp still happens once
    per epoch. The fit stops when the largest weight change of an epoch stays below ``tol`` (relative to the largest
    weight) for ``patience`` epochs in a row. The result is a deterministic function of the inputs and ``seed``.
    """
    x = np.asarray(diffs, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"diffs must be a (pairs, questions) matrix; got shape {x.shape}")
    n, d = x.shape
    if n == 0:
        raise ValueError("need at least one preference pair to fit weights")
    check_finite("diffs", x)
    y = np.ones(n) if targets is None else check_finite("targets", np.asarray(targets, dtype=np.float64))
    if y.shape != (n,):
        raise ValueError(f"targets must have one entry per pair ({n}); got shape {y.shape}")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("targets must lie in [0, 1] (1 = first preferred, 0 = second, 0.5 = tie)")
    if not np.all(np.isfinite(x)):
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"pair {row}: feature differences must be finite; got {x[row]}")
    if feature_names is not None and len(feature_names) != d:
        raise ValueError(f"feature_names must have {d} entries (one per feature); got {len(feature_names)}")
    if method not in ("gd", "sgd"):
        raise ValueError(f"method must be 'gd' or 'sgd'; got {method!r}")

    w = np.zeros(d) if init is None else np.maximum(np.asarray(init, dtype=np.float64).copy(), 0.0)
    if w.shape != (d,):
        raise ValueError(f"init must have {d} entries; got shape {w.shape}")
    # Lipschitz constant of the mean logistic loss' gradient: lambda_max(X^T X) / (4 n) + l2
    lipschitz = float(np.linalg.eigvalsh(x.T @ x / n).max()) / 4.0 + l2 if d else 1.0
    base_lr = learning_rate if learning_rate is not None else 1.0 / max(lipschitz, 1e-12)
    rng = np.random.default_rng(seed)

    history: list[float] = []
    converged, stable_epochs, epoch = False, 0, 0
    momentum_point, t_prev = w.copy(), 1.0
    for epoch in range(1, max_epochs + 1):
        w_old = w.copy()
        if method == "gd":
            w = momentum_point - base_lr * _gradient(x, y, momentum_point, l2)
            w = np.maximum(w, 0.0)  # Algorithm 1: negative weights are set to 0 after each epoch
            if (momentum_point - w) @ (w - w_old) > 0:  # momentum points uphill: restart it (O'Donoghue & Candes)
                t_prev = 1.0
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t_prev * t_prev)) / 2.0
            momentum_point = w + ((t_prev - 1.0) / t_next) * (w - w_old)
            t_prev = t_next
        else:
            lr = base_lr / math.sqrt(epoch)
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                w = w - lr * _gradient(x[idx], y[idx], w, l2)
            w = np.maximum(w, 0.0)
        history.append(logistic_loss(x, y, w, l2))
        change = float(np.max(np.abs(w - w_old))) / max(float(np.max(np.abs(w))), 1e-12) if d else 0.0
        stable_epochs = stable_epochs + 1 if change < tol else 0
        if stable_epochs >= patience:
            converged = True
            break
    return WeightFit(
        weights=w,
        epochs=epoch,
        converged=converged,
        loss=history[-1],
        accuracy=pairwise_accuracy(x, y, w),
        loss_history=history,
        feature_names=list(feature_names) if feature_names is not None else None,
    )


# ---------------------------------------------------------------------------------------------------------- selection
def select_questions(weights: np.ndarray, *, min_weight: float = 1e-4, relative: bool = True) -> np.ndarray:
    """Indices of the questions to keep: weight above ``min_weight`` (times the largest weight if ``relative``).

    The paper keeps exactly the questions with non-zero fitted weight; a small threshold absorbs the last digits of
    an iterative fit that stopped a little short of exact zero.
    """
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0):
        raise ValueError("weights must be non-negative (fit them with fit_nonnegative_logistic)")
    cut = min_weight * (float(w.max()) if relative and w.size else 1.0)
    return np.flatnonzero(w > cut)


def fit_checklist_weights(
    features: np.ndarray,
    first: Sequence[int] | np.ndarray,
    second: Sequence[int] | np.ndarray,
    labels: Sequence[float] | np.ndarray | None = None,
    **fit_kwargs: Any,
) -> WeightFit:
    """Convenience: :func:`pair_differences` then :func:`fit_nonnegative_logistic`."""
    diffs, targets = pair_differences(features, first, second, labels)
    return fit_nonnegative_logistic(diffs, targets, **fit_kwargs)


def checklist_features(
    checklist, answers=None, probabilities=None, *, soft: bool = False, alignment=None
) -> np.ndarray:
    """Per-sample feature vectors under the checklist's official rule (masked features 0), as a numpy matrix.

    ``soft=True`` uses P(yes) (expected features); otherwise hard answers (+1/-1). These are the features whose
    weighted sum is the checklist's score, so fitted weights drop straight back into it.
    """
    from .scoring_rule import official_features, soft_features

    if soft:
        if probabilities is None:
            raise ValueError("soft=True needs probabilities")
        feats = soft_features(checklist, probabilities, alignment=alignment)
    else:
        if answers is None:
            raise ValueError("hard features need answers (0/1 per question); pass soft=True to use probabilities")
        feats = official_features(checklist, answers, probabilities, alignment=alignment)
    return feats.detach().cpu().numpy().astype(np.float64)


def apply_weights(target: Any, weights: Sequence[float] | np.ndarray, *, drop_below: float | None = 1e-4) -> Any:
    """Write fitted weights into a checklist and drop (near-)zero questions; returns a new object of the same kind.

    ``target``: a :class:`~trl_vision_reward.reward.checklist.Checklist`, a checklist dict (``Checklist.to_dict()``), or a
    config object with a ``checklist`` attribute (dict or Checklist), which is copied with the new checklist.
    ``weights`` has one entry per checklist question (mask questions' entries must be 0). Mask questions are kept
    while a question they gate is kept; ``drop_below=None`` keeps every question. A "mean" divisor (video: the
    number of weighted answer questions) is updated to the new count.
    """
    from .checklist import Checklist

    if hasattr(target, "checklist") and not isinstance(target, Mapping):
        import copy

        new_target = copy.deepcopy(target)
        new_target.checklist = _reweighted(target.checklist, weights, drop_below)
        return new_target
    if isinstance(target, Checklist):
        return Checklist.from_dict(_reweighted(target.to_dict(), weights, drop_below))
    if isinstance(target, Mapping):
        return _reweighted(dict(target), weights, drop_below)
    raise TypeError(
        f"target must be a Checklist, a checklist dict or a config with .checklist; got {type(target).__name__}"
    )


def _reweighted(checklist: Any, weights: Sequence[float] | np.ndarray, drop_below: float | None) -> Any:
    from .checklist import Checklist

    as_object = isinstance(checklist, Checklist)
    data = checklist.to_dict() if as_object else dict(checklist)
    questions = [dict(q) for q in data["questions"]]
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(questions),):
        raise ValueError(
            f"checklist/weights length mismatch: {len(questions)} questions but weights of shape {w.shape}"
        )
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    for i, q in enumerate(questions):
        if q.get("is_mask") and w[i] != 0:
            raise ValueError(f"mask question {i} ({q['text']!r}) must get weight 0; got {w[i]}")
        q["weight"] = float(w[i])

    keep = set(range(len(questions)))
    if drop_below is not None:
        weighted = set(select_questions(w, min_weight=drop_below).tolist())
        keep = {i for i in weighted if not questions[i].get("is_mask")}
        keep |= {questions[i]["masked_by"] for i in keep if questions[i].get("masked_by") is not None}
    order = sorted(keep)
    new_index = {old: new for new, old in enumerate(order)}
    new_questions = []
    for old in order:
        q = dict(questions[old])
        if q.get("masked_by") is not None:
            q["masked_by"] = new_index[q["masked_by"]]
        new_questions.append(q)

    old_answer_count = sum(1 for q in questions if not q.get("is_mask") and q.get("feature", "answer") == "answer")
    if drop_below is not None and float(data.get("divisor", 1.0)) == float(old_answer_count) and old_answer_count > 1:
        data["divisor"] = float(
            sum(1 for q in new_questions if not q.get("is_mask") and q.get("feature", "answer") == "answer")
        )
    data["questions"] = new_questions
    used_subs = {q["sub_dimension"] for q in new_questions}
    if "sub_dimensions" in data:
        data["sub_dimensions"] = [pair for pair in data["sub_dimensions"] if pair[0] in used_subs]
    if "dimensions" in data:
        used_dims = {q["dimension"] for q in new_questions}
        data["dimensions"] = [d for d in data["dimensions"] if d in used_dims]
    return Checklist.from_dict(data) if as_object else data
