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
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    from trl_vision_reward.reward.cogvlm2.convert_sat import convert_sat_checkpoint

    out = convert_sat_checkpoint(
        args.input,
        args.out,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        tokenizer=args.tokenizer,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {out} (load it with trl_vision_reward.reward.cogvlm2.CogVLM2ForConditionalGeneration.from_pretrained)"
    )
    return 0
