"""The tracking pipeline: pushed deliveries and pulled batches become events, exactly once.

Webhook:  verify -> parse (reject malformed) -> store raw delivery -> 2xx after commit -> wake the worker.
Worker:   claim stored deliveries (SKIP LOCKED) -> parse -> match shipments -> events_ingest_many.
Schedule: claim shipments due for polling (SKIP LOCKED) -> provider.fetch -> events_ingest_many -> next poll.

The database row is the unit of durable work; a wake-up that is lost or doubled changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from portal.db import array_literal, prepared_cursor, skip_locked
from portal.tasks import wake
from tracking.choices import DeliveryStatus, Tag
from tracking.models import Shipment, TrackingConnection, UnmatchedTracking, WebhookDelivery
from tracking.providers import provider_for
from tracking.providers.base import (
    ParsedPush,
    ParsedTracking,
    PayloadError,
    ProviderError,
    Recipient,
    TrackingRef,
)
from tracking.registration import registrations_stopped
from tracking.rounds import claim_size, in_time
from tracking.selectors import parcels_tracked_by, shipment_is_polled
from tracking.services import EventData, IngestResult, events_ingest_many

log = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 5
POLL_LEASE = timedelta(minutes=10)  # a claimed shipment is retried after this if its worker died
POLL_INTERVALS: Mapping[str, timedelta] = {
    Tag.PENDING: timedelta(hours=6),
    Tag.INFO_RECEIVED: timedelta(hours=3),
    Tag.IN_TRANSIT: timedelta(hours=2),
    Tag.OUT_FOR_DELIVERY: timedelta(minutes=45),
    Tag.AVAILABLE_FOR_PICKUP: timedelta(hours=4),
    Tag.ATTEMPT_FAIL: timedelta(hours=1),
    Tag.EXCEPTION: timedelta(hours=3),
    Tag.EXPIRED: timedelta(hours=24),
}
MAX_POLL_BACKOFF = timedelta(hours=6)
# A parcel the carrier has said nothing new about for this long (or, never scanned, created this long ago)
# stops polling, as trackers expire such trackings; news by push starts its polling again.
POLL_SILENCE_LIMIT = timedelta(days=30)
SYNC_TASK = "tracking.tasks.sync_due"  # the polling round, woken by a refresh (tasks imports this module)


class SignatureRejected(Exception):
    """The push is not signed with the connection's secret."""


class PayloadTooLarge(PayloadError):
    """The push is larger than TRACKING_WEBHOOK_MAX_BYTES. The webhook answers 413 with this text."""


def _count(connection: TrackingConnection, **increments: int) -> None:
    TrackingConnection.objects.filter(pk=connection.pk).update(
        **{name: F(name) + value for name, value in increments.items() if value}
    )


# --- push ---------------------------------------------------------------------------------------------
def delivery_size_check(*, connection: TrackingConnection, size: int) -> None:
    """Refuse, before reading it, a push declared larger than TRACKING_WEBHOOK_MAX_BYTES: PayloadTooLarge,
    counted as a rejected payload, so a provider sending ever larger traces shows in the admin."""
    limit = settings.TRACKING_WEBHOOK_MAX_BYTES
    if size > limit:
        _count(connection, payloads_rejected=1)
        raise PayloadTooLarge(
            f"Payload too large: {size:,} bytes; this endpoint takes at most {limit:,} "
            "(TRACKING_WEBHOOK_MAX_BYTES)."
        )


class Received(NamedTuple):
    delivery_id: int  # the stored WebhookDelivery (the one already stored, for a redelivered event id)
    parsed: ParsedPush


