"""Generate-and-score: prompts -> N samples per prompt (any diffusers-style pipeline) -> VisionReward scores.

The job is a loop over prompts with three properties that matter at scale:

- **Sharded** with ``accelerate``: every process reads the same list of unfinished prompts and takes its part with
  ``PartialState().split_between_processes``; run it with ``accelerate launch -m datasets_scripts.cli generate-score``.
- **Resumable**: a prompt is finished when one line holding all of its scored samples is appended (and fsynced) to
  the process's ``shards/rank-XXXXX.jsonl``; media files are written atomically before that line. After a crash,
  rerunning the same command skips finished prompts, and a torn last line is ignored, so every prompt ends up scored
  exactly once whatever the number of processes in each run. Seeds are derived from the prompt, not from the
  process, so a resumed run generates what the first run would have.
- **Nothing silently dropped**: a prompt whose generation or scoring raises is written to
  ``rejects/rank-XXXXX.jsonl`` with the stage and the reason, and the job goes on (it is retried on the next run).

The sampler and the scorer are plain callables (see :class:`Sampler` and :class:`Scorer`), so any diffusers pipeline
and any scorer fit; :mod:`datasets_scripts.backends` builds them from model paths or the embedded tiny defaults.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trl_vision_reward.records import ScoredSample, scored_samples_features_of

from .files import append_jsonl, iter_jsonl_tolerant, stable_hash, write_jsonl

SHARDS_DIR = "shards"
REJECTS_DIR = "rejects"
MEDIA_DIR = "media"
COMMAND = "vr-datasets generate-score"


class Sampler(Protocol):
    """``sampler(prompt, num_samples, seed) -> list of media``; each item is written with ``sampler.write``."""

    suffix: str

    def __call__(self, prompt: str, num_samples: int, seed: int) -> list[Any]: ...

    def write(self, sample: Any, path: Path) -> None: ...


class Scorer(Protocol):
    """``scorer(paths, prompt) -> list of score dicts`` (one per path, in order).

    Each dict holds ``probabilities`` and ``answers`` (per question, checklist order), ``question_scores``,
    ``dimension_scores`` and ``sub_dimension_scores`` (``{name: score}``) and ``total``. ``checklist_id`` names
    the checklist.
    """

    checklist_id: str

    def __call__(self, paths: Sequence[Path], prompt: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PromptItem:
    index: int
    prompt_id: str
    prompt: str


@dataclass
class JobSummary:
    """What one process did in one run (``skipped`` = already finished before this run)."""

    total_prompts: int
    skipped: int
    finished: int = 0
    failed: int = 0
    seconds: float = 0.0
    rejects: list[dict[str, Any]] = field(default_factory=list)


def prompt_items(prompts: Sequence[str]) -> list[PromptItem]:
    """Stable ids for prompts: a hash of the text, suffixed ``-2``, ``-3``... for repeats of the same prompt."""
    seen: dict[str, int] = {}
    items = []
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"prompt {i} is empty; every prompt must be non-empty text")
        base = f"p{stable_hash(prompt):016x}"[:13]
        seen[base] = seen.get(base, 0) + 1
        items.append(PromptItem(i, base if seen[base] == 1 else f"{base}-{seen[base]}", prompt))
    return items


def prompt_seed(base_seed: int, prompt_id: str) -> int:
    """The seed of a prompt's samples: independent of which process or run generates it."""
    return (base_seed * 1_000_003 + stable_hash(prompt_id)) % 2**31


def finished_prompt_ids(out_dir: str | Path) -> set[str]:
    """Prompt ids with a committed line in any shard file (any process count, any earlier run)."""
    done = set()
    for shard in sorted((Path(out_dir) / SHARDS_DIR).glob("*.jsonl")):
        for line in iter_jsonl_tolerant(shard):
            done.add(line["prompt_id"])
    return done


