from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import connection as db
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Response

from tests.concurrency import at_once
from tests.factories import make_order, make_shipment, make_store
from tracking.ingest import POLL_LEASE, shipments_claim_for_poll, tracking_sync
from tracking.models import Shipment, TrackingConnection, TrackingEvent
from tracking.tasks import sync_due


def _connection(store, provider="simulator", **fields) -> TrackingConnection:
    return TrackingConnection.objects.create(
        store=store, provider=provider, webhook_secret="s" * 16, **fields
    )


def _shipments(store, n: int, **fields) -> list[Shipment]:
    return [make_shipment(order=make_order(store=store), next_poll_at=timezone.now() - timedelta(minutes=1), **fields)
            for _ in range(n)]  # fmt: skip


@pytest.mark.django_db
def test_a_polling_round_ingests_due_shipments_and_delivered_ones_stop_polling(store):
    # An anchor well in the past: every simulated delivery has happened by now, whatever the time of day.
    connection = _connection(
        store, credentials={"scenario": "delivered", "seed": "7", "anchor": "2026-01-05T00:00:00+00:00"}
    )
    shipments = _shipments(store, 3)

    result = tracking_sync(connection=connection)

    assert result.polled == 3
    assert result.ingest.new == TrackingEvent.objects.count() > 0
    for shipment in Shipment.objects.filter(pk__in=[s.pk for s in shipments]):
        assert shipment.status == "Delivered"
        assert shipment.next_poll_at is None
    connection.refresh_from_db()
    assert connection.last_sync_at is not None
    assert connection.events_new == result.ingest.new


@pytest.mark.django_db
def test_parcels_still_moving_are_polled_again_later_and_a_second_round_adds_nothing(store):
    connection = _connection(store, credentials={"scenario": "in_transit", "seed": "7"})
    shipment = _shipments(store, 1)[0]

    first = tracking_sync(connection=connection)
    shipment.refresh_from_db()
    assert shipment.status == "InTransit"
    assert shipment.next_poll_at > timezone.now() + timedelta(hours=1)

    Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=timezone.now())
    second = tracking_sync(connection=connection)
    assert first.ingest.new > 0
    assert (second.polled, second.ingest.new) == (1, 0)


@pytest.mark.django_db
def test_shipments_not_yet_due_and_other_stores_are_not_polled(store, other_store):
    connection = _connection(store)
    make_shipment(order=make_order(store=store), next_poll_at=timezone.now() + timedelta(hours=1))
    _shipments(other_store, 2)

    assert tracking_sync(connection=connection).polled == 0


@pytest.mark.django_db
def test_a_permanent_provider_error_is_recorded_on_the_connection_and_stops_polling(
    store, httpserver: HTTPServer
):
    httpserver.expect_request("/gettrackinfo", method="POST").respond_with_json(
        {"code": -18010001, "data": {"errors": [{"code": -18010001, "message": "Invalid access key."}]}},
        status=401,
    )
    connection = _connection(
        store, provider="17track", credentials={"api_key": "wrong"}, base_url=httpserver.url_for("")
    )
    shipment = _shipments(store, 1)[0]

    result = tracking_sync(connection=connection)

    connection.refresh_from_db()
    assert result.polled == 0
    assert connection.pull_enabled is False
    assert connection.last_error and connection.last_error_at
    shipment.refresh_from_db()
    assert shipment.next_poll_at <= timezone.now()  # polled again as soon as a human fixes the key


@pytest.mark.django_db
def test_a_retryable_provider_error_backs_off_exponentially(store, httpserver: HTTPServer):
    httpserver.expect_request("/gettrackinfo", method="POST").respond_with_data("upstream down", status=500)
    connection = _connection(
        store, provider="17track", credentials={"api_key": "k"}, base_url=httpserver.url_for("")
    )
    shipment = _shipments(store, 1)[0]

    before = timezone.now()
    tracking_sync(connection=connection, max_batches=1)
    shipment.refresh_from_db()
    first_delay = shipment.next_poll_at - before
    Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=timezone.now())
    tracking_sync(connection=connection, max_batches=1)
    shipment.refresh_from_db()

    connection.refresh_from_db()
    assert connection.pull_enabled is True
    assert shipment.poll_failures == 2
    assert shipment.next_poll_at - timezone.now() > first_delay * 1.5


