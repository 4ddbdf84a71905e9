"""``vision-reward convert-sat``: the SAT checkpoint of VisionReward-Image -> a transformers CogVLM2 folder."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        required=True,
        help="split tar parts (a folder of split_part_aa, split_part_ab, ...), a .tar, an extracted SAT folder "
        "(latest + <iteration>/mp_rank_00_model_states.pt) or the .pt file",
    )
    parser.add_argument("--out", required=True, help="output folder (config.json, safetensors shards, index)")
    parser.add_argument(
        "--dtype",
        default="keep",
        choices=["keep", "bf16", "fp16", "fp32"],
        help="weight dtype to write; 'keep' writes the release's own (fp32 or bf16)",
    )
    parser.add_argument(
        "--max-shard-size", default="5GB", help="size of one safetensors shard, also the memory bound (default 5GB)"
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="Llama-3 tokenizer (path or Hub id, e.g. meta-llama/Meta-Llama-3-8B-Instruct) to save a processor too",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what an earlier conversion wrote to --out (nothing else is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    import os
    import tempfile
    from pathlib import Path

    from diffusers_cogvideox.outputs import OutputFolder
    from trl_vision_reward.reward.cogvlm2.convert_sat import convert_sat_checkpoint

    if not Path(args.input).exists():
        raise FileNotFoundError(2, "no SAT checkpoint (tar parts, .tar, SAT folder or .pt) at", args.input)
    # the input is checked before anything is deleted; --overwrite removes only what an earlier conversion wrote
    folder = OutputFolder.claim(
        args.out, "vision-reward convert-sat", inputs=[args.input, args.tokenizer], overwrite=args.overwrite
    )
    # an earlier conversion is set aside until this one succeeds (a failure puts it back)
    with folder, tempfile.TemporaryDirectory(dir=folder.root, prefix=".converting-") as staging:
        converted = convert_sat_checkpoint(
            args.input,
            Path(staging, "out"),
            dtype=args.dtype,
            max_shard_size=args.max_shard_size,
            tokenizer=args.tokenizer,
        )
        files = sorted(p for p in converted.rglob("*") if p.is_file())
        for file in files:  # a failed conversion leaves the folder as it was; a finished one is moved in
            os.replace(file, folder.path(file.relative_to(converted).as_posix()))
    print(
        f"wrote {folder.root} ({len(files)} files; load it with "
        "trl_vision_reward.reward.cogvlm2.CogVLM2ForConditionalGeneration.from_pretrained)"
    )
    return 0
