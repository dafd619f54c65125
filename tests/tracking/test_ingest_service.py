from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction

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
def test_a_crash_after_the_insert_rolls_back_and_a_retry_ends_in_exactly_the_right_state(
    store, killed_after_the_events_insert
):
    shipment = make_shipment(order=make_order(store=store))

    with killed_after_the_events_insert(), pytest.raises(RuntimeError):
        events_ingest_many(items=[(shipment.pk, shipment.tracking_number, HISTORY)])
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 0
    assert Shipment.objects.get(pk=shipment.pk).status == "Pending"

    result = events_ingest_many(items=[(shipment.pk, shipment.tracking_number, HISTORY)])

    shipment.refresh_from_db()
    assert result.new == 5
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5
    assert (shipment.status, shipment.delivered_at) == ("Delivered", HISTORY[4].checkpoint_at)


# PostgreSQL stages a large batch through COPY and sends a small one as arrays: every test of one call
# over many shipments runs both ways there (SQLite has one path).
PATHS = pytest.mark.parametrize("copy", [False, True], ids=["small batch", "copy"])


@pytest.fixture
def path(request, monkeypatch):
    if request.node.callspec.params["copy"] and connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    monkeypatch.setattr(services, "COPY_THRESHOLD", 1 if request.node.callspec.params["copy"] else 10**9)


@pytest.mark.django_db
@PATHS
def test_one_call_for_many_shipments_is_as_idempotent_as_one_for_one(store, path, copy):
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
@PATHS
def test_one_call_for_many_shipments_sets_each_summary_estimate_and_owner_share(store, path, copy):
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


def _summary(shipment: Shipment) -> tuple:
    shipment.refresh_from_db()
    return (shipment.status, shipment.accepted_at, shipment.delivered_at)


@pytest.mark.django_db
def test_an_acceptance_scan_counts_as_first_acceptance_whenever_it_arrives(shipment):
    events_ingest(shipment=shipment, events=[_event(14, "InTransit_003")])
    assert shipment.accepted_at == T0 + timedelta(hours=14)  # no acceptance scan yet: the first progress

    events_ingest(shipment=shipment, events=[_event(2, "InTransit_002")])  # late, and earlier
    assert shipment.accepted_at == T0 + timedelta(hours=2)

    other = make_shipment(order=make_order(store=shipment.store))
    events_ingest(shipment=other, events=[_event(1, "InTransit_003"), _event(30, "OutForDelivery_001")])
    events_ingest(
        shipment=other, events=[_event(5, "InTransit_002")]
    )  # the carrier's clock: after a hub scan
    assert other.accepted_at == T0 + timedelta(hours=5)
    assert other.status == "OutForDelivery"


@pytest.mark.django_db
def test_an_older_progress_scan_arriving_late_moves_only_an_acceptance_taken_from_progress(shipment):
    events_ingest(shipment=shipment, events=[_event(2, "InTransit_002"), _event(14, "InTransit_003")])
    events_ingest(shipment=shipment, events=[_event(1, "InTransit_007")])
    assert shipment.accepted_at == T0 + timedelta(hours=2)  # the acceptance scan stays the appeal truth

    other = make_shipment(order=make_order(store=shipment.store))
    events_ingest(shipment=other, events=[_event(14, "InTransit_003")])
    events_ingest(shipment=other, events=[_event(10, "InTransit_007")])
    assert other.accepted_at == T0 + timedelta(hours=10)


@pytest.mark.django_db
def test_a_parcel_delivered_again_after_an_exception_keeps_its_first_delivery_scan(shipment):
    events_ingest(shipment=shipment, events=HISTORY)
    assert _summary(shipment)[2] == T0 + timedelta(hours=34)

    events_ingest(shipment=shipment, events=[_event(40, "Exception_010", "Returned by the consignee")])
    assert _summary(shipment) == ("Exception", T0 + timedelta(hours=2), None)

    events_ingest(shipment=shipment, events=[_event(50, "Delivered_001", "Delivered again", location="Door")])
    assert _summary(shipment) == ("Delivered", T0 + timedelta(hours=2), T0 + timedelta(hours=34))

    events_ingest(
        shipment=shipment, events=[_event(33, "Delivered_001", "Locker", location="Locker")]
    )  # late
    assert _summary(shipment) == ("Delivered", T0 + timedelta(hours=2), T0 + timedelta(hours=33))