@pytest.mark.django_db
def test_a_claim_leases_shipments_so_a_dead_worker_releases_them(store):
    connection = _connection(store)
    _shipments(store, 3)
    now = timezone.now()

    claimed = shipments_claim_for_poll(connection=connection, limit=10, now=now)
    again = shipments_claim_for_poll(connection=connection, limit=10, now=now)
    after_lease = shipments_claim_for_poll(connection=connection, limit=10, now=now + POLL_LEASE)

    assert (len(claimed), len(again), len(after_lease)) == (3, 0, 3)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(db.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL")
def test_two_workers_claiming_at_once_never_get_the_same_shipment():
    store = make_store(code="claims")
    connection = _connection(store)
    _shipments(store, 60)

    def claim() -> list[int]:
        return [s.pk for s in shipments_claim_for_poll(connection=connection, limit=40, now=timezone.now())]

    claims = at_once(claim, claim)

    assert not set(claims[0]) & set(claims[1])
    assert len(claims[0]) + len(claims[1]) == 60


@pytest.mark.django_db
def test_a_round_polls_every_due_kdniao_parcel_not_a_fixed_number_of_requests(store, httpserver: HTTPServer):
    # Kdniao's instant query takes one number per request; a round is bounded by time and quota, not by a
    # count of batches (it once stopped after 25 requests: 300 parcels an hour).
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx").respond_with_json(
        {"EBusinessID": "1", "Success": True, "State": "2", "Traces": []}
    )
    connection = _connection(
        store, provider="kdniao", base_url=httpserver.url_for("").rstrip("/"),
        credentials={"api_key": "k", "business_id": "1", "requests_per_second": 1000},
    )  # fmt: skip
    _shipments(store, 100, carrier="yto")

    result = tracking_sync(connection=connection)

    assert (result.polled, result.batches) == (100, 3)  # claimed 40 at a time
    assert len(httpserver.log) == 100
    assert not Shipment.objects.filter(next_poll_at__lte=timezone.now()).exists()


@pytest.mark.django_db
def test_a_rounds_time_is_shared_so_a_slow_connection_cannot_starve_the_next(
    store, other_store, httpserver: HTTPServer, monkeypatch
):
    def slow_gettrackinfo(request):
        time.sleep(0.4)
        return Response(json.dumps({"code": 0, "data": {"accepted": [], "rejected": []}}))

    httpserver.expect_request("/gettrackinfo").respond_with_handler(slow_gettrackinfo)
    for each in (store, other_store):
        _connection(each, provider="17track", credentials={"api_key": f"k-{each.pk}", "requests_per_second": 1000},
                    base_url=httpserver.url_for("").rstrip("/"))  # fmt: skip
        _shipments(each, 120)
    monkeypatch.setattr("tracking.tasks.SYNC_ROUND_SECONDS", 0.5)

    assert sync_due() == 80  # one batch of 40 each: past its share after it, and never none

    for each in (store, other_store):
        due = Shipment.objects.filter(store=each, next_poll_at__lte=timezone.now()).count()
        assert due == 80  # the rest wait for the next round


@pytest.mark.django_db
def test_a_parcel_silent_for_30_days_stops_polling_and_news_by_push_starts_it_again(store, other_store):
    from tracking.services import EventData, events_ingest

    long_ago = (timezone.now() - timedelta(days=60)).isoformat()  # its last scan: some 57 days ago
    _connection(store, credentials={"scenario": "stalled", "seed": "7", "anchor": long_ago})
    _connection(other_store, credentials={"scenario": "stalled", "seed": "7"})  # stalled, but recently
    [silent] = _shipments(store, 1)
    [recent] = _shipments(other_store, 1)

    sync_due()

    silent.refresh_from_db()
    recent.refresh_from_db()
    assert silent.last_event_at < timezone.now() - timedelta(days=30)
    assert silent.next_poll_at is None  # nothing new from the carrier in 30 days: stopped
    assert recent.next_poll_at is not None

    now = timezone.now()
    event = EventData(now - timedelta(hours=1), "InTransit", "InTransit_003", "17track", "", "Arrived", "Hub")
    events_ingest(shipment=silent, events=[event], now=now)
    silent.refresh_from_db()
    assert silent.next_poll_at == now  # news again: polled again


@pytest.mark.django_db
def test_a_poll_gives_the_provider_the_buyers_phone_for_the_carriers_that_check_it(
    store, httpserver: HTTPServer
):
    from tests.tracking.providers.test_kuaidi100 import _query_handler

    seen: list[dict] = []
    httpserver.expect_request("/poll/query.do").respond_with_handler(_query_handler(seen))
    connection = _connection(
        store, "kuaidi100", credentials={"api_key": "k", "customer": "c"},
        base_url=httpserver.url_for("/").rstrip("/"),
    )  # fmt: skip
    order = make_order(store=store, buyer_phone="+86 139 0000 1234")
    make_shipment(order=order, carrier="sf-express", next_poll_at=timezone.now() - timedelta(minutes=1))
    make_shipment(order=order, carrier="yto", next_poll_at=timezone.now() - timedelta(minutes=1))

    assert tracking_sync(connection=connection).polled == 2

    params = sorted((json.loads(form["param"]) for form in seen), key=lambda p: p["com"])
    assert [(p["com"], p.get("phone")) for p in params] == [("shunfeng", "13900001234"), ("yuantong", None)]
