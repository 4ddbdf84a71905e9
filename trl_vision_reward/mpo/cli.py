"""``mpo-train`` / ``python -m trl_vision_reward.mpo``: MPO (Diffusion-DPO on dominating pairs) from the command line.

Flags or a YAML file (``--config mpo.yaml``; flags override it), TRL's ``TrlParser`` style::

    accelerate launch --config_file examples/accelerate/multi_gpu.yaml -m trl_vision_reward.mpo --config examples/mpo.yaml
    mpo-train --model_name_or_path THUDM/CogVideoX-2b --dataset_name pairs/ --output_dir cogvideox-2b-mpo --beta 500

``--dataset_name`` is what ``vr-datasets pairs`` wrote (the folder, its ``data/`` or a Parquet file in it), a pair
folder (``pairs.jsonl``), a ``save_to_disk`` folder, or a Hub dataset id; columns as in
:mod:`trl_vision_reward.mpo.data`. Media pairs are encoded once with the checkpoint's VAE and text encoder into
``--latent_cache_dir`` (embedded media, else paths resolved from the dataset's folder), with the model's own text
length. ``--model_name_or_path tiny`` (the default) trains the tiny world shipped with the package (a tiny CogVideoX
trained on procedural clips; :func:`diffusers_cogvideox.tiny.tiny_world_folder`), so the LoRA it writes loads into
``cogvideox generate --lora``; ``random`` trains the random tiny CogVideoX instead (a smoke test: its output is noise).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import MPOConfig

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class MPOScriptArguments:
    """Where the pairs come from."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Pairs: a pair folder (pairs.jsonl), a save_to_disk folder, a Parquet/JSON(L) file or folder, "
            "or a Hub dataset id."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration name (Hub datasets)."})
    dataset_train_split: str = field(default="train", metadata={"help": "Training split."})
    dataset_test_split: str | None = field(default=None, metadata={"help": "Evaluation split (optional)."})
    eval_dataset_name: str | None = field(
        default=None, metadata={"help": "Held-out pairs in any form dataset_name takes."}
    )
    latent_cache_dir: str | None = field(
        default=None, metadata={"help": "Where media pairs are encoded to (default: <output_dir>/latent_cache)."}
    )
    media_root: str | None = field(
        default=None,
        metadata={"help": "Folder that relative media paths resolve against (default: the dataset's own folder)."},
    )
    height: int | None = field(default=None, metadata={"help": "Resize media to this height before encoding."})
    width: int | None = field(default=None, metadata={"help": "Resize media to this width before encoding."})
    num_frames: int | None = field(default=None, metadata={"help": "Use the first N video frames (CogVideoX: 8k+1)."})
    max_text_length: int | None = field(
        default=None,
        metadata={"help": "Prompt token length for encoding (default: the model's own; CogVideoX 1.0: 226, 1.5: 224)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Replace what an earlier mpo-train run wrote to --output_dir (nothing else is deleted)."},
    )


