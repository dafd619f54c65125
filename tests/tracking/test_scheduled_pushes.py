"""The simulator's scheduled pushes: checkpoints still to come, received as the carrier's pushes when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection as db

from tests.concurrency import at_once
from tests.factories import make_order, make_shipment
from tracking.ingest import deliveries_process
from tracking.models import ScheduledPush, Shipment, TrackingConnection, TrackingEvent, WebhookDelivery
from tracking.providers.base import ParsedTracking
from tracking.scheduled import REPORT_DELAY, scheduled_pushes_add, scheduled_pushes_send
from tracking.services import EventData
from tracking.tasks import send_scheduled_pushes

NOW = datetime(2026, 11, 12, 6, 30, tzinfo=UTC)
NUMBER = "630001112223"


def checkpoint(hours: float, subtag: str, text: str) -> EventData:
    return EventData(
        checkpoint_at=NOW + timedelta(hours=hours),
        tag=subtag.split("_", 1)[0],
        subtag=subtag,
        source="simulator",
        raw_code=subtag,
        raw_text=text,
        location="Johor Bahru, Johor",
    )


ONWARD = [
    checkpoint(1, "InTransit_003", "Arrived at Johor Bahru DP"),
    checkpoint(14, "OutForDelivery_001", "Out for delivery"),
    checkpoint(17, "Delivered_001", "Delivered"),
]


@pytest.fixture
def simulator(store) -> TrackingConnection:
    return TrackingConnection.objects.create(
        store=store, provider="simulator", webhook_secret="s" * 24, pull_enabled=False
    )


@pytest.fixture
def parcel(store) -> Shipment:
    return make_shipment(
        order=make_order(store=store), tracking_number=NUMBER, booked_at=NOW - timedelta(hours=5)
    )


def schedule(connection: TrackingConnection) -> int:
    return scheduled_pushes_add(
        connection=connection, trackings=[ParsedTracking(NUMBER, "jtexpress-my", ONWARD)]
    )


def statuses(shipment: Shipment) -> tuple[str, datetime | None]:
    shipment.refresh_from_db()
    return shipment.status, shipment.last_event_at


@pytest.mark.django_db
def test_each_checkpoint_arrives_as_a_signed_push_only_once_it_is_due(simulator, parcel):
    assert schedule(simulator) == 3

    sent_early = scheduled_pushes_send(now=NOW)
    sent_at_1h = scheduled_pushes_send(now=NOW + timedelta(hours=1))  # the scan, not yet its report
    sent_at_report = scheduled_pushes_send(now=NOW + timedelta(hours=1) + REPORT_DELAY)
    deliveries_process(now=NOW + timedelta(hours=2))

    assert (sent_early, sent_at_1h, sent_at_report) == (0, 0, 1)
    assert statuses(parcel) == ("InTransit", ONWARD[0].checkpoint_at)
    # Received through the webhook's own path: a verified, stored and processed raw delivery.
    delivery = WebhookDelivery.objects.get()
    assert (delivery.connection, delivery.status, delivery.tracking_numbers) == (
        simulator,
        "processed",
        NUMBER,
    )
    simulator.refresh_from_db()
    assert simulator.signatures_rejected == 0
    assert ScheduledPush.objects.count() == 2


@pytest.mark.django_db
def test_the_task_sends_everything_due_and_the_parcel_ends_delivered(simulator, parcel):
    schedule(simulator)

    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        first = send_scheduled_pushes()
        again = send_scheduled_pushes()
        deliveries_process()

    assert (first, again) == (3, 0)
    assert not ScheduledPush.objects.exists()
    assert statuses(parcel) == ("Delivered", ONWARD[-1].checkpoint_at)
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 3


@pytest.mark.django_db
def test_a_crash_halfway_sends_nothing_and_the_retry_sends_each_push_once(simulator, parcel):
    schedule(simulator)
    received = 0

    def crash_on_the_second_insert(execute, sql, params, many, context):
        nonlocal received
        result = execute(sql, params, many, context)
        if f"INSERT INTO {WebhookDelivery._meta.db_table}" in sql:
            received += 1
            if received == 2:
                raise RuntimeError("worker killed after its second push")
        return result

    later = NOW + timedelta(days=1)
    with db.execute_wrapper(crash_on_the_second_insert), pytest.raises(RuntimeError):
        scheduled_pushes_send(now=later)
    assert (WebhookDelivery.objects.count(), ScheduledPush.objects.count()) == (0, 3)

    assert scheduled_pushes_send(now=later) == 3
    deliveries_process(now=later)
    assert WebhookDelivery.objects.count() == 3
    assert statuses(parcel) == ("Delivered", ONWARD[-1].checkpoint_at)


@pytest.mark.django_db
def test_a_switched_off_connection_s_pushes_wait_for_it(simulator, parcel):
    schedule(simulator)
    simulator.is_active = False
    simulator.save(update_fields=["is_active"])
    later = NOW + timedelta(days=1)

    assert scheduled_pushes_send(now=later) == 0
    assert ScheduledPush.objects.count() == 3

    simulator.is_active = True
    simulator.save(update_fields=["is_active"])
    assert scheduled_pushes_send(now=later) == 3


@pytest.mark.django_db
def test_pushes_are_scheduled_for_simulator_connections_only(store):
    aftership = TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret="s" * 24)

    with pytest.raises(ValueError, match="simulator connections only"):
        schedule(aftership)
    assert not ScheduledPush.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(db.vendor != "postgresql", reason="two workers at once need PostgreSQL")
def test_two_workers_sending_at_once_receive_each_push_once(simulator, parcel):
    many = [checkpoint(1 + i / 60, "InTransit_003", f"Scan {i}") for i in range(60)]
    scheduled_pushes_add(connection=simulator, trackings=[ParsedTracking(NUMBER, "jtexpress-my", many)])
    later = NOW + timedelta(days=1)

    def worker() -> int:
        return sum(iter(lambda: scheduled_pushes_send(now=later, limit=7), 0))

    sent = at_once(worker, worker)

    assert sum(sent) == 60
    assert WebhookDelivery.objects.count() == 60
    assert not ScheduledPush.objects.exists()


@pytest.mark.django_db
def test_the_admin_lists_the_pushes_still_to_come_and_lets_nobody_edit_them(admin_client, simulator, parcel):
    schedule(simulator)
    push = ScheduledPush.objects.first()

    listing = admin_client.get("/admin/tracking/scheduledpush/", {"q": NUMBER}).content.decode()
    page = admin_client.get(f"/admin/tracking/scheduledpush/{push.pk}/change/").content.decode()

    assert listing.count(NUMBER) >= 3
    assert "Arrived at Johor Bahru DP" in page
    assert (
        admin_client.post(f"/admin/tracking/scheduledpush/{push.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert ScheduledPush.objects.count() == 3


@pytest.mark.django_db
def test_the_connection_page_says_how_many_pushes_wait_and_links_to_them(admin_client, simulator, parcel):
    change = f"/admin/tracking/trackingconnection/{simulator.pk}/change/"
    assert "None waiting" in admin_client.get(change).content.decode()

    schedule(simulator)
    page = admin_client.get(change).content.decode()

    assert "3 waiting, the next due" in page
    assert f"/admin/tracking/scheduledpush/?connection__id__exact={simulator.pk}" in page
