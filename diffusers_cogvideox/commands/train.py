"""``cogvideox train``: fine-tune CogVideoX (LoRA or full) on a clip folder with progressive stages and buckets.

Flags or a YAML file (``--config examples/cogvideox_sft.yaml``; flags override it), TRL's ``TrlParser`` style::

    cogvideox train --config examples/cogvideox_sft.yaml
    accelerate launch --config_file examples/accelerate/multi_gpu.yaml -m diffusers_cogvideox.commands.train \
        --config examples/cogvideox_sft.yaml

``--dataset_name`` is a clip folder (``metadata.jsonl``, or ``prompts.txt`` + ``videos.txt``; see
:mod:`diffusers_cogvideox.training.precompute`). Clips are encoded once per stage into ``--cache_dir`` with the
checkpoint's VAE and T5 (then both leave the device), rejects are listed in ``<cache_dir>/rejects.jsonl``.
``--model_name_or_path tiny`` trains the embedded tiny random CogVideoX (a smoke test: the output is noise). Bad
input exits with status 2 and one line naming the problem (``--debug`` for the traceback).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from diffusers_cogvideox.errors import UsageError

OWN_PARSER = True  # the dispatcher hands this command its raw arguments (TrlParser builds the parser)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class SFTScriptArguments:
    """Where the clips come from and where their latents are cached."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Clip folder: metadata.jsonl, or prompts.txt + videos.txt (official layout)."}
    )
    eval_dataset_name: str | None = field(
        default=None, metadata={"help": "Held-out clip folder, encoded with the last stage's buckets."}
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Latent and text-embedding cache (default: <output_dir>/latent_cache)."}
    )
    max_text_length: int | None = field(
        default=None, metadata={"help": "T5 token length (default: the transformer's max_text_seq_length, 226)."}
    )


@dataclass
class SFTModelArguments:
    """Which checkpoint to fine-tune."""

    model_name_or_path: str = field(
        default="tiny",
        metadata={
            "help": "A CogVideoX pipeline folder or Hub id (official layout), or 'tiny' / 'tiny:<variant>' (embedded "
            "random tiny model: 2b, 5b, 1.5-5b, 5b-i2v, 1.5-5b-i2v; output is noise)."
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision."})
    torch_dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype of the transformer's base weights (LoRA trains in float32).",
            "choices": list(_DTYPES),
        },
    )


def load_pipeline_components(model_args: SFTModelArguments) -> dict[str, Any]:
    """``transformer, vae, text_encoder, tokenizer, scheduler`` of a checkpoint (this package's model classes)."""
    dtype = _DTYPES[model_args.torch_dtype]
    name = model_args.model_name_or_path
    if name == "tiny" or name.startswith("tiny:"):
        from diffusers_cogvideox.tiny import tiny_components

        parts = tiny_components(name.split(":", 1)[1] if ":" in name else "2b")
    else:
        from diffusers import DiffusionPipeline

        import diffusers_cogvideox

        index = DiffusionPipeline.load_config(name, revision=model_args.revision)
        cls_name = "CogVideoXImageToVideoPipeline" if "ImageToVideo" in index["_class_name"] else "CogVideoXPipeline"
        pipe = getattr(diffusers_cogvideox, cls_name).from_pretrained(name, revision=model_args.revision)
        parts = dict(pipe.components)
    parts["transformer"].to(dtype)
    return parts


def _clip_records(folder: str):
    from diffusers_cogvideox.training.precompute import read_clip_folder

    if not Path(folder).is_dir():
        raise UsageError(f"--dataset_name {folder}: not a folder (a clip folder with metadata.jsonl or prompts.txt)")
    return read_clip_folder(folder)


