"""Run by ``test_mpo_distributed.py`` under ``accelerate launch``: a few MPO steps; each rank writes what it holds."""

import sys

import torch

from diffusers_cogvideox.models.transformer_cogvideox import CogVideoXTransformer3DModel
from diffusers_cogvideox.tiny import TINY_TRANSFORMER_CONFIGS
from tests.fixtures import synthetic_mpo_pairs
from trl_vision_reward.mpo.config import MPOConfig
from trl_vision_reward.mpo.trainer import MPOTrainer


def main(out_dir: str, use_peft: bool) -> None:
    torch.manual_seed(0)
    model = CogVideoXTransformer3DModel(**TINY_TRANSFORMER_CONFIGS["2b"])
    args = MPOConfig(
        output_dir=f"{out_dir}/run", max_steps=3, per_device_train_batch_size=2, learning_rate=1e-3, lora_r=4, lora_alpha=4,
        use_peft=use_peft, timestep_sampling="explicit_uniform", report_to=[], use_cpu=True, save_strategy="no",
        logging_steps=1, disable_tqdm=True, seed=0,
    )  # fmt: skip
    trainer = MPOTrainer(model=model, args=args, train_dataset=synthetic_mpo_pairs(12))
    timesteps = []
    sample = trainer._sample_noise_and_timesteps

    def recording(latents, generator):
        noise, t = sample(latents, generator)
        timesteps.extend(t.tolist())
        return noise, t

    trainer._sample_noise_and_timesteps = recording
    trainer.train()
    rank = trainer.accelerator.process_index
    params = {
        k: v.detach().clone()
        for k, v in trainer.accelerator.unwrap_model(trainer.model).named_parameters()
        if v.requires_grad
    }
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    torch.save(
        {"params": params, "timesteps": timesteps, "losses": losses, "world": trainer.accelerator.num_processes},
        f"{out_dir}/rank{rank}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "lora")
