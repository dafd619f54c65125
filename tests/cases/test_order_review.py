from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cases.models import Case, CaseEvent
from cases.review import address_key, order_review_evaluate
from cases.workflow import case_transition
from tests.factories import make_live_session, make_membership, make_order, make_user
from tracking.models import Order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)
ADDRESS = {"street": "12 Jalan SS2/55", "district": "SS2", "city": "Petaling Jaya", "postal_code": "47300"}


def _order(store, session=None, *, minutes=0, **fields):
    return make_order(store=store, placed_at=T0 + timedelta(minutes=minutes), live_session=session, **fields)


def _status(order) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


def _reviewer(store):
    user = make_user("rita")
    make_membership(user=user, store=store, role="agent")
    return user


def _held(store):
    order = _order(store, street="", district="")
    order_review_evaluate(store=store, now=NOW)
    assert _status(order) == "on_hold"
    return order, Case.objects.get(order=order, type="order_review")


@pytest.mark.django_db
def test_resolving_the_review_releases_the_held_order_for_shipping_and_says_so(store):
    order, case = _held(store)
    case = Case.objects.select_related("order").get(pk=case.pk)

    case_transition(case=case, to_status="resolved", resolution="no_action", actor=_reviewer(store), now=NOW)

    assert _status(order) == "awaiting_shipment"
    assert case.order.status == "awaiting_shipment"  # the caller's instance too (the page re-renders it)
    last = CaseEvent.objects.filter(case=case).order_by("pk").last()
    assert last.message == "Order released for shipping after review."
    assert last.data["order_status"] == {"from": "on_hold", "to": "awaiting_shipment"}
    assert last.actor.username == "rita"


@pytest.mark.django_db
def test_resolving_the_review_as_cancelled_cancels_the_order_and_reopening_does_not_revive_it(store):
    order, case = _held(store)
    reviewer = _reviewer(store)

    case_transition(case=case, to_status="resolved", resolution="cancelled", actor=reviewer, now=NOW)
    assert _status(order) == "cancelled"

    case_transition(case=case, to_status="in_progress", actor=reviewer, now=NOW)
    assert _status(order) == "cancelled"


@pytest.mark.django_db
def test_reopening_a_released_review_holds_the_order_again_unless_it_shipped_meanwhile(store):
    order, case = _held(store)
    reviewer = _reviewer(store)
    case_transition(case=case, to_status="resolved", resolution="no_action", actor=reviewer, now=NOW)

    case_transition(case=case, to_status="in_progress", actor=reviewer, now=NOW)
    assert _status(order) == "on_hold"
    assert CaseEvent.objects.filter(case=case).order_by("pk").last().message == (
        "Order held again: its review was reopened."
    )

    case_transition(case=case, to_status="resolved", resolution="no_action", actor=reviewer, now=NOW)
    Order.objects.filter(pk=order.pk).update(status="shipped")  # handed to the carrier meanwhile
    events = CaseEvent.objects.filter(case=case).count()
    case_transition(case=case, to_status="in_progress", actor=reviewer, now=NOW)
    assert _status(order) == "shipped"
    assert CaseEvent.objects.filter(case=case).count() == events + 1  # the reopen only


@pytest.mark.django_db
def test_three_orders_to_one_address_in_a_live_session_are_each_held_with_their_siblings(store):
    session = make_live_session(store=store, started_at=T0)
    first = _order(store, session, **ADDRESS)
    second = _order(store, session, minutes=1, **{**ADDRESS, "street": "  12  JALAN ss2/55 "})
    third = _order(store, session, minutes=2, **{**ADDRESS, "city": "petaling jaya"})
    elsewhere = _order(store, session, minutes=3)

    result = order_review_evaluate(store=store, order_ids=[third.pk], now=NOW)

    assert result.raised == 3
    assert set(Case.objects.values_list("order_id", "type")) == {
        (first.pk, "order_review"), (second.pk, "order_review"), (third.pk, "order_review"),
    }  # fmt: skip
    assert [_status(o) for o in (first, second, third, elsewhere)] == ["on_hold"] * 3 + ["awaiting_shipment"]
    case = Case.objects.get(order=first)
    assert case.facts["reasons"] == ["same_address"]
    assert case.facts["sibling_order_ids"] == [second.pk, third.pk]
    assert case.facts["orders_to_address"] == 3
    held = CaseEvent.objects.get(case=case, kind="updated")
    assert held.data["order_status"] == {"from": "awaiting_shipment", "to": "on_hold"}


