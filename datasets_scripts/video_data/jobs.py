"""The job loop every video data stage shares: sharded with ``accelerate``, resumable, failures kept with reasons.

A stage is a function ``work(item) -> list of result records`` over items with stable ids. Each process takes its part
of the unfinished items (``PartialState.split_between_processes``) and commits one fsynced line per item to
``shards/rank-XXXXX.jsonl`` (or, on failure, to ``rejects/rank-XXXXX.jsonl`` with the reason); the line is the commit
point, so after a kill a rerun skips every committed item and processes each remaining one exactly once, whatever
the number of processes in each run.

The folder follows the project's output policy (:class:`diffusers_cogvideox.outputs.OutputFolder`, claimed by
:func:`claim_job` on the main process before any work): a folder holding someone else's files is refused, the
manifest records the settings that decide the results (a rerun with other settings is refused instead of mixing two
kinds of results, unless ``force``), and ``overwrite`` starts afresh by deleting only the files an earlier run wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import append_jsonl, iter_jsonl_tolerant

SHARDS_DIR = "shards"
REJECTS_DIR = "rejects"


@dataclass(frozen=True)
class Item:
    """One unit of work: ``item_id`` is stable across runs (it is the resume key)."""

    item_id: str
    index: int
    payload: dict[str, Any]


@dataclass
class StageSummary:
    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    rejects: list[dict[str, Any]] = field(default_factory=list)


def job_command(stage: str) -> str:
    """The command name an output folder's manifest records for a stage."""
    return f"vr-datasets {stage}"


def claim_job(
    out_dir: str | Path,
    stage: str,
    settings: Mapping[str, Any],
    state: Any = None,
    *,
    inputs: Iterable[str | Path | None] = (),
    overwrite: bool = False,
    force: bool = False,
) -> Any:
    """Claim ``out_dir`` for a resumable ``stage`` job (main process; the others wait) and record the shard files
    every process will append to, so even a killed run leaves a manifest that covers them. Returns the
    :class:`~diffusers_cogvideox.outputs.OutputFolder` on the main process, else None."""
    from diffusers_cogvideox.outputs import OutputFolder

    folder = None
    if state is None or state.is_main_process:
        folder = OutputFolder.claim(
            out_dir,
            job_command(stage),
            inputs=inputs,
            overwrite=overwrite,
            resume=True,
            settings=dict(settings),
            force=force,
            reserved=(SHARDS_DIR, REJECTS_DIR),
        )
        ranks = range(getattr(state, "num_processes", 1))
        folder.record(*(f"{sub}/rank-{r:05d}.jsonl" for sub in (SHARDS_DIR, REJECTS_DIR) for r in ranks))
    if state is not None:
        state.wait_for_everyone()
    return folder


def open_job(out_dir: str | Path, stage: str) -> Any:
    """The claimed folder of an existing ``stage`` job, with the settings it was made with (for collecting)."""
    from diffusers_cogvideox.outputs import OutputFolder, read_manifest

    manifest = read_manifest(out_dir)
    if manifest is None or manifest.get("command") != job_command(stage):
        raise ValueError(f"{Path(out_dir).name!r} holds no {stage} job; run `vr-datasets {stage}` into it first")
    return OutputFolder.claim(out_dir, job_command(stage), resume=True, settings=manifest.get("settings", {}))


def job_settings(folder: Any) -> dict[str, Any]:
    return dict(folder.manifest.get("settings", {}))


def adopt_committed(folder: Any, names: Iterable[str]) -> None:
    """Record files named by committed shard lines as the job's own. A killed run may have written them before the
    manifest listed them (workers never touch the manifest), so a rerun sees them as unknown; the committed line
    proves this job wrote them."""
    names = [Path(n).as_posix() for n in names]
    folder.foreign.difference_update(names)
    folder.record(*names)


def committed(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Committed lines by item id (the first line wins if an item was ever committed twice)."""
    out: dict[str, dict[str, Any]] = {}
    for shard in sorted((Path(out_dir) / SHARDS_DIR).glob("*.jsonl")):
        for line in iter_jsonl_tolerant(shard):
            out.setdefault(line["item_id"], line)
    return out


def pending_rejects(out_dir: str | Path) -> list[dict[str, Any]]:
    """The latest failure of every item not committed since."""
    done = committed(out_dir)
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(out_dir) / REJECTS_DIR).glob("*.jsonl")):
        for line in iter_jsonl_tolerant(path):
            if line["item_id"] not in done:
                latest[line["item_id"]] = line
    return sorted(latest.values(), key=lambda r: r.get("index", 0))


def results(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every result record of the committed items, in item order."""
    lines = sorted(committed(out_dir).values(), key=lambda line: line["index"])
    return [record for line in lines for record in line["records"]]


def run_stage(
    items: Sequence[Item],
    work: Callable[[Item], list[dict[str, Any]]],
    out_dir: str | Path,
    *,
    desc: str,
    state: Any = None,
    progress: bool = True,
    batch_size: int = 1,
    work_batch: Callable[[list[Item]], list[list[dict[str, Any]] | Exception]] | None = None,
) -> StageSummary:
    """Run (or resume) a stage for this process; see the module docstring.

    ``work_batch`` (optional) processes ``batch_size`` items at once and returns, per item, its records or the
    exception that item raised; otherwise ``work`` is called per item. A failure of one item never ends the job.
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    state = state or PartialState()
    out_dir = Path(out_dir)
    done = committed(out_dir)
    state.wait_for_everyone()  # every process read the same committed set before anyone appends
    todo = [it for it in items if it.item_id not in done]
    summary = StageSummary(total=len(items), skipped=len(items) - len(todo))
    shard = out_dir / SHARDS_DIR / f"rank-{state.process_index:05d}.jsonl"
    rejects = out_dir / REJECTS_DIR / f"rank-{state.process_index:05d}.jsonl"
    start = time.perf_counter()
    with state.split_between_processes(todo) as mine:
        bar = tqdm(total=len(mine), desc=f"{desc} [{state.process_index}]", unit="clip", disable=not progress)
        for first in range(0, len(mine), max(1, batch_size)):
            batch = mine[first : first + max(1, batch_size)]
            if work_batch is not None and len(batch) > 1:
                try:
                    outcomes = work_batch(batch)
                except Exception as exc:  # the whole batch failed: retry one by one to find the culprit
                    outcomes = [_run_one(work, it) for it in batch] if len(batch) > 1 else [exc]
            else:
                outcomes = [_run_one(work, it) for it in batch]
            for item, outcome in zip(batch, outcomes):
                if isinstance(outcome, Exception):
                    reject = {
                        "item_id": item.item_id,
                        "index": item.index,
                        **{
                            k: v
                            for k, v in item.payload.items()
                            if isinstance(v, (str, int, float)) and k not in ("path", "source_path")
                        },
                        "reason": f"{type(outcome).__name__}: {outcome}",
                    }
                    append_jsonl(rejects, {**reject, "time": time.time()})
                    summary.failed += 1
                    summary.rejects.append(reject)
                else:
                    append_jsonl(shard, {"item_id": item.item_id, "index": item.index, "records": outcome})
                    summary.done += 1
                bar.update(1)
            bar.set_postfix(done=summary.done, failed=summary.failed)
        bar.close()
    summary.seconds = time.perf_counter() - start
    state.wait_for_everyone()
    return summary


def _run_one(work: Callable[[Item], list[dict[str, Any]]], item: Item) -> list[dict[str, Any]] | Exception:
    try:
        return work(item)
    except Exception as exc:  # recorded in rejects with its reason; the job goes on
        return exc
