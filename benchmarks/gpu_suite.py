"""The full-size speed and memory figures in one run on one GPU: generation, VAE, scorer, MPO and SFT steps.

    bash scripts/gpu_suite.sh                        # on a GPU machine: set-up, then this script (<= 8 min on H100/H200)
    python benchmarks/gpu_suite.py                   # the same without the set-up
    python benchmarks/gpu_suite.py --quick           # tiny sizes on CPU (what CI runs): every case end to end
    python benchmarks/gpu_suite.py --cases vae mpo   # a subset

Cases (``benchmarks/gpu_cases/``), each ours vs the reference side by side in this one process:

1. CogVideoX-2b / 5b transformer, one CFG step (batch 2) at 49x480x720, CogVideoX1.5-5B at 81x768x1360, vs diffusers'
   class with the same weights, per attention backend (SDPA; flash-attn and SageAttention when installed); the
   50-step time; the denoising loop with TeaCache at the README's threshold.
2. VAE decode of 13 latent frames to 49x480x720, with and without tiling, and the whole-clip encode, vs diffusers.
3. VisionReward at CogVLM2 size (the 19B image architecture, the official video architecture): every checklist
   question on one image / one 24-frame video, batched vs one ``generate`` per question; images scored per second.
4. One MPO step at CogVideoX-2b size (LoRA, gradient checkpointing, 49 frames) vs a frozen copy + separate forwards.
5. One SFT step, when ``diffusers_cogvideox.training`` has its trainer, vs the diffusers example script's approach.

Every model has random weights made directly on the device in bf16 (no checkpoint, no download, no host copy), so
the figures are speed and memory only. Each case has a time budget and records what did not fit as skipped; results
are written after every case to ``--out``/``gpu-<date>.json`` and ``.md`` (``quick-<date>`` with ``--quick``), so a
failing case keeps the others' figures. Exit status 1 when a case failed, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import traceback
from pathlib import Path

import torch
from gpu_cases import CASE_MODULES, load_case
from gpu_cases.device import Budget, dtype_name, free_memory
from gpu_cases.report import CaseContext, markdown

from diffusers_cogvideox._cli import run_cli
from diffusers_cogvideox.errors import UsageError
from diffusers_cogvideox.outputs import atomic_write_json, atomic_write_text, check_output_file

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
TOTAL_BUDGET_S = 480  # 8 minutes


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_suite.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, any device (CPU by default): the smoke run")
    parser.add_argument("--device", help="cuda (default where available) or cpu (only with --quick)")
    parser.add_argument("--cases", nargs="+", choices=list(CASE_MODULES), default=list(CASE_MODULES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON and Markdown results")
    parser.add_argument("--overwrite", action="store_true", help="replace this date's results in --out")
    parser.add_argument("--budget", type=float, help=f"seconds for the whole suite ({TOTAL_BUDGET_S}; --quick 900)")
    parser.add_argument("--repeats", type=int, help="timed calls per figure at most, budget permitting (3; --quick 1)")
    parser.add_argument("--debug", action="store_true", help="tracebacks of known errors")
    args = parser.parse_args(argv)
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        raise UsageError(f"--device must be cpu or cuda[:N]; got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    if args.device == "cpu" and not args.quick:
        raise UsageError("the full-size suite needs a CUDA device (none found); --quick runs every case at tiny size")
    if args.budget is None:
        args.budget = 900.0 if args.quick else TOTAL_BUDGET_S
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.budget <= 0 or args.repeats < 1:
        raise UsageError(f"--budget must be > 0 and --repeats >= 1; got {args.budget} and {args.repeats}")
    return args


def environment(device: str, dtype: torch.dtype) -> dict:
    import diffusers
    import transformers

    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"
    return {
        "device": device,
        "device_name": name,
        "dtype": dtype_name(dtype),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "cpu_threads": torch.get_num_threads(),
    }


def run_case(name: str, args: argparse.Namespace, dtype: torch.dtype, suite: Budget) -> dict:
    """One case under its budget (what is left of the suite's, at most the case's own); failures are recorded."""
    module = load_case(name)
    # the case budgets are sized for the GPU; tiny sizes on a shared CPU get what is left of the suite's
    budget = Budget(max(0.0, suite.left() if args.quick else min(module.BUDGET_S, suite.left())))
    ctx = CaseContext(device=args.device, dtype=dtype, quick=args.quick, budget=budget, repeats=args.repeats)
    record = {"name": name, "title": module.TITLE, "budget_s": round(budget.seconds, 1), "notes": []}
    start = time.perf_counter()
    print(f"[{name}] {module.TITLE} (budget {budget.seconds:.0f} s)", flush=True)
    if budget.seconds < module.MIN_S:
        status, message = "skipped", f"needs at least {module.MIN_S} s, {budget.seconds:.0f} s of the suite budget left"
    else:
        try:
            message = module.run(ctx)
            status = "skipped" if message else "ok"
        except Exception as error:  # one case's failure must not lose the others' figures
            status, message = "failed", f"{type(error).__name__}: {error}".splitlines()[0]
            traceback.print_exc()
    free_memory(args.device)
    if status != "ok":
        print(f"[{name}] {status}: {message}", flush=True)
    record.update(status=status, message=message or "", seconds=round(time.perf_counter() - start, 1))
    record["rows"] = [row.to_dict() for row in ctx.rows]
    record["notes"] = ctx.details.pop("notes", [])
    record["details"] = ctx.details
    return record


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    suite = Budget(args.budget)
    date = datetime.date.today().isoformat()
    stem = f"{'quick' if args.quick else 'gpu'}-{date}"
    json_path = check_output_file(args.out / f"{stem}.json", overwrite=args.overwrite, suffixes=(".json",))
    md_path = check_output_file(args.out / f"{stem}.md", overwrite=args.overwrite, suffixes=(".md",))
    dtype = torch.bfloat16
    if args.device.startswith("cuda:"):  # "cuda" alone: the current device
        torch.cuda.set_device(args.device)
    results = {
        "suite": "benchmarks/gpu_suite.py",
        "date": date,
        "quick": args.quick,
        "budget_s": args.budget,
        "wall_s": 0.0,
        "environment": environment(args.device, dtype),
        "cases": [],
    }
    for name in args.cases:
        results["cases"].append(run_case(name, args, dtype, suite))
        results["wall_s"] = round(time.perf_counter() - start, 1)
        atomic_write_json(json_path, results)  # after every case: a later failure keeps these
        atomic_write_text(md_path, markdown(results) + "\n")
    failed = [case["name"] for case in results["cases"] if case["status"] == "failed"]
    print(
        f"wrote {json_path} and {md_path} ({results['wall_s']:.0f} s){'; failed: ' + ', '.join(failed) if failed else ''}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_cli("gpu_suite.py", main))
