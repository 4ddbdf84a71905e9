"""Diffusion-DPO math as short pure functions: the DPO loss and its metrics (noising, targets and timestep samplers
are the shared ones of :mod:`diffusers_cogvideox.training.diffusion`, re-exported here).

Notation (k-diffusion / VDM style): ``x0`` clean latents, ``eps`` Gaussian noise, ``t`` an integer timestep,
``alpha_t = sqrt(abar_t)`` and ``sigma_t = sqrt(1 - abar_t)`` from the scheduler's ``alphas_cumprod`` (``abar``).

Targets per prediction type (chosen and rejected must share ``eps`` and ``t``, and policy and reference must use the
same form):

* ``"epsilon"`` (SD 1.5 / SDXL): ``x_t = alpha_t x0 + sigma_t eps``, target ``eps``.
* ``"v_prediction"`` (CogVideoX, zero-terminal-SNR schedule): same ``x_t``, target ``v = alpha_t eps - sigma_t x0``.
  CogVideoX's own trainers regress ``x0_hat = alpha_t x_t - sigma_t v_hat`` on ``x0`` with weight ``1/(1 - abar_t)``;
  since ``x0_hat - x0 = -sigma_t (v_hat - v)``, that weighted loss *equals* the plain v-MSE used here.
* ``"flow_matching"`` (rectified flow, SD3 / Flow-DPO): ``x_t = (1 - s) x0 + s eps`` with ``s = t / T``, target
  ``u = eps - x0``.

The loss (Wallace et al., arXiv 2311.12908; official code ``SalesforceAIResearch/DiffusionDPO`` ``train.py``)::

    L(theta) = -log sigmoid( -beta/2 * ( (L_w - Lref_w) - (L_l - Lref_l) ) )

with ``L_w`` the per-sample MSE of the policy on the chosen (winner) sample, ``Lref_*`` the reference's. **beta
convention:** ``beta`` is the official code's ``beta_dpo`` (the ``-0.5 * beta`` form): Diffusion-DPO uses 5000 for
SD 1.5 / SDXL, VisionReward's MPO 500 for CogVideoX-2B and 5000 for SDXL. diffusers' SD 1.5 research script drops
the 1/2 (its default 2500 equals 5000 here); Flow-DPO uses the 1/2 form with beta 100. Values do not transfer between
prediction types (target magnitudes differ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from diffusers_cogvideox.training.diffusion import (  # noqa: F401  (the shared diffusion math, re-exported)
    PREDICTION_TYPES,
    PredictionType,
    add_noise,
    alpha_sigma,
    cogvideox_alphas_cumprod,
    epsilon_target,
    explicit_uniform_interval,
    flow_noisy,
    flow_target,
    noisy_and_target,
    per_sample_mse,
    sample_timesteps_explicit_uniform,
    sample_timesteps_uniform,
    v_target,
)

LOG2 = math.log(2.0)  # the loss when the policy equals the reference


# ---------------------------------------------------------------------------------------------------------------------
# The loss


@dataclass
class DiffusionDPOOutput:
    """Per-pair values of :func:`diffusion_dpo_loss` (all ``[B]`` except ``loss``)."""

    loss: torch.Tensor  # mean over pairs
    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards


def diffusion_dpo_loss(
    model_err_w: torch.Tensor,
    model_err_l: torch.Tensor,
    ref_err_w: torch.Tensor,
    ref_err_l: torch.Tensor,
    beta: float,
) -> DiffusionDPOOutput:
    """Diffusion-DPO on per-sample denoising errors (``[B]`` each; reference errors are treated as constants).

    Implicit rewards (detached): ``r_w = -beta/2 (L_w - Lref_w)``, ``r_l = -beta/2 (L_l - Lref_l)``; a lower error
    than the reference is a positive reward. The loss is ``-log sigmoid(r_w - r_l)``; when the policy equals the
    reference it is ``log 2`` with zero margin.
    """
    logits = -0.5 * beta * ((model_err_w - ref_err_w.detach()) - (model_err_l - ref_err_l.detach()))
    losses = -F.logsigmoid(logits)  # -log sigmoid(-beta/2 * ((L_w - Lref_w) - (L_l - Lref_l)))
    chosen_rewards = (-0.5 * beta * (model_err_w - ref_err_w)).detach()
    rejected_rewards = (-0.5 * beta * (model_err_l - ref_err_l)).detach()
    return DiffusionDPOOutput(losses.mean(), losses, chosen_rewards, rejected_rewards)


def reward_accuracy(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Per pair: 1 if ``r_w > r_l``, 0 if below, 0.5 on an exact tie (so that chance is 0.5, e.g. at step 0)."""
    return (chosen_rewards > rejected_rewards).float() + 0.5 * (chosen_rewards == rejected_rewards).float()


def diffusion_dpo_metrics(
    output: DiffusionDPOOutput,
    model_err_w: torch.Tensor,
    model_err_l: torch.Tensor,
    ref_err_w: torch.Tensor,
    ref_err_l: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Per-pair metric values under TRL's names (the trainer gathers and averages them).

    ``rewards/*`` as in TRL's ``DPOTrainer`` (``margins = chosen - rejected``, ``accuracies`` by
    :func:`reward_accuracy`); ``mse/model_*`` and ``mse/ref_*`` are the denoising errors, ``mse/model`` and
    ``mse/ref`` their chosen/rejected average (the official script's ``raw_model_loss`` / ``raw_ref_loss``).
    """
    d = lambda x: x.detach().float()  # noqa: E731
    return {
        "rewards/chosen": d(output.chosen_rewards),
        "rewards/rejected": d(output.rejected_rewards),
        "rewards/margins": d(output.margins),
        "rewards/accuracies": reward_accuracy(output.chosen_rewards, output.rejected_rewards),
        "mse/model_chosen": d(model_err_w),
        "mse/model_rejected": d(model_err_l),
        "mse/ref_chosen": d(ref_err_w),
        "mse/ref_rejected": d(ref_err_l),
        "mse/model": 0.5 * (d(model_err_w) + d(model_err_l)),
        "mse/ref": 0.5 * (d(ref_err_w) + d(ref_err_l)),
    }
