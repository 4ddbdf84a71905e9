"""Diffusion training math as short pure functions: noise schedules, noising, regression targets, timestep samplers.

Shared by every trainer of the project (SFT here, Diffusion-DPO / MPO in ``trl_vision_reward.mpo``).

Notation (k-diffusion / VDM style): ``x0`` clean latents, ``eps`` Gaussian noise, ``t`` an integer timestep,
``alpha_t = sqrt(abar_t)`` and ``sigma_t = sqrt(1 - abar_t)`` from the scheduler's ``alphas_cumprod`` (``abar``).

Targets per prediction type:

* ``"epsilon"`` (SD 1.5 / SDXL): ``x_t = alpha_t x0 + sigma_t eps``, target ``eps``.
* ``"v_prediction"`` (CogVideoX, zero-terminal-SNR schedule): same ``x_t``, target ``v = alpha_t eps - sigma_t x0``.
  CogVideoX's own trainers (SAT ``loss.py`` "v-pred" weighting, ``finetune/`` ``compute_loss``) regress
  ``x0_hat = alpha_t x_t - sigma_t v_hat`` on ``x0`` with weight ``1/(1 - abar_t)``; since
  ``x0_hat - x0 = -sigma_t (v_hat - v)``, that weighted loss *equals* the plain v-MSE used here.
* ``"flow_matching"`` (rectified flow, SD3 / Flow-DPO): ``x_t = (1 - s) x0 + s eps`` with ``s = t / T``, target
  ``u = eps - x0``.
"""

from __future__ import annotations

from typing import Literal

import torch

PredictionType = Literal["epsilon", "v_prediction", "flow_matching"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "flow_matching")


def _bcast(coeff: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """A per-sample coefficient ``[B]`` shaped to broadcast over ``like`` ``[B, ...]``."""
    coeff = torch.as_tensor(coeff, device=like.device, dtype=like.dtype)
    return coeff.reshape(coeff.shape + (1,) * (like.ndim - coeff.ndim)) if coeff.ndim else coeff


# ---------------------------------------------------------------------------------------------------------------------
# Noise schedules


def alpha_sigma(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)`` for integer ``timesteps`` (float32)."""
    abar = alphas_cumprod.to(device=timesteps.device, dtype=torch.float32)[timesteps.long()]
    return abar.sqrt(), (1.0 - abar).sqrt()


def cogvideox_alphas_cumprod(
    num_train_timesteps: int = 1000,
    beta_start: float = 0.00085,
    beta_end: float = 0.012,
    snr_shift_scale: float = 3.0,
    rescale_zero_terminal_snr: bool = True,
) -> torch.Tensor:
    """CogVideoX's schedule (``CogVideoXDDIMScheduler``): scaled-linear betas, SNR shift, zero terminal SNR.

    ``snr_shift_scale`` is 3.0 for CogVideoX-2B and 1.0 for the 5B models. Use the checkpoint's own scheduler when
    you have it; this exists so that training needs no scheduler object.
    """
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    abar = torch.cumprod(1.0 - betas, dim=0)
    abar = abar / (snr_shift_scale + (1 - snr_shift_scale) * abar)  # SNR / s
    if (
        rescale_zero_terminal_snr
    ):  # sqrt(abar) <- (sqrt(abar) - sqrt(abar_T)) * sqrt(abar_0) / (sqrt(abar_0) - sqrt(abar_T))
        s = abar.sqrt()
        s0, sT = s[0].clone(), s[-1].clone()
        abar = ((s - sT) * s0 / (s0 - sT)) ** 2
    return abar.float()


# ---------------------------------------------------------------------------------------------------------------------
# Noising and targets


def add_noise(x0: torch.Tensor, noise: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    # x_t = alpha_t * x0 + sigma_t * eps
    return _bcast(alpha_t, x0) * x0 + _bcast(sigma_t, x0) * noise


def epsilon_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    # target = eps
    return noise


def v_target(x0: torch.Tensor, noise: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    # v = alpha_t * eps - sigma_t * x0
    return _bcast(alpha_t, x0) * noise - _bcast(sigma_t, x0) * x0


def flow_noisy(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    # x_s = (1 - s) * x0 + s * eps
    s = _bcast(sigma, x0)
    return (1 - s) * x0 + s * noise


def flow_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    # u = d x_s / d s = eps - x0
    return noise - x0


def noisy_and_target(
    prediction_type: str,
    x0: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    alphas_cumprod: torch.Tensor | None = None,
    num_train_timesteps: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_t, target)`` for one prediction type; computed in float32, returned in ``x0``'s dtype."""
    x0f, nf = x0.float(), noise.float()
    if prediction_type == "flow_matching":
        sigma = timesteps.float() / num_train_timesteps  # s = t / T
        x_t, target = flow_noisy(x0f, nf, sigma), flow_target(x0f, nf)
    elif prediction_type in ("epsilon", "v_prediction"):
        if alphas_cumprod is None:
            raise ValueError(f"prediction_type={prediction_type!r} needs the scheduler's alphas_cumprod")
        alpha_t, sigma_t = alpha_sigma(alphas_cumprod, timesteps)
        x_t = add_noise(x0f, nf, alpha_t, sigma_t)
        target = epsilon_target(x0f, nf) if prediction_type == "epsilon" else v_target(x0f, nf, alpha_t, sigma_t)
    else:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}")
    return x_t.to(x0.dtype), target.to(x0.dtype)


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # L = mean_{all but batch} (pred - target)^2   (float32)
    return (pred.float() - target.float()).pow(2).flatten(1).mean(dim=1)


# ---------------------------------------------------------------------------------------------------------------------
# Timestep sampling


def sample_timesteps_uniform(
    batch_size: int, num_train_timesteps: int = 1000, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    # t ~ U{0, ..., T-1}
    return torch.randint(0, num_train_timesteps, (batch_size,), generator=generator, device=device)


def explicit_uniform_interval(num_train_timesteps: int, rank: int, world_size: int) -> tuple[int, int]:
    """The half-open timestep interval ``[lo, hi)`` of ``rank`` under CogVideoX's explicit uniform sampling."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}); got {rank}")
    if world_size > num_train_timesteps:
        raise ValueError(
            f"explicit uniform sampling needs world_size <= num_train_timesteps; got {world_size} > {num_train_timesteps}"
        )
    lo = rank * num_train_timesteps // world_size
    hi = (rank + 1) * num_train_timesteps // world_size
    return lo, hi


def sample_timesteps_explicit_uniform(
    batch_size: int,
    num_train_timesteps: int = 1000,
    rank: int = 0,
    world_size: int = 1,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """CogVideoX's "explicit uniform sampling" (arXiv 2408.06072, sec. 3.3).

    ``[0, T)`` is split into ``world_size`` equal intervals and each data-parallel rank samples uniformly inside its
    own one, so every optimizer step covers the whole range; the paper reports a smoother loss curve and faster
    convergence. With one process it is plain uniform sampling.
    """
    lo, hi = explicit_uniform_interval(num_train_timesteps, rank, world_size)
    return torch.randint(lo, hi, (batch_size,), generator=generator, device=device)  # t ~ U{lo_r, ..., hi_r - 1}
