from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from cases.models import Case
from tests.factories import make_order, make_shipment


def _case(**fields) -> Case:
    now = timezone.now()
    return Case.objects.create(opened_at=now, due_at=now, **fields)


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_case_of_one_type_on_one_shipment(store):
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    _case(store=store, order=order, shipment=shipment, type="stalled_in_transit")

    with pytest.raises(IntegrityError), transaction.atomic():
        _case(store=store, order=order, shipment=shipment, type="stalled_in_transit", status="in_progress")

    assert Case.objects.filter(shipment=shipment).count() == 1


@pytest.mark.django_db
def test_a_shipment_may_have_open_cases_of_different_types_and_closed_ones_of_the_same(store):
    order = make_order(store=store)
    shipment = make_shipment(order=order)
    _case(
        store=store,
        order=order,
        shipment=shipment,
        type="stalled_in_transit",
        status="resolved",
        resolved_at=timezone.now(),
    )
    _case(store=store, order=order, shipment=shipment, type="stalled_in_transit")
    _case(store=store, order=order, shipment=shipment, type="lost")

    assert Case.objects.filter(shipment=shipment).count() == 3


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_order_level_case_of_one_type(store):
    order = make_order(store=store)
    _case(store=store, order=order, type="oversold")

    with pytest.raises(IntegrityError), transaction.atomic():
        _case(store=store, order=order, type="oversold", status="waiting_buyer")


@pytest.mark.django_db
def test_two_shipments_of_one_order_each_get_their_own_case(store):
    order = make_order(store=store)
    first, second = make_shipment(order=order), make_shipment(order=order)
    _case(store=store, order=order, shipment=first, type="lost")
    _case(store=store, order=order, shipment=second, type="lost")

    assert Case.objects.filter(order=order, type="lost").count() == 2


@pytest.mark.django_db
def test_only_a_batch_incident_may_have_no_order(store):
    _case(store=store, type="quality_batch")

    with pytest.raises(IntegrityError), transaction.atomic():
        _case(store=store, type="damaged")


@pytest.mark.django_db
def test_an_open_case_cannot_carry_a_resolution_time(store):
    order = make_order(store=store)
    with pytest.raises(IntegrityError), transaction.atomic():
        _case(store=store, order=order, type="oversold", status="new", resolved_at=timezone.now())