@pytest.mark.django_db
def test_a_parcel_that_is_no_longer_delivered_resumes_polling_at_once(shipment):
    events_ingest(shipment=shipment, events=HISTORY, now=T0 + timedelta(hours=35))
    shipment.refresh_from_db()
    assert shipment.next_poll_at is None

    later = T0 + timedelta(hours=41)
    events_ingest(
        shipment=shipment, events=[_event(40, "Exception_010", "Returned by the consignee")], now=later
    )
    shipment.refresh_from_db()
    assert (shipment.status, shipment.next_poll_at) == ("Exception", later)

    events_ingest(shipment=shipment, events=[_event(39, "InTransit_003", "Late hub scan")], now=later)
    shipment.refresh_from_db()
    assert shipment.next_poll_at == later  # still polling: nothing delivered it again

    events_ingest(shipment=shipment, events=[_event(50, "Delivered_001", "Delivered again")], now=later)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.next_poll_at) == ("Delivered", None)


@pytest.mark.django_db
def test_a_rebuild_that_finds_a_parcel_no_longer_delivered_resumes_its_polling(shipment):
    events_ingest(shipment=shipment, events=[*HISTORY, _event(40, "Exception_010", "Returned")])
    Shipment.objects.filter(pk=shipment.pk).update(status="Delivered", next_poll_at=None)  # a stale summary
    now = T0 + timedelta(days=3)

    services.shipments_summary_refresh(shipment_ids=[shipment.pk], now=now)

    shipment.refresh_from_db()
    assert (shipment.status, shipment.next_poll_at) == ("Exception", now)


@pytest.mark.django_db
@PATHS
def test_summaries_built_batch_by_batch_equal_summaries_rebuilt_from_all_events(store, path, copy):
    """Whatever order and grouping the events come in, the stored summary is the one their facts give."""
    rng = random.Random(20261202)
    subtags = [
        "InfoReceived_001", "InTransit_002", "InTransit_003", "InTransit_007", "OutForDelivery_001",
        "AvailableForPickup_001", "AttemptFail_002", "Exception_004", "Delivered_001",
    ]  # fmt: skip
    shipments = [make_shipment(order=make_order(store=store)) for _ in range(40)]
    histories = {
        s.pk: [
            _event(rng.uniform(0, 100), rng.choice(subtags), location=f"Hub {i}")
            for i in range(rng.randint(1, 9))
        ]
        for s in shipments
    }
    for _ in range(6):
        items = []
        for s in shipments:
            offered = [event for event in histories[s.pk] if rng.random() < 0.35]
            rng.shuffle(offered)
            if offered:
                items.append((s.pk, s.tracking_number, offered))
        events_ingest_many(items=items, now=T0)
    events_ingest_many(items=[(s.pk, s.tracking_number, histories[s.pk]) for s in shipments], now=T0)

    fields = (
        "pk", "status", "substatus", "accepted_at", "last_event_at", "last_progress_at", "delivered_at", "next_poll_at",
    )  # fmt: skip
    built = list(Shipment.objects.filter(store=store).order_by("pk").values_list(*fields))
    services.shipments_summary_refresh(shipment_ids=[s.pk for s in shipments], now=T0)
    rebuilt = list(Shipment.objects.filter(store=store).order_by("pk").values_list(*fields))
    assert built == rebuilt
    assert {row[1] for row in built} >= {"Delivered", "InTransit"}  # the mix reached the interesting branches


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers at once need PostgreSQL")
def test_two_workers_ingesting_one_parcel_at_once_both_land_in_its_summary(store):
    shipment = make_shipment(order=make_order(store=store))
    events_ingest(shipment=shipment, events=HISTORY[:2])
    item = (shipment.pk, shipment.tracking_number)
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def newer_first():  # ingests the newer checkpoint and holds its transaction open
        try:
            with transaction.atomic():
                events_ingest_many(items=[(*item, [HISTORY[3]])])
                holding.set()
                release.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def older_meanwhile():  # an older checkpoint for the same parcel, from another worker
        try:
            events_ingest_many(items=[(*item, [HISTORY[2]])])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=newer_first)
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=older_meanwhile)
    second.start()
    _wait_for_a_lock_wait()
    release.set()
    first.join(10)
    second.join(10)

    assert not errors
    shipment.refresh_from_db()
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 4
    assert (shipment.status, shipment.last_event_at) == ("OutForDelivery", HISTORY[3].checkpoint_at)
    assert shipment.last_progress_at == HISTORY[3].checkpoint_at


def _wait_for_a_lock_wait(timeout: float = 10.0) -> None:
    """Until some other session of this database waits on a row lock (the second worker's UPDATE)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second worker never waited for the first")