@pytest.mark.django_db
def test_two_orders_or_orders_in_different_sessions_or_outside_a_session_are_not_held(store):
    morning = make_live_session(store=store, started_at=T0)
    evening = make_live_session(store=store, started_at=T0 + timedelta(hours=8))
    _order(store, morning, **ADDRESS)
    _order(store, morning, **ADDRESS)
    _order(store, evening, **ADDRESS)
    _order(store, None, **ADDRESS)
    _order(store, None, **ADDRESS)

    result = order_review_evaluate(store=store, now=NOW)

    assert result.raised == 0
    assert not Case.objects.exists()
    assert set(Order.objects.values_list("status", flat=True)) == {"awaiting_shipment"}


@pytest.mark.django_db
def test_a_shipped_sibling_counts_towards_the_address_but_is_not_held(store):
    session = make_live_session(store=store, started_at=T0)
    shipped = _order(store, session, status="shipped", **ADDRESS)
    cancelled = _order(store, session, status="cancelled", **ADDRESS)
    pending = [_order(store, session, minutes=i, **ADDRESS) for i in (1, 2)]

    order_review_evaluate(store=store, now=NOW)

    assert set(Case.objects.values_list("order_id", flat=True)) == {o.pk for o in pending}
    assert (_status(shipped), _status(cancelled)) == ("shipped", "cancelled")
    assert Case.objects.get(order=pending[0]).facts["sibling_order_ids"] == [shipped.pk, pending[1].pk]


@pytest.mark.django_db
def test_a_vague_address_or_a_flagged_payment_holds_the_order(store):
    vague = _order(store, street="", district="", city="Petaling Jaya")
    street_only = _order(store, district="")
    flagged = _order(store, payment_flagged=True)
    fine = _order(store)

    order_review_evaluate(store=store, now=NOW)

    assert Case.objects.get(order=vague).facts["reasons"] == ["vague_address"]
    flagged_case = Case.objects.get(order=flagged)
    assert flagged_case.facts["reasons"] == ["payment_flagged"]
    assert flagged_case.priority >= 30
    assert not Case.objects.filter(order__in=[street_only, fine]).exists()
    assert [_status(o) for o in (vague, flagged, street_only, fine)] == [
        "on_hold", "on_hold", "awaiting_shipment", "awaiting_shipment",
    ]  # fmt: skip


@pytest.mark.django_db
def test_an_order_with_several_reasons_gets_one_case_listing_them_all(store):
    session = make_live_session(store=store, started_at=T0)
    orders = [_order(store, session, minutes=i, **ADDRESS) for i in range(3)]
    Order.objects.filter(pk=orders[0].pk).update(payment_flagged=True)

    order_review_evaluate(store=store, now=NOW)

    case = Case.objects.get(order=orders[0])
    assert case.facts["reasons"] == ["same_address", "payment_flagged"]
    assert case.summary.startswith("Held for review: 3 orders to one address")
    assert Case.objects.count() == 3


@pytest.mark.django_db
def test_running_it_again_changes_nothing(store):
    session = make_live_session(store=store, started_at=T0)
    for i in range(3):
        _order(store, session, minutes=i, **ADDRESS)
    _order(store, payment_flagged=True)
    order_review_evaluate(store=store, now=NOW)
    events = CaseEvent.objects.count()

    again = order_review_evaluate(store=store, now=NOW + timedelta(minutes=5))

    assert (again.raised, again.updated) == (0, 0)
    assert Case.objects.count() == 4
    assert CaseEvent.objects.count() == events


@pytest.mark.django_db
def test_a_fourth_order_to_the_address_is_held_and_its_siblings_cases_list_it(store):
    session = make_live_session(store=store, started_at=T0)
    orders = [_order(store, session, minutes=i, **ADDRESS) for i in range(3)]
    order_review_evaluate(store=store, order_ids=[orders[2].pk], now=NOW)

    fourth = _order(store, session, minutes=10, **ADDRESS)
    result = order_review_evaluate(store=store, order_ids=[fourth.pk], now=NOW + timedelta(minutes=15))

    assert (result.raised, result.updated) == (1, 3)
    assert _status(fourth) == "on_hold"
    assert Case.objects.get(order=orders[0]).facts["sibling_order_ids"] == [
        orders[1].pk,
        orders[2].pk,
        fourth.pk,
    ]


