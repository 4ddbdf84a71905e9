"""The VisionReward scoring rule as pure functions of answers / probabilities (checklist order, any leading batch dims).

Official total (released ``inference-image.py`` / ``inference-video.py``), one formula for both modalities::

    score = sum_i w_i * gate_i * f_i / divisor            f_i = +1 (yes) / -1 (no), or P(yes) for probability features
                                                        gate_i = 0 if question i's mask question is "no", else 1

Image: divisor 1, alignment probability first (= dot with ``weight_select``). Video: divisor 29 (the mean over the 29
select questions). Paper Eq. 6 per-dimension score: ``R(dim) = sum_{i in dim} w_i * 1[yes_i]`` (gated like the total).
Soft variants replace each indicator by P(yes): the soft total is the expected official score when the answers are
independent Bernoulli(P(yes)) draws (E[(2a-1) * gate] = (2p-1) * p_mask).

All functions return float64 tensors; inputs may be bool/int/float tensors, numpy arrays or nested lists.
"""

from __future__ import annotations

from typing import Literal

import torch

from .checklist import Checklist

Level = Literal["dimension", "sub_dimension", "question"]


def _as_tensor(x, name: str, checklist: Checklist) -> torch.Tensor:
    t = torch.as_tensor(x).to(torch.float64)
    if t.ndim == 0 or t.shape[-1] != len(checklist):
        shape = tuple(t.shape)
        raise ValueError(
            f"{name} must have {len(checklist)} entries (one per question of checklist {checklist.name!r}) in the last "
            f"dimension; got shape {shape}"
        )
    return t


def _gates(checklist: Checklist, mask_values: torch.Tensor) -> torch.Tensor:
    """gate_i = value of question i's mask question (1 where unmasked). Values: 0/1 answers or P(yes)."""
    gates = torch.ones_like(mask_values)
    for q in checklist.questions:
        if q.masked_by is not None:
            gates[..., q.index] = mask_values[..., q.masked_by]
    return gates


def _probability_features(checklist: Checklist) -> torch.Tensor:
    return torch.tensor([q.feature == "probability" for q in checklist.questions])


def _mask_questions(checklist: Checklist) -> torch.Tensor:
    return torch.tensor([q.is_mask for q in checklist.questions])


def _check_answers(answers: torch.Tensor) -> None:
    if not torch.all((answers == 0) | (answers == 1)):
        raise ValueError("answers must be 0/1 (or bool: True = yes); use the soft_* functions for probabilities")


def official_features(
    checklist: Checklist, answers, probabilities=None, *, alignment: float | torch.Tensor | None = None
) -> torch.Tensor:
    """The official feature vector (before weighting): +1/-1 per answer, masked entries 0, mask questions 0, and the
    probability itself for "probability" features (image alignment). Their value comes from ``alignment`` (an external
    scorer such as VQAScore), else from ``probabilities``; one of the two is required if the checklist has one."""
    a = _as_tensor(answers, "answers", checklist)
    _check_answers(a)
    feats = (2 * a - 1) * _gates(checklist, a)
    prob_feat = _probability_features(checklist)
    if prob_feat.any():
        if alignment is not None:
            value = torch.as_tensor(alignment, dtype=torch.float64)
            value = value.unsqueeze(-1).expand(*feats.shape[:-1], int(prob_feat.sum()))
        elif probabilities is not None:
            value = _as_tensor(probabilities, "probabilities", checklist)[..., prob_feat]
        else:
            names = [q.text for q in checklist.questions if q.feature == "probability"]
            raise ValueError(
                f"checklist {checklist.name!r} scores {names} as a probability (the official image rule uses the "
                "alignment probability); pass probabilities=... or alignment=..."
            )
        feats[..., prob_feat] = value
    feats[..., _mask_questions(checklist)] = 0.0
    return feats


def official_score(
    checklist: Checklist, answers, probabilities=None, *, alignment: float | torch.Tensor | None = None
) -> torch.Tensor:
    """The released scorers' total: ``sum(w * gate * f) / divisor`` (see module docstring)."""
    feats = official_features(checklist, answers, probabilities, alignment=alignment)
    return feats @ checklist.weights / checklist.divisor


def soft_features(
    checklist: Checklist, probabilities, *, alignment: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Expected official features under independent answers: (2p - 1) * p_mask; probability features keep p."""
    p = _as_tensor(probabilities, "probabilities", checklist)
    if torch.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    feats = (2 * p - 1) * _gates(checklist, p)
    prob_feat = _probability_features(checklist)
    if prob_feat.any():
        if alignment is not None:
            value = torch.as_tensor(alignment, dtype=torch.float64).unsqueeze(-1)
            feats[..., prob_feat] = value.expand(*feats.shape[:-1], int(prob_feat.sum()))
        else:
            feats[..., prob_feat] = p[..., prob_feat]
    feats[..., _mask_questions(checklist)] = 0.0
    return feats


def soft_score(checklist: Checklist, probabilities, *, alignment: float | torch.Tensor | None = None) -> torch.Tensor:
    """The soft total: the official rule with each answer replaced by its expectation under P(yes)."""
    return soft_features(checklist, probabilities, alignment=alignment) @ checklist.weights / checklist.divisor


def dimension_scores(checklist: Checklist, answers, level: Level = "dimension") -> torch.Tensor:
    """Paper Eq. 6: ``R(group) = sum_{i in group} w_i * 1[yes_i]``, masked questions contributing 0 (shape ..., G)."""
    a = _as_tensor(answers, "answers", checklist)
    _check_answers(a)
    return (a * _gates(checklist, a) * checklist.weights) @ checklist.membership(level)


def soft_dimension_scores(checklist: Checklist, probabilities, level: Level = "dimension") -> torch.Tensor:
    """Eq. 6 with P(yes) in place of the indicator (and the mask's P(yes) as the gate): ``sum w_i * p_i * p_mask``."""
    p = _as_tensor(probabilities, "probabilities", checklist)
    if torch.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    return (p * _gates(checklist, p) * checklist.weights) @ checklist.membership(level)


def compare(
    checklist: Checklist,
    answers_a,
    answers_b,
    probabilities_a=None,
    probabilities_b=None,
    *,
    alignment_a=None,
    alignment_b=None,
) -> torch.Tensor:
    """Official pairwise comparison: sign of ``score(a) - score(b)`` (+1: a preferred, -1: b preferred, 0: tie).
    For video this is the released ``sum((a1 - a2) * w) > 0`` test."""
    diff = official_score(checklist, answers_a, probabilities_a, alignment=alignment_a) - official_score(
        checklist, answers_b, probabilities_b, alignment=alignment_b
    )
    return torch.sign(diff)


def answers_from_probabilities(probabilities, threshold: float = 0.5) -> torch.Tensor:
    """Hard answers (1 = yes) from P(yes); ``p > threshold`` is yes (greedy decoding over {yes, no} uses 0.5)."""
    return (torch.as_tensor(probabilities, dtype=torch.float64) > threshold).to(torch.float64)