def _score_one_prompt(item: PromptItem, sampler: Sampler, scorer: Scorer, out_dir: Path, num_samples: int, seed: int):
    stage = "generate"
    try:
        samples = sampler(item.prompt, num_samples, seed)
        if len(samples) != num_samples:
            raise RuntimeError(f"the sampler returned {len(samples)} samples; expected {num_samples}")
        stage = "write"
        paths = []
        for k, sample in enumerate(samples):
            rel = Path(MEDIA_DIR) / item.prompt_id / f"{k}{sampler.suffix}"
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
            sampler.write(sample, tmp)
            tmp.replace(target)  # atomic: a media file is complete or absent
            paths.append(rel)
        stage = "score"
        scores = scorer([out_dir / p for p in paths], item.prompt)
        if len(scores) != len(paths):
            raise RuntimeError(f"the scorer returned {len(scores)} results for {len(paths)} samples")
    except Exception as exc:  # one bad prompt must not end the job: it is recorded with its reason
        return None, {
            "prompt_id": item.prompt_id,
            "prompt": item.prompt,
            "stage": stage,
            "reason": f"{type(exc).__name__}: {exc}",
        }
    try:
        records = [
            ScoredSample(
                id=f"{item.prompt_id}-{k}",
                prompt_id=item.prompt_id,
                prompt_index=item.index,
                prompt=item.prompt,
                sample_index=k,
                seed=seed,
                media=path.as_posix(),
                checklist_id=getattr(scorer, "checklist_id", "unknown"),
                **score,
            ).to_row()
            for k, (path, score) in enumerate(zip(paths, scores))
        ]
    except (TypeError, ValueError) as exc:  # the scorer's dicts do not fit the record
        return None, {"prompt_id": item.prompt_id, "prompt": item.prompt, "stage": "score", "reason": str(exc)}
    return records, None


def run_generate_and_score(
    prompts: Sequence[str],
    sampler: Sampler,
    scorer: Scorer,
    out_dir: str | Path,
    *,
    samples_per_prompt: int = 4,
    seed: int = 0,
    state: Any = None,
    progress: bool = True,
    on_prompt_done: Callable[[PromptItem], None] | None = None,
    settings: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    force: bool = False,
) -> JobSummary:
    """Run (or resume) the job for this process; see the module docstring. Returns this process's summary.

    ``state`` is an ``accelerate.PartialState`` (created when omitted). Call :func:`collect_scored_samples` on the
    main process afterwards (the CLI does) to write the Parquet dataset and its card.

    A job folder remembers the settings it was made with (``samples_per_prompt``, ``seed``, the sampler's
    ``config()`` and ``settings``): resuming it with others is refused with the differing keys named unless
    ``force`` (samples of two configurations under one card), and ``overwrite`` replaces it (the old job is deleted
    once :func:`collect_scored_samples` has written the new dataset).
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    if samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be >= 1; got {samples_per_prompt}")
    state = state or PartialState()
    out_dir = Path(out_dir)
    items = prompt_items(prompts)
    if state.is_main_process:
        config = getattr(sampler, "config", None)
        job = {
            "samples_per_prompt": samples_per_prompt,
            "seed": seed,
            "generation": config() if callable(config) else None,
        }
        _claim_job(out_dir, {**job, **(settings or {})}, items, state, overwrite=overwrite, force=force)
    state.wait_for_everyone()  # the folder is claimed (or refused) before any process writes
    done = finished_prompt_ids(out_dir)
    state.wait_for_everyone()  # every process has read the same finished set before anyone appends
    todo = [it for it in items if it.prompt_id not in done]
    summary = JobSummary(total_prompts=len(items), skipped=len(items) - len(todo))
    shard = out_dir / SHARDS_DIR / f"rank-{state.process_index:05d}.jsonl"
    rejects = out_dir / REJECTS_DIR / f"rank-{state.process_index:05d}.jsonl"
    start = time.perf_counter()
    with state.split_between_processes(todo) as mine:
        bar = tqdm(mine, desc=f"generate+score [{state.process_index}]", unit="prompt", disable=not progress)
        for item in bar:
            records, reject = _score_one_prompt(
                item, sampler, scorer, out_dir, samples_per_prompt, prompt_seed(seed, item.prompt_id)
            )
            if reject is not None:
                append_jsonl(rejects, {**reject, "time": time.time()})
                summary.failed += 1
                summary.rejects.append(reject)
            else:
                append_jsonl(shard, {"prompt_id": item.prompt_id, "prompt_index": item.index, "samples": records})
                summary.finished += 1
            if on_prompt_done is not None:
                on_prompt_done(item)
            bar.set_postfix(done=summary.finished, failed=summary.failed)
    summary.seconds = time.perf_counter() - start
    state.wait_for_everyone()
    return summary


def _claim_job(out_dir: Path, settings: Mapping[str, Any], items, state, *, overwrite: bool, force: bool):
    """The job folder under the output policy, with the shard files of every process recorded up front and the media
    a killed run wrote for this job's prompts adopted (they are replaced when the prompt is redone)."""
    from diffusers_cogvideox.outputs import OutputFolder

    folder = OutputFolder.claim(
        out_dir,
        COMMAND,
        overwrite=overwrite,
        resume=True,
        settings=settings,
        force=force,
        reserved=(SHARDS_DIR, REJECTS_DIR),
    )
    ranks = range(getattr(state, "num_processes", 1))
    folder.record(*(f"{sub}/rank-{r:05d}.jsonl" for sub in (SHARDS_DIR, REJECTS_DIR) for r in ranks))
    ids = {it.prompt_id for it in items}
    folder.adopt(*sorted(f for f in folder.foreign if f.startswith(f"{MEDIA_DIR}/") and f.split("/")[1] in ids))
    return folder


