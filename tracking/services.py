"""Writes to orders, shipments and tracking events. Every function here is safe to run twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from tracking.choices import Tag, normalize_subtag, normalize_tag
from tracking.models import Shipment, TrackingEvent

# Tags that mean the parcel physically moved forward; "last progress" is the latest of these.
PROGRESS_TAGS = (Tag.IN_TRANSIT, Tag.OUT_FOR_DELIVERY, Tag.AVAILABLE_FOR_PICKUP, Tag.DELIVERED)
ACCEPTANCE_SUBTAG = "InTransit_002"


@dataclass(frozen=True)
class EventData:
    """One normalized checkpoint as parsed from a provider, before it is stored."""

    checkpoint_at: datetime
    tag: str
    subtag: str
    source: str
    raw_code: str = ""
    raw_text: str = ""
    location: str = ""
    provider_key: str = ""  # the provider's own event id or checkpoint hash, when it gives one

    def dedupe_key(self, tracking_number: str) -> str:
        """Provider id when given, else a hash of what makes a checkpoint the same checkpoint."""
        if self.provider_key:
            basis = f"{self.source}|{self.provider_key}"
        else:
            basis = "|".join(
                (tracking_number, self.checkpoint_at.isoformat(), self.raw_code or self.subtag, self.location)
            )
        return hashlib.sha256(basis.encode()).hexdigest()[:40]


def events_ingest(*, shipment: Shipment, events: Iterable[EventData], now: datetime | None = None) -> int:
    """Append new events to one shipment and refresh its summary in the same transaction.

    Idempotent: events already stored (same dedupe key) are skipped by the database, so a replay adds
    nothing and a crash before commit leaves nothing behind. Returns the number of new events.
    """
    now = now or timezone.now()
    rows = []
    for event in events:
        tag = normalize_tag(event.tag)
        rows.append(
            TrackingEvent(
                shipment=shipment,
                checkpoint_at=event.checkpoint_at,
                tag=tag,
                subtag=normalize_subtag(tag, event.subtag),
                raw_code=event.raw_code,
                raw_text=event.raw_text,
                location=event.location,
                source=event.source,
                dedupe_key=event.dedupe_key(shipment.tracking_number),
                received_at=now,
            )
        )
    with transaction.atomic():
        before = TrackingEvent.objects.filter(shipment=shipment).count()
        TrackingEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        added = TrackingEvent.objects.filter(shipment=shipment).count() - before
        shipment_summary_refresh(shipment=shipment, now=now)
    return added


def shipment_summary_refresh(*, shipment: Shipment, now: datetime | None = None) -> Shipment:
    """Derive the shipment's status fields from its events (facts first, derived state second).

    The status is the latest checkpoint by time, so an event that arrives late never moves the shipment
    backwards. The first acceptance scan is kept as the appeal truth. Marks the shipment due for the rules.
    """
    now = now or timezone.now()
    events = TrackingEvent.objects.filter(shipment=shipment)
    latest = events.order_by("-checkpoint_at", "-id").only("tag", "subtag").first()
    agg = events.aggregate(
        last_event_at=Max("checkpoint_at"),
        last_progress_at=Max("checkpoint_at", filter=Q(tag__in=PROGRESS_TAGS)),
        delivered_at=Min("checkpoint_at", filter=Q(tag=Tag.DELIVERED)),
        acceptance_at=Min("checkpoint_at", filter=Q(subtag=ACCEPTANCE_SUBTAG)),
        first_progress_at=Min("checkpoint_at", filter=Q(tag__in=PROGRESS_TAGS)),
    )
    if latest is not None:
        shipment.status, shipment.substatus = latest.tag, latest.subtag
    shipment.last_event_at = agg["last_event_at"]
    shipment.last_progress_at = agg["last_progress_at"]
    shipment.delivered_at = agg["delivered_at"] if shipment.status == Tag.DELIVERED else None
    shipment.accepted_at = agg["acceptance_at"] or agg["first_progress_at"]
    shipment.next_check_at = now
    shipment.save(
        update_fields=[
            "status",
            "substatus",
            "last_event_at",
            "last_progress_at",
            "delivered_at",
            "accepted_at",
            "next_check_at",
        ]
    )
    return shipment
