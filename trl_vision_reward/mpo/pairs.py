"""MPO preference-pair mining: dominance over VisionReward dimension scores plus a total-score gap (pure functions).

VisionReward (arXiv 2412.21059, section 3.3) trains with standard Diffusion-DPO but changes *which* pairs it trains
on. Plain DPO admits a pair (A, B) whenever A's total reward beats B's by a margin; MPO only admits pairs where A
**dominates** B, i.e. A scores at least as high as B on *every* dimension, and additionally requires the total-score
gap. Training on dominating pairs never asks the model to trade one dimension (say safety) for another.

Everything here is a pure function over **score records** - plain dicts, so that the scorer, the datasets scripts
and the trainer can exchange them as JSON / Parquet rows without importing each other::

    {
        "id": "prompt17-sample2",          # optional; identifies the sample (deduplication); else "media"
        "prompt": "a panda playing a guitar",
        "media": "videos/prompt17-sample2.mp4",       # optional: what the pair record names as chosen/rejected
        "total": 1.84,                                # the VisionReward total score
        "dimension_scores": {"alignment": 0.31, "stability": 0.42, ...},   # or a list in checklist order
        "sub_dimension_scores": {...},                 # needed only for granularity="sub_dimension"
        "question_scores": [...],                      # needed only for granularity="question"
    }

Score vectors may be mappings (compared on their keys, which must agree) or sequences/arrays (compared position by
position, in checklist order). Per-dimension score = sum over the dimension's questions of ``w_i * 1[yes]``
(paper Eq. 6); :func:`group_scores` builds coarser vectors from per-question ones.

Paper numbers (CogVideoX-5B, 5k pairs; rewards after MPO, baseline 4.303):

=================  ===========================================  ==========
rule               admission                                    reward
=================  ===========================================  ==========
MPO dimension      dominance per dimension + total gap >= 0.6   4.573
MPO sub-dimension  dominance per sub-dimension + gap >= 0.5     4.539
MPO question       dominance per question + gap >= 0.4          4.514
plain DPO          total gap >= 0.8 (3,814 dominating,          4.515
                   1,456 non-dominating pairs)
=================  ===========================================  ==========

These are :data:`PAPER_THRESHOLDS`; they are in the paper's total-score units, so rescale them if your totals use a
different convention (e.g. 0/1 instead of +1/-1 answers halves every difference).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Granularity = Literal["dimension", "sub_dimension", "question"]
GRANULARITIES: tuple[str, ...] = ("dimension", "sub_dimension", "question")

#: Minimum total-score gaps of the paper's ablation (VisionReward section 3.3 / Table 5): MPO per granularity, and
#: the plain-DPO comparison.
PAPER_THRESHOLDS: dict[str, float] = {"dimension": 0.6, "sub_dimension": 0.5, "question": 0.4, "dpo": 0.8}

#: Why a candidate pair was turned down (first failing check, in this order), or "admitted".
REASONS: tuple[str, ...] = ("admitted", "tie", "below_total_gap", "not_dominating", "over_prompt_cap")


@dataclass(frozen=True)
class PairRule:
    """Which candidate pairs become training pairs.

    Args:
        kind: ``"mpo"`` (dominance at ``granularity`` + total gap) or ``"dpo"`` (total gap only, the paper's
            plain-DPO comparison).
        granularity: level at which dominance is checked: ``"dimension"``, ``"sub_dimension"`` or ``"question"``.
            For ``kind="dpo"`` it only selects which scores are reported (and counted as dominating or not).
        min_total_gap: the chosen sample's total must exceed the rejected one's by at least this much (paper: 0.6 /
            0.5 / 0.4 for MPO by granularity, 0.8 for plain DPO; see :data:`PAPER_THRESHOLDS`).
        tolerance: dominance allows ``score_A >= score_B - tolerance`` per entry (0 = the paper's exact rule; a
            small value absorbs float noise from P(yes)-based soft scores).
        max_pairs_per_prompt: keep at most this many admitted pairs per prompt, largest total gap first (``None``:
            all of them).
    """

    kind: Literal["mpo", "dpo"] = "mpo"
    granularity: Granularity = "dimension"
    min_total_gap: float = PAPER_THRESHOLDS["dimension"]
    tolerance: float = 0.0
    max_pairs_per_prompt: int | None = None

    def __post_init__(self):
        if self.kind not in ("mpo", "dpo"):
            raise ValueError(f"PairRule.kind must be 'mpo' or 'dpo'; got {self.kind!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"PairRule.granularity must be one of {GRANULARITIES}; got {self.granularity!r}")
        if not (self.min_total_gap >= 0):
            raise ValueError(f"PairRule.min_total_gap must be >= 0; got {self.min_total_gap}")
        if self.tolerance < 0:
            raise ValueError(f"PairRule.tolerance must be >= 0; got {self.tolerance}")
        if self.max_pairs_per_prompt is not None and self.max_pairs_per_prompt < 1:
            raise ValueError(f"PairRule.max_pairs_per_prompt must be >= 1 or None; got {self.max_pairs_per_prompt}")

    @classmethod
    def paper(cls, kind: Literal["mpo", "dpo"] = "mpo", granularity: Granularity = "dimension") -> PairRule:
        """The paper's rule: MPO with the ablation threshold of ``granularity``, or plain DPO with gap 0.8."""
        return cls(
            kind=kind, granularity=granularity, min_total_gap=PAPER_THRESHOLDS["dpo" if kind == "dpo" else granularity]
        )


