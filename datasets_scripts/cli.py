"""``vr-datasets`` command line: build, score, pair, convert and publish datasets; run the end-to-end quickstart."""

from __future__ import annotations

import sys

from diffusers_cogvideox._cli import run_subcommands

COMMANDS = {
    "build-vrdb": (
        "datasets_scripts.commands.build_vrdb",
        "Build a VisionRewardDB-layout dataset from media + annotations.",
    ),
    "generate-score": (
        "datasets_scripts.commands.generate_score",
        "Generate N samples per prompt and score them with VisionReward (resumable; use accelerate launch to shard).",
    ),
    "pairs": ("datasets_scripts.commands.pairs", "Mine MPO preference pairs from scored samples."),
    "convert": ("datasets_scripts.commands.convert", "Convert Pick-a-Pic v2 / HPDv2 / ImageRewardDB records to pairs."),
    "publish": ("datasets_scripts.commands.publish", "Push a dataset folder (Parquet + card) to the Hub."),
    "split": ("datasets_scripts.commands.split", "Cut long raw videos into clips of the model's frame count by scene."),
    "filter": (
        "datasets_scripts.commands.filter",
        "Score clips (motion, stills, cuts, blur, text, aesthetic, negative labels), then apply thresholds.",
    ),
    "caption": ("datasets_scripts.commands.caption", "Caption clips (CogVLM2-Caption recipe) into the SFT dataset."),
    "rewrite-prompts": (
        "datasets_scripts.commands.rewrite_prompts",
        "Rewrite short prompts into long CogVideoX-style prompts with a chat causal LM (official system prompt).",
    ),
    "train-tiny-world": (
        "datasets_scripts.commands.train_tiny_world",
        "Train the tiny world's CogVideoX and VisionReward from scratch (the package's shipped weights).",
    ),
    "quickstart": (
        "datasets_scripts.quickstart.cli",
        "Run the whole loop: generate, score, pair, train MPO, regenerate, report.",
    ),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["quickstart"]:  # its flags are generated from its config dataclass, so it parses its own
        from datasets_scripts.quickstart.cli import main as quickstart

        return quickstart(argv[1:], prog="vr-datasets quickstart")
    return run_subcommands("vr-datasets", __doc__, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
