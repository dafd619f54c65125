from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.factories import make_order, make_shipment
from tracking import services
from tracking.models import Shipment, TrackingEvent
from tracking.services import EventData, events_ingest, events_ingest_many

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)


def _event(hours: float, subtag: str, text: str = "", location: str = "Hub", **kw) -> EventData:
    return EventData(
        checkpoint_at=T0 + timedelta(hours=hours), tag=subtag.split("_")[0], subtag=subtag,
        source="aftership", raw_text=text or subtag, location=location, **kw,
    )  # fmt: skip


HISTORY = [
    _event(0, "InfoReceived_001"),
    _event(2, "InTransit_002", "Picked up"),
    _event(14, "InTransit_003", "Arrived at hub"),
    _event(30, "OutForDelivery_001", "Out for delivery"),
    _event(34, "Delivered_001", "Delivered"),
]


@pytest.fixture
def shipment(store):
    return make_shipment(order=make_order(store=store), next_poll_at=T0)


@pytest.mark.django_db
def test_the_summary_is_derived_from_the_events(shipment):
    now = T0 + timedelta(days=2)
    assert events_ingest(shipment=shipment, events=HISTORY, now=now) == 5

    assert shipment.status == "Delivered"
    assert shipment.substatus == "Delivered_001"
    assert shipment.accepted_at == T0 + timedelta(hours=2)
    assert shipment.last_event_at == T0 + timedelta(hours=34)
    assert shipment.last_progress_at == T0 + timedelta(hours=34)
    assert shipment.delivered_at == T0 + timedelta(hours=34)
    assert shipment.next_check_at == now
    assert shipment.next_poll_at is None  # delivered parcels stop polling


@pytest.mark.django_db
def test_a_thousand_replays_of_one_delivery_create_no_duplicates(shipment):
    events_ingest(shipment=shipment, events=HISTORY)
    for _ in range(1_000):
        assert events_ingest_many(items=[(shipment.pk, shipment.tracking_number, HISTORY)]).new == 0

    assert TrackingEvent.objects.filter(shipment=shipment).count() == len(HISTORY)


@pytest.mark.django_db
def test_a_full_trace_repush_of_50_old_checkpoints_adds_only_the_new_one(shipment):
    old = [_event(i, "InTransit_003", f"Scan {i}", location=f"Hub {i}") for i in range(50)]
    events_ingest(shipment=shipment, events=old)

    result = events_ingest_many(
        items=[(shipment.pk, shipment.tracking_number, [*old, _event(60, "OutForDelivery_001")])]
    )

    assert (result.new, result.duplicate) == (1, 50)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 51


@pytest.mark.django_db
def test_events_arriving_out_of_order_leave_the_summary_right(shipment):
    events_ingest(shipment=shipment, events=[HISTORY[4], HISTORY[3]])
    events_ingest(shipment=shipment, events=[HISTORY[1]])
    events_ingest(shipment=shipment, events=[HISTORY[2], HISTORY[0]])

    shipment.refresh_from_db()
    assert shipment.status == "Delivered"
    assert shipment.accepted_at == HISTORY[1].checkpoint_at
    assert shipment.last_event_at == HISTORY[4].checkpoint_at
    assert shipment.delivered_at == HISTORY[4].checkpoint_at


@pytest.mark.django_db
def test_a_late_event_never_moves_a_shipment_backwards(shipment):
    events_ingest(shipment=shipment, events=HISTORY[:3])
    assert shipment.status == "InTransit"

    events_ingest(shipment=shipment, events=[_event(40, "AttemptFail_002", "Nobody home")])
    events_ingest(
        shipment=shipment, events=[_event(20, "InTransit_007", "Departed hub")]
    )  # older, arrives late

    assert shipment.status == "AttemptFail"
    assert shipment.substatus == "AttemptFail_002"
    assert shipment.last_progress_at == T0 + timedelta(hours=20)


