"""django-q2 tasks: thin wrappers that take ids and call the pipeline. The rows are the durable work."""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import transaction

from tracking.ingest import deliveries_process, tracking_sync
from tracking.models import TrackingConnection

log = logging.getLogger(__name__)
_WAKE_KEY = "tracking:wake:deliveries"


def process_deliveries(max_rounds: int = 50) -> int:
    """Drain stored webhook deliveries. Returns how many were processed."""
    total = 0
    for _ in range(max_rounds):
        result = deliveries_process()
        total += result.deliveries + result.failed
        if result.deliveries + result.failed == 0:
            break
    return total


def sync_due() -> int:
    """One polling round over every active pull connection. Returns the number of shipments polled."""
    polled = 0
    for connection in TrackingConnection.objects.filter(is_active=True, pull_enabled=True).select_related(
        "store"
    ):
        polled += tracking_sync(connection=connection).polled
    return polled


def sync_connection(connection_id: int) -> int:
    connection = TrackingConnection.objects.select_related("store").get(pk=connection_id)
    return tracking_sync(connection=connection).polled


def wake_delivery_processing() -> None:
    """After commit, ask the worker to drain deliveries; at most one wake-up a second (the schedule is the
    safety net, so a lost wake-up only delays processing, never loses it)."""

    def enqueue() -> None:
        if not cache.add(_WAKE_KEY, 1, timeout=1):
            return
        from django_q.tasks import async_task

        try:
            async_task("tracking.tasks.process_deliveries", task_name="tracking: process deliveries")
        except Exception:  # the broker being down must not fail a delivery that is already stored
            log.warning("could not enqueue delivery processing; the schedule will pick it up", exc_info=True)

    transaction.on_commit(enqueue)
