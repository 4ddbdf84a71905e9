"""Stage 2 (Algorithm 1): non-negative logistic regression on feature differences, question selection, write-back."""

import numpy as np
import pytest

from trl_vision_reward.reward.checklist import Checklist
from trl_vision_reward.reward.regression import (
    apply_weights,
    checklist_features,
    fit_checklist_weights,
    fit_nonnegative_logistic,
    logistic_loss,
    pair_differences,
    pairwise_accuracy,
    preference_targets,
    select_questions,
)


def _synthetic(w_true, n_samples=3000, n_pairs=12000, seed=0):
    """Checklist-like +1/-1 answers; pair preferences drawn from the logistic model with the true weights."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n_samples, len(w_true)))
    a, b = rng.integers(0, n_samples, n_pairs), rng.integers(0, n_samples, n_pairs)
    p_first = 1.0 / (1.0 + np.exp(-(x[a] - x[b]) @ w_true))
    labels = np.where(rng.random(n_pairs) < p_first, 1, -1)
    return x, a, b, labels


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(1)
    w_true = np.abs(rng.normal(size=16)) * 1.5
    w_true[[2, 7, 11]] = 0.0  # questions that carry no preference signal
    x, a, b, labels = _synthetic(w_true)
    diffs, targets = pair_differences(x, a, b, labels)
    return w_true, diffs, targets


def _cosine(u, v):
    return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))


def test_recovers_known_nonnegative_weights(synthetic):
    w_true, diffs, targets = synthetic
    fit = fit_nonnegative_logistic(diffs, targets, seed=0)
    assert fit.converged
    assert _cosine(fit.weights, w_true) >= 0.99
    assert fit.weights.min() >= 0.0
    # the data's achievable accuracy: the accuracy of the weights that generated it
    assert fit.accuracy >= pairwise_accuracy(diffs, targets, w_true) - 0.005
    assert fit.loss <= logistic_loss(diffs, targets, w_true) + 1e-9  # the fit is at least as likely as the truth


def test_sgd_epochs_also_recover_the_weights(synthetic):
    w_true, diffs, targets = synthetic
    fit = fit_nonnegative_logistic(diffs, targets, method="sgd", batch_size=512, max_epochs=150, seed=0)
    assert _cosine(fit.weights, w_true) >= 0.99
    assert fit.weights.min() >= 0.0


def test_fit_is_the_constrained_optimum(synthetic):
    """KKT conditions of min loss s.t. w >= 0: zero gradient where w > 0, non-negative gradient where w = 0."""
    _, diffs, targets = synthetic
    w = fit_nonnegative_logistic(diffs, targets).weights
    p = 1.0 / (1.0 + np.exp(-(diffs @ w)))
    grad = diffs.T @ (p - targets) / len(targets)
    assert np.all(np.abs(grad[w > 0]) < 1e-5)
    assert np.all(grad[w == 0] > -1e-5)


def test_negative_signal_is_clamped_to_zero_not_negative():
    # question 0 is anti-preferred: the unconstrained optimum gives it a negative weight
    w_gen = np.array([-1.0, 0.8, 0.5, 0.0])
    x, a, b, labels = _synthetic(w_gen, n_samples=1000, n_pairs=4000, seed=3)
    diffs, targets = pair_differences(x, a, b, labels)
    for method in ("gd", "sgd"):
        fit = fit_nonnegative_logistic(diffs, targets, method=method, max_epochs=300)
        assert fit.weights.min() >= 0.0
        assert fit.weights[0] == 0.0
        assert fit.weights[1] > fit.weights[2] > 0


def test_deterministic_under_a_seed(synthetic):
    _, diffs, targets = synthetic
    for method in ("gd", "sgd"):
        one = fit_nonnegative_logistic(diffs, targets, method=method, max_epochs=40, seed=7)
        two = fit_nonnegative_logistic(diffs, targets, method=method, max_epochs=40, seed=7)
        np.testing.assert_array_equal(one.weights, two.weights)
        assert one.loss_history == two.loss_history
    other = fit_nonnegative_logistic(diffs, targets, method="sgd", max_epochs=40, seed=8)
    assert not np.array_equal(other.weights, one.weights)


def test_ties_pull_towards_equal_scores():
    # a tie (target 0.5) on a difference that only one question explains keeps that weight small
    diffs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    fit = fit_nonnegative_logistic(diffs, np.array([0.5, 1.0, 1.0]), max_epochs=20000)
    assert fit.weights[0] == pytest.approx(0.0, abs=1e-3)
    assert fit.weights[1] > 1.0


def test_pair_inputs_are_validated():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"pair 1: second index 5 is not a sample \(0..2\)"):
        pair_differences(x, [0, 1], [1, 5])
    with pytest.raises(ValueError, match=r"pair 2: label 2.0 is not one of 1 \(first\), -1 \(second\), 0 \(tie\)"):
        preference_targets([1, -1, 2])
    assert preference_targets([1, -1, 0]).tolist() == [1.0, 0.0, 0.5]
    with pytest.raises(ValueError, match="need at least one preference pair"):
        fit_nonnegative_logistic(np.zeros((0, 2)))


def test_select_questions_drops_near_zero_weights():
    w = np.array([0.5, 0.0, 1e-7, 0.2])
    assert select_questions(w).tolist() == [0, 3]
    with pytest.raises(ValueError, match="non-negative"):
        select_questions(np.array([0.1, -0.1]))


# ------------------------------------------------------------------------------------------------------ checklists
def test_fitted_weights_write_back_into_the_image_checklist():
    checklist = Checklist.load("image", select=True)
    weights = checklist.weights.numpy().copy()
    hands = next(q.index for q in checklist.questions if q.text == "Are the human hands perfect?")
    weights[hands] = 0.0  # the only question that the hands mask gates
    new = apply_weights(checklist, weights)
    texts = new.texts
    assert "Are the human hands perfect?" not in texts
    assert "Are there human hands in the image?" not in texts  # a mask with nothing left to gate goes too
    assert "Is there a human body in the image?" in texts  # still gates body and harmfulness questions
    assert len(new) == len(checklist) - 2
    for q in new.questions:  # masked_by was re-indexed onto the same mask question
        if q.masked_by is not None:
            old = next(o for o in checklist.questions if o.text == q.text)
            assert new.questions[q.masked_by].text == checklist.questions[old.masked_by].text
    kept = [i for i, q in enumerate(checklist.questions) if q.text in set(texts)]
    np.testing.assert_allclose(new.weights.numpy(), weights[kept])


def test_write_back_keeps_every_question_when_asked_and_updates_the_video_mean():
    video = Checklist.load("video", select=True)
    weights = video.weights.numpy().copy()
    weights[:4] = 0.0
    assert len(apply_weights(video, weights, drop_below=None)) == 29
    new = apply_weights(video, weights)
    assert len(new) == 25 and new.divisor == 25.0  # the video score is a mean over the kept questions


def test_write_back_into_a_config_and_a_dict():
    from trl_vision_reward.reward.configuration_vision_reward import VisionRewardConfig

    checklist = Checklist.load("video", select=True)
    weights = np.linspace(0.0, 1.0, len(checklist))
    config = apply_weights(VisionRewardConfig(checklist=checklist.to_dict()), weights)
    assert isinstance(config, VisionRewardConfig)
    assert len(config.get_checklist()) == len(checklist) - 1
    as_dict = apply_weights(checklist.to_dict(), weights)
    assert as_dict["questions"] == config.checklist["questions"]
    with pytest.raises(ValueError, match=r"29 questions but weights of shape \(3,\)"):
        apply_weights(checklist, np.ones(3))
    image = Checklist.load("image", select=True)
    bad = np.ones(len(image))
    with pytest.raises(
        ValueError, match=r"mask question 1 \('Is there a human body in the image\?'\) must get weight 0"
    ):
        apply_weights(image, bad)


def test_end_to_end_on_checklist_features_recovers_the_official_video_weights():
    """Answers -> official features -> pairs labelled by the official weights -> the fit points the same way."""
    checklist = Checklist.load("video", select=True)
    w_true = checklist.weights.numpy()
    rng = np.random.default_rng(0)
    answers = (rng.random((1500, len(checklist))) < 0.5).astype(float)
    features = checklist_features(checklist, answers=answers)
    a, b = rng.integers(0, 1500, 8000), rng.integers(0, 1500, 8000)
    scale = 4.0  # sharper preferences than the raw weights give, so 8k pairs pin the direction down
    p_first = 1.0 / (1.0 + np.exp(-scale * (features[a] - features[b]) @ w_true))
    labels = np.where(rng.random(len(a)) < p_first, 1, -1)
    fit = fit_checklist_weights(features, a, b, labels, feature_names=checklist.texts)
    assert _cosine(fit.weights, w_true) >= 0.99
    assert fit.feature_names == checklist.texts


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_or_targets_are_refused_not_fitted(bad):
    features = np.ones((3, 2))
    features[1, 0] = bad
    with pytest.raises(ValueError, match="features holds 1 NaN or infinite value"):
        pair_differences(features, [0, 1], [1, 2])
    diffs = np.ones((2, 2))
    diffs[0, 1] = bad
    with pytest.raises(ValueError, match="diffs holds 1 NaN or infinite value"):
        fit_nonnegative_logistic(diffs)
    with pytest.raises(ValueError, match="targets holds 1 NaN or infinite value"):
        fit_nonnegative_logistic(np.ones((2, 2)), targets=[1.0, bad])
