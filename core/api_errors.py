"""The API's error contract, in one place.

- 400: field errors, `{"field": ["message", ...], ...}` (nested for JSON settings);
  unparseable bodies get `{"detail", "code"}`.
- 401: not signed in; 403: visible but not changeable; 404: missing or not visible.
- 409: a refused batch transition, `{"detail", "code": "invalid_transition", "status", "action"}`.

Apps raise subclasses of `core.errors.DomainError` (a refused transition, invalid
settings), each carrying its HTTP status and body, and this handler turns them
into responses, so no view repeats the mapping and the kit imports no app.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError


class Conflict(APIException):
    """A request that cannot be carried out in the object's present state (not a transition)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(as_serializer_error(exc))
    elif isinstance(exc, (RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation)):
        # Django's request-size guards (too many files or fields, body too big)
        # fire while DRF parses the body; answer them like any other bad body.
        exc = ParseError(str(exc) or "The request body was refused.")
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and set(response.data) == {"detail"}:
        response.data["code"] = _code(exc)
    return response


def _code(exc: Exception) -> str:
    """A stable code beside the sentence; DRF maps Django's Http404 and PermissionDenied itself."""
    if isinstance(exc, APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            return codes
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, DjangoPermissionDenied):
        return "permission_denied"
    return "error"


# --- the error bodies, for the OpenAPI schema -------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class TransitionErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.ChoiceField(choices=["invalid_transition"])
    status = serializers.CharField(help_text="The batch's status when the action was refused.")
    action = serializers.CharField(help_text="The refused action.")


class FieldErrorsSerializer(serializers.Serializer):
    """`{"field": ["message", ...]}`; JSON settings nest their errors by dotted path."""

    detail = serializers.CharField(required=False, help_text="Present when the body could not be parsed.")
    code = serializers.CharField(required=False)
    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)
    # Other keys are the endpoint's field names, each with a list of messages (or, for
    # JSON settings, an object of messages by dotted path): the schema leaves them open.


FIELD_ERRORS = OpenApiResponse(FieldErrorsSerializer, description="Invalid input: messages per field.")
NOT_SIGNED_IN = OpenApiResponse(ErrorSerializer, description="Not signed in.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Visible to you but you may not change it.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object, or you may not view it.")
REFUSED = OpenApiResponse(TransitionErrorSerializer, description="Refused in the batch's present state.")
CONFLICT = OpenApiResponse(ErrorSerializer, description="Refused in the object's present state.")

READ_ERRORS = {401: NOT_SIGNED_IN, 404: NOT_FOUND}
LIST_ERRORS = {400: FIELD_ERRORS, 401: NOT_SIGNED_IN, 404: NOT_FOUND}
WRITE_ERRORS = {400: FIELD_ERRORS, 401: NOT_SIGNED_IN, 403: FORBIDDEN, 404: NOT_FOUND}
ACTION_ERRORS = {**WRITE_ERRORS, 409: REFUSED}


def not_found(request, exception=None):
    """JSON 404s under /api/ (a path no route matches); Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