@dataclass
class MPOModelArguments:
    """Which denoiser to train."""

    model_name_or_path: str = field(
        default="tiny",
        metadata={
            "help": "A diffusers pipeline folder or Hub id (its transformer/ or unet/ is trained), a denoiser folder, "
            "'tiny' (the tiny world shipped with the package, the default of `cogvideox generate`) or 'random' (the "
            "random tiny CogVideoX; output is noise)."
        },
    )
    subfolder: str | None = field(
        default=None, metadata={"help": "Denoiser subfolder (default: transformer, else unet)."}
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision."})
    torch_dtype: str = field(
        default="float32",
        metadata={
            "help": "dtype of the frozen base weights (LoRA weights always train in float32); bfloat16 halves "
            "the memory of LoRA training.",
            "choices": list(_DTYPES),
        },
    )


# ---------------------------------------------------------------------------------------------------------------------
# Loading


def _read_json(root: str, sub: str | None, name: str, revision: str | None) -> dict | None:
    path = Path(root, sub, name) if sub else Path(root, name)
    if Path(root).is_dir():
        return json.loads(path.read_text()) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return json.loads(Path(hf_hub_download(root, f"{sub}/{name}" if sub else name, revision=revision)).read_text())
    except EntryNotFoundError:
        return None


def _component_class(class_name: str):
    import diffusers
    import transformers

    import diffusers_cogvideox

    if class_name in diffusers_cogvideox._EXPORTS:  # our CogVideoX classes replace diffusers' ones
        return getattr(diffusers_cogvideox, class_name)
    for module in (diffusers, transformers):
        if hasattr(module, class_name):
            return getattr(module, class_name)
    raise ValueError(f"unknown component class {class_name!r}")


def load_components(model_args: MPOModelArguments, need_encoders: bool = False) -> dict[str, Any]:
    """The denoiser (and scheduler; VAE, text encoder and tokenizer when media must be encoded) of a checkpoint."""
    from diffusers_cogvideox.sampling import is_random, is_tiny

    dtype = _DTYPES[model_args.torch_dtype]
    if is_random(model_args.model_name_or_path):
        from diffusers_cogvideox.tiny import tiny_components

        parts = tiny_components("2b")
        parts["transformer"].to(dtype)
        return {"denoiser": parts.pop("transformer"), **parts}
    if is_tiny(model_args.model_name_or_path):  # the shipped tiny world: a pipeline folder like any other
        from diffusers_cogvideox.tiny import tiny_world_folder

        root, rev, sub = str(tiny_world_folder()), None, None
    else:
        root, rev, sub = model_args.model_name_or_path, model_args.revision, model_args.subfolder
    if sub is None:
        index = _read_json(root, None, "model_index.json", rev)
        sub = next((s for s in ("transformer", "unet") if index and s in index), None)
    config = _read_json(root, sub, "config.json", rev)
    if config is None or "_class_name" not in config:
        raise FileNotFoundError(f"{root}{'/' + sub if sub else ''} has no diffusers config.json with a _class_name")
    if config["_class_name"] not in ("CogVideoXTransformer3DModel", "UNet2DConditionModel"):
        raise ValueError(
            f"MPO trains CogVideoXTransformer3DModel or UNet2DConditionModel denoisers; {root} has {config['_class_name']}"
        )
    cls = _component_class(config["_class_name"])
    out: dict[str, Any] = {"denoiser": cls.from_pretrained(root, subfolder=sub, revision=rev, torch_dtype=dtype)}
    sched = _read_json(root, "scheduler", "scheduler_config.json", rev) if sub else None
    if sched:
        out["scheduler"] = _component_class(sched["_class_name"]).from_config(sched)
    if need_encoders:
        if not sub:
            raise ValueError("encoding media pairs needs a pipeline folder with vae/, text_encoder/ and tokenizer/")
        from transformers import AutoTokenizer

        vae_config = _read_json(root, "vae", "config.json", rev)
        out["vae"] = (
            _component_class(vae_config["_class_name"]).from_pretrained(root, subfolder="vae", revision=rev).eval()
        )
        te_config = _read_json(root, "text_encoder", "config.json", rev)
        te_cls = _component_class(te_config["architectures"][0])
        out["text_encoder"] = te_cls.from_pretrained(root, subfolder="text_encoder", revision=rev).eval()
        out["tokenizer"] = AutoTokenizer.from_pretrained(root, subfolder="tokenizer", revision=rev)
    return out


TINY_WORLD_NAME = "tiny world"
RANDOM_TINY_NAME = "random tiny CogVideoX"


def base_model_name(model: str | None) -> str | None:
    """The base model as the card names it (:mod:`hub_cards.model_cards` tells the tiny world from the random tiny
    model by these names): the embedded ones by what they are, never a folder of this machine."""
    from diffusers_cogvideox.sampling import is_random, is_tiny

    if is_random(model):
        return RANDOM_TINY_NAME
    return TINY_WORLD_NAME if is_tiny(model) else model


def load_pairs(name: str, config: str | None = None, split: str = "train") -> tuple[Any, Path | None]:
    """A pairs dataset and the folder its media paths resolve from: a pair folder (``pairs.jsonl``), a folder that
    ``vr-datasets pairs`` wrote (or its ``data/``, or one of its Parquet files), a save_to_disk folder, or the Hub."""
    from ..records import load_records
    from .data import PAIRS_FILE, PairFolder

    path = Path(name)
    if (path / PAIRS_FILE).is_file():
        return PairFolder(path), path
    return load_records(name, split=split, config=config, what=f"pairs (no {PAIRS_FILE} or data/*.parquet)")


def text_length(script_args: MPOScriptArguments, denoiser: Any) -> int | None:
    """``--max_text_length``, else the denoiser's own (CogVideoX: ``max_text_seq_length``, 226 for 1.0 and 224 for
    1.5), else None: the tokenizer's, when it sets a real limit (CLIP: 77)."""
    if script_args.max_text_length:
        return script_args.max_text_length
    own = getattr(getattr(denoiser, "config", None), "max_text_seq_length", None)
    return int(own) if own else None


def _maybe_encode(
    pairs: Any, script_args: MPOScriptArguments, parts: dict, cache_dir: str, root: Path | None = None
) -> Any:
    from .data import column_names, is_media_pairs, precompute_latent_pairs, text_prompt_encoder

    names = column_names(pairs) or []
    if not is_media_pairs(names):
        return pairs
    length = text_length(script_args, parts["denoiser"])
    encode_prompt = text_prompt_encoder(parts["text_encoder"], parts["tokenizer"], length)
    return precompute_latent_pairs(
        pairs,
        cache_dir,
        vae=parts["vae"],
        encode_prompt=encode_prompt,
        height=script_args.height,
        width=script_args.width,
        num_frames=script_args.num_frames,
        media_root=script_args.media_root or root,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Entry point


def make_parser():
    from trl import TrlParser

    return TrlParser((MPOScriptArguments, MPOModelArguments, MPOConfig), prog="mpo-train")


def run(script_args: MPOScriptArguments, model_args: MPOModelArguments, training_args: MPOConfig):
    """Build data, model and trainer; train; save (LoRA weights or the full denoiser, plus the card); push if asked."""
    from .data import column_names, is_media_pairs
    from .trainer import MPOTrainer

    if not script_args.dataset_name:
        raise ValueError("--dataset_name is required (a pair folder, a saved/Parquet/JSON dataset, or a Hub id)")
    train, train_root = load_pairs(
        script_args.dataset_name, script_args.dataset_config, script_args.dataset_train_split
    )
    evals, eval_root = None, None
    if script_args.eval_dataset_name:
        evals, eval_root = load_pairs(
            script_args.eval_dataset_name, script_args.dataset_config, script_args.dataset_train_split
        )
    elif script_args.dataset_test_split:
        evals, eval_root = load_pairs(
            script_args.dataset_name, script_args.dataset_config, script_args.dataset_test_split
        )
    need_encoders = any(d is not None and is_media_pairs(column_names(d) or []) for d in (train, evals))
    parts = load_components(model_args, need_encoders)
    folder = claim_output_dir(script_args, model_args, training_args)  # inputs read; nothing written yet
    with folder or contextlib.nullcontext():  # an earlier run's output is deleted once this one is saved
        if need_encoders:
            cache = script_args.latent_cache_dir or os.path.join(training_args.output_dir, "latent_cache")
            with training_args.main_process_first(desc="encoding media pairs"):
                train = _maybe_encode(train, script_args, parts, os.path.join(cache, "train"), train_root)
                if evals is not None:
                    evals = _maybe_encode(evals, script_args, parts, os.path.join(cache, "eval"), eval_root)
            for key in ("vae", "text_encoder"):  # no longer needed on the device
                parts.pop(key, None)

        trainer = MPOTrainer(
            model=parts["denoiser"],
            args=training_args,
            train_dataset=train,
            eval_dataset=evals,
            noise_scheduler=parts.get("scheduler"),
            model_name=base_model_name(model_args.model_name_or_path),
            dataset_name=script_args.dataset_name,
        )
        if folder is not None:
            trainer.add_callback(_RecordSaves(folder))
        trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        if trainer.is_fsdp_enabled:  # gather full weights for a loadable final save
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(training_args.output_dir)
        if folder is not None:
            folder.record_new()
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


TRAINER_WRITES = ("checkpoint-*", "README.md", "training_args.bin", "*.safetensors", "config.json", "latent_cache")
"""Top-level names the Trainer writes or rotates away in --output_dir: a foreign one is refused, not replaced."""


def claim_output_dir(script_args: MPOScriptArguments, model_args: MPOModelArguments, training_args: MPOConfig):
    """Claim ``--output_dir`` on the main process (the policy of ``diffusers_cogvideox.outputs``): a folder with the
    user's own files is refused; an earlier run's output is resumed (``--resume_from_checkpoint``) or replaced
    (``--overwrite_output_dir``), deleting only what that run wrote."""
    from diffusers_cogvideox.outputs import OutputFolder

    if not training_args.should_save:
        return None
    return OutputFolder.claim(
        training_args.output_dir,
        "mpo-train",
        inputs=[script_args.dataset_name, script_args.eval_dataset_name, model_args.model_name_or_path],
        overwrite=script_args.overwrite_output_dir,
        resume=bool(training_args.resume_from_checkpoint),
        reserved=TRAINER_WRITES,
        flag="--output_dir",
    )


class _RecordSaves:
    """Trainer callback: every checkpoint the Trainer writes is recorded in the output folder's manifest."""

    def __init__(self, folder):
        self.folder = folder

    def __getattr__(self, name: str):  # the other TrainerCallback events: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_save(self, args, state, control, **kwargs):
        self.folder.record_new()


def main(argv: list[str] | None = None) -> int:
    from diffusers_cogvideox._cli import run_cli

    def train(argv: list[str]) -> int:
        script_args, model_args, training_args = make_parser().parse_args_and_config(args=argv)
        run(script_args, model_args, training_args)
        return 0

    return run_cli("mpo-train", train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
