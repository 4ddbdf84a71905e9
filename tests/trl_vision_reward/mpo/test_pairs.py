"""MPO pair mining: dominance, the MPO and plain-DPO rules, per-prompt mining, statistics, deduplication."""

import itertools
import random

import pytest

from trl_vision_reward.mpo.pairs import (
    PAPER_THRESHOLDS,
    REASONS,
    PairRule,
    admit,
    deduplicate_pairs,
    dominates,
    dpo_rule,
    group_scores,
    groups_from_checklist,
    mine_pairs,
    mpo_rule,
)


def record(prompt, ident, total, dims, subs=None, questions=None):
    r = {"prompt": prompt, "id": ident, "total": total, "dimension_scores": dims}
    if subs is not None:
        r["sub_dimension_scores"] = subs
    if questions is not None:
        r["question_scores"] = questions
    return r


def test_dominance_is_greater_or_equal_everywhere():
    assert dominates({"a": 1, "b": 2}, {"a": 1, "b": 1})
    assert dominates([1, 2], [1, 2])  # ties allowed both ways
    assert not dominates({"a": 1, "b": 0}, {"a": 0, "b": 1})
    assert dominates([0.99, 1], [1, 1], tolerance=0.02) and not dominates([0.99, 1], [1, 1])


def test_dominance_reads_the_granularity_of_a_record():
    a = record("p", "a", 2.0, {"x": 1, "y": 1}, questions=[1, 0, 1])
    b = record("p", "b", 1.0, {"x": 0, "y": 1}, questions=[0, 1, 1])
    assert dominates(a, b, "dimension") and not dominates(a, b, "question")
    with pytest.raises(KeyError, match="has no 'sub_dimension_scores'"):
        dominates(a, b, "sub_dimension")


