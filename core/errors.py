"""The base of the project's domain errors.

An app raises a subclass with its HTTP status and code; the API's error handler
(`core.api_errors`) and the web views read them from here, so the kit never
imports the apps that define them.
"""


class DomainError(Exception):
    """A refusal the user can act on: a sentence, a stable code and the HTTP status to answer with."""

    status_code = 400
    code = "error"

    def as_dict(self) -> dict:
        """The API body; subclasses add their own fields."""
        return {"detail": str(self), "code": self.code}
