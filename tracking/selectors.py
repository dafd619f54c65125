"""Reads of orders, shipments and tracking events, scoped to the user's stores."""

from __future__ import annotations

from django.db.models import QuerySet

from tracking.models import Shipment, TrackingEvent


def shipment_timeline(shipment: Shipment) -> QuerySet[TrackingEvent]:
    """The parcel's story, newest checkpoint first (what an agent reads first)."""
    return shipment.events.order_by("-checkpoint_at", "-id")
