"""The registration step: every new parcel registered once with each provider that pushes only registered
numbers, refusals asked again with backoff, polling waiting for them; tested against a fake 17TRACK."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection as db
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.concurrency import at_once
from tests.factories import make_order, make_shipment
from tracking.choices import RegistrationStatus
from tracking.models import Shipment, TrackingConnection, TrackingRegistration
from tracking.registration import (
    MAX_REFUSALS,
    PERMANENT_BACKOFF,
    REGISTRATION_LEASE,
    RETRY_BACKOFF,
    registrations_retry,
    registrations_run,
)
from tracking.tasks import register_due

API_KEY = "17track-key"


class Fake17Track:
    """17TRACK's `register`: registers numbers once ("already registered" after), refuses those in
    `refused` with their message; counts every number it was asked to register."""

    def __init__(self, *, refused: dict[str, str] | None = None) -> None:
        self.refused = dict(refused or {})
        self.registered: set[str] = set()
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def serve(self, httpserver: HTTPServer) -> None:
        httpserver.expect_request(
            "/register", method="POST", headers={"17token": API_KEY}
        ).respond_with_handler(self.register)

    def register(self, request: Request) -> Response:
        accepted, rejected = [], []
        with self.lock:
            for item in json.loads(request.data):
                number = item["number"]
                self.asked.append(number)
                if number in self.refused:
                    rejected.append(
                        {"number": number, "error": {"code": -18019903, "message": self.refused[number]}}
                    )
                elif number in self.registered:
                    error = {"code": -18019901, "message": "has been registered"}
                    rejected.append({"number": number, "error": error})
                else:
                    self.registered.add(number)
                    accepted.append({"origin": 1, "number": number, "carrier": 3011})
        body = {"code": 0, "data": {"accepted": accepted, "rejected": rejected}}
        return Response(json.dumps(body), content_type="application/json")


def _connection(store, httpserver: HTTPServer, **fields) -> TrackingConnection:
    fields.setdefault("credentials", {"api_key": API_KEY})
    return TrackingConnection.objects.create(
        store=store, provider="17track", webhook_secret="s" * 16, base_url=httpserver.url_for("/").rstrip("/"),
        **fields,
    )  # fmt: skip


def _shipments(store, n: int, **fields) -> list[Shipment]:
    return [make_shipment(order=make_order(store=store), tracking_number=f"RR{store.pk:02d}{i:07d}CN", **fields)
            for i in range(n)]  # fmt: skip


def _registration(shipment: Shipment) -> TrackingRegistration:
    return TrackingRegistration.objects.get(shipment=shipment)


@pytest.mark.django_db
def test_new_parcels_are_registered_once_in_batches_of_40_and_a_second_round_asks_nothing(
    store, httpserver: HTTPServer
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    shipments = _shipments(store, 45)

    first = registrations_run(connection=connection)

    assert (first.seeded, first.registered, first.refused) == (45, 45, 0)
    assert sorted(fake.asked) == sorted(s.tracking_number for s in shipments)
    assert [len(json.loads(request.data)) for request, _ in httpserver.log] == [40, 5]
    registration = _registration(shipments[0])
    assert registration.status == RegistrationStatus.REGISTERED
    assert registration.registered_at is not None and registration.next_attempt_at is None
    connection.refresh_from_db()
    assert connection.last_registered_at == registration.registered_at  # pushes are awaited from now on

    second = registrations_run(connection=connection)
    assert (second.seeded, second.registered) == (0, 0)
    assert len(fake.asked) == 45

    # A parcel shipped after: registered by the next round, with 17TRACK's carrier code where we have one.
    make_shipment(order=make_order(store=store), tracking_number="RR999999999CN", carrier="3011")
    assert registrations_run(connection=connection).registered == 1
    assert fake.asked[-1] == "RR999999999CN"
    assert json.loads(httpserver.log[-1][0].data) == [{"number": "RR999999999CN", "carrier": 3011}]


@pytest.mark.django_db
def test_delivered_and_old_parcels_other_stores_and_push_only_connections(
    store, other_store, httpserver: HTTPServer
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver, pull_enabled=False)  # push only: still registers
    [moving] = _shipments(store, 1)
    make_shipment(order=make_order(store=store), tracking_number="DELIVERED1", status="Delivered")
    old = make_shipment(order=make_order(store=store), tracking_number="LASTYEAR1", status="Exception")
    Shipment.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=365)
    )  # settled long ago
    _shipments(other_store, 2)

    result = registrations_run(connection=connection)

    assert (result.seeded, result.registered) == (1, 1)
    assert fake.asked == [moving.tracking_number]


@pytest.mark.django_db
def test_a_parcel_delivered_before_its_registration_came_round_is_not_sent(
    store, httpserver: HTTPServer, agent_client
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    moving, delivered = _shipments(store, 2)
    fake.refused = {moving.tracking_number: "Carrier can not be detected."}
    now = timezone.now()
    registrations_run(connection=connection, now=now)  # both seeded; `moving` refused, `delivered` done
    TrackingRegistration.objects.filter(shipment=delivered).update(
        status=RegistrationStatus.PENDING, registered_at=None, next_attempt_at=now
    )  # as if seeded just before the parcel's last scan
    Shipment.objects.filter(pk__in=[moving.pk, delivered.pk]).update(status="Delivered")
    asked = len(fake.asked)

    result = registrations_run(connection=connection, now=now + timedelta(hours=2))

    assert (result.registered, result.refused, len(fake.asked)) == (0, 0, asked)
    for shipment in (moving, delivered):
        registration = _registration(shipment)
        assert (registration.status, registration.next_attempt_at) == ("not_needed", None)
    page = agent_client.get(f"/tracking/shipments/{delivered.pk}/").content.decode()
    assert "Not needed: delivered before it was registered" in page


@pytest.mark.django_db
def test_inactive_connections_and_providers_that_need_no_registration_register_nothing(
    store, httpserver: HTTPServer
):
    Fake17Track().serve(httpserver)
    _connection(store, httpserver, is_active=False)
    simulator = TrackingConnection.objects.create(store=store, provider="simulator", webhook_secret="s" * 16)
    _shipments(store, 3)

    assert register_due() == 0
    assert registrations_run(connection=simulator).seeded == 0
    assert httpserver.log == []
    assert not TrackingRegistration.objects.exists()


@pytest.mark.django_db
def test_a_refused_number_is_asked_again_with_backoff_and_its_polls_wait_then_it_is_given_up(
    store, httpserver: HTTPServer
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    [refused, fine] = _shipments(store, 2)
    fake.refused = {refused.tracking_number: "Carrier can not be detected."}
    now = timezone.now()

    result = registrations_run(connection=connection, now=now)

    assert (result.registered, result.refused) == (1, 1)
    registration = _registration(refused)
    assert (registration.status, registration.attempts) == (RegistrationStatus.REFUSED, 1)
    assert registration.error == "-18019903: Carrier can not be detected."
    assert registration.next_attempt_at == now + timedelta(hours=1)
    refused.refresh_from_db()
    assert refused.next_poll_at == now + timedelta(hours=1)  # gettrackinfo would read nothing until then

    assert registrations_run(connection=connection, now=now + timedelta(minutes=59)).refused == 0
    backoffs = []
    for attempt in range(2, MAX_REFUSALS + 1):
        due = TrackingRegistration.objects.get(pk=registration.pk).next_attempt_at
        assert registrations_run(connection=connection, now=due).refused == 1
        registration.refresh_from_db()
        backoffs.append(registration.next_attempt_at and registration.next_attempt_at - due)
        assert registration.attempts == attempt
    assert backoffs == [timedelta(hours=h) for h in (2, 4, 8, 16)] + [None]  # the sixth refusal: given up
    refused.refresh_from_db()
    assert refused.next_poll_at == due + timedelta(hours=24)  # still polled, daily
    assert fake.asked.count(refused.tracking_number) == MAX_REFUSALS
    assert fake.asked.count(fine.tracking_number) == 1


@pytest.mark.django_db
def test_register_again_forgets_the_refusals_and_a_success_polls_the_parcel_at_once(
    store, httpserver: HTTPServer
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    [shipment] = _shipments(store, 1)
    fake.refused = {shipment.tracking_number: "Carrier can not be detected."}
    now = timezone.now()
    registrations_run(connection=connection, now=now)
    fake.refused = {}  # the carrier code was fixed

    later = now + timedelta(minutes=1)  # not yet due by the backoff (one hour)
    assert registrations_retry(ids=[_registration(shipment).pk], now=later) == 1
    registration = _registration(shipment)
    assert (registration.attempts, registration.next_attempt_at) == (0, later)

    assert registrations_run(connection=connection, now=later).registered == 1
    registration.refresh_from_db()
    assert (registration.status, registration.error, registration.next_attempt_at) == ("registered", "", None)
    shipment.refresh_from_db()
    assert shipment.next_poll_at == later  # its poll had waited for the registration: now at once


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "backoff", "requests"),
    [
        (500, {"code": -18010012, "data": {"errors": [{"code": -18010012, "message": "Internal error."}]}},
         RETRY_BACKOFF, 2),
        (401, {"code": -18010001, "data": {"errors": [{"code": -18010001, "message": "Invalid access key."}]}},
         PERMANENT_BACKOFF, 1),
    ],
)  # fmt: skip
def test_a_provider_error_is_recorded_and_the_batch_backed_off(
    store, httpserver: HTTPServer, status, body, backoff, requests, settings
):
    httpserver.expect_request("/register").respond_with_json(body, status=status)
    connection = _connection(store, httpserver, credentials={"api_key": API_KEY, "requests_per_second": 1000})
    shipments = _shipments(store, 45)
    now = timezone.now()

    result = registrations_run(connection=connection, now=now)

    assert result.registered == 0 and result.error
    connection.refresh_from_db()
    assert connection.last_error == result.error and connection.last_error_at == now
    assert connection.pull_enabled  # polling is the poller's to switch off
    assert TrackingRegistration.objects.filter(status=RegistrationStatus.PENDING).count() == 45
    backed_off = TrackingRegistration.objects.filter(next_attempt_at=now + backoff).count()
    assert backed_off == (45 if requests == 2 else 40)  # a permanent error leaves the next batch unasked
    assert TrackingRegistration.objects.filter(next_attempt_at=now).count() == 45 - backed_off
    # Retryable: each batch tried (5xx retried in the client first); permanent: the round stops at once.
    assert len({request.data for request, _ in httpserver.log}) == requests
    assert not TrackingRegistration.objects.filter(attempts__gt=0).exists()  # an error is no refusal
    assert {s.pk for s in shipments} == set(
        TrackingRegistration.objects.values_list("shipment_id", flat=True)
    )


@pytest.mark.django_db
def test_a_worker_killed_after_the_provider_answered_is_repeated_safely_after_the_lease(
    store, httpserver: HTTPServer
):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    shipments = _shipments(store, 3)
    now = timezone.now()

    def killed(execute, sql, params, many, context):
        if sql.startswith(f'UPDATE "{TrackingRegistration._meta.db_table}"') and "registered_at" in sql:
            raise RuntimeError("worker killed after the provider answered")
        return execute(sql, params, many, context)

    with db.execute_wrapper(killed), pytest.raises(RuntimeError):
        registrations_run(connection=connection, now=now)
    assert not TrackingRegistration.objects.filter(status=RegistrationStatus.REGISTERED).exists()
    assert registrations_run(connection=connection, now=now + timedelta(minutes=1)).registered == 0  # leased

    result = registrations_run(connection=connection, now=now + REGISTRATION_LEASE)

    assert result.registered == 3  # "already registered" is no refusal
    assert TrackingRegistration.objects.filter(status=RegistrationStatus.REGISTERED).count() == 3
    assert sorted(fake.asked) == sorted(2 * [s.tracking_number for s in shipments])


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_register_each_parcel_once(store, httpserver: HTTPServer):
    if db.vendor != "postgresql":
        pytest.skip("SKIP LOCKED claims need PostgreSQL")
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver, credentials={"api_key": API_KEY, "requests_per_second": 1000})
    _shipments(store, 200)

    def worker():
        return registrations_run(connection=TrackingConnection.objects.get(pk=connection.pk))

    results = at_once(worker, worker)

    assert sum(r.registered for r in results) == 200
    assert len(fake.asked) == len(set(fake.asked)) == 200
    assert TrackingRegistration.objects.filter(status=RegistrationStatus.REGISTERED).count() == 200


@pytest.mark.django_db
def test_seeding_goes_past_a_window_of_delivered_parcels(store, httpserver: HTTPServer, monkeypatch):
    fake = Fake17Track()
    fake.serve(httpserver)
    connection = _connection(store, httpserver)
    monkeypatch.setattr("tracking.registration.SEED_BATCH", 2)
    delivered = _shipments(store, 3, status="Delivered")
    moving = make_shipment(order=make_order(store=store), tracking_number="MOVING1")

    result = registrations_run(connection=connection)

    assert (result.seeded, result.registered) == (1, 1)
    assert fake.asked == ["MOVING1"]
    connection.refresh_from_db()
    assert connection.registration_cursor == moving.pk > max(s.pk for s in delivered)


@pytest.mark.django_db
def test_a_connection_told_not_to_register_parcels_registers_none(store, httpserver: HTTPServer):
    # A Kdniao account used for polling only: its subscription is billed and would serve pushes only.
    httpserver.expect_request("/api/dist").respond_with_json({"Success": True})
    connection = TrackingConnection.objects.create(
        store=store, provider="kdniao", webhook_secret="s" * 16, register_parcels=False,
        credentials={"api_key": "k", "business_id": "1"}, base_url=httpserver.url_for("/").rstrip("/"),
    )  # fmt: skip
    _shipments(store, 2, carrier="yto")

    assert register_due() == 0
    assert registrations_run(connection=connection).seeded == 0
    assert httpserver.log == []

    TrackingConnection.objects.filter(pk=connection.pk).update(register_parcels=True)
    assert register_due() == 2  # switched on: the parcels are subscribed
    assert len(httpserver.log) == 2


@pytest.mark.django_db
def test_a_refused_key_pauses_the_connections_registration_until_the_credentials_change(
    store, httpserver: HTTPServer
):
    from tracking.services import connection_credentials_apply

    body = {"code": -18010001, "data": {"errors": [{"code": -18010001, "message": "Invalid access key."}]}}
    httpserver.expect_request("/register").respond_with_json(body, status=401)
    connection = _connection(store, httpserver)
    _shipments(store, 2)
    now = timezone.now()

    registrations_run(connection=connection, now=now)
    connection.refresh_from_db()
    assert connection.registration_paused_until == now + PERMANENT_BACKOFF

    make_shipment(order=make_order(store=store), tracking_number="NEW1")  # due at once when seeded
    assert registrations_run(connection=connection, now=now + timedelta(minutes=1)).seeded == 0  # paused
    assert len(httpserver.log) == 1  # no request a minute while the key is refused

    connection_credentials_apply(connection, api_key="fixed-17track-key")  # as the admin saves it
    connection.save()
    httpserver.clear()
    fake = Fake17Track()
    httpserver.expect_request("/register").respond_with_handler(fake.register)
    result = registrations_run(connection=connection, now=now + timedelta(minutes=2))
    assert (result.seeded, result.registered) == (1, 1)  # the backed-off batch waits for its hour
    assert fake.asked == ["NEW1"]


@pytest.mark.django_db
def test_a_kuaidi100_connection_subscribes_new_parcels_with_its_own_webhook_url(
    store, httpserver: HTTPServer
):
    from urllib.parse import parse_qs

    seen: list[dict] = []

    def subscribe(request: Request) -> Response:
        seen.append(json.loads(parse_qs(request.get_data(as_text=True))["param"][0]))
        return Response(json.dumps({"result": True, "returnCode": "200", "message": "提交成功"}))

    httpserver.expect_request("/poll", method="POST").respond_with_handler(subscribe)
    connection = TrackingConnection.objects.create(
        store=store, provider="kuaidi100", webhook_secret="salt-0123456789", credentials={"api_key": "k100"},
        base_url=httpserver.url_for("/").rstrip("/"), pull_enabled=False,
    )  # fmt: skip
    [shipment] = _shipments(store, 1, carrier="zto")

    assert registrations_run(connection=connection).registered == 1

    [param] = seen
    assert (param["company"], param["number"]) == ("zhongtong", shipment.tracking_number)
    assert param["parameters"]["callbackurl"] == connection.webhook_url
    assert param["parameters"]["salt"] == "salt-0123456789"
    assert _registration(shipment).status == RegistrationStatus.REGISTERED


@pytest.mark.django_db
def test_a_parcel_the_provider_stopped_monitoring_is_registered_again_later(store):
    from tests.tracking.providers.test_kuaidi100 import form_body, param
    from tracking.ingest import delivery_receive
    from tracking.tasks import process_deliveries

    connection = TrackingConnection.objects.create(
        store=store, provider="kuaidi100", webhook_secret="connection-salt-xyz", credentials={"api_key": "k"},
        pull_enabled=False,
    )  # fmt: skip
    moving = make_shipment(order=make_order(store=store), carrier="yto", tracking_number="YT7500000000123")
    now = timezone.now()
    TrackingRegistration.objects.create(
        connection=connection, shipment=moving, status="registered", registered_at=now, next_attempt_at=None
    )
    document = json.loads(param())
    document.update(status="abort", message="3天查询无记录")
    body = form_body(json.dumps(document, ensure_ascii=False))

    delivery_receive(connection=connection, body=body, headers={})
    assert _registration(moving).status == "registered"  # stored, not processed yet

    process_deliveries()

    registration = _registration(moving)
    assert (registration.status, registration.attempts) == ("stopped", 1)
    assert registration.error == "3天查询无记录"  # Kuaidi100's own words, under the translated status
    assert now + timedelta(minutes=59) < registration.next_attempt_at < now + timedelta(hours=1, minutes=5)
    # The same push again (a redelivery) changes nothing more.
    delivery_receive(connection=connection, body=body, headers={})
    process_deliveries()
    assert _registration(moving).attempts == 1


@pytest.mark.django_db
def test_a_stop_leaves_delivered_parcels_other_stores_and_other_connections_alone(
    store, other_store, httpserver
):
    from tracking.registration import registrations_stopped

    connection = _connection(store, httpserver)
    other = _connection(other_store, httpserver)
    delivered = make_shipment(order=make_order(store=store), tracking_number="N1", status="Delivered")
    elsewhere = make_shipment(order=make_order(store=other_store), tracking_number="N1")
    for owner, shipment in ((connection, delivered), (other, elsewhere)):
        TrackingRegistration.objects.create(
            connection=owner, shipment=shipment, status="registered", registered_at=timezone.now(),
            next_attempt_at=None,
        )  # fmt: skip

    assert registrations_stopped(connection=connection, reasons={"N1": "stopped"}, now=timezone.now()) == 0
    assert set(TrackingRegistration.objects.values_list("status", flat=True)) == {"registered"}


@pytest.mark.django_db
def test_a_parcel_17track_stopped_is_retracked_and_given_up_at_its_second_stop(
    store, httpserver: HTTPServer, agent_client
):
    from django.urls import reverse

    from tests.tracking.providers.test_seventeentrack import FakeTracker, sign
    from tracking.ingest import delivery_receive
    from tracking.tasks import process_deliveries

    tracker = FakeTracker()
    tracker.install(httpserver, api_key=API_KEY)
    connection = _connection(store, httpserver, pull_enabled=False)
    number = "YT2432100012345678"
    shipment = make_shipment(order=make_order(store=store), carrier="yto", tracking_number=number)
    stop = json.dumps({"event": "TRACKING_STOPPED", "data": {"number": number, "carrier": 190008}}).encode()
    now = timezone.now()
    registrations_run(connection=connection, now=now)
    assert tracker.tracking == {number}

    tracker.stop(number)  # no scan for weeks: 17TRACK stops tracking it, and says so
    delivery_receive(connection=connection, body=stop, headers=sign(stop, API_KEY))
    process_deliveries()

    registration = _registration(shipment)
    assert (registration.status, registration.attempts) == ("stopped", 1)
    assert registration.error == "TRACKING_STOPPED"
    registrations_run(connection=connection, now=now + timedelta(minutes=30))
    assert tracker.calls == [("register", [number])]  # not before the hour

    registrations_run(connection=connection, now=now + timedelta(minutes=61))

    assert tracker.calls[-1] == ("retrack", [number])  # registering again would only say "already registered"
    assert tracker.tracking == {number}
    registration = _registration(shipment)
    assert (registration.status, registration.error, registration.next_attempt_at) == ("registered", "", None)

    tracker.stop(number)  # stopped again: 17TRACK re-tracks a number once only
    delivery_receive(connection=connection, body=stop, headers=sign(stop, API_KEY))
    process_deliveries()
    registrations_run(connection=connection, now=now + timedelta(hours=3))

    registration = _registration(shipment)
    assert tracker.calls[-1] == ("retrack", [number])
    assert (registration.status, registration.next_attempt_at) == (
        "stopped",
        None,
    )  # given up, not asked 4 more times
    assert registration.error == "-18019905: Retrack is not allowed. You can only retrack each number once."
    body = agent_client.get(reverse("tracking:shipment", args=[shipment.pk])).content.decode()
    assert 'data-registration="stopped"' in body
    assert "Stopped by the provider" in body and "given up: an admin can ask again" in body
