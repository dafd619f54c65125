"""django-q2 tasks: thin wrappers that take ids and call the pipeline. The rows are the durable work."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from portal.tasks import wake
from tracking.ingest import deliveries_process, tracking_sync, unmatched_match
from tracking.models import TrackingConnection
from tracking.registration import registrations_run
from tracking.retention import history_prune
from tracking.scheduled import SEND_BATCH, scheduled_pushes_send

# The exception rules live in `cases`, which tracking never imports: they are woken by dotted path.
RULES_TASK = "cases.tasks.evaluate_due"
STOCK_RULES_TASK = "cases.tasks.evaluate_stores"
ORDER_RULES_TASK = "cases.tasks.evaluate_orders"
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


# How long one round may keep starting batches: within the worker's task timeout (Q_CLUSTER, 120 s), and
# shared out among the connections so one store's backlog cannot starve the others. A round still
# running when the next one is due is safe: both claim with SKIP LOCKED.
SYNC_ROUND_SECONDS = 90.0
REGISTER_ROUND_SECONDS = 50.0
PRUNE_ROUND_SECONDS = 60.0


def budgeted(
    connections: Sequence[TrackingConnection], seconds: float
) -> Iterator[tuple[TrackingConnection, float]]:
    """Each connection with its deadline: an equal share of the time left, so time a quick connection did
    not need goes to the ones after it."""
    end = time.monotonic() + seconds
    for index, connection in enumerate(connections):
        left = end - time.monotonic()
        yield connection, time.monotonic() + max(left, 0.0) / (len(connections) - index)


def sync_due() -> int:
    """One polling round over every active pull connection. Returns the number of shipments polled."""
    polled = new_events = 0
    connections = list(
        TrackingConnection.objects.filter(is_active=True, pull_enabled=True)
        .select_related("store")
        .order_by("pk")
    )
    for connection, deadline in budgeted(connections, SYNC_ROUND_SECONDS):
        result = tracking_sync(connection=connection, deadline=deadline)
        polled += result.polled
        new_events += result.ingest.new
    if new_events:
        wake(RULES_TASK)
    return polled


def register_due() -> int:
    """Register new parcels with every active connection whose provider pushes only registered numbers,
    and ask again about refused ones that are due. Returns how many were registered."""
    registered = 0
    connections = list(
        TrackingConnection.objects.filter(is_active=True, register_parcels=True)
        .select_related("store")
        .order_by("pk")
    )
    for connection, deadline in budgeted(connections, REGISTER_ROUND_SECONDS):
        registered += registrations_run(connection=connection, deadline=deadline).registered
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


def send_scheduled_pushes(max_rounds: int = 50) -> int:
    """Receive the simulator's pushes that are due (the live demo's carriers), then wake the delivery step.
    Returns how many were received. Nothing to do, one indexed query, wherever no simulator schedules any."""
    sent = 0
    for _ in range(max_rounds):
        batch = scheduled_pushes_send()
        sent += batch
        if batch < SEND_BATCH:
            break
    if sent:
        wake_delivery_processing()
    return sent


def wake_delivery_processing() -> None:
    wake("tracking.tasks.process_deliveries")


def run_imports() -> int:
    """Check large uploads, run confirmed Seller Center imports, resume those whose worker died. Returns the
    chunks written; a file not finished within the round wakes the next one."""
    from tracking.imports.service import IMPORT_TASK, imports_run

    written = imports_run(seconds=SYNC_ROUND_SECONDS)
    if written:
        wake(IMPORT_TASK)  # more may be left: the next round carries on at once, not in a minute
    return written


def prune_history() -> int:
    """Delete processed raw pushes and settled unknown numbers past their retention (tracking.retention),
    for up to a minute; what is left goes in the next round. Returns how many rows went."""
    result = history_prune(deadline=time.monotonic() + PRUNE_ROUND_SECONDS)
    return result.deliveries + result.unmatched