def delivery_receive(
    *,
    connection: TrackingConnection,
    body: bytes,
    headers: Mapping[str, str],
    content_type: str = "",
    reload: Callable[[], TrackingConnection | None] | None = None,
) -> Received:
    """Verify, parse and durably store one push. Raises SignatureRejected or PayloadError, storing nothing.

    `connection` may be a cached copy: when its keys reject the push, `reload` gives the stored connection,
    and a push signed with keys set since (a secret rotated in the admin) is accepted at once.

    A redelivery of an event id already stored returns the stored delivery (no second row). Returns the
    delivery's id, not a model instance: this is the busiest path of the product, and building the instance
    cost as much as parsing the push.
    """
    provider = provider_for(connection)
    if not provider.verify(body=body, headers=headers):
        stored = reload() if reload is not None else None
        if stored is None or not _keys_changed(connection, stored):
            _count(stored or connection, signatures_rejected=1)
            raise SignatureRejected("Signature missing or invalid.")
        connection, provider = stored, provider_for(stored)
        if not provider.verify(body=body, headers=headers):
            _count(connection, signatures_rejected=1)
            raise SignatureRejected("Signature missing or invalid.")
    try:
        parsed = provider.parse_push(body=body, headers=headers)
    except PayloadError:
        _count(connection, payloads_rejected=1)
        raise
    # No counter update here: every push would queue on the connection row. Deliveries are counted as rows.
    numbers = " ".join(dict.fromkeys([*(t.tracking_number for t in parsed.trackings), *parsed.stopped]))
    if len(numbers) > 1000:  # a batch push of very many parcels: whole numbers only, as many as fit
        numbers = numbers[:1001].rsplit(" ", 1)[0]
    delivery_id = _delivery_store(
        connection_id=connection.pk, event_id=parsed.event_id[:100], kind=parsed.kind[:40], body=bytes(body),
        content_type=content_type[:100], tracking_numbers=numbers,
    )  # fmt: skip
    return Received(delivery_id, parsed)


def _keys_changed(cached: TrackingConnection, stored: TrackingConnection) -> bool:
    return (cached.webhook_secret, cached.credentials) != (stored.webhook_secret, stored.credentials)


# One statement, committed by itself in autocommit: the partial unique index (webhook_delivery_event_once)
# turns a redelivered event id into "no row", without the SELECT-then-INSERT of get_or_create. Prepared on
# the server (the hottest statement of the busiest endpoint); the other columns get the model's defaults.
_DELIVERY_INSERT = (
    f"INSERT INTO {WebhookDelivery._meta.db_table} "  # noqa: S608 - fixed identifiers only
    "(connection_id, event_id, kind, body, content_type, tracking_numbers, received_at, status, attempts, "
    "events_new, events_duplicate, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, '') "
    "ON CONFLICT (connection_id, event_id) WHERE NOT (event_id = '') DO NOTHING RETURNING id"
)


def _delivery_store(
    *, connection_id: int, event_id: str, kind: str, body: bytes, content_type: str, tracking_numbers: str
) -> int:
    """Insert the delivery and return its id, or the id of the one already stored under its event id."""
    params = (
        connection_id, event_id, kind, body, content_type, tracking_numbers,
        db.ops.adapt_datetimefield_value(timezone.now()), DeliveryStatus.RECEIVED.value,
    )  # fmt: skip
    with prepared_cursor() as cursor:
        cursor.execute(_DELIVERY_INSERT, params)
        row = cursor.fetchone()
    if row is None:
        return WebhookDelivery.objects.values_list("pk", flat=True).get(
            connection_id=connection_id, event_id=event_id
        )
    return row[0]


@dataclass
class ProcessResult:
    deliveries: int = 0
    failed: int = 0
    unmatched: int = 0
    ingest: IngestResult = field(default_factory=IngestResult)


