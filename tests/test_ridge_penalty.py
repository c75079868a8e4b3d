"""How much the ridge learnt from exemplars trusts them over its prior: its penalties are weighed by
their leave-one-out errors on the exemplars, not fixed and not a single noisy pick."""

import numpy as np

from grading.essay import model

COLUMNS = 8


def exemplars(noise: float, count: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, scores and a prior that gets the teacher half wrong: the teacher rewards the
    second feature, which the prior ignores."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(count, COLUMNS))
    prior = np.zeros(COLUMNS)
    prior[0] = 1.0
    y = 6 + 1.5 * z[:, 0] + 1.5 * z[:, 1] + noise * rng.normal(size=count)
    return z, y, prior


def test_noisy_exemplars_get_a_heavier_penalty_than_clean_ones():
    clean = model.fit_ridge(*exemplars(noise=0.05))
    noisy = model.fit_ridge(*exemplars(noise=6.0))

    assert noisy.penalty > 3 * clean.penalty


def test_clean_exemplars_teach_what_the_prior_missed():
    z, y, prior = exemplars(noise=0.05)
    ridge = model.fit_ridge(z, y, prior)

    # The prior gives the second feature nothing; even the lightest penalty keeps some shrinkage.
    assert ridge.weights[1] > 0.3


def test_penalties_the_errors_cannot_tell_apart_share_the_weight():
    weights = model.loo_weights(np.array([100.0, 100.0, 100.0]), count=50)

    assert np.allclose(weights, 1 / 3)


def test_a_penalty_with_clearly_worse_held_out_errors_gets_almost_no_weight():
    # σ² = 100 / 50 = 2: an error 40 larger is 10σ² worse, e^−10 as likely.
    weights = model.loo_weights(np.array([100.0, 101.0, 140.0]), count=50)

    assert weights[2] < 1e-3
    assert 0.5 < weights[0] / weights[1] < 2
    assert np.isclose(weights.sum(), 1.0)


def test_the_learnt_penalty_can_fall_between_the_grid_s_values():
    z, y, prior = exemplars(noise=2.0)
    penalty = model.fit_ridge(z, y, prior).penalty

    assert min(model.PENALTIES) <= penalty <= max(model.PENALTIES)
    assert not any(np.isclose(penalty, grid) for grid in model.PENALTIES)


def test_a_prior_the_teacher_contradicts_falls_back_to_its_scale_alone():
    z, y, prior = exemplars(noise=0.05)
    ridge = model.fit_ridge(z, 12 - y, prior)

    assert ridge.penalty == float("inf")
    assert ridge.weights[0] == 0.0
