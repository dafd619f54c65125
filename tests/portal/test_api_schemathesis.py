"""The API against its own published schema, with requests schemathesis makes from it (valid ones and, for
the refusals, invalid ones): no 5xx, no status, content type or body the schema does not describe.

A bounded number of examples per operation keeps it inside `make test`; runs on both databases."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api import Api, order_body
from tests.factories import make_case

EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@contextmanager
def connection_kept_between_requests():
    """The WSGI handler closes the database connection after each request; inside the test's transaction
    that would close it mid-test. Django's test client unhooks the same signal for the same reason (and
    hooks it again after each of its requests: so this wraps only the WSGI calls)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_schema_says(store, mode):
    api = Api(store)
    api.put("skus/SKU-1", {"name": "Glow", "unit_price": "59.90"})
    api.put("orders/580001", order_body())
    make_case(store=store)
    with connection_kept_between_requests():
        tested = _run(mode, {"Authorization": f"Bearer {api.secret}"})
    assert tested >= 20


def _run(mode: GenerationMode, headers: dict[str, str]) -> int:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case) -> None:
            case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)

        check()
        tested += 1
    return tested
