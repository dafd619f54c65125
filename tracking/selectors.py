"""Reads of orders, shipments and tracking events, scoped to the user's stores."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import In
from django.http import Http404
from django.utils import timezone

from portal.models import Store
from portal.selectors import store_ids_for_user
from tracking.choices import DeliveryStatus, RegistrationStatus
from tracking.models import (
    SKU,
    LiveSession,
    Order,
    ScheduledPush,
    Shipment,
    TrackingConnection,
    TrackingEvent,
    TrackingRegistration,
    WebhookDelivery,
)


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


def _stopped(now) -> Q:
    """A connection a permanent provider error stopped: polling switched off, or registration paused."""
    stopped = Q(pull_enabled=False) | Q(registration_paused_until__gt=now)
    return stopped & Q(last_error_at__isnull=False) & ~Q(last_error="")


def connections_stopped_for_user(user: AbstractBaseUser | AnonymousUser) -> list[TrackingConnection]:
    """The user's stores' connections that a permanent provider error (a refused key, a closed account)
    stopped: polling switched off, or registration paused so new parcels get no pushes. Their parcels'
    statuses go stale until someone fixes them. Oldest error first."""
    return list(
        TrackingConnection.objects.filter(
            _stopped(timezone.now()), store_id__in=store_ids_for_user(user), is_active=True
        )
        .select_related("store")
        .order_by("last_error_at", "pk")
    )


def stores_untracked_for_user(user: AbstractBaseUser | AnonymousUser) -> list[Store]:
    """The user's stores that have parcels but no active tracking connection: no carrier update reaches
    them, so their parcels' statuses never move and their cases come from deadlines alone (every parcel
    'not picked up' a day after booking). A store being set up, with no parcel yet, is not one."""
    active = TrackingConnection.objects.filter(store_id=OuterRef("pk"), is_active=True)
    parcels = Shipment.objects.filter(store_id=OuterRef("pk"))
    return list(
        Store.objects.filter(pk__in=store_ids_for_user(user))
        .filter(~Exists(active), Exists(parcels))
        .order_by("code")
    )


# A connection that registers parcels and polls none hears of them by push only; a day without one while it
# registered parcels in the last week means its webhook does not reach us (a wrong URL or secret in the
# provider's dashboard, a firewall), and its parcels' statuses go stale without a word.
PUSH_SILENCE = timedelta(hours=24)
PUSH_EXPECTED_FOR = timedelta(days=7)


def connections_silent_for_user(user: AbstractBaseUser | AnonymousUser) -> list[TrackingConnection]:
    """The user's stores' push-only connections that have registered parcels in the last week but received
    no push for a day (none ever: none in the day since their first registration), unless shown as stopped
    (connections_stopped_for_user) already. Longest silent first."""
    now = timezone.now()
    cutoff = now - PUSH_SILENCE
    registered_before_cutoff = Exists(
        TrackingRegistration.objects.filter(
            connection_id=OuterRef("pk"), status=RegistrationStatus.REGISTERED, registered_at__lt=cutoff
        )
    )
    return list(
        TrackingConnection.objects.filter(
            Q(last_push_at__lt=cutoff) | Q(registered_before_cutoff, last_push_at__isnull=True),
            store_id__in=store_ids_for_user(user),
            is_active=True,
            pull_enabled=False,
            last_registered_at__gte=now - PUSH_EXPECTED_FOR,
        )
        .exclude(_stopped(now))
        .select_related("store")
        .order_by(F("last_push_at").asc(nulls_first=True), "pk")
    )


# The worker processes a push within seconds (woken by the webhook, and every minute by its schedule): one
# still waiting after this long means no worker is running, and parcels' statuses and new cases wait too.
BACKLOG_ALERT = timedelta(minutes=5)
BACKLOG_COUNT_CAP = 1000  # counted up to this many: "1,000+" says enough


@dataclass(frozen=True)
class PushBacklog:
    oldest_at: datetime
    waiting: int  # capped at BACKLOG_COUNT_CAP
    more: bool  # more than that are waiting


def pushes_waiting(*, store_ids: list[int] | None = None) -> PushBacklog | None:
    """Pushes received but not processed for longer than BACKLOG_ALERT (of these stores' connections, or
    of all), or None when the worker keeps up. Two statements on the pending deliveries' partial index."""
    waiting = WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED)
    if store_ids is not None:
        waiting = waiting.filter(connection__store_id__in=store_ids)
    oldest = waiting.order_by("received_at").values_list("received_at", flat=True).first()
    if oldest is None or oldest > timezone.now() - BACKLOG_ALERT:
        return None
    count = waiting.order_by()[: BACKLOG_COUNT_CAP + 1].count()
    return PushBacklog(
        oldest_at=oldest, waiting=min(count, BACKLOG_COUNT_CAP), more=count > BACKLOG_COUNT_CAP
    )


