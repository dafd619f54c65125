"""Storefront events pushed to the store's webhook endpoints: signed (verified here by an independent
verifier), retried with backoff for 24 h, logged, redelivered; and the endpoints managed through the API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone
from werkzeug import Response

from cases.choices import CaseStatus
from cases.models import EventDelivery, EventDeliveryAttempt, StorefrontEvent, WebhookEndpoint
from cases.outbox import backoff, deliveries_send, events_dispatch, events_prune
from cases.tasks import deliver_webhooks
from cases.workflow import case_transition
from tests.api import Api, fields
from tests.factories import make_case


def verify(body: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
    """A receiver's verification, written from the documented scheme alone (as on the endpoint page)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@pytest.fixture
def api(store):
    return Api(store)


def _endpoint(api: Api, url: str, **fields_) -> dict:
    response = api.post("webhook-endpoints", {"url": url, **fields_})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db
def test_events_reach_the_endpoint_signed(api, store, httpserver):
    received = []

    def handler(request):
        received.append((request.get_data(), dict(request.headers)))
        return Response("thanks", status=200)

    httpserver.expect_request("/hooks").respond_with_handler(handler)
    endpoint = _endpoint(api, httpserver.url_for("/hooks"))
    case = make_case(store=store)

    result = deliver_webhooks()
    assert result["delivered"] == 1
    (body, headers) = received[0]
    assert verify(body, headers["Afterdesk-Signature"], endpoint["secret"])
    assert not verify(body, headers["Afterdesk-Signature"], "whsec_wrong")
    assert not verify(body + b" ", headers["Afterdesk-Signature"], endpoint["secret"])
    event = json.loads(body)
    assert (event["type"], event["store"], event["data"]["case"]["id"]) == (
        "case.created",
        store.code,
        case.pk,
    )
    assert headers["Afterdesk-Event-Id"] == str(event["id"])
    assert StorefrontEvent.objects.get(pk=event["id"]).delivered_at is not None
    attempt = EventDeliveryAttempt.objects.get()
    assert (attempt.status_code, attempt.response_excerpt) == (200, "thanks")
    assert deliver_webhooks()["delivered"] == 0  # once


@pytest.mark.django_db
def test_a_failing_endpoint_is_retried_with_backoff_then_failed_after_24_hours(api, store, httpserver):
    httpserver.expect_request("/hooks").respond_with_data("down for maintenance", status=500)
    _endpoint(api, httpserver.url_for("/hooks"))
    make_case(store=store)
    now = timezone.now()
    events_dispatch(now=now)

    result = deliveries_send(now=now)
    assert (result.delivered, result.retrying) == (0, 1)
    delivery = EventDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at == now_plus(delivery, backoff(1))
    assert deliveries_send(now=now + timedelta(seconds=10)).retrying == 0  # not due yet

    waits = []
    at = now
    while True:
        delivery.refresh_from_db()
        if delivery.status != "pending":
            break
        waits.append(delivery.next_attempt_at - at)
        at = delivery.next_attempt_at
        deliveries_send(now=at)
    assert delivery.status == "failed"
    assert waits[:4] == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
    ]
    assert max(waits) == timedelta(hours=2)
    last = EventDeliveryAttempt.objects.order_by("-at").first()
    assert last.response_excerpt == "down for maintenance"
    assert at - now <= timedelta(hours=24)
    assert StorefrontEvent.objects.get().delivered_at is None


def now_plus(delivery: EventDelivery, wait: timedelta):
    return EventDeliveryAttempt.objects.filter(delivery=delivery).order_by("-at").first().at + wait


@pytest.mark.django_db
def test_a_timeout_is_logged_and_retried(api, store):
    def timeout(request):
        raise httpx.ReadTimeout("timed out", request=request)

    _endpoint(api, "http://shop.invalid/hooks")
    make_case(store=store)
    events_dispatch()
    result = deliveries_send(client=httpx.Client(transport=httpx.MockTransport(timeout)))
    assert result.retrying == 1
    attempt = EventDeliveryAttempt.objects.get()
    assert attempt.status_code is None and "ReadTimeout" in attempt.error


