from __future__ import annotations

import pytest
from django.db import connection

from cases.models import Case, CaseEvent
from cases.services import case_raise
from tests.concurrency import at_once
from tests.factories import make_order, make_shipment, make_store

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL"),
]


def test_racing_workers_raise_exactly_one_case_for_one_problem():
    store = make_store(code="race")
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    workers = 8

    def raise_it() -> tuple[int, bool]:
        case, created = case_raise(type="lost", order=order, shipment=shipment)
        return case.pk, created

    results = at_once(*[raise_it] * workers)

    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Case.objects.filter(shipment=shipment).count() == 1
    assert CaseEvent.objects.filter(case__shipment=shipment).count() == 1
