"""Issue 4's figures: a rule sweep costs what is due, not what exists.

1. One sweep over 1,000 due shipments among 10,000, then among 1,000,000: the larger table may cost at
   most twice as much (reported as the ratio of sweep rates, target >= 0.5).
2. EXPLAIN of the claim query on the large table: it must read the partial index on next_check_at.
3. A full evaluation of 100,000 due shipments: shipments/s.

Rows are generated inside PostgreSQL (generate_series), so building a million takes seconds.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from cases.engine import due_shipments, exceptions_sweep
from cases.models import Case
from portal.bench import BenchContext
from portal.bench.report import Comparison, Measure, Table
from portal.models import Store
from tracking.models import Order, Shipment

INDEX = "shipment_next_check_idx"


def run(context: BenchContext) -> list[Table]:
    due = context.size(1_000, minimum=50)
    small, large = context.size(10_000, minimum=500), context.size(1_000_000, minimum=2_000)
    full = context.size(100_000, minimum=500)
    store = Store.objects.create(code="bench-rules", name="Bench", platform="tiktok_shop", region="MY",
                                 currency="MYR", timezone="Asia/Kuala_Lumpur")  # fmt: skip
    now = timezone.now()

    table = Table(title=f"Rule sweeper: {due:,} due shipments among {small:,} and among {large:,}")
    small_time = _sweep_among(context, store, total=small, due=due, now=now)
    large_time, plan = _sweep_among(context, store, total=large, due=due, now=now, explain=True)
    small_rate = Measure(f"sweep, {due:,} due of {small:,}", due / small_time, "shipments/s",
                         f"{small_time * 1000:.0f} ms")  # fmt: skip
    large_rate = Measure(f"sweep, {due:,} due of {large:,}", due / large_time, "shipments/s",
                         f"{large_time * 1000:.0f} ms")  # fmt: skip
    table.references.append(small_rate)
    table.comparisons.append(Comparison(large_rate, small_rate, target=0.5))
    uses_index = INDEX in plan
    table.notes.append(
        f"sweep time ratio {large_time / small_time:.2f} (target <= 2); claim query "
        f"{'uses' if uses_index else 'DOES NOT use'} the partial index {INDEX}."
    )
    table.notes.append("EXPLAIN of the claim query at the large size:")
    table.notes.extend("  " + line for line in plan.splitlines())

    full_table = Table(title=f"Full evaluation of {full:,} due shipments")
    _reset_and_build(context, store, total=full, due=full, now=now)
    t0 = time.perf_counter()
    result = exceptions_sweep(now=now)
    elapsed = time.perf_counter() - t0
    full_table.references.append(
        Measure(
            "full evaluation",
            full / elapsed,
            "shipments/s",
            f"{elapsed:.1f} s; {result.raised:,} cases raised",
        )
    )
    return [table, full_table]


def _sweep_among(context, store, *, total: int, due: int, now: datetime, explain: bool = False):
    _reset_and_build(context, store, total=total, due=due, now=now)
    plan = ""
    if explain:
        with transaction.atomic():
            plan = due_shipments(now=now, limit=500).explain()
    t0 = time.perf_counter()
    result = exceptions_sweep(now=now)
    elapsed = time.perf_counter() - t0
    if result.evaluated != due:
        raise RuntimeError(f"expected {due} due shipments to be evaluated, got {result.evaluated}")
    context.log(f"  swept {due:,} due of {total:,} in {elapsed * 1000:.0f} ms ({result.raised} cases raised)")
    return (elapsed, plan) if explain else elapsed


def _reset_and_build(context, store, *, total: int, due: int, now: datetime) -> None:
    """`total` shipments of which `due` are due now; of the rest a third have a future deadline and the
    others none (delivered), as in a live system. The due ones are in transit, some past the stall
    deadline, so a sweep raises real cases."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {Case._meta.db_table}, {Shipment._meta.db_table}, {Order._meta.db_table} "
            "RESTART IDENTITY CASCADE"
        )
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Order._meta.db_table} (store_id, platform_order_id, buyer_name, buyer_platform_id,
                buyer_email, buyer_phone, buyer_language, country, province, city, district, street, postal_code,
                placed_at, ship_by, amount, currency, status, payment_flagged, created_at)
            SELECT %s, 'B' || g, 'Buyer ' || g, '', '', '', 'en', 'MY', 'Selangor', 'Shah Alam', 'S7',
                g || ' Jalan Bench', '40000', %s, %s, 59.90, 'MYR', 'shipped', false, %s
            FROM generate_series(1, %s) AS g""",  # noqa: S608 - fixed identifiers
            [store.pk, now - timedelta(hours=40), now + timedelta(hours=8), now, total],
        )
        cursor.execute(
            f"""INSERT INTO {Shipment._meta.db_table} (store_id, order_id, carrier, tracking_number, booked_at,
                accepted_at, status, substatus, last_event_at, last_progress_at, next_check_at, next_poll_at,
                poll_failures, created_at)
            SELECT %s, o.id, 'jtexpress-my', 'JTB' || o.id, %s, %s,
                CASE WHEN o.id <= %s THEN 'InTransit' WHEN o.id %% 3 = 0 THEN 'InTransit' ELSE 'Delivered' END,
                'InTransit_003',
                %s - (o.id %% 20 || ' hours')::interval, %s - (o.id %% 20 || ' hours')::interval,
                CASE WHEN o.id <= %s THEN %s WHEN o.id %% 3 = 0 THEN %s ELSE NULL END,
                NULL, 0, %s
            FROM {Order._meta.db_table} AS o""",  # noqa: S608 - fixed identifiers
            [store.pk, now - timedelta(hours=38), now - timedelta(hours=37), due, now, now, due,
             now - timedelta(minutes=1), now + timedelta(hours=6), now],
        )  # fmt: skip
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
        cursor.execute(f"ANALYZE {Shipment._meta.db_table}")
    context.log(f"  built {total:,} shipments ({due:,} due) in {time.perf_counter() - t0:.1f} s")