def pushes_waiting_for_user(user: AbstractBaseUser | AnonymousUser) -> PushBacklog | None:
    """pushes_waiting for the user's stores: what the queue nav warns of."""
    return pushes_waiting(store_ids=store_ids_for_user(user))


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


# --- routing: which of a store's connections tracks which parcel -------------------------------------------
# A store may track with several providers (Kdniao for mainland carriers, 17TRACK for the rest). Each parcel
# is polled and registered by one of them, chosen by its carrier: a connection that names carriers tracks
# those; one that names none tracks every carrier that no other active connection of the store names. With
# no carriers named anywhere, every connection tracks every parcel (one provider per store, the usual case).
# Pushes are taken from any connection: a provider pushes only what it was given.


def carriers_named_elsewhere(connection: TrackingConnection) -> set[str]:
    """The carriers the store's other active connections name (a catch-all connection leaves them)."""
    named = (
        TrackingConnection.objects.filter(store_id=connection.store_id, is_active=True)
        .exclude(pk=connection.pk)
        .values_list("carriers", flat=True)
    )
    return {code for codes in named if isinstance(codes, list) for code in codes}


def carriers_taken(*, store_id: int, carriers: list[str], exclude: int | None = None) -> list[str]:
    """Which of `carriers` another active connection of the store names already, as "code (connection)"."""
    others = TrackingConnection.objects.filter(store_id=store_id, is_active=True).exclude(pk=exclude)
    return [
        f"{code} ({other})"
        for other in others.select_related("store").order_by("pk")
        for code in carriers
        if isinstance(other.carriers, list) and code in other.carriers
    ]


def _route(connection: TrackingConnection, named_elsewhere: set[str]) -> tuple[bool, set[str]]:
    """The connection's share of the store's carriers: (True, the carriers it names), or (False, the
    carriers it leaves to the others)."""
    own = connection.carriers if isinstance(connection.carriers, list) else []
    return (True, set(own)) if own else (False, named_elsewhere)


def parcels_tracked_by(connection: TrackingConnection, *, named_elsewhere: set[str] | None = None) -> Q:
    """A filter of Shipment: the parcels of the connection's store that it tracks (see routing above).
    `named_elsewhere`, when given, saves the query of carriers_named_elsewhere."""
    if named_elsewhere is None and not connection.carriers:
        named_elsewhere = carriers_named_elsewhere(connection)
    inclusive, codes = _route(connection, named_elsewhere or set())
    if not codes:
        return Q()
    matches = Q(In(Lower("carrier"), sorted(codes)))
    return matches if inclusive else ~matches


def shipment_is_polled(shipment: Shipment) -> bool:
    """Whether an active connection that tracks this parcel pulls (else it only hears of pushes)."""
    connections = list(TrackingConnection.objects.filter(store_id=shipment.store_id, is_active=True))
    carrier = shipment.carrier.strip().lower()
    for connection in connections:
        if not connection.pull_enabled:
            continue
        named = {code for other in connections if other.pk != connection.pk for code in other.carriers or ()}
        inclusive, codes = _route(connection, named)
        if (carrier in codes) == inclusive:
            return True
    return False


def shipment_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Shipment:
    shipment = (
        Shipment.objects.filter(pk=pk, store_id__in=store_ids_for_user(user))
        .select_related("store", "order")
        .first()
    )
    if shipment is None:
        raise Http404("No such shipment.")
    return shipment


def connections_for_store(store_id: int) -> list[TrackingConnection]:
    """The store's tracking connections, switched-off ones too, for its admins to see how tracking comes in
    (the webhook URL to give the provider, the masked secret, the counters and the last error)."""
    return list(TrackingConnection.objects.filter(store_id=store_id).order_by("-is_active", "provider", "pk"))