def deliveries_process(*, limit: int = 200, now: datetime | None = None) -> ProcessResult:
    """Process stored deliveries not yet processed, oldest first. Safe with several workers at once.

    Claims rows with SKIP LOCKED (PostgreSQL), so two workers never process one delivery; each batch's
    events, summaries and delivery status commit together, so a crash halfway is simply done again.
    A delivery that keeps failing is retried up to MAX_DELIVERY_ATTEMPTS times, then left FAILED.
    """
    now = now or timezone.now()
    result = ProcessResult()
    claimed: list[WebhookDelivery] = []
    try:
        with transaction.atomic():
            claimed = list(
                skip_locked(
                    WebhookDelivery.objects.filter(
                        Q(status=DeliveryStatus.RECEIVED)
                        | Q(
                            status=DeliveryStatus.FAILED,
                            attempts__lt=MAX_DELIVERY_ATTEMPTS,
                            retry_at__lte=now,
                        )
                    ).order_by("received_at", "id")
                ).select_related("connection")[:limit]
            )
            if not claimed:
                return result
            _process_claimed(claimed, now=now, result=result)
    except Exception as exc:
        # The batch rolled back as a whole; retry each delivery alone so one poison payload is isolated.
        if not claimed or _database_lost(exc):
            # Nothing to isolate when the database itself went away (a restart, a failover): the rows are
            # still RECEIVED, and marking each one failed (if that even got through) would spend their
            # attempts on an outage that says nothing about the payloads. The next round takes them again.
            raise
        if len(claimed) == 1:
            _mark_failed(claimed[0], exc, now=now)
            result.failed += 1
            return result
        log.warning("delivery batch failed (%s); retrying one by one", exc)
        for delivery in claimed:
            try:
                with transaction.atomic():
                    locked = list(
                        skip_locked(WebhookDelivery.objects.filter(pk=delivery.pk, status=delivery.status))
                    )
                    if locked:
                        locked[0].connection = delivery.connection
                        _process_claimed(locked, now=now, result=result)
            except Exception as single_exc:
                if _database_lost(single_exc):
                    raise
                _mark_failed(delivery, single_exc, now=now)
                result.failed += 1
    return result


def _database_lost(exc: Exception) -> bool:
    """The error is the connection's, not the statement's: it failed as OperationalError/InterfaceError and
    the connection no longer answers. A deadlock or a timeout leaves a usable connection and is not this."""
    return isinstance(exc, (OperationalError, InterfaceError)) and (
        db.connection is None or not db.is_usable()
    )


def deliveries_requeue(*, ids: Sequence[int]) -> int:
    """Put failed deliveries back in line for the worker, those that used up their attempts too: for when
    the cause is fixed (a parser bug, a connection's settings). Each requeue is one more attempt: one that
    fails again is left FAILED with its new error. Returns how many were requeued."""
    return WebhookDelivery.objects.filter(pk__in=ids, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.RECEIVED, retry_at=None
    )


def _mark_failed(delivery: WebhookDelivery, exc: Exception, *, now: datetime) -> None:
    """Record the failure; retry after 1, 2, 4, 8 ... minutes until MAX_DELIVERY_ATTEMPTS."""
    log.error("webhook delivery %s failed: %s", delivery.pk, exc, exc_info=exc)
    attempts = delivery.attempts + 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED,
        attempts=attempts,
        retry_at=now + timedelta(minutes=2 ** (attempts - 1)),
        error=f"{exc.__class__.__name__}: {exc}"[:2000],
    )


