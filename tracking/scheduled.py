"""Scheduled simulator pushes: a simulated carrier that keeps scanning parcels after the demo is seeded.

The demo's in-transit parcels have checkpoints still to come (`tracking.simulator.simulate_history` with a
horizon). Each one waits as a `ScheduledPush` until its time, then arrives as that carrier's push would:
signed with the connection's secret and received through `delivery_receive`, the webhook's own path
(verified, parsed, stored as a raw delivery), for the worker's delivery step to ingest; its ingest wakes the
exception rules. So the demo's parcels keep moving: most reach the door, some fail there and raise a case,
a few go silent until the stalled rule sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.db import skip_locked
from tracking.choices import ProviderName
from tracking.ingest import SignatureRejected, delivery_receive
from tracking.models import ScheduledPush, TrackingConnection
from tracking.providers.base import ParsedTracking, PayloadError
from tracking.providers.simulator import SIGNATURE_HEADER, push_body, sign

log = logging.getLogger(__name__)

# A carrier's scan reaches its tracking provider, and the provider's push reaches us, a little later.
REPORT_DELAY = timedelta(minutes=2)
SEND_BATCH = 200


def simulator_push_receive(*, connection: TrackingConnection, body: bytes) -> None:
    """Receive a simulator push as its provider would send it: signed with the connection's current secret,
    then through `delivery_receive` (verified, parsed, stored as a raw delivery for the worker)."""
    delivery_receive(
        connection=connection,
        body=body,
        headers={SIGNATURE_HEADER: sign(body, connection.webhook_secret)},
        content_type="application/json",
    )


def scheduled_pushes_add(
    *, connection: TrackingConnection, trackings: Iterable[ParsedTracking], delay: timedelta = REPORT_DELAY
) -> int:
    """Hold one push per checkpoint of these trackings until the checkpoint's time plus `delay`. Returns how
    many were scheduled. Only for a simulator connection: a real provider's pushes come from the provider."""
    if connection.provider != ProviderName.SIMULATOR:
        raise ValueError(f"Pushes are scheduled for simulator connections only, not {connection.provider!r}.")
    rows = [
        ScheduledPush(
            connection=connection,
            tracking_number=tracking.tracking_number,
            due_at=event.checkpoint_at + delay,
            body=push_body([ParsedTracking(tracking.tracking_number, tracking.carrier, [event])]),
        )
        for tracking in trackings
        for event in tracking.events
    ]
    ScheduledPush.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def scheduled_pushes_send(*, now: datetime | None = None, limit: int = SEND_BATCH) -> int:
    """Receive the pushes due by `now`, oldest first, at most `limit`. Returns how many were received.

    Each push is stored as a webhook delivery and deleted in one transaction, so a crash halfway sends
    nothing and the next round sends it all; rows are claimed with SKIP LOCKED, so two workers never send
    one twice. A switched-off connection's pushes wait until it is switched on again.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            skip_locked(
                ScheduledPush.objects.filter(
                    due_at__lte=now, connection__is_active=True, connection__provider=ProviderName.SIMULATOR
                )
                .select_related("connection")
                .order_by("due_at", "pk")[:limit]
            )
        )
        for push in due:
            try:
                simulator_push_receive(connection=push.connection, body=bytes(push.body))
            except (SignatureRejected, PayloadError) as exc:
                # Counted on the connection as a real push's refusal would be; kept, it would fail forever.
                log.warning("Dropped scheduled push %s of %s: %s", push.pk, push.connection, exc)
        ScheduledPush.objects.filter(pk__in=[push.pk for push in due]).delete()
    return len(due)
