"""Diffusion-DPO math: targets per prediction type, the loss, its metrics, timestep sampling, the CogVideoX schedule."""

import math

import pytest
import torch

from trl_vision_reward.mpo.losses import (
    LOG2,
    add_noise,
    alpha_sigma,
    cogvideox_alphas_cumprod,
    diffusion_dpo_loss,
    diffusion_dpo_metrics,
    explicit_uniform_interval,
    flow_noisy,
    flow_target,
    noisy_and_target,
    per_sample_mse,
    reward_accuracy,
    sample_timesteps_explicit_uniform,
    sample_timesteps_uniform,
    v_target,
)

X0 = torch.tensor([[1.0, 2.0]])
EPS = torch.tensor([[0.5, -1.0]])
T = torch.tensor([3])
ABAR = torch.tensor([1.0, 0.9, 0.8, 0.64, 0.1])  # alpha_3 = 0.8, sigma_3 = 0.6


def test_alpha_sigma_reads_the_timestep():
    alpha, sigma = alpha_sigma(ABAR, T)
    assert torch.allclose(alpha, torch.tensor([0.8])) and torch.allclose(sigma, torch.tensor([0.6]))


@pytest.mark.parametrize(
    "prediction_type, noisy, target",
    [
        # x_t = 0.8 x0 + 0.6 eps = [1.1, 1.0]; target eps
        ("epsilon", [1.1, 1.0], [0.5, -1.0]),
        # v = 0.8 eps - 0.6 x0 = [0.4 - 0.6, -0.8 - 1.2]
        ("v_prediction", [1.1, 1.0], [-0.2, -2.0]),
    ],
)
def test_hand_computed_targets(prediction_type, noisy, target):
    x_t, tgt = noisy_and_target(prediction_type, X0, EPS, T, ABAR)
    assert torch.allclose(x_t, torch.tensor([noisy]), atol=1e-6)
    assert torch.allclose(tgt, torch.tensor([target]), atol=1e-6)


def test_hand_computed_flow_matching_target():
    # s = 250 / 1000: x_s = 0.75 x0 + 0.25 eps = [0.875, 1.25]; u = eps - x0 = [-0.5, -3]
    x_t, tgt = noisy_and_target("flow_matching", X0, EPS, torch.tensor([250]), num_train_timesteps=1000)
    assert torch.allclose(x_t, torch.tensor([[0.875, 1.25]]))
    assert torch.allclose(tgt, torch.tensor([[-0.5, -3.0]]))
    assert torch.equal(flow_target(X0, EPS), tgt) and torch.allclose(flow_noisy(X0, EPS, torch.tensor([0.25])), x_t)


def test_unknown_prediction_type_names_the_choices():
    with pytest.raises(ValueError, match="one of \\('epsilon', 'v_prediction', 'flow_matching'\\)"):
        noisy_and_target("sample", X0, EPS, T, ABAR)


def test_targets_match_diffusers_schedulers():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    x0, eps, t = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5), torch.tensor([0, 500, 999])
    x_t, v = noisy_and_target("v_prediction", x0, eps, t, sched.alphas_cumprod)
    assert torch.allclose(x_t, sched.add_noise(x0, eps, t), atol=1e-5)
    assert torch.allclose(v, sched.get_velocity(x0, eps, t), atol=1e-5)


def test_cogvideox_schedule_matches_its_scheduler():
    from diffusers import CogVideoXDDIMScheduler  # reference only

    for shift in (3.0, 1.0):
        ref = CogVideoXDDIMScheduler(snr_shift_scale=shift, rescale_betas_zero_snr=True).alphas_cumprod
        ours = cogvideox_alphas_cumprod(snr_shift_scale=shift)
        assert torch.allclose(ours, ref.float(), atol=1e-6)
    assert cogvideox_alphas_cumprod()[-1] == 0  # zero terminal SNR: at t = T-1, x_t is pure noise and v = -x0


def test_v_mse_equals_cogvideox_weighted_x0_loss():
    # CogVideoX trainers: x0_hat = alpha x_t - sigma v_hat, loss = (x0_hat - x0)^2 / (1 - abar); identical to v-MSE.
    abar = cogvideox_alphas_cumprod()
    x0, eps, v_hat = torch.randn(4, 2, 3, 4, 4), torch.randn(4, 2, 3, 4, 4), torch.randn(4, 2, 3, 4, 4)
    t = torch.tensor([10, 300, 700, 990])
    alpha, sigma = alpha_sigma(abar, t)
    x_t = add_noise(x0, eps, alpha, sigma)
    x0_hat = alpha.view(-1, 1, 1, 1, 1) * x_t - sigma.view(-1, 1, 1, 1, 1) * v_hat
    weighted = ((x0_hat - x0) ** 2).flatten(1).mean(1) / (1 - abar[t])
    assert torch.allclose(per_sample_mse(v_hat, v_target(x0, eps, alpha, sigma)), weighted, rtol=1e-4)


