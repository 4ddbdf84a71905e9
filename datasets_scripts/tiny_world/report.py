"""The README written beside the trained tiny world: what was trained, how well the scorer judges, the hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .world import ATTRIBUTES, DIMENSION_OF


def render_readme(report: dict[str, Any]) -> str:
    acc = report["judgment_accuracy_held_out"]
    gen = report["generator"]
    lines = [
        "# The tiny world, trained",
        "",
        f"Seed {report['seed']}, torch {report['torch']}, {report['threads']} threads; "
        + ", ".join(f"{k} {v:.0f}s" for k, v in report["timings_s"].items())
        + ".",
        "",
        "- `pipeline/`: the text-to-video pipeline (this package's `CogVideoXPipeline`, Hub layout).",
        "- `scorer/`: the VisionReward-Video scorer (tiny CogVLM2-Video; stage 1 `train-sft`, stage 2 `fit-weights`).",
        "- `judgments/`, `preferences/`: the clips, records and pairs the two scorer stages read.",
        "",
        "## Judgment accuracy on held-out clips (against the procedural rules)",
        "",
        "| question | accuracy | fitted weight |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {q} | {a:.3f} | {report['weights'].get(q, 0.0):.3f} |" for q, a in acc.items()]
    lines += [
        "",
        f"Mean {report['judgment_accuracy_mean']:.3f}.",
        "",
        f"## The generator's samples ({gen['clips']} clips, judged by the rules)",
        "",
        "| attribute (dimension) | level 0 | level 1 | level 2 |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {a} ({DIMENSION_OF[a]}) | " + " | ".join(map(str, gen["level_shares"][a])) + " |" for a in ATTRIBUTES]
    lines += [
        "",
        f"Correlation of the speed and stability levels: {gen['speed_vs_stability_level_correlation']:.2f} "
        "(the confounder: negative).",
        "",
        "## sha256 of the weight files",
        "",
    ]
    for part, files in report["sha256"].items():
        lines += [f"- `{part}/{name}`: `{digest}`" for name, digest in files.items()]
    return "\n".join(lines) + "\n"


def write_readme(out: Path, report: dict[str, Any]) -> Path:
    from diffusers_cogvideox.outputs import atomic_write_text

    return atomic_write_text(Path(out) / "README.md", render_readme(report))
