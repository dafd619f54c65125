"""django-q2 tasks: thin wrappers that take ids and call the pipeline. The rows are the durable work."""

from __future__ import annotations

from portal.tasks import wake
from tracking.ingest import deliveries_process, tracking_sync, unmatched_match
from tracking.models import TrackingConnection
from tracking.registration import registrations_run

# The exception rules live in `cases`, which tracking never imports: they are woken by dotted path.
RULES_TASK = "cases.tasks.evaluate_due"
REGISTER_TASK = "tracking.tasks.register_due"


def process_deliveries(max_rounds: int = 50) -> int:
    """Drain stored webhook deliveries, then wake the rules if anything new arrived. Returns how many."""
    total = new_events = 0
    for _ in range(max_rounds):
        result = deliveries_process()
        total += result.deliveries + result.failed
        new_events += result.ingest.new
        if result.deliveries + result.failed == 0:
            break
    if new_events:
        wake(RULES_TASK)
    return total


def sync_due() -> int:
    """One polling round over every active pull connection. Returns the number of shipments polled."""
    polled = new_events = 0
    for connection in TrackingConnection.objects.filter(is_active=True, pull_enabled=True).select_related(
        "store"
    ):
        result = tracking_sync(connection=connection)
        polled += result.polled
        new_events += result.ingest.new
    if new_events:
        wake(RULES_TASK)
    return polled


def register_due() -> int:
    """Register new parcels with every active connection whose provider pushes only registered numbers,
    and ask again about refused ones that are due. Returns how many were registered."""
    registered = 0
    for connection in TrackingConnection.objects.filter(is_active=True).select_related("store"):
        registered += registrations_run(connection=connection).registered
    return registered


def match_unmatched(max_rounds: int = 50) -> int:
    """Ingest the kept pushes of tracking numbers whose shipment now exists. Returns how many matched."""
    matched = new_events = 0
    for _ in range(max_rounds):
        result = unmatched_match()
        matched += result.matched
        new_events += result.ingest.new
        if not result.matched:
            break
    if new_events:
        wake(RULES_TASK)
    return matched


def wake_delivery_processing() -> None:
    wake("tracking.tasks.process_deliveries")