def _process_claimed(deliveries: Sequence[WebhookDelivery], *, now: datetime, result: ProcessResult) -> None:
    """Parse, match and ingest a batch of deliveries in one events_ingest_many; counts stay per delivery."""
    by_connection: dict[int, list[tuple[WebhookDelivery, ParsedTracking]]] = {}
    parsed_by_delivery: dict[int, ParsedPush] = {}
    for delivery in deliveries:
        parsed = provider_for(delivery.connection).parse_push(body=bytes(delivery.body), headers={})
        parsed_by_delivery[delivery.pk] = parsed
        by_connection.setdefault(delivery.connection_id, [])
        by_connection[delivery.connection_id] += [(delivery, tracking) for tracking in parsed.trackings]
    connections = {d.connection_id: d.connection for d in deliveries}
    batch = _Matched()
    stopped: dict[int, dict[str, str]] = {}
    corrected: dict[int, dict[str, str]] = {}
    for delivery in deliveries:
        parsed = parsed_by_delivery[delivery.pk]
        if parsed.stopped:
            stopped.setdefault(delivery.connection_id, {}).update(parsed.stopped)
        if parsed.carriers_corrected:
            corrected.setdefault(delivery.connection_id, {}).update(parsed.carriers_corrected)
    for connection_id, corrections in corrected.items():
        carriers_correct(connection=connections[connection_id], corrections=corrections, now=now)
    for connection_id, pairs in by_connection.items():
        matched = _match(connections[connection_id], [t for _, t in pairs], deliveries=[d for d, _ in pairs])
        batch.items += matched.items
        batch.owners += matched.owners
        batch.expected.update(matched.expected)
        _unmatched_record(connections[connection_id], matched.unmatched, now=now)
        result.unmatched += len(matched.unmatched)
    ingest = events_ingest_many(
        items=batch.items, now=now, owners=batch.owners, expected_delivery=batch.expected
    )
    if stopped:
        for connection_id, reasons in stopped.items():
            registrations_stopped(connection=connections[connection_id], reasons=reasons, now=now)
    empty = IngestResult()
    for connection_id in connections:
        mine = [d for d in deliveries if d.connection_id == connection_id]
        shares = [ingest.per_owner.get(d.pk, empty) for d in mine]
        latest = Value(max(d.received_at for d in mine))
        TrackingConnection.objects.filter(pk=connection_id).update(
            events_new=F("events_new") + sum(s.new for s in shares),
            events_duplicate=F("events_duplicate") + sum(s.duplicate for s in shares),
            last_push_at=Greatest(Coalesce("last_push_at", latest), latest),  # never back in time
        )
    by_counts: dict[tuple[int, int], list[int]] = {}
    for delivery in deliveries:
        share = ingest.per_owner.get(delivery.pk, empty)
        by_counts.setdefault((share.new, share.duplicate), []).append(delivery.pk)
    WebhookDelivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        status=DeliveryStatus.PROCESSED, processed_at=now, attempts=F("attempts") + 1, error="",
        events_new=Case(*[When(pk__in=pks, then=Value(new)) for (new, _), pks in by_counts.items()]),
        events_duplicate=Case(*[When(pk__in=pks, then=Value(dup)) for (_, dup), pks in by_counts.items()]),
    )  # fmt: skip
    result.deliveries += len(deliveries)
    result.ingest += ingest


@dataclass
class TrackingsOutcome:
    ingest: IngestResult = field(default_factory=IngestResult)
    unmatched: int = 0


@dataclass
class _Matched:
    items: list[tuple[int, str, Sequence[EventData]]] = field(default_factory=list)
    owners: list[int | None] = field(default_factory=list)  # the delivery each item came from
    expected: dict[int, date] = field(default_factory=dict)
    unmatched: dict[str, tuple[str, WebhookDelivery | None]] = field(default_factory=dict)


def trackings_ingest(
    *, connection: TrackingConnection, trackings: Sequence[ParsedTracking], now: datetime
) -> TrackingsOutcome:
    """Match parsed trackings to the connection's store's shipments and ingest their events.

    Tracking numbers that match no shipment are recorded (UnmatchedTracking) for later matching.
    """
    matched = _match(connection, trackings)
    ingest = events_ingest_many(items=matched.items, now=now, expected_delivery=matched.expected)
    outcome = TrackingsOutcome(ingest=ingest)
    _unmatched_record(connection, matched.unmatched, now=now)
    outcome.unmatched = len(matched.unmatched)
    return outcome


def carriers_correct(*, connection: TrackingConnection, corrections: Mapping[str, str], now: datetime) -> int:
    """The provider says these parcels travel with another carrier than the one they were booked with
    (Kuaidi100's comNew, with its request that the integrator update its code): each takes that carrier (our
    own code for it where we map one, else the provider's), keeps the booked one in carrier_booked, and is
    looked at by the rules again (their deadlines are per carrier).
    A number the store has under several carriers is left alone: nothing says which parcel was meant.
    Runs in the push's transaction; a push processed again finds the carrier right already. Returns how
    many parcels changed."""
    provider = provider_for(connection)
    changed = 0
    for number, code in corrections.items():
        parcels = list(Shipment.objects.filter(store_id=connection.store_id, tracking_number=number)[:2])
        candidates = provider.carrier_codes(code)
        if len(parcels) != 1 or parcels[0].carrier.strip().lower() in candidates:
            continue
        parcel = parcels[0]
        changed += Shipment.objects.filter(pk=parcel.pk, carrier=parcel.carrier).update(
            carrier=candidates[0], carrier_booked=parcel.carrier_booked or parcel.carrier,
            carrier_corrected_at=now, next_check_at=now,
        )  # fmt: skip
        log.info(
            "tracking: %s corrected the carrier of %s from %s to %s", connection, number, parcel.carrier, code
        )
    return changed