def test_per_sample_mse_averages_all_but_the_batch():
    pred = torch.zeros(2, 3, 2)
    target = torch.stack([torch.ones(3, 2), 2 * torch.ones(3, 2)])
    assert torch.equal(per_sample_mse(pred, target), torch.tensor([1.0, 4.0]))


def test_hand_computed_dpo_loss_and_rewards():
    # logits = -beta/2 ((0.1 - 0.2) - (0.3 - 0.2)) = -5 * -0.2 = 1
    out = diffusion_dpo_loss(
        torch.tensor([0.1]), torch.tensor([0.3]), torch.tensor([0.2]), torch.tensor([0.2]), beta=10.0
    )
    assert out.loss.item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    assert out.chosen_rewards.item() == pytest.approx(0.5) and out.rejected_rewards.item() == pytest.approx(-0.5)
    assert out.margins.item() == pytest.approx(1.0)


def test_policy_equal_to_reference_gives_log2_and_zero_margin():
    err_w, err_l = torch.rand(8), torch.rand(8)
    out = diffusion_dpo_loss(err_w, err_l, err_w.clone(), err_l.clone(), beta=5000.0)
    assert torch.allclose(out.losses, torch.full((8,), LOG2))
    assert torch.equal(out.margins, torch.zeros(8))
    metrics = diffusion_dpo_metrics(out, err_w, err_l, err_w, err_l)
    assert torch.equal(metrics["rewards/accuracies"], torch.full((8,), 0.5))  # ties count as chance
    assert torch.equal(metrics["mse/model"], metrics["mse/ref"])


def test_loss_gradient_lowers_the_chosen_error_and_raises_the_rejected():
    err_w, err_l = torch.tensor([0.5], requires_grad=True), torch.tensor([0.5], requires_grad=True)
    diffusion_dpo_loss(err_w, err_l, torch.tensor([0.5]), torch.tensor([0.5]), beta=2.0).loss.backward()
    assert err_w.grad.item() > 0 > err_l.grad.item()  # gradient descent: L_w goes down, L_l goes up


def test_reference_errors_are_constants():
    ref = torch.tensor([0.3], requires_grad=True)
    out = diffusion_dpo_loss(
        torch.tensor([0.1], requires_grad=True), torch.tensor([0.2]), ref, torch.tensor([0.2]), beta=1.0
    )
    out.loss.backward()
    assert ref.grad is None


def test_metric_names_and_signs():
    out = diffusion_dpo_loss(
        torch.tensor([0.1, 0.4]), torch.tensor([0.3, 0.2]), torch.tensor([0.2, 0.2]), torch.tensor([0.2, 0.2]), 10.0
    )
    m = diffusion_dpo_metrics(
        out, torch.tensor([0.1, 0.4]), torch.tensor([0.3, 0.2]), torch.tensor([0.2, 0.2]), torch.tensor([0.2, 0.2])
    )
    assert set(m) == {
        "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
        "mse/model_chosen", "mse/model_rejected", "mse/ref_chosen", "mse/ref_rejected", "mse/model", "mse/ref",
    }  # fmt: skip
    assert torch.equal(m["rewards/accuracies"], torch.tensor([1.0, 0.0]))
    assert torch.allclose(m["rewards/margins"], m["rewards/chosen"] - m["rewards/rejected"])
    assert torch.equal(
        reward_accuracy(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])), torch.tensor([1.0, 0.5, 0.0])
    )


def test_uniform_timesteps_cover_the_range():
    t = sample_timesteps_uniform(20000, 1000, generator=torch.Generator().manual_seed(0))
    assert t.min() == 0 and t.max() == 999


def test_explicit_uniform_gives_each_rank_its_own_interval():
    intervals = [explicit_uniform_interval(1000, r, 3) for r in range(3)]
    assert intervals == [(0, 333), (333, 666), (666, 1000)]
    for rank, (lo, hi) in enumerate(intervals):
        t = sample_timesteps_explicit_uniform(5000, 1000, rank, 3, generator=torch.Generator().manual_seed(rank))
        assert t.min() == lo and t.max() == hi - 1
    single = sample_timesteps_explicit_uniform(20000, 1000, 0, 1, generator=torch.Generator().manual_seed(0))
    assert single.min() == 0 and single.max() == 999
    with pytest.raises(ValueError, match="rank must be in \\[0, world_size=2\\)"):
        explicit_uniform_interval(1000, 2, 2)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_the_default_schedules_are_diffusers_schedulers(shift):
    """MPO without a checkpoint scheduler trains on diffusers' own schedules (CogVideoX's, SD's scaled-linear)."""
    from diffusers import DDPMScheduler

    from trl_vision_reward.mpo.trainer import default_alphas_cumprod

    assert torch.allclose(
        default_alphas_cumprod("cogvideox", 1000, shift), cogvideox_alphas_cumprod(snr_shift_scale=shift)
    )
    sd = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod
    assert torch.allclose(default_alphas_cumprod("unet", 1000, shift), sd)
