"""Calibration maps from a grader's raw scores to a teacher's scale, and their honest agreement."""

import pytest

from grading import calibration
from grading.agreement import integer_quadratic_weighted_kappa, quadratic_weighted_kappa
from grading.calibration import (
    Scale,
    calibrate,
    cross_validated_qwk,
    fit_map,
    held_out_predictions,
    scale_qwk,
)

TWELVE = Scale.steps(0, 12)


@pytest.mark.parametrize("method", ["linear", "isotonic"])
def test_a_teacher_two_points_harsher_than_the_grader_gets_agreeing_grades(method):
    teacher = [2, 3, 4, 5, 6, 7, 8, 9, 10, 4, 6, 8]
    pairs = [(score + 2, score) for score in teacher]

    score_map = fit_map(pairs, method)

    assert [calibrate(raw, score_map, TWELVE) for raw, _ in pairs] == teacher
    assert calibrate(9, score_map, TWELVE) == 7


@pytest.mark.parametrize("method", ["linear", "isotonic"])
def test_too_few_exemplars_give_no_map(method):
    assert fit_map([(1, 2), (3, 4), (5, 6), (7, 8)], method) is None
    assert fit_map([(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)], method) is not None


def test_without_a_map_the_raw_score_is_only_rounded_and_clamped():
    assert calibrate(6.4, None, TWELVE) == 6
    assert calibrate(14, None, TWELVE) == 12
    assert calibrate(-1, None, TWELVE) == 0


def test_scores_round_to_the_nearest_level_the_higher_on_a_tie_and_clamp():
    levels = Scale.levels([10, 5, 8, 0])

    assert levels.points == (0, 5, 8, 10)
    assert levels.nearest(6.4) == 5
    assert levels.nearest(6.5) == 8
    assert levels.nearest(-3) == 0
    assert levels.nearest(12) == 10
    assert Scale.steps(0, 3, 0.5).nearest(1.3) == 1.5


def test_the_isotonic_map_never_goes_down():
    pairs = [(1, 3), (2, 1), (3, 4), (4, 2), (5, 6), (6, 5), (7, 8)]
    score_map = fit_map(pairs, "isotonic")

    values = [score_map(raw / 4) for raw in range(0, 36)]
    assert values == sorted(values)
    # Pooling: (2, 1) after (1, 3) is a violation, so both become their mean.
    assert score_map(1.5) == pytest.approx(2)


def test_the_linear_map_gives_the_teacher_s_mean_and_spread():
    pairs = [(10, 2), (20, 4), (30, 6), (40, 8), (50, 10)]
    score_map = fit_map(pairs, "linear")

    assert score_map(30) == pytest.approx(6)
    assert score_map(60) == pytest.approx(12)  # extends beyond the exemplars
    assert fit_map([(5, 1), (4, 2), (3, 3), (2, 4), (1, 5)], "linear") is None  # falling: no map


def test_matching_the_spread_trusts_the_raw_score_s_direction_where_pairs_do_not_confirm_it():
    falling = [(5, 1), (4, 2), (3, 3), (2, 4), (1, 5)]
    score_map = calibration.match_spread(falling)

    assert score_map(3) == pytest.approx(3)  # the mean to the mean
    assert score_map(5) - score_map(1) == pytest.approx(4)  # rising, with the teacher's spread
    assert calibration.match_spread([(1, 4), (2, 4), (3, 4), (4, 4), (5, 4)]) is None