def load_scored_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every scored sample of a job folder, in prompt order; a prompt committed twice counts once (first line)."""
    out_dir = Path(out_dir)
    by_prompt: dict[str, dict[str, Any]] = {}
    for shard in sorted((out_dir / SHARDS_DIR).glob("*.jsonl")):
        for line in iter_jsonl_tolerant(shard):
            by_prompt.setdefault(line["prompt_id"], line)
    lines = sorted(by_prompt.values(), key=lambda line: line["prompt_index"])
    return [sample for line in lines for sample in line["samples"]]


def pending_rejects(out_dir: str | Path) -> list[dict[str, Any]]:
    """Failures of prompts that have not been finished since (the latest failure per prompt)."""
    out_dir = Path(out_dir)
    done = finished_prompt_ids(out_dir)
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted((out_dir / REJECTS_DIR).glob("*.jsonl")):
        for line in iter_jsonl_tolerant(path):
            if line["prompt_id"] not in done:
                latest[line["prompt_id"]] = line
    return list(latest.values())


def scored_features(records: Sequence[dict[str, Any]], modality: str = "video", embed_media: bool = True):
    """``datasets.Features`` of scored samples (:func:`trl_vision_reward.records.scored_sample_features`)."""
    samples = [ScoredSample.from_row(r) for r in records]
    return scored_samples_features_of(samples, modality if embed_media else None)


def scored_dataset(out_dir: str | Path, modality: str = "video", embed_media: bool = True):
    """The job's scored samples as a ``datasets.Dataset`` (media embedded from the job folder)."""
    from datasets import Dataset

    out_dir = Path(out_dir)
    records = load_scored_records(out_dir)
    if not records:
        raise ValueError(
            f"no scored samples in {out_dir.name!r}: run the job first (or every prompt failed; see rejects)"
        )
    samples = [ScoredSample.from_row(r) for r in records]
    features = scored_samples_features_of(samples, modality if embed_media else None)
    rows = []
    for sample in samples:
        row = sample.to_row()
        if embed_media:
            row[modality] = str(out_dir / sample.media)
        rows.append(row)
    return Dataset.from_list(rows, features=features)


def score_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean total and per-dimension means of scored samples (for cards and reports)."""
    import numpy as np

    if not records:
        return {}
    out: dict[str, Any] = {"samples": len(records), "mean total": float(np.mean([r["total"] for r in records]))}
    for dim in records[0]["dimension_scores"]:
        out[f"mean {dim}"] = float(np.mean([r["dimension_scores"][dim] for r in records]))
    return out


def collect_scored_samples(
    out_dir: str | Path,
    *,
    modality: str = "video",
    generator: str = "unknown",
    scorer: str = "unknown",
    generation_config: dict[str, Any] | None = None,
    random_data: bool = False,
) -> Path:
    """Write ``data/train-00000-of-00001.parquet``, ``README.md`` and ``rejects.jsonl`` for a finished job."""

    from diffusers_cogvideox.outputs import OutputFolder, read_manifest

    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir) or {}  # the job's own settings: collecting never changes them
    folder = OutputFolder.claim(out_dir, COMMAND, resume=True, settings=manifest.get("settings", {}))
    folder.record_new()  # the media every process wrote
    _collect(folder, modality, generator, scorer, generation_config, random_data)
    folder.finish()  # a job an --overwrite set aside is deleted now; after a failure both stay (resumable)
    return out_dir


def _collect(folder, modality, generator, scorer, generation_config, random_data) -> None:
    from hub_cards.dataset_cards import render_scored_samples_card

    from .visionrewarddb import write_parquet

    out_dir = folder.root
    ds = scored_dataset(out_dir, modality)
    rejects = pending_rejects(out_dir)
    write_parquet(ds, folder.path("data/train-00000-of-00001.parquet"))
    write_jsonl(folder.path("rejects.jsonl"), rejects)
    records = load_scored_records(out_dir)
    reasons: dict[str, int] = {}
    for r in rejects:
        reasons[r["stage"]] = reasons.get(r["stage"], 0) + 1
    card = render_scored_samples_card(
        num_rows=len(ds),
        num_prompts=len({r["prompt_id"] for r in records}),
        samples_per_prompt=max(r["sample_index"] for r in records) + 1,
        checklist_id=records[0]["checklist_id"],
        generator=generator,
        scorer=scorer,
        features=ds.features,
        score_summary=score_summary(records),
        rejects=reasons,
        generation_config=generation_config,
        random_data=random_data,
    )
    with folder.atomic("README.md") as tmp:
        card.save(tmp)