def _match(
    connection: TrackingConnection,
    trackings: Sequence[ParsedTracking],
    deliveries: Sequence[WebhookDelivery] | None = None,
) -> _Matched:
    """The store's shipments for these trackings (`deliveries`, parallel to `trackings`, names the owners)."""
    matched = _Matched()
    numbers = {t.tracking_number for t in trackings}
    shipments: dict[str, list[tuple[int, str]]] = {}
    for pk, number, carrier in _shipments_numbered(store_id=connection.store_id, numbers=list(numbers)):
        shipments.setdefault(number, []).append((pk, carrier))
    for index, tracking in enumerate(trackings):
        delivery = deliveries[index] if deliveries else None
        matches = shipments.get(tracking.tracking_number)
        if not matches:
            matched.unmatched[tracking.tracking_number] = (tracking.carrier, delivery)
            continue
        # One tracking number is one parcel; if a store reused one across carriers, prefer the carrier named.
        pk = next((p for p, c in matches if c == tracking.carrier), matches[0][0])
        matched.items.append((pk, tracking.tracking_number, tracking.events))
        matched.owners.append(delivery.pk if delivery else None)
        if tracking.expected_delivery:
            matched.expected[pk] = tracking.expected_delivery
    return matched


def _shipments_numbered(*, store_id: int, numbers: list[str]) -> list[tuple[int, str, str]]:
    """(pk, tracking number, carrier) of the store's shipments with these numbers."""
    if db.vendor == "postgresql":
        # One array parameter instead of an IN list of a thousand: building and sending that list cost more
        # than the query (and as a literal: see portal.db.array_literal).
        table = Shipment._meta.db_table
        with db.cursor() as cursor:
            cursor.execute(
                f"SELECT id, tracking_number, carrier FROM {table} "  # noqa: S608 - fixed identifiers only
                "WHERE store_id = %s AND tracking_number = ANY(%s::text[])",
                [store_id, array_literal(numbers)],
            )
            return cursor.fetchall()
    return list(
        Shipment.objects.filter(store_id=store_id, tracking_number__in=numbers).values_list(
            "pk", "tracking_number", "carrier"
        )
    )


def _unmatched_record(
    connection: TrackingConnection,
    unmatched: Mapping[str, tuple[str, WebhookDelivery | None]],
    *,
    now: datetime,
) -> None:
    for number, (carrier, delivery) in unmatched.items():
        # matched_at cleared: a number matched once that matches nothing again (its shipment moved to another
        # store, say) is waiting for a match again.
        updated = UnmatchedTracking.objects.filter(connection=connection, tracking_number=number).update(
            last_seen_at=now, times_seen=F("times_seen") + 1, delivery=delivery, matched_at=None
        )
        if not updated:
            UnmatchedTracking.objects.get_or_create(
                connection=connection, tracking_number=number,
                defaults={"carrier": carrier[:40], "delivery": delivery, "first_seen_at": now, "last_seen_at": now},
            )  # fmt: skip


@dataclass
class MatchResult:
    matched: int = 0  # tracking numbers that found their shipment
    ingest: IngestResult = field(default_factory=IngestResult)


