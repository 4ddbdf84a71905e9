"""Generate-and-score: crash and resume, failures in rejects, sharding across processes, the scored dataset."""

import contextlib
import json
import threading
from collections import Counter

import pytest
from datasets import load_dataset

from datasets_scripts.files import append_jsonl, iter_jsonl_tolerant
from datasets_scripts.generate_and_score import (
    collect_scored_samples,
    finished_prompt_ids,
    load_scored_records,
    prompt_items,
    run_generate_and_score,
)

PROMPTS = [f"prompt {i}" for i in range(7)]

# load_dataset(folder) caches by the folder's name and card, so two test folders named alike would share a cache:
# each test loads with its own cache_dir.


class FakeRank:
    """The slice of ``accelerate.PartialState`` the job uses, for one rank of a multi-process run simulated by threads
    (``wait_for_everyone`` is a real barrier between them)."""

    def __init__(self, index, world, barrier=None):
        self.process_index, self.num_processes = index, world
        self.is_main_process = index == 0
        self.barrier = barrier

    def wait_for_everyone(self):
        if self.barrier is not None:
            self.barrier.wait(timeout=60)

    @contextlib.contextmanager
    def split_between_processes(self, items):
        yield items[self.process_index :: self.num_processes]


def run_ranks(world, prompts, samplers, scorer_cls, out, **kwargs):
    """Run ``world`` ranks of the job concurrently, as ``accelerate launch`` would."""
    barrier = threading.Barrier(world)
    errors = []

    def target(rank):
        try:
            run_generate_and_score(
                prompts,
                samplers[rank],
                scorer_cls(),
                out,
                state=FakeRank(rank, world, barrier),
                progress=False,
                **kwargs,
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(rank,)) for rank in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _committed_prompts(out):
    return Counter(
        line["prompt_id"] for shard in (out / "shards").glob("*.jsonl") for line in iter_jsonl_tolerant(shard)
    )


