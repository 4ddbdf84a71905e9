"""Arguments and set-up shared by the video data commands (split, filter, caption, rewrite-prompts)."""

from __future__ import annotations

import argparse
from typing import Any


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh: delete what an earlier run wrote in --out (only that)"
    )
    parser.add_argument(
        "--force", action="store_true", help="continue a job folder made with other settings (its results are kept)"
    )


def job_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The output-policy keywords of the stage functions (``overwrite``, ``force``)."""
    return {"overwrite": args.overwrite, "force": args.force}


def job_state(args: argparse.Namespace) -> Any:
    """The ``accelerate`` state: shards the job over ``accelerate launch`` / ``torchrun`` processes (gloo on CPU)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=args.cpu or not torch.cuda.is_available())


def report(state: Any, stage: str, summary: Any) -> None:
    print(
        f"[process {state.process_index}] {stage}: {summary.done} done, {summary.skipped} already done, "
        f"{summary.failed} failed ({summary.seconds:.1f}s)"
    )
