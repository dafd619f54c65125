from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cases.models import Case, CaseEvent
from cases.services import case_raise
from tests.factories import make_order, make_shipment
from tracking.models import Shipment


@pytest.mark.django_db
def test_it_raises_one_case_and_one_timeline_entry_for_the_same_problem_twice(store):
    order = make_order(store=store)
    shipment = make_shipment(order=order)

    first, created = case_raise(type="stalled_in_transit", order=order, shipment=shipment, summary="Stalled")
    again, created_again = case_raise(type="stalled_in_transit", order=order, shipment=shipment)

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Case.objects.count() == 1
    assert list(CaseEvent.objects.values_list("kind", flat=True)) == ["raised"]


@pytest.mark.django_db
def test_a_raised_case_gets_sla_clocks_and_belongs_to_the_orders_store(store):
    order = make_order(store=store)
    now = timezone.now()

    case, _ = case_raise(type="oversold", order=order, now=now)

    assert case.store_id == store.pk
    assert case.shipment is None
    assert case.first_contact_due_at == now + timedelta(hours=24)
    assert case.due_at == case.first_contact_due_at
    assert case.resolution_due_at > case.first_contact_due_at


@pytest.mark.django_db
def test_a_shipment_case_without_a_shipment_is_refused(store):
    with pytest.raises(ValueError, match="about a shipment"):
        case_raise(type="lost", order=make_order(store=store))
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_shipment_of_another_order_is_refused(store):
    order, other = make_order(store=store), make_order(store=store)
    with pytest.raises(ValueError, match="does not belong"):
        case_raise(type="lost", order=order, shipment=make_shipment(order=other))
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_case_is_refused_when_its_order_or_parcel_belongs_to_another_store(store, other_store):
    order = make_order(store=store)
    with pytest.raises(ValueError, match="order belongs to another store"):
        case_raise(type="oversold", order=order, store_id=other_store.pk)

    # The schema does not tie a shipment's store to its order's; a parcel filed under the wrong store must
    # not open a case that one store's agents see and the other's own.
    stray = make_shipment(order=order)
    Shipment.objects.filter(pk=stray.pk).update(store=other_store)
    stray.refresh_from_db()
    with pytest.raises(ValueError, match="shipment belongs to another store"):
        case_raise(type="lost", order=order, shipment=stray)
    assert not Case.objects.exists()


@pytest.mark.django_db
def test_a_batch_incident_without_a_store_is_refused():
    with pytest.raises(ValueError, match="belongs to a store"):
        case_raise(type="quality_batch", order=None, sku_id=1, lot="L1")
    assert not Case.objects.exists()
