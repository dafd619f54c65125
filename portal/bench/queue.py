"""Issue 5's figures: the queue page costs the same with a million cases as with ten thousand.

One store, one agent member, 10,000 cases and then (reset) 1,000,000, generated inside PostgreSQL
(generate_series) with a live mix: ~5% open (spread over the open statuses, assignees and SLA deadlines from
two days overdue to three days ahead), the rest resolved or closed. At each size the queue page is requested
in-process with Django's test Client (force_login, no network): GET /cases/ (the default open queue, first
page), a deep page (`after=` the case ~1,000 rows into the queue order, i.e. page 21) and the queue counts
partial (/cases/counts/, fetched by the nav on load and on every change). Warm-ups first, then median and
p95 of the server time.

Target: p95 under 150 ms at a million, and p95(1M) / p95(10k) <= 1.5. The table states the ratio as one of
rates (requests/s at p95, i.e. 1/p95), so PASS means the large/small time ratio is at most 1.5 (rate ratio
>= 1/1.5); the 150 ms budget is a comparison against a 150 ms "budget" rate (1/0.150 s).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.choices import OPEN_STATUSES, CaseStatus, CaseType
from cases.models import Case, CaseEvent
from cases.selectors import PAGE_SIZE, case_page, cases_for_user, queue_counts_for_user
from portal.bench import BenchContext
from portal.bench.report import Comparison, Measure, Table
from portal.choices import Role
from portal.models import Membership, Store
from tracking.models import Order, Shipment

SMALL, LARGE = 10_000, 1_000_000
CASES_PER_ORDER = 10  # fewer than the case types, so every open case keeps its (order, type) unique
DEEP_ROWS = 1_000  # the deep page starts this many rows into the queue (page 21 at 50 a page)
WARMUPS, REQUESTS = 5, 100  # a p95 of 30 samples is their second-worst: too much noise to compare
P95_BUDGET_MS = 150.0
RATIO_MAX = 1.5  # p95 at the large size over p95 at the small size
SCALE_FREE = ("first page", "deep page")  # the pages: they must cost the same at any size
AGENTS = 5  # the benchmark user and four colleagues; open cases spread over them and "unassigned"
# Every type but the batch incident (which has no order); order-level ones carry no shipment.
TYPES = [value for value in CaseType.values if value != CaseType.QUALITY_BATCH]
ORDER_LEVEL = [CaseType.OVERSOLD, CaseType.OUT_OF_STOCK, CaseType.ORDER_REVIEW]


def run(context: BenchContext) -> list[Table]:
    small, large = context.size(SMALL, minimum=500), context.size(LARGE, minimum=2_000)
    requests = max(5, round(REQUESTS * min(1.0, context.scale * 10)))
    store = Store.objects.create(code="bench-queue", name="Bench", platform="tiktok_shop", region="MY",
                                 currency="MYR", timezone="Asia/Kuala_Lumpur")  # fmt: skip
    users = [
        get_user_model().objects.create_user(username=f"bench-agent-{i}", password=None)
        for i in range(AGENTS)
    ]
    for user in users:
        Membership.objects.create(user=user, store=store, role=Role.AGENT)
    user = users[0]
    now = timezone.now()

    small_times, small_depth, small_sql = _measure_at(
        context, store, users, total=small, now=now, requests=requests
    )
    large_times, large_depth, large_sql = _measure_at(
        context, store, users, total=large, now=now, requests=requests
    )
    plans = _explain(user)
    view_plans = _view_plans(user, now=now)

    table = Table(
        title=f"Queue page: {small:,} cases against {large:,} (in-process, {requests} requests each)"
    )
    for size, times in ((small, small_times), (large, large_times)):
        for page, samples in times.items():
            table.references.append(
                Measure(
                    f"{page}, {size:,} cases", _p(samples, 50), "ms median", f"p95 {_p(samples, 95):.1f} ms"
                )
            )
    budget = Measure("budget", 1000 / P95_BUDGET_MS, "req/s", f"{P95_BUDGET_MS:.0f} ms")
    for page in small_times:
        p95_small, p95_large = _p(small_times[page], 95), _p(large_times[page], 95)
        small_rate = Measure(
            f"at {size_label(small)}", 1000 / p95_small, "req/s", f"1/p95, {p95_small:.1f} ms"
        )
        large_rate = Measure(f"{page} at {size_label(large)}", 1000 / p95_large, "req/s",
                             f"1/p95, {p95_large:.1f} ms")  # fmt: skip
        if page in SCALE_FREE:
            table.comparisons.append(Comparison(large_rate, small_rate, target=1 / RATIO_MAX))
        table.comparisons.append(Comparison(large_rate, budget, target=1.0))
        if page not in SCALE_FREE:
            table.notes.append(
                f"{page}: counts every open case the user sees ({small // 20:,} against {large // 20:,}), so "
                "its cost follows the open backlog, not the page: only the 150 ms budget applies; "
                f"p95 {p95_small:.1f} ms at {small:,}, {p95_large:.1f} ms at {large:,}."
            )
            continue
        table.notes.append(
            f"{page}: p95 {p95_small:.1f} ms at {small:,}, {p95_large:.1f} ms at {large:,}; time ratio "
            f"{p95_large / p95_small:.2f} (target <= {RATIO_MAX}) -> {'PASS' if p95_large <= p95_small * RATIO_MAX else 'MISS'}; "
            f"p95 {'under' if p95_large < P95_BUDGET_MS else 'OVER'} {P95_BUDGET_MS:.0f} ms at {large:,}."
        )
    table.notes.append(
        f"deep page: after = the id of open row {small_depth:,} at {small:,} (page {small_depth // PAGE_SIZE + 1}; "
        f"the small queue holds only {small // 20:,} open cases), row {large_depth:,} at {large:,} "
        f"(page {large_depth // PAGE_SIZE + 1}); both pages are full ({PAGE_SIZE} rows)."
    )
    table.notes.append(
        "Rows: 'rate' comparisons are 1/p95, so ratio = p95(small)/p95(large) and target 0.67 means "
        f"p95(large) <= {RATIO_MAX} x p95(small); against 'budget', ratio >= 1 means p95 <= {P95_BUDGET_MS:.0f} ms."
    )
    table.notes.extend(small_sql + large_sql)
    for name, plan in plans.items():
        table.notes.append(f"EXPLAIN ANALYZE of the {name} at {large:,}:")
        table.notes.extend("  " + line for line in plan.splitlines())
    table.notes.append(
        f"Every view's page query at {large:,} (EXPLAIN ANALYZE: time, cases read, top nodes):"
    )
    table.notes.extend("  " + line for line in view_plans)
    return [table]


def size_label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 and size % 1_000_000 == 0 else f"{size:,}"


def _measure_at(context, store, users, *, total: int, now: datetime, requests: int):
    _reset_and_build(context, store, users, total=total, now=now)
    user = users[0]
    open_ids = list(
        cases_for_user(user, status="open", now=now).values_list("pk", flat=True)[: DEEP_ROWS + 100]
    )
    if len(open_ids) < 2:
        raise RuntimeError(f"expected open cases in the queue, got {len(open_ids)}")
    # A full page at both sizes: ~1,000 rows in, or as deep as the small queue allows (keyset pages cost
    # the same at any depth; the row reached is in the label).
    depth = max(1, min(DEEP_ROWS, len(open_ids) - PAGE_SIZE - 1))
    deep_after = open_ids[depth - 1]
    client = Client()
    client.force_login(user)
    urls = {
        "first page": "/cases/",
        "deep page": f"/cases/?after={deep_after}",
        "queue counts": "/cases/counts/?queue=&type=&in_queue=1",
    }
    times: dict[str, list[float]] = {}
    query_counts: dict[str, int] = {}
    sql_notes: list[str] = []
    # In-process: the test client's host, and plain static storage (no collectstatic manifest needed).
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(
        ALLOWED_HOSTS=["testserver"], STORAGES={**settings.STORAGES, "staticfiles": static}
    ):
        for name, url in urls.items():
            for _ in range(WARMUPS):
                _get(client, url)
            with CaptureQueriesContext(connection) as queries:
                _get(client, url)
            query_counts[name] = len(queries.captured_queries)
            query_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
            samples = []
            for _ in range(requests):
                t0 = time.perf_counter()
                _get(client, url)
                samples.append((time.perf_counter() - t0) * 1000)
            times[name] = samples
            sql_notes.append(
                f"{name} at {total:,}: {query_counts[name]} queries, {query_ms:.0f} ms of SQL in one "
                f"request of {_p(samples, 50):.0f} ms median; the rest is Python (view, template rendering)."
            )
            context.log(
                f"  {name} at {total:,}: median {_p(samples, 50):.1f} ms, p95 {_p(samples, 95):.1f} ms; "
                f"{query_counts[name]} queries, {query_ms:.1f} ms in SQL"
            )
    return times, depth, sql_notes


def _get(client: Client, url: str) -> None:
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")


def _explain(user) -> dict[str, str]:
    """The first-page query (as case_page runs it: page size + 1) and the counts aggregate, with ANALYZE."""
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            case_page(cases_for_user(user, status="open"))
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + queries.captured_queries[-1]["sql"])
            first = "\n".join(row[0] for row in cursor.fetchall())
        # The counts aggregate, as queue_counts_for_user builds it, read from the query log.
        with CaptureQueriesContext(connection) as queries:
            queue_counts_for_user(user)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + queries.captured_queries[-1]["sql"])
            counts = "\n".join(row[0] for row in cursor.fetchall())
    return {"first-page query": first, "queue counts query": counts}


def _plan_views(user) -> dict[str, dict]:
    """The views of the queue the bench's data can fill (one store: no live sessions, SKUs or proposals;
    tests/cases/test_queue_plans.py pins those too), as cases_for_user takes them."""
    views: dict[str, dict] = {status: {"status": status} for status in ("open", *CaseStatus.values, "all")}
    views.update({
        "open, a type": {"status": "open", "type": "lost"},
        "all, a type": {"status": "all", "type": "lost"},
        "my cases": {"status": "open", "queue": "mine"},
        "unassigned": {"status": "open", "queue": "unassigned"},
        "breaching": {"status": "open", "queue": "breaching"},
        "all, an assignee": {"status": "all", "assignee_id": user.pk},
        "all, urgent": {"status": "all", "priority": 40},
        "all, a carrier": {"status": "all", "carrier": "jtexpress-my"},
        "all, older than a week": {"status": "all", "older_than_hours": 24 * 7},
        "search: order id": {"status": "all", "search": "Q42"},
        "search: tracking number": {"status": "all", "search": "jtq42"},
        "search: buyer name": {"status": "all", "search": "Buyer 42"},
        "search: case id": {"status": "all", "search": "42"},
    })  # fmt: skip
    return views


def _view_plans(user, *, now: datetime) -> list[str]:
    """One line per view: its page query (as case_page runs it) under EXPLAIN ANALYZE."""
    lines = []
    for name, filters in _plan_views(user).items():
        with CaptureQueriesContext(connection) as queries:
            case_page(cases_for_user(user, now=now, **filters))
        sql = [query["sql"] for query in queries.captured_queries if "cases_case" in query["sql"]][-1]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            plan = cursor.fetchone()[0][0]
        nodes = list(_plan_nodes(plan["Plan"]))
        read = sum(
            (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)) * node.get("Actual Loops", 1)
            for node in nodes
            if node.get("Relation Name") == Case._meta.db_table
        )
        top = " > ".join(
            node["Node Type"] + (f" {node['Index Name']}" if "Index Name" in node else "")
            for node in nodes[:5]
        )
        lines.append(f"{name}: {plan['Execution Time']:.1f} ms, {read:,} cases read; {top}")
    return lines


def _plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _p(samples: list[float], percentile: int) -> float:
    if percentile == 50:
        return statistics.median(samples)
    return statistics.quantiles(samples, n=100, method="inclusive")[percentile - 1]


def _reset_and_build(context, store, users, *, total: int, now: datetime) -> None:
    """`total` cases over total/10 orders (one shipment each). Case g is open when g % 20 == 0 (5%), spread
    over the open statuses; of the rest a third resolved, two thirds closed. Open cases: a fifth unassigned,
    the rest over the agents; SLA deadlines from 48 h overdue to 72 h ahead."""
    orders = -(-total // CASES_PER_ORDER)
    with connection.cursor() as cursor:
        cursor.execute(
            f"TRUNCATE {CaseEvent._meta.db_table}, {Case._meta.db_table}, {Shipment._meta.db_table}, "
            f"{Order._meta.db_table} RESTART IDENTITY CASCADE"
        )
    t0 = time.perf_counter()
    agents = "ARRAY[" + ",".join(str(u.pk) for u in users) + "]::int[]"
    types = "ARRAY[" + ",".join(f"'{t}'" for t in TYPES) + "]"
    order_level = "ARRAY[" + ",".join(f"'{t}'" for t in ORDER_LEVEL) + "]"
    open_statuses = "ARRAY[" + ",".join(f"'{s}'" for s in OPEN_STATUSES) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Order._meta.db_table} (store_id, platform_order_id, buyer_name, buyer_platform_id,
                buyer_email, buyer_phone, buyer_language, country, province, city, district, street, postal_code,
                placed_at, ship_by, amount, currency, status, payment_flagged, created_at)
            SELECT %s, 'Q' || g, 'Buyer ' || g, '', '', '', 'en', 'MY', 'Selangor', 'Shah Alam', 'S7',
                g || ' Jalan Bench', '40000', %s, %s, 59.90, 'MYR', 'shipped', false, %s
            FROM generate_series(1, %s) AS g""",  # noqa: S608 - fixed identifiers
            [store.pk, now - timedelta(days=3), now - timedelta(days=2), now, orders],
        )
        cursor.execute(
            f"""INSERT INTO {Shipment._meta.db_table} (store_id, order_id, carrier, tracking_number, booked_at,
                accepted_at, status, substatus, last_event_at, last_progress_at, next_check_at, next_poll_at,
                poll_failures, created_at)
            SELECT %s, o.id, 'jtexpress-my', 'JTQ' || o.id, %s, %s, 'InTransit', 'InTransit_003', %s, %s,
                NULL, NULL, 0, %s
            FROM {Order._meta.db_table} AS o""",  # noqa: S608 - fixed identifiers
            [store.pk, now - timedelta(days=2), now - timedelta(days=2), now, now, now],
        )
        # Shipment ids equal order ids (both restarted). Cases g and g + k*orders share an order and get
        # types k apart, so no two open cases share (order, type) or (shipment, type).
        cursor.execute(
            f"""INSERT INTO {Case._meta.db_table} (store_id, order_id, shipment_id, type, status, priority,
                assignee_id, parent_id, sku_id, lot, needs_attention, summary, facts, opened_at,
                first_contact_due_at, resolution_due_at, due_at, sla_paused_at, first_contact_at, resolved_at,
                resolution, fault_party, updated_at)
            SELECT %(store)s, c.order_id,
                CASE WHEN c.type = ANY({order_level}) THEN NULL ELSE c.order_id END,
                c.type, c.status, (ARRAY[10, 20, 20, 20, 30, 40])[1 + c.g %% 6],
                CASE WHEN c.is_open AND c.g %% 100 = 0 THEN NULL
                     ELSE ({agents})[1 + (c.g / 20) %% {len(users)}] END,
                NULL, NULL, '', false, 'Bench case ' || c.g, '{{}}'::jsonb, c.opened_at,
                c.opened_at + interval '24 hours', c.opened_at + interval '72 hours',
                CASE WHEN c.is_open THEN %(now)s + (((c.g::bigint * 7919) %% 7200) - 2880) * interval '1 minute'
                     ELSE c.opened_at + interval '72 hours' END,
                CASE WHEN c.status = 'waiting_buyer' THEN %(now)s - interval '1 hour' ELSE NULL END,
                CASE WHEN c.is_open AND c.status = 'new' THEN NULL ELSE c.opened_at + interval '3 hours' END,
                CASE WHEN c.is_open THEN NULL ELSE c.opened_at + interval '30 hours' END,
                CASE WHEN c.is_open THEN '' ELSE 'reshipped' END, 'unknown', %(now)s
            FROM (
                SELECT g, g %% 20 = 0 AS is_open, 1 + (g - 1) %% %(orders)s AS order_id,
                    ({types})[1 + ((g - 1) / %(orders)s) %% {len(TYPES)}] AS type,
                    CASE WHEN g %% 20 = 0 THEN ({open_statuses})[1 + (g / 20) %% {len(OPEN_STATUSES)}]
                         WHEN g %% 3 = 0 THEN 'resolved' ELSE 'closed' END AS status,
                    %(now)s - ((g * 31) %% (24 * 365)) * interval '1 hour' AS opened_at
                FROM generate_series(1, %(total)s) AS g
            ) AS c""",  # noqa: S608 - fixed identifiers and generated literals
            {"store": store.pk, "now": now, "orders": orders, "total": total},
        )
        # VACUUM too: a live table's visibility map is kept up by autovacuum, and index-only scans need it.
        for model in (Order, Shipment, Case):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    opened = Case.objects.filter(status__in=OPEN_STATUSES).count()
    context.log(f"  built {total:,} cases ({opened:,} open) in {time.perf_counter() - t0:.1f} s")
