"""django-q2 tasks for cases: thin, idempotent, safe to run twice or concurrently."""

from __future__ import annotations

from cases.batch import batches_sweep
from cases.engine import exceptions_sweep
from cases.review import order_review_evaluate
from cases.stock import stock_evaluate
from portal.models import Store


def evaluate_due() -> dict[str, int]:
    """One rule sweep over every shipment whose next check is due."""
    result = exceptions_sweep()
    return {"evaluated": result.evaluated, "raised": result.raised, "resolved": result.resolved}


def evaluate_stores() -> dict[str, int]:
    """The store-wide rules: oversold and out-of-stock orders, orders to review, batch incidents.

    Also run right after order import and stock changes; this schedule is the safety net.
    """
    raised = 0
    for store in Store.objects.order_by("pk"):
        raised += stock_evaluate(store=store).raised
        raised += order_review_evaluate(store=store).raised
        raised += batches_sweep(store=store).raised
    return {"raised": raised}


def evaluate_orders() -> dict[str, int]:
    """The stock and review rules for the orders the storefront created or changed (marked due). Woken
    after each API write; the schedule picks up lost wake-ups."""
    from cases.orders import orders_due_evaluate

    result = orders_due_evaluate()
    return {"evaluated": result.evaluated, "raised": result.raised, "resolved": result.resolved}


def deliver_messages() -> dict[str, int]:
    """Drain the buyer-message outbox: every queued message that is due. Woken after each send; the
    schedule picks up retries and lost wake-ups."""
    from cases.messages import messages_deliver

    result = messages_deliver()
    return {"sent": result.sent, "retrying": result.retrying, "failed": result.failed}


def deliver_webhooks(max_rounds: int = 20) -> dict[str, int]:
    """Hand new storefront events to the stores' webhook endpoints and POST the due deliveries. Woken after
    each event; the schedule picks up retries and lost wake-ups."""
    from cases.outbox import deliveries_send, events_dispatch

    dispatched = delivered = retrying = failed = 0
    for _ in range(max_rounds):
        moved = events_dispatch()
        sent = deliveries_send()
        dispatched += moved
        delivered, retrying, failed = (
            delivered + sent.delivered,
            retrying + sent.retrying,
            failed + sent.failed,
        )
        if not moved and not (sent.delivered + sent.retrying + sent.failed):
            break
    return {"dispatched": dispatched, "delivered": delivered, "retrying": retrying, "failed": failed}


def prune_withdrawn_evidence() -> int:
    """Delete the bytes of evidence withdrawn longer ago than its retention (the rows stay)."""
    from cases.evidence import evidence_withdrawn_prune

    return evidence_withdrawn_prune()


def prune_storefront_events() -> int:
    """Forget storefront events past their retention (and their deliveries with them)."""
    from cases.outbox import events_prune

    return events_prune()


def compact_queue_counts() -> dict[str, int]:
    """Fold the queue counters' delta rows into one row per group (cases.queue_counts). Raises when the
    counting triggers are missing, so a failing schedule tells an operator the counts have stopped."""
    from cases.queue_counts import queue_counts_compact

    result = queue_counts_compact()
    return {"folded": result.folded, "written": result.written}
