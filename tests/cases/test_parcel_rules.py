from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from cases.engine import exceptions_sweep
from cases.models import CarrierPolicy, Case, CaseEvent, StorePolicy
from tests.concurrency import at_once
from tests.factories import make_order, make_shipment, make_store
from tracking.models import Shipment
from tracking.services import EventData, events_ingest

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # pickup booked
SECOND = timedelta(seconds=1)


def _event(at: datetime, subtag: str, text: str = "scan") -> EventData:
    return EventData(
        checkpoint_at=at, tag=subtag.split("_")[0], subtag=subtag, source="aftership", raw_text=text
    )


def _booked(store, carrier: str = "jtexpress-my") -> Shipment:
    shipment = make_shipment(order=make_order(store=store, placed_at=T0 - timedelta(hours=2)), carrier=carrier,
                             booked_at=T0, next_check_at=T0)  # fmt: skip
    return shipment


def _sweep_at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        return exceptions_sweep()


def _cases(shipment, type: str | None = None):
    cases = Case.objects.filter(shipment=shipment)
    return cases.filter(type=type) if type else cases


@pytest.mark.django_db
def test_pickup_overdue_fires_exactly_at_the_deadline_not_before_and_not_twice(store):
    shipment = _booked(store)

    _sweep_at(T0 + timedelta(hours=24) - SECOND)
    assert not _cases(shipment).exists()
    shipment.refresh_from_db()
    assert shipment.next_check_at == T0 + timedelta(hours=24)  # the sweeper comes back exactly then

    _sweep_at(T0 + timedelta(hours=24))
    _sweep_at(T0 + timedelta(hours=25))
    Shipment.objects.filter(pk=shipment.pk).update(next_check_at=T0 + timedelta(hours=26))
    _sweep_at(T0 + timedelta(hours=26))

    case = _cases(shipment, "pickup_overdue").get()
    assert case.opened_at == T0 + timedelta(hours=24)
    assert case.status == "new"
    assert case.first_contact_due_at == case.opened_at + timedelta(hours=24)
    assert CaseEvent.objects.filter(case=case, kind="raised").count() == 1


@pytest.mark.django_db
def test_pickup_overdue_resolves_itself_when_the_carrier_scans_the_parcel(store):
    shipment = _booked(store)
    _sweep_at(T0 + timedelta(hours=25))

    scan_at = T0 + timedelta(hours=26)
    with time_machine.travel(scan_at + timedelta(minutes=5), tick=False):
        events_ingest(shipment=shipment, events=[_event(scan_at, "InTransit_002", "Picked up")])
        exceptions_sweep()

    case = _cases(shipment, "pickup_overdue").get()
    assert (case.status, case.resolution) == ("resolved", "condition_cleared")
    kinds = list(case.events.values_list("kind", flat=True))
    assert kinds == ["raised", "condition_cleared", "resolved"]


@pytest.mark.django_db
def test_a_case_an_agent_took_over_is_flagged_instead_of_resolved(store, agent):
    shipment = _booked(store)
    _sweep_at(T0 + timedelta(hours=25))
    Case.objects.filter(shipment=shipment).update(assignee=agent, status="in_progress")

    scan_at = T0 + timedelta(hours=26)
    events_ingest(shipment=shipment, events=[_event(scan_at, "InTransit_002")], now=scan_at)
    _sweep_at(scan_at)

    case = _cases(shipment, "pickup_overdue").get()
    assert case.status == "in_progress"
    assert case.needs_attention is True
    assert case.events.filter(kind="condition_cleared").count() == 1


@pytest.mark.django_db
def test_stalled_in_transit_fires_12_hours_after_the_last_progress_and_clears_when_it_moves(store):
    shipment = _booked(store)
    accepted = T0 + timedelta(hours=3)
    events_ingest(shipment=shipment, events=[_event(accepted, "InTransit_002")], now=accepted)

    _sweep_at(accepted + timedelta(hours=12) - SECOND)
    assert not _cases(shipment, "stalled_in_transit").exists()
    _sweep_at(accepted + timedelta(hours=12))
    assert _cases(shipment, "stalled_in_transit").get().status == "new"

    moved = accepted + timedelta(hours=15)
    events_ingest(shipment=shipment, events=[_event(moved, "InTransit_003", "Arrived at hub")], now=moved)
    _sweep_at(moved)
    assert _cases(shipment, "stalled_in_transit").get().status == "resolved"