def test_each_held_out_pair_is_scored_by_a_map_fitted_without_it():
    pairs = [(float(i), float(i // 2)) for i in range(8)]
    fitted_on = []

    def spy(subset):
        fitted_on.append(list(subset))
        return fit_map(subset, "linear")

    predictions = held_out_predictions(pairs, spy)

    assert len(fitted_on) == len(pairs)
    for index, subset in enumerate(fitted_on):
        assert pairs[index] not in subset
        assert len(subset) == len(pairs) - 1
    assert all(prediction is not None for prediction in predictions)


def test_k_fold_leaves_each_fold_out_of_its_own_map():
    pairs = [(float(i), float(i)) for i in range(12)]
    fitted_on = []

    def spy(subset):
        fitted_on.append(set(subset))
        return fit_map(subset)

    held_out_predictions(pairs, spy, folds=3)

    assert len(fitted_on) == 3
    for start, subset in enumerate(fitted_on):
        assert not {pairs[i] for i in range(start, 12, 3)} & subset


def test_cross_validated_agreement_of_a_consistent_teacher_is_high_and_of_noise_low():
    consistent = [(raw, max(0, raw - 2)) for raw in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 5, 8)]
    noise = [
        (raw, teacher) for raw, teacher in zip(range(12), (7, 2, 9, 4, 11, 1, 6, 3, 10, 5, 8, 0), strict=True)
    ]

    assert cross_validated_qwk(consistent, TWELVE) > 0.9
    assert cross_validated_qwk(noise, TWELVE, method="isotonic") < 0.3
    assert cross_validated_qwk(consistent[:5], TWELVE) is None  # 4 left in each fold: no map


def test_per_criterion_maps_where_enough_criterion_scores_exist():
    rows = [({"ideas": raw, "style": raw}, {"ideas": max(raw - 1, 0)}) for raw in (1, 2, 3, 3, 2, 1)]

    maps = calibration.criterion_maps(rows)

    assert set(maps) == {"ideas"}
    assert calibrate(3, maps["ideas"], Scale.steps(0, 3)) == 2


def test_integer_qwk_compares_scores_on_one_scale():
    assert integer_quadratic_weighted_kappa([0, 4, 8, 12], [0, 4, 8, 12], 0, 12) == pytest.approx(1)
    assert integer_quadratic_weighted_kappa([0, 1, 2], [2, 1, 0], 0, 2) == pytest.approx(-1)
    # Out-of-scale and fractional scores are clamped and rounded first.
    assert integer_quadratic_weighted_kappa([-1, 1.2, 3], [0, 1, 2], 0, 2) == pytest.approx(1)


def test_scale_qwk_is_the_qwk_of_the_table_of_counts_over_the_scale_s_points():
    scale = Scale.levels([0, 1, 3, 5])
    first, second = [0, 1, 3, 5, 5, 3, 1, 0.4], [1, 1, 3, 3, 5, 5, 0, 0]
    table = [[0] * 4 for _ in range(4)]
    for a, b in zip(first, second, strict=True):
        table[scale.points.index(scale.nearest(a))][scale.points.index(scale.nearest(b))] += 1

    assert scale_qwk(first, second, scale) == pytest.approx(quadratic_weighted_kappa(table))
    assert scale_qwk([3, 3], [3, 3], scale) is None


def test_agreement_on_a_scale_of_thousands_of_points_is_measured_from_the_scores_alone():
    scale = Scale.steps(0, 2000, 0.5)  # 4,001 categories
    teacher = [float(i * 37 % 2000) for i in range(60)]
    pairs = [(t / 2 + 11, t) for t in teacher]

    assert cross_validated_qwk(pairs, scale) == pytest.approx(1.0, abs=1e-6)


def test_a_map_is_chosen_only_when_it_agrees_better_than_the_raw_scores():
    scale = calibration.Scale.steps(0, 12)
    on_scale = [(float(s), float(s)) for s in (2, 4, 5, 6, 7, 8, 9, 10)] + [(6.0, 7.0)]
    harsher = [(raw, max(raw - 2, 0.0)) for raw, _ in on_scale]

    kept = calibration.choose_map(on_scale, scale)
    moved = calibration.choose_map(harsher, scale)

    assert kept.kept and kept.map.kind == "identity" and kept.fitted.kind == "linear"
    assert kept.agreement == kept.before >= kept.after
    assert calibration.calibrate(6.0, kept.map, scale) == 6.0
    assert not moved.kept and moved.map is moved.fitted
    assert moved.agreement == moved.after > moved.before
    assert calibration.calibrate(9.0, moved.map, scale) == 7.0
