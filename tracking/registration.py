"""Registering parcels with the providers that track, and push, only registered numbers.

AfterShip, 17TRACK and Kdniao push a parcel's updates only once it is registered with them (a tracking
created, a number registered, a subscription). Each round, per active connection whose provider registers:

  seed:     one TrackingRegistration per new shipment of the store that the connection tracks (those
            past its `registration_cursor`; delivered ones, those older than MAX_AGE and those of carriers
            another connection of the store tracks, left out: tracking.selectors.parcels_tracked_by), so
            push-only connections register too;
  claim:    due registrations (SKIP LOCKED), leased like polls so a dead worker releases them; a parcel
            delivered meanwhile is marked not needed and not sent;
  register: provider.register in the provider's batches; registered rows are done, refused ones are asked
            again after 1, 2, 4, 8, 16 hours and then given up (at once where the provider says asking
            again cannot help: FinalRefusal). A parcel the provider stopped tracking before delivery
            (its push said so: registrations_stopped) is started again the same way. Where the provider's
            pull reads nothing of an unregistered number, the parcel's next poll waits for its next
            attempt, so a refused number is not asked about at every poll.

A provider error is recorded on the connection: retryable ones back the batch off, a permanent one
pauses the connection's registration for an hour, or until its credentials change (`registration_paused_until`). Every step commits on its own and is safe to repeat: registering a number
twice is harmless (the providers answer "already registered").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from portal.db import skip_locked
from tracking.choices import RegistrationStatus, Tag
from tracking.models import Shipment, TrackingConnection, TrackingRegistration
from tracking.providers import provider_for
from tracking.providers.base import FinalRefusal, Provider, ProviderError, Recipient, TrackingRef
from tracking.rounds import claim_size, in_time
from tracking.selectors import parcels_tracked_by

log = logging.getLogger(__name__)

SEED_BATCH = 2000  # shipments seeded per statement
REGISTRATION_LEASE = timedelta(
    minutes=10
)  # a claimed registration is tried again after this if its worker died
MAX_REFUSALS = 6  # asked again after 1, 2, 4, 8 and 16 hours, then given up
RETRY_BACKOFF = timedelta(minutes=5)  # after a retryable provider error (or its Retry-After, if longer)
PERMANENT_BACKOFF = timedelta(hours=1)  # after a permanent one: someone has to fix the connection
GIVEN_UP_POLL = timedelta(hours=24)  # a parcel its provider will not register is still polled daily
# Parcels shipped longer ago than this are not registered when a connection first sees them (a connection
# added to a store with years of history): providers bill per tracking, and those parcels are long settled.
MAX_AGE = timedelta(days=30)


@dataclass
class RegistrationResult:
    seeded: int = 0
    registered: int = 0
    refused: int = 0
    error: str = ""


def registrations_seed(
    *, connection: TrackingConnection, now: datetime, limit: int = SEED_BATCH
) -> int | None:
    """Make the registrations of up to `limit` of the store's shipments created since the last seeding
    (delivered ones need none, nor those created more than MAX_AGE ago, nor those another connection
    tracks), and advance the connection's cursor past them. Returns how many were made,
    None when no shipment is past the cursor. Conflicts with rows another worker made are ignored."""
    with transaction.atomic():
        cursor = (
            TrackingConnection.objects.select_for_update()
            .values_list("registration_cursor", flat=True)
            .get(pk=connection.pk)
        )
        window = Shipment.objects.filter(store_id=connection.store_id, pk__gt=cursor).order_by("pk")
        last = window[:limit].aggregate(last=Max("pk"))["last"]
        if last is None:
            return None
        made = TrackingRegistration.objects.filter(connection_id=connection.pk, shipment_id=OuterRef("pk"))
        pks = list(
            window.filter(parcels_tracked_by(connection), pk__lte=last, created_at__gte=now - MAX_AGE)
            .exclude(status=Tag.DELIVERED)
            .exclude(Exists(made))  # seeded before the cursor was rewound (registrations_rewind)
            .values_list("pk", flat=True)
        )
        TrackingRegistration.objects.bulk_create(
            [
                TrackingRegistration(
                    connection_id=connection.pk, shipment_id=pk, next_attempt_at=now, created_at=now
                )
                for pk in pks
            ],
            ignore_conflicts=True,
        )
        TrackingConnection.objects.filter(pk=connection.pk).update(registration_cursor=last)
        connection.registration_cursor = last
    return len(pks)


def registrations_rewind(*, store_id: int, now: datetime | None = None) -> int:
    """After the store's parcels were shared out anew among its connections (a connection's carriers, or
    whether it is active, changed): seed again from the store's first parcel of the last MAX_AGE, so each
    connection registers the parcels in transit it now tracks, not only the next new ones. Registrations
    already made stay (seeding ignores them). Returns how many connections were rewound."""
    now = now or timezone.now()
    recent = Shipment.objects.filter(store_id=store_id, created_at__gte=now - MAX_AGE)
    first = recent.aggregate(first=Min("pk"))["first"]
    if first is None:
        return 0
    return TrackingConnection.objects.filter(store_id=store_id, registration_cursor__gte=first).update(
        registration_cursor=first - 1
    )


def registrations_claim(
    *, connection: TrackingConnection, limit: int, now: datetime
) -> list[TrackingRegistration]:
    """Claim up to `limit` of the connection's due registrations, with their shipments and orders."""
    with transaction.atomic():
        due = skip_locked(
            TrackingRegistration.objects.filter(connection=connection, next_attempt_at__lte=now)
        )
        claimed = list(due.order_by("next_attempt_at", "pk").select_related("shipment__order")[:limit])
        TrackingRegistration.objects.filter(pk__in=[r.pk for r in claimed]).update(
            next_attempt_at=now + REGISTRATION_LEASE
        )
    return claimed