@pytest.mark.django_db
def test_no_update_fires_48_hours_after_the_last_event(store):
    shipment = _booked(store)
    accepted = T0 + timedelta(hours=3)
    events_ingest(shipment=shipment, events=[_event(accepted, "InTransit_002")], now=accepted)

    _sweep_at(accepted + timedelta(hours=48) - SECOND)
    assert not _cases(shipment, "no_update").exists()
    _sweep_at(accepted + timedelta(hours=48))
    assert _cases(shipment, "no_update").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("subtag", "case_type"),
    [
        ("AttemptFail_002", "delivery_failed"),
        ("Exception_007", "address_issue"),
        ("Exception_004", "customs_hold"),
        ("Exception_018", "customs_hold"),
        ("Exception_013", "lost"),
        ("Expired_001", "lost"),
        ("Exception_012", "damaged"),
        ("Exception_010", "returned_to_sender"),
        ("Exception_011", "returned_to_sender"),
    ],
)
def test_each_event_condition_raises_its_case_with_the_triggering_event(store, subtag, case_type):
    shipment = _booked(store)
    scans = [
        _event(T0 + timedelta(hours=3), "InTransit_002"),
        _event(T0 + timedelta(hours=30), subtag, "trouble"),
    ]
    now = T0 + timedelta(hours=30, minutes=1)
    events_ingest(shipment=shipment, events=scans, now=now)

    result = _sweep_at(now)
    _sweep_at(now + timedelta(minutes=1))

    case = _cases(shipment, case_type).get()
    assert result.raised_by_type == {case_type: 1}
    assert case.opened_at == T0 + timedelta(hours=30)
    assert list(case.trigger_events.values_list("subtag", flat=True)) == [subtag]


@pytest.mark.django_db
def test_a_delivered_parcel_resolves_its_failed_delivery_case(store):
    shipment = _booked(store)
    failed_at = T0 + timedelta(hours=30)
    events_ingest(shipment=shipment, events=[_event(T0 + timedelta(hours=3), "InTransit_002"),
                                             _event(failed_at, "AttemptFail_002")], now=failed_at)  # fmt: skip
    _sweep_at(failed_at)
    delivered_at = failed_at + timedelta(hours=20)
    events_ingest(shipment=shipment, events=[_event(delivered_at, "Delivered_001")], now=delivered_at)
    _sweep_at(delivered_at)

    case = _cases(shipment, "delivery_failed").get()
    assert case.status == "resolved"
    assert case.events.filter(kind="condition_cleared", message="The parcel was delivered.").exists()
    shipment.refresh_from_db()
    assert shipment.next_check_at is None


@pytest.mark.django_db
def test_store_thresholds_are_respected(store):
    StorePolicy.objects.create(store=store, pickup_hours=6)
    shipment = _booked(store)

    _sweep_at(T0 + timedelta(hours=6) - SECOND)
    assert not _cases(shipment).exists()
    _sweep_at(T0 + timedelta(hours=6))
    assert _cases(shipment, "pickup_overdue").exists()


@pytest.mark.django_db
def test_carrier_overrides_are_respected(store):
    CarrierPolicy.objects.create(store=store, carrier="slowpost", pickup_hours=48)
    slow, normal = _booked(store, carrier="slowpost"), _booked(store)

    _sweep_at(T0 + timedelta(hours=30))
    assert not _cases(slow).exists()
    assert _cases(normal, "pickup_overdue").exists()
    _sweep_at(T0 + timedelta(hours=48))
    assert _cases(slow, "pickup_overdue").exists()