# ---------------------------------------------------------------------------------------------------------------------
# Scores


_RECORD_KEYS = frozenset({"total", "prompt", "id", "media", *(f"{g}_scores" for g in GRANULARITIES)})


def score_key(granularity: str) -> str:
    """Record key holding the score vector of a granularity: ``"dimension"`` -> ``"dimension_scores"``."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}")
    return f"{granularity}_scores"


def total_score(record: Mapping[str, Any]) -> float:
    """The record's total score (``"total"``), checked to be a finite number."""
    if "total" not in record:
        raise KeyError(f"score record {_describe(record)} has no 'total'; keys: {sorted(record)}")
    value = float(record["total"])
    if not np.isfinite(value):
        raise ValueError(f"score record {_describe(record)} has a non-finite total: {value}")
    return value


def scores_at(record_or_scores: Any, granularity: str = "dimension") -> Mapping[str, float] | np.ndarray:
    """The score vector of a record at ``granularity``; a bare vector (mapping or sequence) is returned as is."""
    if isinstance(record_or_scores, Mapping) and not _RECORD_KEYS.isdisjoint(record_or_scores):
        key = score_key(granularity)
        if key not in record_or_scores:
            raise KeyError(
                f"score record {_describe(record_or_scores)} has no {key!r} (needed for granularity={granularity!r}); "
                f"keys: {sorted(record_or_scores)}"
            )
        return record_or_scores[key]
    return record_or_scores


def _as_vectors(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, Mapping) != isinstance(b, Mapping):
        raise TypeError("both score vectors must be mappings (name -> score) or both sequences")
    if isinstance(a, Mapping):
        if set(a) != set(b):
            raise ValueError(
                f"score vectors name different entries: only in A {sorted(set(a) - set(b))}, only in B {sorted(set(b) - set(a))}"
            )
        names = sorted(a)
        va, vb = np.array([a[n] for n in names], dtype=np.float64), np.array([b[n] for n in names], dtype=np.float64)
    else:
        va, vb = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
        if va.shape != vb.shape:
            raise ValueError(f"score vectors have different lengths: {va.size} vs {vb.size}")
    if va.size == 0:
        raise ValueError("score vectors are empty")
    if not (np.isfinite(va).all() and np.isfinite(vb).all()):
        raise ValueError("score vectors contain NaN or inf")
    return va, vb


def dominates(a: Any, b: Any, granularity: str = "dimension", tolerance: float = 0.0) -> bool:
    """A dominates B iff A's score >= B's on every entry at ``granularity`` (ties allowed; VisionReward sec. 3.3).

    ``a`` and ``b`` are score records (the vector is read from ``f"{granularity}_scores"``) or bare score vectors.
    """
    va, vb = _as_vectors(scores_at(a, granularity), scores_at(b, granularity))
    return bool(np.all(va >= vb - tolerance))  # R_A(k) >= R_B(k) for all k