@pytest.mark.django_db
def test_a_failed_delivery_is_sent_again_on_request(api, store, httpserver):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    endpoint = _endpoint(api, httpserver.url_for("/hooks"))
    make_case(store=store)
    events_dispatch()
    EventDelivery.objects.update(status="failed", next_attempt_at=None)
    delivery = EventDelivery.objects.get()
    log = api.get(f"webhook-endpoints/{endpoint['id']}/deliveries").json()["results"]
    assert [d["status"] for d in log] == ["failed"]
    response = api.post(f"webhook-endpoints/{endpoint['id']}/deliveries/{delivery.pk}/redeliver")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert deliver_webhooks()["delivered"] == 1
    log = api.get(f"webhook-endpoints/{endpoint['id']}/deliveries").json()["results"]
    assert (log[0]["status"], log[0]["log"][0]["status_code"]) == ("delivered", 200)


@pytest.mark.django_db
def test_endpoints_receive_only_the_types_they_want(api, store, agent, httpserver):
    httpserver.expect_request("/hooks").respond_with_data("ok")
    _endpoint(api, httpserver.url_for("/hooks"), event_types=["case.resolved"])
    case = make_case(store=store)
    case_transition(case=case, to_status=CaseStatus.RESOLVED, actor=agent, resolution="delivered")
    deliver_webhooks()
    assert list(EventDelivery.objects.values_list("event__kind", flat=True)) == ["case.resolved"]


@pytest.mark.django_db
def test_a_switched_off_endpoint_gets_nothing(api, store):
    endpoint = _endpoint(api, "https://shop.example.com/hooks")
    assert api.patch(f"webhook-endpoints/{endpoint['id']}", {"is_active": False}).json()["is_active"] is False
    make_case(store=store)
    events_dispatch()
    assert not EventDelivery.objects.exists()


@pytest.mark.django_db
def test_endpoints_are_managed_through_the_api(api):
    created = _endpoint(api, "https://shop.example.com/hooks", description="ERP")
    assert created["secret"].startswith("whsec_")
    listed = api.get("webhook-endpoints").json()["results"]
    assert listed[0]["secret"] is None and listed[0]["secret_hint"].startswith("whsec_")
    rolled = api.patch(f"webhook-endpoints/{created['id']}", {"roll_secret": True}).json()
    assert rolled["secret"] and rolled["secret"] != created["secret"]
    assert "event_types[0]" in fields(
        api.post("webhook-endpoints", {"url": "https://a.example", "event_types": ["case.lost"]})
    )
    assert "url" in fields(api.post("webhook-endpoints", {"url": "ftp://a.example"}))
    assert api.delete(f"webhook-endpoints/{created['id']}").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@override_settings(WEBHOOKS_ALLOW_PRIVATE=False)
def test_in_production_urls_inside_the_network_are_refused(api, store):
    for url in (
        "http://shop.example.com/hooks",
        "https://127.0.0.1/hooks",
        "https://169.254.169.254/latest",
        "https://localhost/x",
    ):
        assert "url" in fields(api.post("webhook-endpoints", {"url": url})), url
    assert not WebhookEndpoint.objects.exists()
    # one stored before the rule (or whose name now resolves inside) is not called either
    endpoint = WebhookEndpoint.objects.create(store=store, url="https://127.0.0.1/hooks", secret="whsec_x")
    make_case(store=store)
    events_dispatch()
    deliveries_send(client=httpx.Client(transport=httpx.MockTransport(lambda r: pytest.fail("called"))))
    attempt = EventDeliveryAttempt.objects.get(delivery__endpoint=endpoint)
    assert "inside the network" in attempt.error


@pytest.mark.django_db
def test_old_events_are_pruned(store):
    Api(store)
    make_case(store=store)
    assert events_prune(now=timezone.now() + timedelta(days=29)) == 0
    assert events_prune(now=timezone.now() + timedelta(days=31)) == 1
    assert not StorefrontEvent.objects.exists()