def test_crash_midway_then_resume_scores_every_prompt_exactly_once(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    first = stub_sampler(crash_on_call=4)  # killed while generating the 4th prompt
    with pytest.raises(KeyboardInterrupt):
        run_generate_and_score(PROMPTS, first, stub_scorer(), out, samples_per_prompt=3, progress=False)
    assert len(finished_prompt_ids(out)) == 3
    second = stub_sampler()
    summary = run_generate_and_score(PROMPTS, second, stub_scorer(), out, samples_per_prompt=3, progress=False)
    assert summary.skipped == 3 and summary.finished == 4
    assert second.calls == PROMPTS[3:]  # finished prompts were not generated again
    counts = _committed_prompts(out)
    assert sorted(counts) == sorted(it.prompt_id for it in prompt_items(PROMPTS)) and set(counts.values()) == {1}
    records = load_scored_records(out)
    assert [r["prompt"] for r in records] == [p for p in PROMPTS for _ in range(3)]
    # a third run has nothing left to do
    third = stub_sampler()
    assert (
        run_generate_and_score(PROMPTS, third, stub_scorer(), out, samples_per_prompt=3, progress=False).finished == 0
    )
    assert third.calls == []


def test_torn_last_line_is_ignored_and_redone(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    run_generate_and_score(PROMPTS[:2], stub_sampler(), stub_scorer(), out, samples_per_prompt=2, progress=False)
    shard = next((out / "shards").glob("*.jsonl"))
    text = shard.read_text()
    shard.write_text(text[: len(text) - 20])  # a crash in the middle of writing the second prompt's line
    assert len(finished_prompt_ids(out)) == 1
    sampler = stub_sampler()
    run_generate_and_score(PROMPTS[:2], sampler, stub_scorer(), out, samples_per_prompt=2, progress=False)
    assert sampler.calls == [PROMPTS[1]]
    assert set(_committed_prompts(out).values()) == {1}
    assert len(load_scored_records(out)) == 4


def test_failures_go_to_rejects_with_reason_and_the_rest_is_scored(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    sampler = stub_sampler(fail_prompts=("prompt 2",))
    summary = run_generate_and_score(PROMPTS, sampler, stub_scorer(), out, samples_per_prompt=2, progress=False)
    assert summary.finished == 6 and summary.failed == 1
    collect_scored_samples(out, modality="video")
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert rejects == [
        {**rejects[0], "prompt": "prompt 2", "stage": "generate", "reason": "RuntimeError: cannot generate 'prompt 2'"}
    ]
    ds = load_dataset("parquet", data_files=str(out / "data" / "train-00000-of-00001.parquet"), split="train")
    assert len(ds) == 12 and "prompt 2" not in ds["prompt"]
    # retried on the next run; once it succeeds it leaves the rejects file
    run_generate_and_score(PROMPTS, stub_sampler(), stub_scorer(), out, samples_per_prompt=2, progress=False)
    collect_scored_samples(out, modality="video")
    assert (out / "rejects.jsonl").read_text() == ""


def test_sharded_processes_split_the_work_without_overlap(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    samplers = [stub_sampler(), stub_sampler()]
    run_ranks(2, PROMPTS, samplers, stub_scorer, out, samples_per_prompt=2)
    assert not set(samplers[0].calls) & set(samplers[1].calls)
    assert sorted(samplers[0].calls + samplers[1].calls) == sorted(PROMPTS)
    assert sorted(p.name for p in (out / "shards").glob("*.jsonl")) == ["rank-00000.jsonl", "rank-00001.jsonl"]
    # resuming with a different number of processes still skips everything
    again = [stub_sampler() for _ in range(3)]
    run_ranks(3, PROMPTS, again, stub_scorer, out, samples_per_prompt=2)
    assert [s.calls for s in again] == [[], [], []]


def test_seeds_depend_on_the_prompt_not_the_process(tmp_path, stub_sampler, stub_scorer):
    a, b = tmp_path / "a", tmp_path / "b"
    run_generate_and_score(PROMPTS, stub_sampler(), stub_scorer(), a, samples_per_prompt=2, progress=False)
    run_ranks(2, PROMPTS, [stub_sampler(), stub_sampler()], stub_scorer, b, samples_per_prompt=2)
    ra = {r["id"]: (r["seed"], r["total"]) for r in load_scored_records(a)}
    rb = {r["id"]: (r["seed"], r["total"]) for r in load_scored_records(b)}
    assert ra == rb


def test_scored_dataset_round_trip(tmp_path, stub_sampler, stub_scorer):
    out = tmp_path / "job"
    run_generate_and_score(PROMPTS[:3], stub_sampler(), stub_scorer(), out, samples_per_prompt=2, progress=False)
    collect_scored_samples(out, modality="video", generator="stub", scorer="stub")
    ds = load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf_cache"))
    records = load_scored_records(out)
    assert len(ds) == len(records) == 6
    for row, rec in zip(ds, records):
        assert row["id"] == rec["id"] and row["prompt"] == rec["prompt"] and row["checklist_id"] == "stub"
        assert row["dimension_scores"] == pytest.approx(rec["dimension_scores"])
        assert row["total"] == pytest.approx(rec["total"], abs=1e-6)
        assert row["answers"] == rec["answers"]
        assert row["video"]["bytes"] == (out / rec["media"]).read_bytes()
    card = (out / "README.md").read_text()
    assert "samples per prompt | 2" in card and "checklist | stub" in card


def test_duplicate_prompts_get_distinct_ids_and_empty_prompts_are_refused():
    items = prompt_items(["a cat", "a dog", "a cat"])
    assert items[0].prompt_id != items[2].prompt_id and items[2].prompt_id.endswith("-2")
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        prompt_items(["ok", "  "])


def test_append_jsonl_closes_a_torn_line_first(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"a": 1}\n{"b": ')
    append_jsonl(log, {"c": 3})
    assert list(iter_jsonl_tolerant(log)) == [{"a": 1}, {"c": 3}]
