from core.errors import DomainError


class InvalidTransition(DomainError):
    """A batch action refused in the batch's current state. Nothing was changed."""

    status_code = 409
    code = "invalid_transition"

    def __init__(self, action: str, status: str, detail: str | None = None):
        self.action = action
        self.status = status
        state = "failed" if status == "failed" else f"is {status.replace('_', ' ')}"
        self.detail = detail or f"Cannot {action.replace('_', ' ')} a batch that {state}."
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, str]:
        return {"detail": self.detail, "code": self.code, "status": self.status, "action": self.action}


class StillGrading(DomainError):
    """A batch whose jobs are still being graded: grades that arrive after a calibration would
    stay on the provider's scale beside calibrated ones."""

    status_code = 409
    code = "still_grading"

    def __init__(self) -> None:
        super().__init__(
            "The batch still has jobs to grade: calibrate it once it has ended, so that every grade is "
            "on the same scale."
        )


class NothingToCalibrate(DomainError):
    """A batch with no completed grade: there are no provider scores to map yet."""

    status_code = 409
    code = "nothing_to_calibrate"

    def __init__(self) -> None:
        super().__init__("The batch has no completed grades to calibrate yet: grade it first.")
