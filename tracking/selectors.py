"""Reads of orders, shipments and tracking events, scoped to the user's stores."""

from __future__ import annotations

import time
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from portal.selectors import store_ids_for_user
from tracking.choices import RegistrationStatus
from tracking.models import Shipment, TrackingConnection, TrackingEvent, TrackingRegistration


def shipment_timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The parcel's story, newest checkpoint first (what an agent reads first)."""
    return shipment.events.order_by("-checkpoint_at", "-id")


def shipment_cases(shipment: Shipment) -> QuerySet:
    """The cases of the parcel's own store raised on it, newest first: the way back to the work from its story.

    Through the reverse relation, so tracking imports nothing of cases. Scoped to the shipment's store (which the
    caller has checked against the user) rather than trusting that every case linked to it shares that store."""
    return (
        shipment.cases.filter(store_id=shipment.store_id)
        .select_related("assignee")
        .order_by("-opened_at", "-pk")
    )


def connections_stopped_for_user(user: AbstractBaseUser | AnonymousUser) -> list[TrackingConnection]:
    """The user's stores' connections that a permanent provider error (a refused key, a closed account)
    stopped: polling switched off, or registration paused so new parcels get no pushes. Their parcels'
    statuses go stale until someone fixes them. Oldest error first."""
    stopped = Q(pull_enabled=False) | Q(registration_paused_until__gt=timezone.now())
    return list(
        TrackingConnection.objects.filter(
            stopped,
            store_id__in=store_ids_for_user(user),
            is_active=True,
            last_error_at__isnull=False,
        )
        .exclude(last_error="")
        .select_related("store")
        .order_by("last_error_at", "pk")
    )


def registration_counts(connection_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per connection, how many parcels are waiting for registration, registered and refused."""
    counts = {pk: dict.fromkeys(RegistrationStatus.values, 0) for pk in connection_ids}
    rows = (
        TrackingRegistration.objects.filter(connection_id__in=connection_ids)
        .values_list("connection_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for connection_id, status, n in rows:
        counts[connection_id][status] = n
    return counts


def shipment_registrations(shipment: Shipment) -> list[TrackingRegistration]:
    """The parcel's registrations with its store's providers (whether pushes can come, and why not)."""
    return list(
        shipment.registrations.filter(connection__store_id=shipment.store_id)
        .select_related("connection")
        .order_by("connection__provider")
    )


def store_is_polled(store_id: int) -> bool:
    """Whether an active connection pulls this store's tracking (else its parcels only hear of pushes)."""
    return TrackingConnection.objects.filter(store_id=store_id, is_active=True, pull_enabled=True).exists()


def shipment_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Shipment:
    shipment = (
        Shipment.objects.filter(pk=pk, store_id__in=store_ids_for_user(user))
        .select_related("store", "order")
        .first()
    )
    if shipment is None:
        raise Http404("No such shipment.")
    return shipment


# Webhook URL -> active connection, per process. Every push looks its connection up, and the lookup was a
# measurable part of a push's cost; connections change rarely. The price: a connection deactivated in the
# admin keeps accepting pushes in a process that cached it for up to this many seconds. A re-keyed one does
# not wait: a push its cached secret rejects is checked again against the stored connection
# (`connection_reload_for_webhook`).
WEBHOOK_CONNECTION_TTL = 10.0
_webhook_connections: dict[tuple[str, UUID], tuple[float, TrackingConnection]] = {}


def connection_get_for_webhook(*, provider: str, uuid: UUID) -> TrackingConnection:
    """The active connection a webhook URL names; 404 for unknown, mismatched or disabled ones.

    Cached per process for WEBHOOK_CONNECTION_TTL seconds (only found connections; a 404 is never cached).
    """
    cached = _webhook_connections.get((provider, uuid))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    connection = connection_reload_for_webhook(provider=provider, uuid=uuid)
    if connection is None:
        raise Http404("No such tracking connection.")
    return connection


def connection_reload_for_webhook(*, provider: str, uuid: UUID) -> TrackingConnection | None:
    """The active connection a webhook URL names, read from the database (and cached), or None."""
    key = (provider, uuid)
    now = time.monotonic()
    connection = (
        TrackingConnection.objects.filter(uuid=uuid, provider=provider, is_active=True)
        .select_related("store")
        .first()
    )
    if connection is None:
        _webhook_connections.pop(key, None)
        return None
    if len(_webhook_connections) > 1_000:  # a bound, not an LRU: stale entries go in one sweep
        _webhook_connections.clear()
    _webhook_connections[key] = (now + WEBHOOK_CONNECTION_TTL, connection)
    return connection
