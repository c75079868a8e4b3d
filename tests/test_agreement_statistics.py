"""Quadratic weighted kappa and agreement shares, against tables worked by hand."""

import pytest

from grading.agreement import (
    agreement,
    agreement_of_scores,
    bucket,
    bucket_label,
    quadratic_weighted_kappa,
)


def test_two_categories_give_cohens_textbook_kappa():
    # The worked example of Cohen's kappa on Wikipedia: 50 applications read by
    # two readers, 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    # With two categories the quadratic weights are 0 and 1, so QWK is plain kappa.
    assert quadratic_weighted_kappa([[20, 5], [10, 15]]) == pytest.approx(0.4)


def test_three_categories_match_the_hand_computed_weighted_kappa():
    # Rows: grader A, columns: grader B, 50 items.
    #   [10,  5,  0]   row sums 15, 17, 18
    #   [ 2, 12,  3]   column sums 12, 21, 17
    #   [ 0,  4, 14]
    # Weights (i-j)^2/(k-1)^2: 0.25 one category apart, 1 two apart.
    # Observed weighted disagreement: 0.25 * (5 + 2 + 3 + 4) + 1 * 0 = 3.5
    # Expected cells r_i * c_j / 50 off the diagonal:
    #   one apart: 15*21/50 + 17*12/50 + 17*17/50 + 18*21/50 = 6.3 + 4.08 + 5.78 + 7.56 = 23.72
    #   two apart: 15*17/50 + 18*12/50 = 5.1 + 4.32 = 9.42
    # Expected weighted disagreement: 0.25 * 23.72 + 9.42 = 15.35
    # kappa = 1 - 3.5 / 15.35 = 0.771987
    table = [[10, 5, 0], [2, 12, 3], [0, 4, 14]]
    assert quadratic_weighted_kappa(table) == pytest.approx(1 - 3.5 / 15.35)
    assert quadratic_weighted_kappa(table) == pytest.approx(0.771987, abs=1e-6)


def test_kappa_is_symmetric_in_the_two_graders():
    table = [[10, 5, 0], [2, 12, 3], [0, 4, 14]]
    transposed = [list(column) for column in zip(*table, strict=True)]
    assert quadratic_weighted_kappa(transposed) == pytest.approx(quadratic_weighted_kappa(table))


def test_perfect_agreement_gives_one_and_reversed_order_gives_minus_one():
    assert quadratic_weighted_kappa([[3, 0, 0], [0, 4, 0], [0, 0, 5]]) == pytest.approx(1.0)
    assert quadratic_weighted_kappa([[0, 0, 5], [0, 0, 0], [5, 0, 0]]) == pytest.approx(-1.0)


def test_kappa_is_undefined_without_items_or_when_both_graders_use_one_category():
    assert quadratic_weighted_kappa([[0, 0], [0, 0]]) is None
    assert quadratic_weighted_kappa([[0, 0], [0, 7]]) is None


def test_percentages_fall_into_ten_point_buckets_with_100_in_the_top_one():
    assert [bucket(p) for p in (0, 9.99, 10, 69.99999999999999, 70, 89.9, 90, 100)] == [
        0,
        0,
        1,
        7,
        7,
        8,
        9,
        9,
    ]
    assert bucket_label(0) == "[0, 10)"
    assert bucket_label(9) == "[90, 100]"


def test_exact_and_adjacent_shares_and_mean_difference_come_from_the_pairs():
    # 72 vs 75: same bucket; 72 vs 81: adjacent; 20 vs 55: three buckets apart.
    result = agreement_of_scores([(72, 75), (72, 81), (20, 55)])
    assert result.pairs == 3
    assert result.exact == pytest.approx(1 / 3)
    assert result.adjacent == pytest.approx(2 / 3)
    assert result.mean_abs_difference == pytest.approx((3 + 9 + 35) / 3)


def test_bucket_counts_and_score_pairs_give_the_same_agreement():
    pairs = [(72, 75), (72, 81), (20, 55), (95, 100), (40, 38)]
    from_cells = agreement(
        {(7, 7): 1, (7, 8): 1, (2, 5): 1, (9, 9): 1, (4, 3): 1}, abs_difference_sum=3 + 9 + 35 + 5 + 2
    )
    assert from_cells == agreement_of_scores(pairs)


def test_no_pairs_give_no_figures():
    assert agreement({}).as_dict() == {
        "pairs": 0,
        "quadratic_weighted_kappa": None,
        "exact": None,
        "adjacent": None,
        "mean_abs_difference": None,
        "too_few_pairs": False,
    }


def test_a_kappa_from_a_handful_of_pairs_is_flagged_and_one_from_many_is_not():
    few = agreement({(3, 3): 1, (4, 5): 1})
    many = agreement({(3, 3): 6, (4, 5): 6})

    assert few.pairs == 2 and few.as_dict()["too_few_pairs"] is True
    assert many.pairs == 12 and many.as_dict()["too_few_pairs"] is False