@pytest.mark.django_db
def test_unknown_codes_fall_back_and_keep_the_raw_code(shipment):
    events_ingest(
        shipment=shipment,
        events=[EventData(checkpoint_at=T0, tag="Teleported", subtag="Teleported_009", source="x", raw_code="T9",
                          raw_text="Beamed up")],
    )  # fmt: skip

    event = TrackingEvent.objects.get(shipment=shipment)
    assert (event.tag, event.subtag, event.raw_code, event.raw_text) == (
        "Pending",
        "Pending_001",
        "T9",
        "Beamed up",
    )


@pytest.mark.django_db(transaction=True)
def test_a_crash_after_the_insert_rolls_back_and_a_retry_ends_in_exactly_the_right_state(store, monkeypatch):
    shipment = make_shipment(order=make_order(store=store))
    real_refresh = services.shipments_summary_refresh

    def crash(**kwargs):
        raise RuntimeError("worker killed halfway")

    monkeypatch.setattr(services, "shipments_summary_refresh", crash)
    with pytest.raises(RuntimeError):
        events_ingest_many(items=[(shipment.pk, shipment.tracking_number, HISTORY)])
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 0
    assert Shipment.objects.get(pk=shipment.pk).status == "Pending"

    monkeypatch.setattr(services, "shipments_summary_refresh", real_refresh)
    result = events_ingest_many(items=[(shipment.pk, shipment.tracking_number, HISTORY)])

    shipment.refresh_from_db()
    assert result.new == 5
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5
    assert (shipment.status, shipment.delivered_at) == ("Delivered", HISTORY[4].checkpoint_at)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's")
def test_the_copy_path_is_as_idempotent_as_the_row_path(store, monkeypatch):
    monkeypatch.setattr(services, "COPY_THRESHOLD", 1)
    shipments = [make_shipment(order=make_order(store=store)) for _ in range(3)]
    items = [(s.pk, s.tracking_number, HISTORY) for s in shipments]

    first = events_ingest_many(items=items)
    again = events_ingest_many(items=items)

    assert (first.new, first.duplicate) == (15, 0)
    assert (again.new, again.duplicate) == (0, 15)
    assert set(
        Shipment.objects.filter(pk__in=[s.pk for s in shipments]).values_list("status", flat=True)
    ) == {"Delivered"}


@pytest.mark.django_db
@pytest.mark.parametrize("copy", [False, True], ids=["row path", "copy path"])
def test_one_call_for_many_shipments_sets_each_summary_estimate_and_owner_share(store, monkeypatch, copy):
    if copy and connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(services, "COPY_THRESHOLD", 1 if copy else 10**9)
    keep = datetime(2026, 11, 30).date()
    shipments = [make_shipment(order=make_order(store=store), expected_delivery=keep) for _ in range(4)]
    eta = datetime(2026, 11, 25).date()
    # The first two share one history; the third repeats the first (offered twice in one call); the fourth
    # gets a history that stops in transit.
    items = [
        (shipments[0].pk, shipments[0].tracking_number, HISTORY),
        (shipments[1].pk, shipments[1].tracking_number, HISTORY),
        (shipments[0].pk, shipments[0].tracking_number, HISTORY),
        (shipments[3].pk, shipments[3].tracking_number, HISTORY[:3]),
    ]
    result = events_ingest_many(
        items=items, owners=["a", "b", "c", "d"], now=T0 + timedelta(days=2),
        expected_delivery={shipments[0].pk: eta, shipments[2].pk: eta},
    )  # fmt: skip

    assert (result.new, result.duplicate) == (13, 5)
    assert {owner: (s.new, s.duplicate) for owner, s in result.per_owner.items()} == {
        "a": (5, 0),
        "b": (5, 0),
        "c": (0, 5),
        "d": (3, 0),
    }
    assert result.shipments_changed == {shipments[0].pk, shipments[1].pk, shipments[3].pk}
    rows = {s.pk: s for s in Shipment.objects.filter(pk__in=[s.pk for s in shipments])}
    assert [rows[s.pk].status for s in shipments] == ["Delivered", "Delivered", "Pending", "InTransit"]
    assert rows[shipments[3].pk].substatus == "InTransit_003"
    # The estimate lands with the summary (shipment 0) or alone (shipment 2, no new events); others keep theirs.
    assert [rows[s.pk].expected_delivery for s in shipments] == [eta, keep, eta, keep]
