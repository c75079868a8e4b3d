"""Agreement between two graders: quadratic weighted kappa and friends.

Pure functions over a small confusion table, so the database does the
counting (one GROUP BY per comparison) and this module only the arithmetic.

Scores are compared on a common scale whatever a rubric's maximum: the
percentage of the maximum, binned into ten buckets of ten points (0–9.99 %
is bucket 0, …, 90–100 % is bucket 9). Binning to integer points instead
would give a 100-point rubric 101 categories, where exact agreement between
two graders is rare even when they agree closely, and would make rubrics of
different sizes incomparable. The mean absolute difference is computed on the
unbinned percentages.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

BUCKETS = 10
# Below this many pairs an agreement figure is shown with a warning: one more pair can move it a lot.
FEW_PAIRS = 10
BUCKET_WIDTH = 100 / BUCKETS
# Guards the bucket edges against binary rounding: 70 % computed as
# 69.99999999999999 still belongs to the 70–80 % bucket.
EPSILON = 1e-9


def bucket(percent: float) -> int:
    """The bucket of a percentage; 100 % shares the top bucket with 90 %."""
    return max(0, min(BUCKETS - 1, int(percent / BUCKET_WIDTH + EPSILON)))


def bucket_label(index: int) -> str:
    low = index * BUCKET_WIDTH
    high = low + BUCKET_WIDTH
    closing = "]" if index == BUCKETS - 1 else ")"
    return f"[{low:g}, {high:g}{closing}"


def quadratic_weighted_kappa(matrix: list[list[float]]) -> float | None:
    """Cohen's kappa with quadratic weights over a square table of counts.

    matrix[i][j] counts items the first grader put in category i and the
    second in category j. The categories are ordered and evenly spaced, so a
    disagreement of two categories weighs four times one of a single category.
    None when the figure is undefined: no items, or both graders always used
    one and the same category (no disagreement is possible by chance).
    """
    size = len(matrix)
    total = sum(sum(row) for row in matrix)
    if size < 2 or total == 0:
        return None
    rows = [sum(row) for row in matrix]
    columns = [sum(matrix[i][j] for i in range(size)) for j in range(size)]
    observed = expected = 0.0
    for i in range(size):
        for j in range(size):
            weight = (i - j) ** 2 / (size - 1) ** 2
            observed += weight * matrix[i][j]
            expected += weight * rows[i] * columns[j] / total
    if expected == 0:
        return None
    return 1 - observed / expected


@dataclass(frozen=True)
class Agreement:
    """How closely two graders agree on the same items."""

    pairs: int
    quadratic_weighted_kappa: float | None
    exact: float | None  # share of items in the same bucket
    adjacent: float | None  # share within one bucket of each other
    mean_abs_difference: float | None  # in percentage points, unbinned

    @property
    def too_few_pairs(self) -> bool:
        """A kappa from a handful of pairs swings with each one: flag it rather than hide it."""
        return 0 < self.pairs < FEW_PAIRS

    def as_dict(self, digits: int = 4) -> dict:
        figures = {key: _round(value, digits) for key, value in asdict(self).items()}
        figures["too_few_pairs"] = self.too_few_pairs
        return figures


def agreement(cells: Mapping[tuple[int, int], int], abs_difference_sum: float = 0.0) -> Agreement:
    """Agreement from bucket-pair counts {(bucket_a, bucket_b): count}.

    abs_difference_sum is the sum over all pairs of |percent_a - percent_b|,
    which the database adds up alongside the counts.
    """
    pairs = sum(cells.values())
    if pairs == 0:
        return Agreement(0, None, None, None, None)
    matrix = [[0] * BUCKETS for _ in range(BUCKETS)]
    for (a, b), count in cells.items():
        matrix[a][b] += count
    exact = sum(count for (a, b), count in cells.items() if a == b)
    adjacent = sum(count for (a, b), count in cells.items() if abs(a - b) <= 1)
    return Agreement(
        pairs=pairs,
        quadratic_weighted_kappa=quadratic_weighted_kappa(matrix),
        exact=exact / pairs,
        adjacent=adjacent / pairs,
        mean_abs_difference=abs_difference_sum / pairs,
    )


def agreement_of_scores(pairs: Iterable[tuple[float, float]]) -> Agreement:
    """Agreement from (percent_a, percent_b) pairs: the reference the SQL path is checked against."""
    cells: dict[tuple[int, int], int] = {}
    difference = 0.0
    for a, b in pairs:
        key = (bucket(a), bucket(b))
        cells[key] = cells.get(key, 0) + 1
        difference += abs(a - b)
    return agreement(cells, difference)


def _round(value, digits: int):
    return round(value, digits) if isinstance(value, float) else value


def integer_quadratic_weighted_kappa(
    first: Iterable[float], second: Iterable[float], low: int, high: int
) -> float | None:
    """QWK of two graders' scores on one integer scale low..high (each point its own category).

    For scores already on a common scale, such as a teacher's 0–12 and a calibrated grader's
    0–12: unlike `agreement_of_scores` it does not bin to percentages. Scores are rounded to the
    nearest integer and clamped to the scale.
    """
    size = high - low + 1
    matrix = [[0] * size for _ in range(size)]
    for a, b in zip(first, second, strict=True):
        i = min(max(round(a), low), high) - low
        j = min(max(round(b), low), high) - low
        matrix[i][j] += 1
    return quadratic_weighted_kappa(matrix)