def registrations_run(
    *, connection: TrackingConnection, now: datetime | None = None, deadline: float | None = None
) -> RegistrationResult:
    """One registration round for one connection (see the module's docstring): until nothing is due, or no
    new batch after `deadline` (time.monotonic())."""
    now = now or timezone.now()
    result = RegistrationResult()
    provider = provider_for(connection)
    if not (connection.is_active and connection.register_parcels and provider.registers):
        return result
    paused = connection.registration_paused_until
    if paused is not None and paused > now:
        return result  # a permanent error: no request until someone fixes the credentials, or an hour passes
    while (seeded := registrations_seed(connection=connection, now=now, limit=SEED_BATCH)) is not None:
        result.seeded += seeded
    batches = 0
    while not batches or in_time(deadline):  # at least one batch per round, however late
        batches += 1
        batch = registrations_claim(connection=connection, limit=claim_size(provider), now=now)
        if not batch:
            break
        batch = _unless_delivered(batch)
        if not batch:
            continue
        try:
            refused = provider.register([_ref(registration) for registration in batch])
        except ProviderError as exc:
            result.error = f"{exc.__class__.__name__}: {exc}"[:2000]
            _register_failed(connection=connection, batch=batch, exc=exc, message=result.error, now=now)
            if not exc.retryable:
                break
            continue
        _register_done(provider=provider, batch=batch, refused=refused, now=now)
        result.refused += sum(1 for r in batch if r.shipment.tracking_number in refused)
        result.registered += sum(1 for r in batch if r.shipment.tracking_number not in refused)
    return result


def registrations_retry(*, ids: Sequence[int], now: datetime | None = None) -> int:
    """Ask the provider again now about parcels not registered (refused, given up, or waiting), their count
    of refusals forgotten: for when the cause is fixed (a carrier code, the connection's plan). The reason
    stays on show until the provider answers. Returns how many registrations were put back in line."""
    return (
        TrackingRegistration.objects.filter(pk__in=ids)
        .exclude(status=RegistrationStatus.REGISTERED)
        .update(attempts=0, next_attempt_at=now or timezone.now())
    )


def _ref(registration: TrackingRegistration) -> TrackingRef:
    shipment = registration.shipment
    order = shipment.order
    recipient = Recipient(
        name=order.buyer_name, phone=order.buyer_phone, province=order.province, city=order.city,
        district=order.district, address=order.street,
    )  # fmt: skip
    restart = registration.status == RegistrationStatus.STOPPED
    return TrackingRef(shipment.tracking_number, shipment.carrier, recipient, restart=restart)


def _unless_delivered(batch: Sequence[TrackingRegistration]) -> list[TrackingRegistration]:
    """The batch without the parcels delivered since they were seeded (or refused): a registration then is
    billed for nothing and pushes nothing. Those are marked not needed, for good."""
    delivered = [r.pk for r in batch if r.shipment.status == Tag.DELIVERED]
    if delivered:
        TrackingRegistration.objects.filter(pk__in=delivered).update(
            status=RegistrationStatus.NOT_NEEDED, next_attempt_at=None
        )
    return [r for r in batch if r.pk not in delivered]