def build_datasets(script_args: SFTScriptArguments, training_args, parts: dict[str, Any]):
    """Encode every stage's clips (and the held-out ones) into the cache; returns (train, eval, rejects)."""
    from diffusers_cogvideox.training.data import CachedLatentDataset, ClipFrameDataset
    from diffusers_cogvideox.training.precompute import (
        module_identity,
        open_cache,
        precompute_stage,
        t5_prompt_encoder,
        write_rejects,
    )

    records = {None: _clip_records(script_args.dataset_name)}
    for stage in training_args.stage_list:  # every input is read and checked before the first write
        if stage.dataset and stage.dataset not in records:
            records[stage.dataset] = _clip_records(stage.dataset)
    eval_records = _clip_records(script_args.eval_dataset_name) if script_args.eval_dataset_name else None

    vae, transformer = parts["vae"], parts["transformer"]
    max_len = script_args.max_text_length or transformer.config.max_text_seq_length
    encode = t5_prompt_encoder(parts["text_encoder"], parts["tokenizer"], max_len)
    ids = (module_identity(vae), module_identity(parts["text_encoder"]))
    i2v = transformer.config.in_channels == 2 * transformer.config.out_channels
    cache_dir = Path(script_args.cache_dir or os.path.join(training_args.output_dir, "latent_cache"))
    rows, rejects = [], []
    encode_now = training_args.precompute  # False: only buckets and rejects here, the trainer encodes per batch
    with training_args.main_process_first(desc="encoding clips"):
        root = open_cache(cache_dir, *ids, training_args.encode_mode) if encode_now else Path(training_args.output_dir)
        common = dict(
            cache_dir=root,
            vae=vae,
            encode_prompt=encode,
            ids=ids,
            image_to_video=i2v,
            whole_clip=training_args.encode_mode == "whole_clip",
            max_aspect_change=training_args.max_aspect_change,
            encode=encode_now,
        )
        for index, stage in enumerate(training_args.stage_list):
            done = precompute_stage(
                records[stage.dataset], stage.bucket_list, min_scores=stage.min_scores, stage_name=stage.name, **common
            )
            rows += [{**item, "stage": index} for item in done.items]
            rejects += done.rejects
        eval_rows = None
        if eval_records is not None:
            last = training_args.stage_list[-1]
            done = precompute_stage(eval_records, last.bucket_list, stage_name="eval", **common)
            eval_rows, rejects = done.items, rejects + done.rejects
        if training_args.process_index == 0:
            write_rejects(root, rejects)
    dataset = CachedLatentDataset if encode_now else ClipFrameDataset
    return dataset(rows), (dataset(eval_rows) if eval_rows else None), rejects


def make_parser():
    from trl import TrlParser

    from diffusers_cogvideox.training.config import CogVideoXSFTConfig

    return TrlParser((SFTScriptArguments, SFTModelArguments, CogVideoXSFTConfig))


def run(script_args: SFTScriptArguments, model_args: SFTModelArguments, training_args):
    """Encode, train through every stage, save the LoRA (or full weights) with its card; push if asked."""
    from diffusers_cogvideox.training.trainer import CogVideoXSFTTrainer

    if not script_args.dataset_name:
        raise UsageError("--dataset_name is required (a clip folder with metadata.jsonl, or prompts.txt + videos.txt)")
    parts = load_pipeline_components(model_args)
    train, evals, rejects = build_datasets(script_args, training_args, parts)
    validation = None
    i2v = parts["transformer"].config.in_channels == 2 * parts["transformer"].config.out_channels
    image_vae = parts["vae"] if i2v and training_args.image_condition == "noised" else None  # encodes every step
    encoders = None
    if not training_args.precompute:  # resident: every batch is encoded on the fly
        max_len = script_args.max_text_length
        encoders = {**{k: parts[k] for k in ("vae", "text_encoder", "tokenizer")}, "max_text_length": max_len}
        image_vae = image_vae if image_vae is not None else (parts["vae"] if i2v else None)
    if training_args.validation_prompts:
        validation = {k: parts[k] for k in ("vae", "text_encoder", "tokenizer", "scheduler")}
        for key in ("vae", "text_encoder"):
            if encoders is None:
                parts[key].to("cpu")  # offloaded between validation renders
    elif encoders is None:
        parts.pop("vae"), parts.pop("text_encoder")
    trainer = CogVideoXSFTTrainer(
        model=parts["transformer"],
        args=training_args,
        train_dataset=train,
        eval_dataset=evals,
        noise_scheduler=parts["scheduler"],
        validation_components=validation,
        model_name=None if model_args.model_name_or_path.startswith("tiny") else model_args.model_name_or_path,
        dataset_name=script_args.dataset_name,
        vae=image_vae,
        encoders=encoders,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(training_args.output_dir)
    if evals is not None:
        metrics = trainer.evaluate()
        if trainer.is_world_process_zero():
            Path(training_args.output_dir, "eval_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


def run_argv(argv: list[str]) -> int:
    """Parse ``argv`` (flags and/or ``--config``) and run; errors propagate to the caller's error policy."""
    script_args, model_args, training_args = make_parser().parse_args_and_config(args=argv)
    run(script_args, model_args, training_args)
    return 0


def main(argv: list[str] | None = None) -> int:
    from diffusers_cogvideox._cli import run_cli

    return run_cli("cogvideox train", run_argv, argv)


if __name__ == "__main__":
    raise SystemExit(main())
