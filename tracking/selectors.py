"""Reads of orders, shipments and tracking events, scoped to the user's stores."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from portal.selectors import store_ids_for_user
from tracking.models import Shipment, TrackingConnection, TrackingEvent


def shipment_timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The parcel's story, newest checkpoint first (what an agent reads first)."""
    return shipment.events.order_by("-checkpoint_at", "-id")


def shipment_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Shipment:
    shipment = (
        Shipment.objects.filter(pk=pk, store_id__in=store_ids_for_user(user))
        .select_related("store", "order")
        .first()
    )
    if shipment is None:
        raise Http404("No such shipment.")
    return shipment


def connection_get_for_webhook(*, provider: str, uuid: UUID) -> TrackingConnection:
    """The active connection a webhook URL names; 404 for unknown, mismatched or disabled ones."""
    connection = (
        TrackingConnection.objects.filter(uuid=uuid, provider=provider, is_active=True)
        .select_related("store")
        .first()
    )
    if connection is None:
        raise Http404("No such tracking connection.")
    return connection
