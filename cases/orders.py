"""The order-level rules for orders the storefront created or changed: stock (oversold, out of stock) and
order review, run for the orders marked `rules_due_at` (tracking.storefront marks them)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from cases.engine import SweepResult
from cases.review import order_review_evaluate
from cases.stock import stock_evaluate, store_lock
from portal.models import Store
from tracking.models import Order, OrderLine, Shipment
from tracking.storefront import orders_due_clear

REVIEW_CHUNK = 10_000  # order ids per order_review_evaluate call (one IN list each)
# A burst this large has outrun the planner's statistics (autovacuum analyzes a table a minute or more after
# it grew): with the table still counted at its size before the livestream, PostgreSQL walked 100,000 new
# orders' lines in a nested loop for minutes. ANALYZE first costs a fraction of a second.
ANALYZE_FROM = 5_000


def orders_due_evaluate(*, now: datetime | None = None) -> SweepResult:
    """Evaluate the stock and review rules for every store's due orders, then clear their marks.

    Per store, in one transaction under the store's lock (the same lock stock_evaluate and
    order_review_evaluate take, so evaluations of a store take turns): the due orders are read, the stock
    rules evaluated once over their SKUs and live sessions (stock_evaluate covers every order sharing that
    stock, so a livestream's 100,000 due orders cost one evaluation, not one per batch), the review rules
    over the orders, and each mark cleared only if it is still the one read (a change made meanwhile stays
    due, for the next run). Idempotent; a crash leaves the marks for the next run.
    """
    now = now or timezone.now()
    result = SweepResult()
    due = Q(rules_due_at__isnull=False, rules_due_at__lte=now)
    store_ids = list(Order.objects.filter(due).order_by().values_list("store_id", flat=True).distinct())
    for store in Store.objects.filter(pk__in=store_ids).order_by("pk"):
        with transaction.atomic():
            store_lock(store)
            claimed = list(
                Order.objects.filter(due, store=store).values_list("pk", "rules_due_at", "live_session_id")
            )
            if not claimed:
                continue
            if len(claimed) >= ANALYZE_FROM:
                _statistics_refresh()
            sku_ids = set(
                OrderLine.objects.filter(order__in=Order.objects.filter(due, store=store), sku__isnull=False)
                .values_list("sku_id", flat=True)
                .distinct()
            )
            sessions = {session for _, _, session in claimed if session is not None}
            result += stock_evaluate(store=store, sku_ids=sku_ids, live_session_ids=sessions, now=now)
            order_ids = [pk for pk, _, _ in claimed]
            for start in range(0, len(order_ids), REVIEW_CHUNK):
                result += order_review_evaluate(
                    store=store, order_ids=order_ids[start : start + REVIEW_CHUNK], now=now
                )
            orders_due_clear(claimed=[(pk, mark) for pk, mark, _ in claimed])
    return result


def _statistics_refresh() -> None:
    """ANALYZE the tables a burst of orders grew (PostgreSQL; SQLite plans without statistics here)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (Order, OrderLine, Shipment):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
