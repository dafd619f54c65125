"""Events for the storefront: written in the transaction of the change they report, delivered after it.

- `event_emit` writes a StorefrontEvent row beside the change (a case raised, updated, resolved; a buyer
  message to post; an order held or released): if the change rolls back, so does the event.
- The storefront pulls pending events (GET /api/v1/events) and acknowledges each, or
- the worker hands each event to the store's webhook endpoints (`events_dispatch`: one EventDelivery row per
  endpoint that wants the type, for endpoints that existed when the event was made) and POSTs them
  (`deliveries_send`), signed `Afterdesk-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (Stripe's
  scheme), retried with exponential backoff for 24 h on anything but a 2xx, then marked failed. Each POST is
  logged (status, latency, response excerpt). Rows are claimed with SKIP LOCKED and a lease, so workers
  share the work; a POST is never made inside a transaction.

Delivery is at least once: a receiver dedupes on the event id (also sent as `Afterdesk-Event-Id`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cases.choices import EventDeliveryStatus, Priority, StorefrontEventType
from cases.models import Case, EventDelivery, EventDeliveryAttempt, StorefrontEvent, WebhookEndpoint
from portal.db import skip_locked
from portal.models import ApiKey
from portal.tasks import wake

log = logging.getLogger(__name__)

WEBHOOKS_TASK = "cases.tasks.deliver_webhooks"
SIGNATURE_HEADER = "Afterdesk-Signature"
RETRY_WINDOW = timedelta(hours=24)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=2)
LEASE = timedelta(minutes=2)  # a claimed delivery not finished by then is another worker's to send
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
EXCERPT = 500
DISPATCH_BATCH = 500
SEND_BATCH = 50
USER_AGENT = "Afterdesk-Webhooks/1"

PRIORITY_NAMES = {int(p): p.name.lower() for p in Priority}


class CaseSnapshot(msgspec.Struct):
    """A case as the storefront sees it: in case.* events and in the API's case lists."""

    id: int
    type: str
    status: str
    priority: str
    order_id: str | None
    carrier: str | None
    tracking_number: str | None
    summary: str
    resolution: str
    buyer_choice: str
    fault_party: str
    opened_at: datetime
    first_contact_due_at: datetime | None
    resolution_due_at: datetime | None
    first_contact_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime


def priority_name(priority: int) -> str:
    return PRIORITY_NAMES.get(priority, "normal")


def case_snapshot(case: Case) -> CaseSnapshot:
    order, shipment = case.order if case.order_id else None, case.shipment if case.shipment_id else None
    return CaseSnapshot(
        id=case.pk, type=case.type, status=case.status, priority=priority_name(case.priority),
        order_id=order.platform_order_id if order else None, carrier=shipment.carrier if shipment else None,
        tracking_number=shipment.tracking_number if shipment else None, summary=case.summary,
        resolution=case.resolution, buyer_choice=case.buyer_choice, fault_party=case.fault_party,
        opened_at=case.opened_at, first_contact_due_at=case.first_contact_due_at,
        resolution_due_at=case.resolution_due_at, first_contact_at=case.first_contact_at,
        resolved_at=case.resolved_at, updated_at=case.updated_at or timezone.now(),
    )  # fmt: skip


