"""Run by ``test_sft_distributed.py`` under ``accelerate launch``: two stages of SFT; each rank writes what it holds."""

import json
import sys

import torch

from diffusers_cogvideox.tiny import tiny_components
from diffusers_cogvideox.training import CachedLatentDataset, CogVideoXSFTConfig, CogVideoXSFTTrainer

STAGES = [
    {"name": "low", "buckets": ["9x32x32", "9x32x48"], "max_steps": 3, "learning_rate": 1e-2},
    {"name": "high", "buckets": ["9x32x32", "9x32x48"], "max_steps": 3, "learning_rate": 5e-3},
]


def main(out_dir: str, use_peft: bool) -> None:
    with open(f"{out_dir}/rows.json") as f:
        rows = json.load(f)
    parts = tiny_components("2b")
    model = parts["transformer"]
    args = CogVideoXSFTConfig(
        output_dir=f"{out_dir}/run", stages=STAGES, per_device_train_batch_size=1, lora_r=4, lora_alpha=4,
        use_peft=use_peft, report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = CogVideoXSFTTrainer(model, args, CachedLatentDataset(rows), noise_scheduler=parts["scheduler"])
    seen = {"timesteps": [], "shapes": []}

    def record(module, args_, kwargs):
        if module.training:
            seen["timesteps"].extend(kwargs["timestep"].tolist())
            seen["shapes"].append(tuple(kwargs["hidden_states"].shape))

    model.register_forward_pre_hook(record, with_kwargs=True)
    trainer.train()
    rank = trainer.accelerator.process_index
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    params = {k: v.detach().clone() for k, v in unwrapped.named_parameters() if v.requires_grad}
    history = trainer.state.log_history
    torch.save(
        {
            "params": params,
            **seen,
            "losses": [h["loss"] for h in history if "loss" in h],
            "stages": [h["stage"] for h in history if "stage" in h],
            "world": trainer.accelerator.num_processes,
        },
        f"{out_dir}/rank{rank}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "lora")