@pytest.mark.django_db
def test_an_order_a_reviewer_released_is_not_held_again_for_the_same_reason_but_is_for_a_new_one(store):
    flagged = _order(store, street="", district="")
    order_review_evaluate(store=store, now=NOW)
    # A reviewer confirmed the address with the buyer and released the order.
    reviewer = _reviewer(store)
    case_transition(case=Case.objects.get(order=flagged), to_status="resolved", resolution="no_action",
                    actor=reviewer, now=NOW)  # fmt: skip

    order_review_evaluate(store=store, now=NOW + timedelta(hours=1))
    assert _status(flagged) == "awaiting_shipment"
    assert Case.objects.filter(order=flagged).count() == 1

    Order.objects.filter(pk=flagged.pk).update(payment_flagged=True)
    order_review_evaluate(store=store, order_ids=[flagged.pk], now=NOW + timedelta(hours=2))
    assert _status(flagged) == "on_hold"
    assert Case.objects.filter(order=flagged, status="new").get().facts["reasons"] == [
        "vague_address", "payment_flagged",
    ]  # fmt: skip


@pytest.mark.django_db
def test_addresses_compare_without_case_or_whitespace_and_a_missing_street_matches_nothing():
    key = address_key(street="12  Jalan SS2/55", district="SS2", city="Petaling Jaya", postal_code="47300")
    assert key == address_key(
        street="12 jalan ss2/55 ", district=" ss2", city="PETALING JAYA", postal_code="47300"
    )
    assert key != address_key(
        street="12 Jalan SS2/55", district="SS2", city="Petaling Jaya", postal_code="47301"
    )
    assert address_key(street=" ", district="SS2", city="Petaling Jaya", postal_code="47300") is None


@pytest.mark.django_db
def test_a_live_session_of_2000_orders_is_read_in_a_bounded_number_of_queries(
    store, django_assert_max_num_queries
):
    session = make_live_session(store=store, started_at=T0)
    template = _order(store, session)
    fields = {
        f.attname: getattr(template, f.attname) for f in Order._meta.concrete_fields if f.attname != "id"
    }
    Order.objects.bulk_create(
        Order(**{**fields, "platform_order_id": f"LIVE{i:05d}", "street": f"{i // 3 if i < 30 else i} Jalan Ria",
                 "placed_at": T0 + timedelta(seconds=i)})
        for i in range(1999)
    )  # fmt: skip

    with django_assert_max_num_queries(10 + 30 * 11):
        first = order_review_evaluate(store=store, now=NOW)
    with django_assert_max_num_queries(10):
        again = order_review_evaluate(store=store, now=NOW)

    assert (first.evaluated, first.raised) == (2000, 30)
    assert (again.raised, again.updated) == (0, 0)


@pytest.mark.django_db
def test_the_storefront_hears_of_each_hold_and_release(store):
    from cases.models import StorefrontEvent

    order, case = _held(store)
    reviewer = _reviewer(store)
    case_transition(case=case, to_status="resolved", resolution="no_action", actor=reviewer, now=NOW)
    case_transition(case=case, to_status="in_progress", actor=reviewer, now=NOW + timedelta(minutes=1))
    case_transition(
        case=case,
        to_status="resolved",
        resolution="cancelled",
        actor=reviewer,
        now=NOW + timedelta(minutes=2),
    )

    events = [
        (e.kind, e.payload["order"]["status"])
        for e in StorefrontEvent.objects.filter(kind__startswith="order.").order_by("pk")
    ]
    assert events == [
        ("order.held", "on_hold"),
        ("order.released", "awaiting_shipment"),
        ("order.held", "on_hold"),
        ("order.released", "cancelled"),
    ]
    assert all(e.payload["order"]["platform_order_id"] == order.platform_order_id
               for e in StorefrontEvent.objects.filter(kind__startswith="order."))  # fmt: skip
