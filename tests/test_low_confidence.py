"""“Low confidence”, defined once: models that differ, an uncertain calibration, a grade near a boundary."""

from batches.review_queue import Entry, low_confidence_reasons


def graded(percent: float, spread: float | None = None, calibrated: bool = False) -> Entry:
    entry = Entry(1, 1, "builtin", "builtin-v1", "completed", "builtin:builtin-v1", graded=True)
    entry.ai_percent, entry.spread, entry.calibrated = percent, spread, calibrated
    return entry


CALIBRATION = {
    "models": [{"provider": "builtin", "model": "builtin-v1", "method": "linear", "qwk_after": 0.8}]
}


def test_a_clear_grade_that_models_agree_on_raises_no_concern():
    assert low_confidence_reasons(graded(75, spread=15), CALIBRATION) == []


def test_models_that_differ_by_more_than_15_points_are_named_with_the_spread():
    assert low_confidence_reasons(graded(75, spread=15.5), None) == ["models differ by 16 %"]


def test_a_grade_within_2_points_of_a_boundary_either_side_is_low_confidence():
    assert low_confidence_reasons(graded(58), None) == ["58.0 % is within 2 points of the 60 % boundary"]
    assert low_confidence_reasons(graded(92), None) == ["92.0 % is within 2 points of the 90 % boundary"]
    assert low_confidence_reasons(graded(57.9), None) == []


def test_a_calibration_below_0_6_or_unmeasured_is_uncertain_and_a_good_one_is_not():
    poor = {"models": [{**CALIBRATION["models"][0], "qwk_after": 0.55}]}
    unmeasured = {"models": [{**CALIBRATION["models"][0], "qwk_after": None}]}
    assert low_confidence_reasons(graded(75, calibrated=True), poor) == [
        "calibration uncertain: it agrees with your grades at 0.55 (QWK)"
    ]
    assert low_confidence_reasons(graded(75, calibrated=True), unmeasured) == [
        "calibration uncertain: too few exemplars to measure it"
    ]
    assert low_confidence_reasons(graded(75, calibrated=True), CALIBRATION) == []
    # A grade the calibration did not touch owes nothing to it.
    assert low_confidence_reasons(graded(75, calibrated=False), poor) == []


def test_every_reason_is_given_when_several_hold():
    poor = {"models": [{**CALIBRATION["models"][0], "qwk_after": 0.3}]}
    assert len(low_confidence_reasons(graded(81, spread=30, calibrated=True), poor)) == 3


def test_a_job_without_a_grade_has_no_confidence_to_judge():
    entry = Entry(1, 1, "builtin", "builtin-v1", "failed")
    assert low_confidence_reasons(entry, CALIBRATION) == []
