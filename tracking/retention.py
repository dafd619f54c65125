"""Retention: raw pushes that have served their purpose are deleted, so a livestream's pushes (a full trace
each, many times over per parcel) do not grow the database without end.

What goes, once older than its setting (in days; 0 keeps it for ever):
- processed webhook deliveries, after TRACKING_DELIVERY_RETENTION_DAYS (default 30). Their checkpoints
  are events by then, raw code and text included; the connection's counters keep the totals (its
  `deliveries_pruned` adds the deleted to the deliveries received it shows in the admin). A
  delivery still kept for a number waiting for its shipment stays: matching ingests it again.
  Received and failed deliveries always stay: they are work, or a fault for someone to look at.
- tracking numbers pushed before their shipment existed, once matched, after the same number of days;
  never matched and not pushed again, after TRACKING_UNMATCHED_RETENTION_DAYS (default 90): by then the
  number is not one of the store's parcels.

Deletes go in batches of `PRUNE_BATCH`, each in its own short transaction, oldest first: a crash halfway
leaves the rest for the next round, and a round repeated deletes nothing twice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from portal.db import skip_locked
from tracking.choices import DeliveryStatus
from tracking.models import TrackingConnection, UnmatchedTracking, WebhookDelivery

PRUNE_BATCH = 2_000


@dataclass
class PruneResult:
    deliveries: int = 0
    unmatched: int = 0


def history_prune(
    *,
    now: datetime | None = None,
    deadline: float | None = None,
    delivery_days: int | None = None,
    unmatched_days: int | None = None,
    batch: int = PRUNE_BATCH,
) -> PruneResult:
    """Delete what retention lets go (see the module), batch by batch until nothing is left or the
    `deadline` (time.monotonic()) has passed. Returns how many rows went."""
    now = now or timezone.now()
    delivery_days = settings.TRACKING_DELIVERY_RETENTION_DAYS if delivery_days is None else delivery_days
    unmatched_days = settings.TRACKING_UNMATCHED_RETENTION_DAYS if unmatched_days is None else unmatched_days
    result = PruneResult()
    # Numbers first: a delivery is kept while a waiting number refers to it.
    expired = Q()
    if delivery_days:
        expired |= Q(matched_at__lt=now - timedelta(days=delivery_days))
    if unmatched_days:
        expired |= Q(matched_at__isnull=True, last_seen_at__lt=now - timedelta(days=unmatched_days))
    if expired:
        result.unmatched = _delete_in_batches(
            UnmatchedTracking.objects.filter(expired), batch=batch, deadline=deadline
        )
    if delivery_days:
        awaited = UnmatchedTracking.objects.filter(delivery_id=OuterRef("pk"), matched_at__isnull=True)
        done = WebhookDelivery.objects.filter(
            status=DeliveryStatus.PROCESSED, received_at__lt=now - timedelta(days=delivery_days)
        ).exclude(Exists(awaited))
        result.deliveries = _delete_in_batches(
            done, batch=batch, deadline=deadline, counter="deliveries_pruned"
        )
    return result


def _delete_in_batches(
    rows: QuerySet, *, batch: int, deadline: float | None, counter: str | None = None
) -> int:
    """Delete `rows`, `batch` at a time. With `counter`, a field of TrackingConnection, each connection's
    counter grows by its rows deleted, in the same transaction."""
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        with transaction.atomic():
            # Oldest first, by primary key: the rows to go sit at the start of its index. Locked (another
            # round skips them), so what is counted is what is deleted.
            picked = list(
                skip_locked(rows.order_by("pk")).values_list("pk", "connection_id" if counter else "pk")[
                    :batch
                ]
            )
            if not picked:
                break
            # only("pk"): the collector loads what it deletes, and the raw bodies need not be read for that.
            rows.model.objects.filter(pk__in=[pk for pk, _ in picked]).only("pk").delete()
            if counter:
                for connection_id, count in Counter(key for _, key in picked).items():
                    TrackingConnection.objects.filter(pk=connection_id).update(
                        **{counter: F(counter) + count}
                    )
        deleted += len(picked)
        if len(picked) < batch:
            break
    return deleted
