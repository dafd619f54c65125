from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from cases.models import Case, CaseEvent
from cases.services import case_raise
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
    barrier = threading.Barrier(workers)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def raise_it() -> None:
        try:
            barrier.wait()
            case, created = case_raise(type="lost", order=order, shipment=shipment)
            results.append((case.pk, created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=raise_it) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Case.objects.filter(shipment=shipment).count() == 1
    assert CaseEvent.objects.filter(case__shipment=shipment).count() == 1