def _register_done(
    *, provider: Provider, batch: Sequence[TrackingRegistration], refused: dict[str, str], now: datetime
) -> None:
    registered = [r for r in batch if r.shipment.tracking_number not in refused]
    with transaction.atomic():
        TrackingRegistration.objects.filter(pk__in=[r.pk for r in registered]).update(
            status=RegistrationStatus.REGISTERED, registered_at=now, next_attempt_at=None, error=""
        )
        if registered:
            TrackingConnection.objects.filter(pk=registered[0].connection_id).update(last_registered_at=now)
        if not provider.pulls_unregistered:
            # Parcels whose polls waited for a registration that has now succeeded are polled at once.
            waited = [r.shipment_id for r in registered if r.status == RegistrationStatus.REFUSED]
            Shipment.objects.filter(pk__in=waited, next_poll_at__gt=now).exclude(status=Tag.DELIVERED).update(
                next_poll_at=now
            )
        for registration in batch:
            reason = refused.get(registration.shipment.tracking_number)
            if reason is None:
                continue
            attempts = MAX_REFUSALS if isinstance(reason, FinalRefusal) else registration.attempts + 1
            retry_at = _asked_again_at(attempts, now)
            # A stopped parcel stays stopped until its restart succeeds, so the next attempt restarts it too;
            # the provider still has it, so its pull still reads what the provider knows.
            stopped = registration.status == RegistrationStatus.STOPPED
            TrackingRegistration.objects.filter(pk=registration.pk).update(
                status=RegistrationStatus.STOPPED if stopped else RegistrationStatus.REFUSED,
                attempts=attempts, next_attempt_at=retry_at, error=reason[:2000],
            )  # fmt: skip
            if not (stopped or provider.pulls_unregistered):
                Shipment.objects.filter(pk=registration.shipment_id, next_poll_at__isnull=False).update(
                    next_poll_at=retry_at or now + GIVEN_UP_POLL
                )


def _asked_again_at(refusals: int, now: datetime) -> datetime | None:
    """When a number refused (or dropped) `refusals` times is asked again: 1, 2, 4, 8, 16 h, then never."""
    return now + timedelta(hours=2 ** (refusals - 1)) if refusals < MAX_REFUSALS else None


def registrations_stopped(
    *, connection: TrackingConnection, reasons: Mapping[str, str], now: datetime
) -> int:
    """The provider says it stopped tracking these numbers (Kuaidi100's abort, 17TRACK's TRACKING_STOPPED):
    those of the store's parcels not yet delivered are marked stopped and started again later (registered
    again, or restarted where the provider needs that: TrackingRef.restart), as after a refusal (1, 2, 4,
    8, 16 h, then given up), with the provider's reason on show. Called in the transaction that processes the push, so a push
    processed again finds them already so. Returns how many registrations went back in line."""
    rows = (
        TrackingRegistration.objects.filter(
            connection_id=connection.pk,
            status=RegistrationStatus.REGISTERED,
            shipment__store_id=connection.store_id,
            shipment__tracking_number__in=list(reasons),
        )
        .exclude(shipment__status=Tag.DELIVERED)
        .select_related("shipment")
    )
    count = 0
    for registration in rows:
        attempts = registration.attempts + 1
        count += TrackingRegistration.objects.filter(pk=registration.pk, status=RegistrationStatus.REGISTERED).update(
            status=RegistrationStatus.STOPPED, attempts=attempts, next_attempt_at=_asked_again_at(attempts, now),
            error=reasons[registration.shipment.tracking_number][:2000],
        )  # fmt: skip
    return count


def _register_failed(
    *,
    connection: TrackingConnection,
    batch: Sequence[TrackingRegistration],
    exc: ProviderError,
    message: str,
    now: datetime,
) -> None:
    log.warning("tracking registration %s: %s", connection, message)
    backoff = RETRY_BACKOFF if exc.retryable else PERMANENT_BACKOFF
    if exc.retry_after:
        backoff = max(backoff, timedelta(seconds=exc.retry_after))
    with transaction.atomic():
        # A permanent error (a refused key, a closed plan) is the account's, not the batch's: the whole
        # connection's registration pauses, so no request is sent for it each minute meanwhile.
        paused = {} if exc.retryable else {"registration_paused_until": now + backoff}
        TrackingConnection.objects.filter(pk=connection.pk).update(
            last_error=message, last_error_at=now, **paused
        )
        TrackingRegistration.objects.filter(pk__in=[r.pk for r in batch]).update(
            next_attempt_at=now + backoff
        )