def test_dominance_rejects_mismatched_or_bad_vectors():
    with pytest.raises(ValueError, match="only in A \\['c'\\]"):
        dominates({"a": 1, "c": 1}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="different lengths: 2 vs 3"):
        dominates([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN or inf"):
        dominates([1, float("nan")], [1, 2])
    with pytest.raises(ValueError, match="granularity must be one of"):
        dominates({"total": 1, "dimension_scores": [1]}, {"total": 0, "dimension_scores": [0]}, "dim")


def test_rules_and_paper_thresholds():
    assert PAPER_THRESHOLDS == {"dimension": 0.6, "sub_dimension": 0.5, "question": 0.4, "dpo": 0.8}
    assert PairRule.paper("mpo", "question").min_total_gap == 0.4 and PairRule.paper("dpo").min_total_gap == 0.8
    hi = record("p", "hi", 2.0, [1, 1])
    mid = record("p", "mid", 1.5, [1, 0])
    crossing = record("p", "x", 1.0, [0, 2])
    assert mpo_rule(hi, mid, min_total_gap=0.5) and not mpo_rule(hi, mid)  # default gap 0.6
    assert not mpo_rule(hi, crossing) and dpo_rule(hi, crossing, 0.8)  # gap 1.0 but not dominating
    assert admit(mid, hi, PairRule(min_total_gap=0.1))[1:] == (hi, mid)  # the higher total is chosen
    assert admit(hi, dict(hi, id="twin"), PairRule(min_total_gap=0))[0] == "tie"
    with pytest.raises(ValueError, match="kind must be 'mpo' or 'dpo'"):
        PairRule(kind="ipo")


def _random_records(seed):
    rng = random.Random(seed)
    out = []
    for p in range(12):
        for s in range(rng.randint(1, 5)):
            qs = [rng.choice([0.0, 0.5, 1.0]) for _ in range(6)]
            subs = {"s1": qs[0] + qs[1], "s2": qs[2], "s3": qs[3] + qs[4], "s4": qs[5]}
            dims = {"d1": subs["s1"] + subs["s2"], "d2": subs["s3"] + subs["s4"]}
            out.append(record(f"prompt {p}", f"{p}-{s}", sum(qs), dims, subs, qs))
    return out


def _brute_force(records, kind, granularity, gap):
    counts = dict.fromkeys(REASONS, 0)
    key = f"{granularity}_scores"
    by_prompt = {}
    for r in records:
        by_prompt.setdefault(r["prompt"], []).append(r)
    for rs in by_prompt.values():
        for a, b in itertools.combinations(rs, 2):
            win, lose = (a, b) if a["total"] >= b["total"] else (b, a)
            va, vb = win[key], lose[key]
            va, vb = (list(va.values()), list(vb.values())) if isinstance(va, dict) else (va, vb)
            if win["total"] == lose["total"]:
                counts["tie"] += 1
            elif win["total"] - lose["total"] < gap:
                counts["below_total_gap"] += 1
            elif kind == "mpo" and not all(x >= y for x, y in zip(va, vb)):
                counts["not_dominating"] += 1
            else:
                counts["admitted"] += 1
    return counts


@pytest.mark.parametrize("granularity", ["dimension", "sub_dimension", "question"])
@pytest.mark.parametrize("kind", ["mpo", "dpo"])
def test_mined_pairs_obey_the_rule_and_counts_match_brute_force(kind, granularity):
    records = _random_records(seed=hash((kind, granularity)) % 1000)
    gap = 1.0
    rule = PairRule(kind=kind, granularity=granularity, min_total_gap=gap)
    pairs, stats = mine_pairs(records, rule)
    assert stats.counts == _brute_force(records, kind, granularity, gap)
    assert sum(stats.counts.values()) == stats.candidates
    by_id = {r["id"]: r for r in records}
    for pair in pairs:
        chosen, rejected = by_id[pair["chosen"]], by_id[pair["rejected"]]
        assert chosen["prompt"] == rejected["prompt"] == pair["prompt"]
        assert pair["total_gap"] == chosen["total"] - rejected["total"] >= gap
        assert pair["dominating"] == dominates(chosen, rejected, granularity)
        if kind == "mpo":
            assert pair["dominating"]
        assert (pair["rule"], pair["granularity"], pair["min_total_gap"]) == (kind, granularity, gap)
    assert stats.admitted == len(pairs) == stats.admitted_dominating + stats.admitted_non_dominating


def test_dpo_admits_a_superset_of_mpo_and_finer_dominance_is_stricter():
    records = _random_records(seed=3)
    dpo, _ = mine_pairs(records, PairRule("dpo", min_total_gap=0.5))
    keys = lambda ps: {(p["chosen"], p["rejected"]) for p in ps}  # noqa: E731
    by_level = {
        g: keys(mine_pairs(records, PairRule("mpo", g, 0.5))[0]) for g in ("dimension", "sub_dimension", "question")
    }
    assert by_level["question"] <= by_level["sub_dimension"] <= by_level["dimension"] <= keys(dpo)
    assert len(by_level["question"]) < len(keys(dpo))


def test_duplicates_and_prompt_cap():
    a = record("p", "a", 3.0, [3, 3])
    b = record("p", "b", 2.0, [2, 2])
    c = record("p", "c", 1.0, [1, 1])
    pairs, stats = mine_pairs(
        [a, b, dict(b), c, record("q", "z", 1.0, [1, 1])], PairRule(min_total_gap=0.5, max_pairs_per_prompt=2)
    )
    assert stats.duplicate_samples == 1 and stats.prompts_with_one_sample == 1 and stats.num_prompts == 2
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("a", "c"), ("a", "b")]  # largest gaps first
    assert stats.counts["over_prompt_cap"] == 1 and stats.admitted == 2
    assert "2 pairs admitted of 3 candidates" in str(stats)
    assert stats.as_dict()["admitted"] == 2
    kept, dropped = deduplicate_pairs(pairs + [dict(pairs[0], chosen="c", rejected="a")])
    assert dropped == 1 and kept == pairs


def test_pair_records_carry_scores_and_media():
    a = dict(record("p", "a", 2.0, {"x": 2.0}), media="a.mp4")
    b = dict(record("p", "b", 1.0, {"x": 1.0}), media="b.mp4")
    (pair,), _ = mine_pairs([a, b], PairRule(min_total_gap=0.5))
    assert pair["chosen"] == "a.mp4" and pair["rejected"] == "b.mp4"
    assert pair["chosen_dimension_scores"] == {"x": 2.0} and pair["rejected_dimension_scores"] == {"x": 1.0}


def test_bad_records_are_named():
    with pytest.raises(KeyError, match="record #1 has no 'prompt'"):
        mine_pairs([record("p", "a", 1, [1]), {"id": "b", "total": 1}])
    with pytest.raises(ValueError, match="id='b' has a non-finite total"):
        mine_pairs([record("p", "a", 1, [1]), record("p", "b", float("nan"), [1])])


def test_group_scores_sum_questions():
    assert group_scores([1, 0.5, 2, 0], {"x": [0, 1], "y": [2, 3]}) == {"x": 1.5, "y": 2.0}
    with pytest.raises(IndexError, match="names question 9"):
        group_scores([1, 2], {"x": [9]})


def test_groups_from_the_video_checklist():
    checklist_module = pytest.importorskip("trl_vision_reward.reward.checklist")
    checklist = checklist_module.Checklist.load("video", select=False)
    groups = groups_from_checklist(checklist, "dimension")
    assert sum(len(v) for v in groups.values()) == len(checklist.questions) == 64
    assert list(groups) == [d for d in checklist.dimensions if d in groups]  # the checklist's order
    assert all(checklist.questions[i].dimension == name for name, idx in groups.items() for i in idx)