def unmatched_match(
    *, limit: int = 200, ids: Sequence[int] | None = None, now: datetime | None = None
) -> MatchResult:
    """Tracking numbers pushed before their shipment existed (the carrier's first scan often reaches us before
    the platform's order does), matched now that it does: the push kept for each is ingested again, so its
    checkpoints are not lost. Up to `limit` numbers (of `ids` only, when given), oldest first; safe with
    several workers (SKIP LOCKED).

    The kept push is the latest one for the number; the providers' pushes carry the whole history. A new
    shipment is polled at once anyway (its next poll defaults to now) where its connection pulls. Numbers
    whose push is gone, or no longer parses, are marked matched all the same: there is nothing left to
    ingest. Events, summaries, counters and the marks commit together, so a crash halfway is done again.
    """
    now = now or timezone.now()
    result = MatchResult()
    has_shipment = Exists(
        Shipment.objects.filter(
            store_id=OuterRef("connection__store_id"), tracking_number=OuterRef("tracking_number")
        )
    )
    waiting = UnmatchedTracking.objects.filter(has_shipment, matched_at__isnull=True)
    if ids is not None:
        waiting = waiting.filter(pk__in=ids)
    with transaction.atomic():
        claimed = list(
            skip_locked(waiting.order_by("first_seen_at", "id")).select_related("connection")[:limit]
        )
        if not claimed:
            return result
        by_connection: dict[int, list[UnmatchedTracking]] = {}
        for unmatched in claimed:
            by_connection.setdefault(unmatched.connection_id, []).append(unmatched)
        bodies = dict(
            WebhookDelivery.objects.filter(
                pk__in={u.delivery_id for u in claimed if u.delivery_id}
            ).values_list("pk", "body")
        )
        for rows in by_connection.values():
            connection = rows[0].connection
            wanted = {u.tracking_number for u in rows}
            provider = provider_for(connection)
            trackings: list[ParsedTracking] = []
            for delivery_id in dict.fromkeys(u.delivery_id for u in rows if u.delivery_id in bodies):
                try:
                    parsed = provider.parse_push(body=bytes(bodies[delivery_id]), headers={})
                except PayloadError as exc:  # it parsed when it arrived: a parser changed since
                    log.warning("unmatched tracking: delivery %s no longer parses: %s", delivery_id, exc)
                    continue
                trackings += [t for t in parsed.trackings if t.tracking_number in wanted]
            outcome = trackings_ingest(connection=connection, trackings=trackings, now=now)
            _count(connection, events_new=outcome.ingest.new, events_duplicate=outcome.ingest.duplicate)
            result.ingest += outcome.ingest
        UnmatchedTracking.objects.filter(pk__in=[u.pk for u in claimed]).update(matched_at=now)
        result.matched = len(claimed)
    return result


# --- pull ---------------------------------------------------------------------------------------------
@dataclass
class SyncResult:
    polled: int = 0
    batches: int = 0
    ingest: IngestResult = field(default_factory=IngestResult)
    error: str = ""


def shipments_claim_for_poll(
    *, connection: TrackingConnection, limit: int, now: datetime, tracked: Q | None = None
) -> list[Shipment]:
    """Claim up to `limit` of the store's shipments due for polling that the connection tracks (`tracked`,
    by default tracking.selectors.parcels_tracked_by): lock-free for other workers (SKIP LOCKED), leased by
    pushing next_poll_at forward so a worker that dies releases them after POLL_LEASE."""
    if tracked is None:
        tracked = parcels_tracked_by(connection)
    with transaction.atomic():
        due = (
            skip_locked(
                Shipment.objects.filter(
                    tracked, store_id=connection.store_id, next_poll_at__lte=now
                ).order_by("next_poll_at")
            )
            .select_related("order")
            .only("pk", "tracking_number", "carrier", "poll_failures", "order__buyer_phone")[:limit]
        )
        claimed = list(due)
        Shipment.objects.filter(pk__in=[s.pk for s in claimed]).update(next_poll_at=now + POLL_LEASE)
    return claimed


def shipment_poll_now(*, shipment: Shipment, now: datetime | None = None) -> bool:
    """An agent's refresh: poll this parcel in the next polling round (woken now), also a delivered one (one
    poll; a parcel still delivered stops polling again after it). Its failure backoff is overridden.
    False, and nothing changed, when no active connection that tracks the parcel pulls."""
    if not shipment_is_polled(shipment):
        return False
    Shipment.objects.filter(pk=shipment.pk).update(next_poll_at=now or timezone.now())
    wake(SYNC_TASK)
    return True


class CheckResult(NamedTuple):
    ok: bool
    message: str  # what the provider answered, or why it could not be asked


def connection_check(connection: TrackingConnection) -> CheckResult:
    """Ask the connection's provider whether its credentials work, with one cheap request (an admin's
    check after setting a key, instead of waiting for the next poll to fail). Writes nothing."""
    try:
        return CheckResult(True, provider_for(connection).check())
    except ProviderError as exc:
        return CheckResult(False, str(exc))


