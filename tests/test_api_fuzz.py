"""A schema-driven fuzz run: schemathesis generates requests from /api/schema for every
operation, valid and invalid, and each response must be no 5xx, a documented status code,
the documented content type, and a body matching the documented schema.

It talks to the real WSGI application in-process, inside the test's database
transaction, signed in with a real token. Examples per operation are bounded so
the whole run stays well under a minute.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from templates_app.models import BatchTemplate
from tests.conftest import make_batch, prebuilt

EXAMPLES_PER_OPERATION = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_wsgi("/api/schema?format=json", get_wsgi_application())
schema.config.generation.max_examples = EXAMPLES_PER_OPERATION
schema.config.generation.modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
# The coverage phase sends every boundary case the schema defines (about 200
# per write operation here), which takes minutes; the fuzzing phase, bounded
# by EXAMPLES_PER_OPERATION, keeps the run under a minute. Edge cases that
# matter are pinned down by tests/test_api_errors.py.
schema.config.phases.coverage.enabled = False


@pytest.fixture
def keep_test_connection():
    """Keep the test's transaction open across requests, as Django's test client does.

    The WSGI handler closes "old" connections when a request starts and ends, and
    a connection inside the test's transaction (autocommit off) counts as one.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def token(owner, essay_template, keep_test_connection) -> str:
    return Token.objects.create(user=owner).key


@pytest.fixture
def real_ids(owner) -> dict[str, int]:
    """Objects that exist, so a share of the requests reach real rows rather than 404s.

    Made once per operation; an example that deletes one only turns later
    examples' requests into (documented) 404s.
    """
    batch = make_batch(owner, name="Fuzzed")
    template = BatchTemplate.objects.create(
        name="Fuzz template", slug="fuzz-template", default_settings=prebuilt().default_settings, owner=owner
    )
    return {"batches": batch.pk, "jobs": batch.jobs.first().pk, "batch-templates": template.pk}


def aim_at_real_rows(case, ids: dict[str, int]) -> None:
    """Point half of the generated ids at existing objects of the operation's kind."""
    identifier = case.path_parameters.get("id") if case.path_parameters else None
    if not isinstance(identifier, int) or identifier % 2:
        return
    resource = case.operation.path.split("/")[2]
    if resource in ids:
        case.path_parameters["id"] = ids[resource]
    for name, kind in (("job_id", "jobs"), ("batch_id", "batches")):
        if name in case.path_parameters:
            case.path_parameters[name] = ids[kind]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_input_makes_the_api_fail_or_answer_off_its_schema(case, token, real_ids):
    aim_at_real_rows(case, real_ids)
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