def group_scores(question_scores: Sequence[float], groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Coarser scores from per-question ones: ``R(group) = sum_{i in group} s_i`` (paper Eq. 6 with ``s_i = w_i 1[yes]``).

    ``groups`` maps a dimension or sub-dimension name to question indices (checklist order), e.g. from
    :func:`groups_from_checklist`.
    """
    q = np.asarray(question_scores, dtype=np.float64)
    out = {}
    for name, idx in groups.items():
        idx = list(idx)
        if idx and (min(idx) < 0 or max(idx) >= q.size):
            raise IndexError(f"group {name!r} names question {max(idx)} but there are {q.size} question scores")
        out[name] = float(q[idx].sum())
    return out


def groups_from_checklist(
    checklist: Any, level: Literal["dimension", "sub_dimension"] = "dimension"
) -> dict[str, list[int]]:
    """Question indices per dimension / sub-dimension of a ``trl_vision_reward.reward.checklist.Checklist``, in its order."""
    groups: dict[str, list[int]] = {}
    for i, question in enumerate(checklist.questions):
        groups.setdefault(str(getattr(question, level)), []).append(i)
    order = [str(n) for n in getattr(checklist, f"{level}s", ())]  # the checklist's own (paper) order
    return {n: groups[n] for n in order if n in groups} | {n: v for n, v in groups.items() if n not in order}


# ---------------------------------------------------------------------------------------------------------------------
# Rules


def admit(a: Mapping[str, Any], b: Mapping[str, Any], rule: PairRule) -> tuple[str, Mapping | None, Mapping | None]:
    """Judge the candidate pair {a, b} under ``rule``: ``(reason, chosen, rejected)``.

    The higher-total sample is the candidate chosen. ``reason`` is ``"admitted"`` or the first failing check:
    ``"tie"`` (equal totals), ``"below_total_gap"`` (gap < ``rule.min_total_gap``), ``"not_dominating"`` (MPO only).
    """
    ta, tb = total_score(a), total_score(b)
    chosen, rejected = (a, b) if ta >= tb else (b, a)
    gap = abs(ta - tb)
    if gap == 0:
        return "tie", chosen, rejected
    if gap < rule.min_total_gap:  # R_w - R_l >= threshold
        return "below_total_gap", chosen, rejected
    if rule.kind == "mpo" and not dominates(chosen, rejected, rule.granularity, rule.tolerance):
        return "not_dominating", chosen, rejected
    return "admitted", chosen, rejected


def mpo_rule(a: Mapping, b: Mapping, granularity: str = "dimension", min_total_gap: float | None = None) -> bool:
    """MPO admission: the higher-total sample dominates at ``granularity`` and the total gap >= threshold."""
    gap = PAPER_THRESHOLDS[granularity] if min_total_gap is None else min_total_gap
    return admit(a, b, PairRule("mpo", granularity, gap))[0] == "admitted"


def dpo_rule(a: Mapping, b: Mapping, min_total_gap: float = PAPER_THRESHOLDS["dpo"]) -> bool:
    """Plain-DPO admission (the paper's comparison): total-score gap >= threshold, dominance ignored."""
    return admit(a, b, PairRule("dpo", "dimension", min_total_gap))[0] == "admitted"


# ---------------------------------------------------------------------------------------------------------------------
# Mining


@dataclass
class MiningStats:
    """What happened to every candidate pair (all unordered pairs of distinct samples of one prompt).

    ``counts`` holds one entry per reason in :data:`REASONS`; ``admitted_dominating`` / ``admitted_non_dominating``
    split the admitted pairs by whether the chosen sample dominates at the rule's granularity (the paper's plain-DPO
    statistic: 3,814 dominating vs 1,456 not).
    """

    rule: dict[str, Any]
    num_records: int = 0
    num_prompts: int = 0
    duplicate_samples: int = 0
    prompts_with_one_sample: int = 0
    prompts_with_pairs: int = 0
    candidates: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    admitted_dominating: int = 0
    admitted_non_dominating: int = 0

    @property
    def admitted(self) -> int:
        return self.counts["admitted"]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "admitted": self.admitted}

    def __str__(self) -> str:
        rejected = ", ".join(f"{k}={v}" for k, v in self.counts.items() if k != "admitted")
        return (
            f"{self.admitted} pairs admitted of {self.candidates} candidates from {self.num_prompts} prompts "
            f"({self.admitted_dominating} dominating, {self.admitted_non_dominating} not); rejected: {rejected}; "
            f"{self.duplicate_samples} duplicate samples dropped"
        )


def sample_id(record: Mapping[str, Any], index: int | None = None) -> str:
    """A sample's identity for deduplication: ``id``, else ``media``, else its position in the input."""
    for key in ("id", "media"):
        if record.get(key) is not None:
            return str(record[key])
    if index is None:
        raise KeyError("score record has neither 'id' nor 'media'")
    return f"#{index}"


def group_by_prompt(
    records: Iterable[Mapping[str, Any]], dedup: bool = True
) -> tuple[dict[str, list[tuple[str, Mapping]]], int]:
    """``{prompt: [(sample_id, record)]}`` in first-seen order, and the number of duplicate samples dropped.

    A duplicate is a second record with the same prompt and the same :func:`sample_id`.
    """
    groups: dict[str, list[tuple[str, Mapping]]] = {}
    seen: set[tuple[str, str]] = set()
    duplicates = 0
    for i, record in enumerate(records):
        if "prompt" not in record:
            raise KeyError(f"score record #{i} has no 'prompt'; keys: {sorted(record)}")
        prompt, ident = str(record["prompt"]), sample_id(record, i)
        if dedup:
            if (prompt, ident) in seen:
                duplicates += 1
                continue
            seen.add((prompt, ident))
        groups.setdefault(prompt, []).append((ident, record))
    return groups, duplicates


def make_pair(
    chosen: Mapping[str, Any],
    rejected: Mapping[str, Any],
    rule: PairRule,
    dominating: bool,
    chosen_id: str | None = None,
    rejected_id: str | None = None,
) -> dict[str, Any]:
    """The preference-pair record (the fields of :class:`trl_vision_reward.records.PreferencePair` but ``scores``):
    prompt, chosen, rejected, both samples' ids and scores, and the rule that admitted it.

    ``chosen`` / ``rejected`` name the samples by ``media`` when present, else by :func:`sample_id`.
    """
    key = score_key(rule.granularity)
    tc, tr = total_score(chosen), total_score(rejected)
    pair = {
        "prompt": chosen["prompt"],
        "chosen": chosen.get("media") or chosen_id or sample_id(chosen),
        "rejected": rejected.get("media") or rejected_id or sample_id(rejected),
        "chosen_id": chosen_id or sample_id(chosen),
        "rejected_id": rejected_id or sample_id(rejected),
        "chosen_total": tc,
        "rejected_total": tr,
        "total_gap": tc - tr,
        "dominating": dominating,
        "rule": rule.kind,
        "granularity": rule.granularity,
        "min_total_gap": rule.min_total_gap,
    }
    for side, r in (("chosen", chosen), ("rejected", rejected)):
        for k in dict.fromkeys(("dimension_scores", key)):
            if k in r:
                pair[f"{side}_{k}"] = _plain(r[k])
    return pair


def mine_pairs(
    records: Iterable[Mapping[str, Any]], rule: PairRule | None = None, dedup: bool = True
) -> tuple[list[dict[str, Any]], MiningStats]:
    """Mine preference pairs from scored samples: per prompt, judge every unordered pair of distinct samples.

    Returns the admitted pairs (see :func:`make_pair`; ordered by prompt in first-seen order, then by decreasing total
    gap) and :class:`MiningStats` counting every candidate by reason.
    """
    rule = rule or PairRule()
    records = list(records)
    groups, duplicates = group_by_prompt(records, dedup=dedup)
    stats = MiningStats(
        rule=asdict(rule), num_records=len(records), num_prompts=len(groups), duplicate_samples=duplicates
    )
    pairs: list[dict[str, Any]] = []
    for samples in groups.values():
        if len(samples) < 2:
            stats.prompts_with_one_sample += 1
            continue
        admitted = []
        for (id_a, a), (id_b, b) in itertools.combinations(samples, 2):
            stats.candidates += 1
            reason, chosen, rejected = admit(a, b, rule)
            if reason != "admitted":
                stats.counts[reason] += 1
                continue
            ids = (id_a, id_b) if chosen is a else (id_b, id_a)
            is_dominating = rule.kind == "mpo" or dominates(chosen, rejected, rule.granularity, rule.tolerance)
            admitted.append(make_pair(chosen, rejected, rule, is_dominating, *ids))
        admitted.sort(key=lambda p: -p["total_gap"])  # stable: ties keep candidate order
        if rule.max_pairs_per_prompt is not None and len(admitted) > rule.max_pairs_per_prompt:
            stats.counts["over_prompt_cap"] += len(admitted) - rule.max_pairs_per_prompt
            admitted = admitted[: rule.max_pairs_per_prompt]
        stats.counts["admitted"] += len(admitted)
        stats.admitted_dominating += sum(p["dominating"] for p in admitted)
        stats.admitted_non_dominating += sum(not p["dominating"] for p in admitted)
        stats.prompts_with_pairs += bool(admitted)
        pairs.extend(admitted)
    return pairs, stats


def deduplicate_pairs(pairs: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """Drop repeated pairs (same prompt and the same two samples, in either order); returns ``(pairs, dropped)``."""
    seen: set[tuple[str, frozenset]] = set()
    out, dropped = [], 0
    for pair in pairs:
        key = (str(pair["prompt"]), frozenset((str(pair["chosen"]), str(pair["rejected"]))))
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        out.append(pair)
    return out, dropped


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items()}
    return [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]


def _describe(record: Mapping[str, Any]) -> str:
    for key in ("id", "media", "prompt"):
        if key in record:
            return f"{key}={record[key]!r}"
    return "(no id)"