def tracking_sync(
    *,
    connection: TrackingConnection,
    now: datetime | None = None,
    max_batches: int | None = None,
    deadline: float | None = None,
) -> SyncResult:
    """One polling round for one connection: claim due shipments, fetch them in provider-sized batches,
    ingest, and schedule each shipment's next poll by its status (delivered parcels stop polling). Runs
    until nothing is due, or `max_batches` batches, or no new batch after `deadline` (time.monotonic()):
    the provider's quota, not a count, sets how many parcels a round polls.

    A permanent provider error is recorded on the connection and stops its polling until fixed; a
    retryable one pushes the batch's next poll back with exponential backoff.
    """
    now = now or timezone.now()
    result = SyncResult()
    if not (connection.is_active and connection.pull_enabled):
        return result
    provider = provider_for(connection)
    tracked = parcels_tracked_by(connection)
    # At least one batch per round, however late: a connection after slow ones is never starved outright.
    while (max_batches is None or result.batches < max_batches) and (not result.batches or in_time(deadline)):
        batch = shipments_claim_for_poll(
            connection=connection, limit=claim_size(provider), now=now, tracked=tracked
        )
        if not batch:
            break
        result.batches += 1
        try:
            parsed = provider.fetch([_poll_ref(s) for s in batch])
        except ProviderError as exc:
            result.error = str(exc)
            _poll_failed(connection=connection, batch=batch, exc=exc, now=now)
            if not exc.retryable:
                break
            continue
        with transaction.atomic():
            outcome = trackings_ingest(connection=connection, trackings=parsed, now=now)
            _count(connection, events_new=outcome.ingest.new, events_duplicate=outcome.ingest.duplicate)
            _schedule_next_polls(batch=batch, now=now)
        result.polled += len(batch)
        result.ingest += outcome.ingest
    TrackingConnection.objects.filter(pk=connection.pk).update(last_sync_at=now)
    return result


def _poll_ref(shipment: Shipment) -> TrackingRef:
    """What a poll asks about: the number, the carrier, and the buyer's phone, which some carriers check
    before they answer a query (Kuaidi100 passes it on for SF Express and ZTO only)."""
    return TrackingRef(
        shipment.tracking_number, shipment.carrier, Recipient(phone=shipment.order.buyer_phone)
    )


def _schedule_next_polls(*, batch: Sequence[Shipment], now: datetime) -> None:
    rows = Shipment.objects.filter(pk__in=[s.pk for s in batch]).values_list(
        "pk", "status", "last_event_at", "created_at"
    )
    by_due: dict[datetime | None, list[int]] = {}
    for pk, status, last_event_at, created_at in rows:
        silent = (last_event_at or created_at) < now - POLL_SILENCE_LIMIT
        if status == Tag.DELIVERED or silent:
            due = None
        else:
            due = now + POLL_INTERVALS.get(status, timedelta(hours=2))
        by_due.setdefault(due, []).append(pk)
    for due, pks in by_due.items():
        Shipment.objects.filter(pk__in=pks).update(next_poll_at=due, poll_failures=0)


def _poll_failed(
    *, connection: TrackingConnection, batch: Sequence[Shipment], exc: ProviderError, now: datetime
) -> None:
    message = f"{exc.__class__.__name__}: {exc}"[:2000]
    log.warning("tracking sync %s: %s", connection, message)
    if not exc.retryable:
        TrackingConnection.objects.filter(pk=connection.pk).update(
            last_error=message, last_error_at=now, pull_enabled=False
        )
        Shipment.objects.filter(pk__in=[s.pk for s in batch]).update(next_poll_at=now)
        return
    TrackingConnection.objects.filter(pk=connection.pk).update(last_error=message, last_error_at=now)
    for shipment in batch:
        backoff = min(timedelta(minutes=5) * 2**shipment.poll_failures, MAX_POLL_BACKOFF)
        if exc.retry_after:
            backoff = max(backoff, timedelta(seconds=exc.retry_after))
        Shipment.objects.filter(pk=shipment.pk).update(
            next_poll_at=now + backoff, poll_failures=F("poll_failures") + 1
        )
