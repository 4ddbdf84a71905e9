"""``vr-datasets train-tiny-world``: train the tiny world's CogVideoX and VisionReward from scratch, seeded.

Writes ``--out`` (a new or empty folder): ``pipeline/`` (the text-to-video pipeline, Hub layout), ``scorer/`` (the
VisionReward-Video scorer), the data each stage trained on (``judgments/``, ``preferences/``), ``report.json``
(per-question judgment accuracy on held-out clips, the generator's samples judged by the rules, the fitted weights,
the sha256 of every weight file) and ``README.md``. ``scripts/train_tiny_world.sh`` runs it and installs the two
model folders as the package's shipped weights. About 40 minutes on 2 CPU cores (``--budget smoke``: seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="a new or empty folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", choices=["full", "smoke"], default="full", help="smoke: a seconds-long check")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a run in --out: finished stages are kept (each is seeded on its own, so the result is the same)",
    )
    parser.add_argument(
        "--stages",
        default="vae,transformer,scorer,report",
        help="comma-separated subset of vae,transformer,scorer,report (transformer and scorer may run at once, "
        "each in its own process with --resume, once vae is done)",
    )


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.tiny_world.report import write_readme
    from datasets_scripts.tiny_world.train import train_tiny_world
    from diffusers_cogvideox.errors import UsageError

    out = Path(args.out)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if args.resume:
        if not (out / "stages").is_dir():
            raise UsageError(f"--resume needs a folder an earlier train-tiny-world run wrote; {out} has no stages/")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"--out must be a new or empty folder (every stage writes into it), or pass --resume; {out} is not"
        )
    report = train_tiny_world(
        out, seed=args.seed, budget=args.budget, progress=not args.no_progress, resume=args.resume, stages=stages
    )
    if report is None:
        print(f"stages {', '.join(stages)} done in {out}; run the rest with --resume")
        return 0
    write_readme(out, report)
    acc = report["judgment_accuracy_held_out"]
    print(
        f"tiny world trained in {sum(report['timings_s'].values()):.0f}s: held-out judgment accuracy "
        f"{min(acc.values()):.3f}..{max(acc.values()):.3f} (mean {report['judgment_accuracy_mean']:.3f}); see {out}"
    )
    return 0