def scheduled_pushes_pending(connection_id: int) -> tuple[int, datetime | None]:
    """How many of the connection's scheduled simulator pushes wait, and when the next one is due."""
    waiting = ScheduledPush.objects.filter(connection_id=connection_id).aggregate(
        n=Count("pk"), next_due=Min("due_at")
    )
    return waiting["n"], waiting["next_due"]


PARCELS_FOUND_MAX = 5


def shipments_find_for_user(
    user: AbstractBaseUser | AnonymousUser, term: str, *, limit: int = PARCELS_FOUND_MAX
) -> list[Shipment]:
    """The parcels of the user's stores a buyer may quote: `term` is their tracking number (as typed or in
    capitals) or their order's platform order id, exactly. Newest first, at most `limit`. Found with or
    without a case: how an agent gets from a buyer's message to the tracking of a parcel nobody flagged."""
    term = term.strip()
    if not term or len(term) > 64:
        return []
    stores = store_ids_for_user(user)
    # Index lookups only: the order first (its (store, platform_order_id) unique index), then a UNION of
    # the shipments by number (their (store, tracking_number) unique index) and by that order (the order
    # FK's index). One WHERE with an OR of the two would read every shipment of the stores.
    order_ids = list(
        Order.objects.filter(store_id__in=stores, platform_order_id=term).values_list("pk", flat=True)
    )
    ids = Shipment.objects.filter(store_id__in=stores, tracking_number__in={term, term.upper()}).values("pk")
    if order_ids:  # orders of the user's stores already: their parcels are those stores' too
        ids = ids.union(Shipment.objects.filter(order_id__in=order_ids).values("pk"))
    found = Shipment.objects.filter(pk__in=ids).select_related("store", "order")
    return list(found.order_by("-booked_at", "-pk")[:limit])


# Webhook URL -> active connection, per process. Every push looks its connection up, and the lookup was a
# measurable part of a push's cost; connections change rarely. The price: a connection deactivated in the
# admin keeps accepting pushes in a process that cached it for up to this many seconds. A re-keyed one does
# not wait: a push its cached secret rejects is checked again against the stored connection
# (`connection_reload_for_webhook`).
WEBHOOK_CONNECTION_TTL = 10.0
_webhook_connections: dict[tuple[str, UUID], tuple[float, TrackingConnection]] = {}


def connection_get_for_webhook(*, provider: str, uuid: UUID) -> TrackingConnection | None:
    """The active connection a webhook URL names, or None for unknown, mismatched or disabled ones.

    Cached per process for WEBHOOK_CONNECTION_TTL seconds (only found connections; a miss is never cached).
    """
    cached = _webhook_connections.get((provider, uuid))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    return connection_reload_for_webhook(provider=provider, uuid=uuid)


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


# --- the storefront API's reads: one store, the API key's ---------------------------------------------


def sku_get_for_store(store: Store, code: str) -> SKU:
    sku = SKU.objects.filter(store=store, code=code).select_related("stock").first()
    if sku is None:
        raise Http404(f"No SKU {code} in this store.")
    return sku


def sku_components(sku: SKU) -> list[tuple[str, int]]:
    return list(sku.component_links.order_by("component__code").values_list("component__code", "quantity"))


def live_session_get_for_store(store: Store, external_id: str) -> LiveSession:
    session = LiveSession.objects.filter(store=store, external_id=external_id).first()
    if session is None:
        raise Http404(f"No live session {external_id} in this store.")
    return session


def live_session_allocations(session: LiveSession) -> list[tuple[str, int]]:
    return list(session.allocations.order_by("sku__code").values_list("sku__code", "quantity"))


def order_get_for_store(store: Store, platform_order_id: str) -> Order:
    """The order with its live session, lines and parcels (each with its latest checkpoint), or a 404."""
    order = (
        Order.objects.filter(store=store, platform_order_id=platform_order_id)
        .select_related("live_session")
        .first()
    )
    if order is None:
        raise Http404(f"No order {platform_order_id} in this store.")
    return order


def order_parcels(order: Order) -> list[tuple[Shipment, TrackingEvent | None]]:
    """The order's parcels, oldest first, each with its latest checkpoint (one query per parcel: an order has
    a few)."""
    return [
        (parcel, latest_checkpoint(parcel)) for parcel in Shipment.objects.filter(order=order).order_by("pk")
    ]


def latest_checkpoint(shipment: Shipment) -> TrackingEvent | None:
    return shipment.events.order_by("-checkpoint_at", "-pk").first()