def event_emit(
    *,
    store_id: int,
    kind: StorefrontEventType | str,
    data: dict[str, Any],
    dedupe_key: str,
    case_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """Write one storefront event in the caller's transaction; the worker is woken after commit. Idempotent
    on `dedupe_key` (a second emit of the same key adds nothing)."""
    StorefrontEvent.objects.bulk_create(
        [
            StorefrontEvent(
                store_id=store_id, kind=str(kind), case_id=case_id, payload=msgspec.to_builtins(data),
                dedupe_key=dedupe_key[:100], created_at=now or timezone.now(),
            )
        ],
        ignore_conflicts=True,
    )  # fmt: skip
    wake(WEBHOOKS_TASK)


def storefront_listening(store_ids: Iterable[int]) -> set[int]:
    """The stores among `store_ids` whose storefront can hear events: with an active API key (it pulls) or
    an active webhook endpoint. Case events are recorded for these alone: for a store with neither, nobody
    would ever read them (one INSERT per raised case saved; a rule sweep raises thousands)."""
    ids = set(store_ids)
    keyed = (
        ApiKey.objects.filter(store_id__in=ids, revoked_at__isnull=True).order_by().values_list("store_id")
    )
    hooked = (
        WebhookEndpoint.objects.filter(store_id__in=ids, is_active=True).order_by().values_list("store_id")
    )
    return {store_id for (store_id,) in keyed.union(hooked)}


def case_event_emit(
    case: Case,
    kind: StorefrontEventType,
    *,
    key: str | int,
    now: datetime | None = None,
    listening: bool | None = None,
) -> None:
    """case.created / case.updated / case.resolved with the case as it is now, when the store's storefront
    can hear it (`listening`, when the caller knows, e.g. from its batch's PolicyBook; else asked). `key`
    makes the event once: the case id for created, the timeline entry's id for the others."""
    if listening is None:
        listening = bool(storefront_listening([case.store_id]))
    if not listening:
        return
    event_emit(
        store_id=case.store_id, kind=kind, data={"case": case_snapshot(case)}, dedupe_key=f"{kind}:{key}",
        case_id=case.pk, now=now,
    )  # fmt: skip


def envelope(event: StorefrontEvent, store_code: str) -> dict[str, Any]:
    """The event as the storefront receives it, pulled or pushed."""
    return {
        "id": event.pk,
        "type": event.kind,
        "created_at": event.created_at,
        "store": store_code,
        "data": event.payload,
    }


# --- signing -------------------------------------------------------------------------------------------


def signature(secret: str, *, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def endpoint_secret_new() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- dispatch: events -> deliveries -------------------------------------------------------------------


def events_dispatch(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> int:
    """Hand undispatched events to their stores' active endpoints (those that want the type and existed when
    the event was made), one EventDelivery each, and mark the events dispatched: in one transaction, the
    events claimed with SKIP LOCKED. Returns how many events were dispatched."""
    now = now or timezone.now()
    with transaction.atomic():
        events = list(
            skip_locked(StorefrontEvent.objects.filter(dispatched_at__isnull=True).order_by("pk"))[:limit]
        )
        if not events:
            return 0
        endpoints: dict[int, list[WebhookEndpoint]] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            is_active=True, store_id__in={e.store_id for e in events}
        ):
            endpoints.setdefault(endpoint.store_id, []).append(endpoint)
        EventDelivery.objects.bulk_create(
            [
                EventDelivery(
                    endpoint=endpoint, event=event, next_attempt_at=now, retry_until=now + RETRY_WINDOW,
                    created_at=now,
                )
                for event in events
                for endpoint in endpoints.get(event.store_id, ())
                if endpoint.wants(event.kind) and endpoint.created_at <= event.created_at
            ],
            ignore_conflicts=True,
        )  # fmt: skip
        StorefrontEvent.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
    return len(events)


# --- sending ---------------------------------------------------------------------------------------------


@dataclass
class SendResult:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim(now: datetime, limit: int) -> list[EventDelivery]:
    with transaction.atomic():
        due = skip_locked(
            EventDelivery.objects.filter(
                status=EventDeliveryStatus.PENDING, next_attempt_at__lte=now
            ).order_by("next_attempt_at", "pk")
        )
        claimed = list(due.select_related("endpoint", "event", "event__store")[:limit])
        EventDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(next_attempt_at=now + LEASE)
    return claimed


def deliveries_send(
    *, now: datetime | None = None, limit: int = SEND_BATCH, client: httpx.Client | None = None
) -> SendResult:
    """POST due deliveries to their endpoints and record each attempt. A 2xx marks the delivery (and its
    event) delivered; anything else, a timeout or a refused address is retried after 30 s, 1, 2, 4 ... min
    (at most 2 h apart) until 24 h after the delivery began, then the delivery is failed. The claim is
    leased: a worker that dies mid-POST leaves it to be sent again after the lease."""
    clock = (lambda: now) if now is not None else timezone.now  # a given time stands for every attempt
    result = SendResult()
    batch = _claim(clock(), limit)
    if not batch:
        return result
    own = client is None
    client = client or httpx.Client(
        timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    )
    try:
        for delivery in batch:
            outcome = _post(client, delivery, at=clock())
            _record(delivery, outcome, result)
    finally:
        if own:
            client.close()
    return result


@dataclass
class _Outcome:
    at: datetime
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(client: httpx.Client, delivery: EventDelivery, *, at: datetime) -> _Outcome:
    event, endpoint = delivery.event, delivery.endpoint
    body = msgspec.json.encode(envelope(event, event.store.code))
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(endpoint.secret, timestamp=timestamp, body=body),
        "Afterdesk-Event-Id": str(event.pk),
        "Afterdesk-Event-Type": event.kind,
        "Afterdesk-Delivery-Attempt": str(delivery.attempts + 1),
    }
    started = time.perf_counter()
    refusal = url_refusal(endpoint.url)
    if refusal:
        return _Outcome(at=at, status_code=None, latency_ms=0, error=refusal)
    try:
        response = client.post(endpoint.url, content=body, headers=headers)
        text = response.text[:EXCERPT]
        return _Outcome(at=at, status_code=response.status_code, latency_ms=_ms(started), excerpt=text)
    except httpx.HTTPError as exc:
        return _Outcome(
            at=at, status_code=None, latency_ms=_ms(started), error=f"{type(exc).__name__}: {exc}"[:EXCERPT]
        )


def _ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: 30 s, 1, 2, 4 ... min, at most 2 h."""
    return min(BACKOFF_FIRST * 2 ** min(max(attempts - 1, 0), 16), BACKOFF_MAX)


def _record(delivery: EventDelivery, outcome: _Outcome, result: SendResult) -> None:
    with transaction.atomic():
        EventDeliveryAttempt.objects.create(
            delivery=delivery, at=outcome.at, status_code=outcome.status_code, latency_ms=outcome.latency_ms,
            response_excerpt=outcome.excerpt, error=outcome.error,
        )  # fmt: skip
        delivery.attempts += 1
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error or ("" if outcome.ok else f"HTTP {outcome.status_code}")
        if outcome.ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                EventDeliveryStatus.DELIVERED, outcome.at, None,
            )  # fmt: skip
            StorefrontEvent.objects.filter(pk=delivery.event_id, delivered_at__isnull=True).update(
                delivered_at=outcome.at
            )
            result.delivered += 1
        elif outcome.at + backoff(delivery.attempts) > delivery.retry_until:
            delivery.status, delivery.next_attempt_at = EventDeliveryStatus.FAILED, None
            result.failed += 1
        else:
            delivery.next_attempt_at = outcome.at + backoff(delivery.attempts)
            result.retrying += 1
        delivery.save(
            update_fields=[
                "attempts",
                "last_status_code",
                "last_error",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )


def delivery_redeliver(*, delivery: EventDelivery, now: datetime | None = None) -> EventDelivery:
    """Send the event to the endpoint again, soon, with a new 24 h retry window: a delivered one too (the
    receiver lost it), a failed one (the receiver is fixed). Idempotent: a pending one is just due now."""
    now = now or timezone.now()
    EventDelivery.objects.filter(pk=delivery.pk).update(
        status=EventDeliveryStatus.PENDING, next_attempt_at=now, retry_until=now + RETRY_WINDOW
    )
    delivery.refresh_from_db()
    wake(WEBHOOKS_TASK)
    return delivery


def url_refusal(url: str) -> str:
    """Why the worker will not POST to `url`, or "": only http(s); unless settings.WEBHOOKS_ALLOW_PRIVATE,
    https only and no address inside the network (loopback, private, link-local: the cloud metadata
    service), so a store admin cannot make the worker probe our own network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http and https URLs are called."
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return ""
    if parts.scheme != "https":
        return "Webhook URLs must use https."
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as exc:
        return f"The host does not resolve: {exc}"
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return f"{parts.hostname} resolves to {ip}, an address inside the network; it is not called."
    return ""


def events_prune(*, now: datetime | None = None, batch: int = 5_000) -> int:
    """Delete events older than settings.STOREFRONT_EVENT_RETENTION_DAYS, pending ones too (the pull API's
    window), with their deliveries; in batches, each its own transaction. Returns how many."""
    now = now or timezone.now()
    before = now - timedelta(days=settings.STOREFRONT_EVENT_RETENTION_DAYS)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                StorefrontEvent.objects.filter(created_at__lt=before)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return deleted
            EventDeliveryAttempt.objects.filter(delivery__event_id__in=ids).delete()
            EventDelivery.objects.filter(event_id__in=ids).delete()
            StorefrontEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