@pytest.mark.django_db
def test_priority_rises_for_a_high_value_order(store):
    expensive = make_shipment(order=make_order(store=store, amount="999.00"), booked_at=T0, next_check_at=T0)
    cheap = _booked(store)

    _sweep_at(T0 + timedelta(hours=25))

    assert _cases(expensive).get().priority > _cases(cheap).get().priority


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"pickup_hours": 0}, "pickup_hours", "more than zero"),
        ({"restock_wait_days": 20, "refund_push_days": 15}, "restock_wait_days", "cannot be longer"),
        ({"batch_threshold": 1}, "batch_threshold", "at least 2"),
        ({"first_contact_hours": 100, "resolution_hours": 72}, "first_contact_hours", "cannot be due after"),
    ],
)
def test_a_threshold_that_makes_no_sense_is_refused_with_a_clear_message(store, fields, field, message):
    policy = StorePolicy(store=store, **fields)

    with pytest.raises(ValidationError) as caught:
        policy.full_clean()
    assert message in " ".join(caught.value.message_dict[field])
    with pytest.raises(IntegrityError), transaction.atomic():
        policy.save()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="racing sweepers need PostgreSQL")
def test_two_sweepers_at_once_raise_every_case_exactly_once():
    store = make_store(code="sweep-race")
    shipments = [_booked(store) for _ in range(60)]

    def sweep() -> None:
        exceptions_sweep(now=T0 + timedelta(hours=25), batch_size=7)

    at_once(sweep, sweep)

    assert Case.objects.filter(shipment__in=shipments, type="pickup_overdue").count() == 60
    assert CaseEvent.objects.filter(case__shipment__in=shipments, kind="raised").count() == 60


@pytest.mark.django_db
def test_a_booked_parcel_that_never_gets_a_single_event_is_still_caught(store):
    with time_machine.travel(T0, tick=False):
        shipment = make_shipment(
            order=make_order(store=store, placed_at=T0 - timedelta(hours=1)), booked_at=T0
        )

    _sweep_at(T0 + timedelta(minutes=1))
    _sweep_at(T0 + timedelta(hours=24))

    assert _cases(shipment, "pickup_overdue").count() == 1


@pytest.mark.django_db
def test_raising_a_case_costs_a_fixed_handful_of_queries_and_reads_no_policy_per_case(store):
    """A hub outage can make thousands of parcels due at once: each raised case is its race-guard lookup, its
    insert (in a savepoint, for the lost race) and its timeline entry; the store's policy (thresholds,
    proactive types) is read once per sweep, not once per case."""
    StorePolicy.objects.create(store=store, proactive_types=["stalled_in_transit"])
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def sweep_raising(count: int) -> list[str]:
        for _ in range(count):
            make_shipment(order=make_order(store=store), booked_at=now - timedelta(days=3))
        Shipment.objects.update(next_check_at=now - timedelta(minutes=1))
        with CaptureQueriesContext(connection) as queries:
            result = exceptions_sweep(now=now)
        assert result.raised_by_type == {"pickup_overdue": count}
        Shipment.objects.update(next_check_at=None)
        return [q["sql"] for q in queries.captured_queries]

    few, many = sweep_raising(5), sweep_raising(15)

    assert len(many) - len(few) <= 10 * 6
    assert sum("cases_storepolicy" in sql for sql in many) == 1  # the policy book, loaded once


@pytest.mark.django_db
def test_a_sweep_picks_each_proactive_template_once_and_every_raised_case_gets_its_message(store):
    from cases.message_defaults import default_templates_ensure
    from cases.models import BuyerMessage

    default_templates_ensure()
    StorePolicy.objects.create(store=store, proactive_types=["pickup_overdue"])
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for _ in range(12):
        make_shipment(order=make_order(store=store), booked_at=now - timedelta(days=3))
    Shipment.objects.update(next_check_at=now - timedelta(minutes=1))

    with CaptureQueriesContext(connection) as queries:
        result = exceptions_sweep(now=now)

    assert result.raised == 12
    messages = BuyerMessage.objects.filter(case__store=store)
    assert messages.count() == 12
    assert len({m.template_id for m in messages}) == 1  # the same choice for every case of the batch
    picks = [q for q in queries.captured_queries if 'FROM "cases_messagetemplate"' in q["sql"]]
    assert len(picks) == 1
    assert not [q for q in queries.captured_queries if 'FROM "portal_store"' in q["sql"]]
