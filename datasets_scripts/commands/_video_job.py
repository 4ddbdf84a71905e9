"""Arguments and set-up shared by the video data commands (split, filter, caption, rewrite-prompts)."""

from __future__ import annotations

import argparse
from typing import Any


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    parser.add_argument("--no-progress", action="store_true")


def job_state(args: argparse.Namespace) -> Any:
    """The ``accelerate`` state: shards the job over ``accelerate launch`` / ``torchrun`` processes (gloo on CPU)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=args.cpu or not torch.cuda.is_available())


def check_out(out: str, *inputs: str | None) -> None:
    from diffusers_cogvideox.outputs import check_inputs_outside

    check_inputs_outside(out, inputs)


def report(state: Any, stage: str, summary: Any) -> None:
    print(
        f"[process {state.process_index}] {stage}: {summary.done} done, {summary.skipped} already done, "
        f"{summary.failed} failed ({summary.seconds:.1f}s)"
    )
