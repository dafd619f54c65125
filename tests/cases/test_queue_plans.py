"""Every view of the queue reads a page of rows, however long the history (issue 28).

On PostgreSQL, with a history large enough for the planner to prefer its indexes (some 130,000 cases over
three stores, generated in the database and ANALYZEd), each view's page query (as case_page runs it, first
page and a deep one) is EXPLAIN ANALYZEd: it must not scan the cases table (nor the orders, parcels, order
lines or compensation) sequentially, must not sort cases that it did not look up by their keys (an index
gives every view its order), and must read at most a few pages' worth of cases. The views: every status
choice, all statuses, each filter alone and the combinations the queue makes (status and type, status and
assignee, the named queues), a live session, a SKU, a pending approval, the search by order id, tracking
number, buyer name and phone, case id; for one store's agent and for a supervisor of three stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.choices import OPEN_STATUSES, CaseStatus, CaseType
from cases.selectors import PAGE_SIZE, case_page, cases_for_user
from portal.selectors import store_ids_for_user
from tests.factories import make_membership, make_store, make_user
from tracking.selectors import shipments_find_for_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's"),
]

CASES = 120_000  # in the big store; a tenth and a hundredth of it in the supervisor's two other stores
AGENTS = 10
SESSIONS = 100
SKUS = 300
# The most cases of the cases table a view's page may read (index entries fetched, filtered out or not),
# per store of the user: a walk along a store's index with a filter reads page/selectivity rows, and the
# filters below have common selectivities (a type of ~15 %, the main carriers, an urgent priority); a keyed
# view reads the cases of its keys. The big store has ~5,600 open cases: reading them all, or its history,
# fails this.
READ_MAX = 1_500
# A SKU on at most this many lines is read from its lines (cases.selectors.SKU_LINES_SORTED, set for stores
# of millions of orders); here a tenth of it, so that the one SKU on a fifth of the big store's orders is
# walked and a rare one is not.
SKU_LINES_SORTED = 1_000
DEEP = 500  # the deep page starts this many rows into the view (page 11)
BIG_TABLES = {
    "cases_case",
    "tracking_order",
    "tracking_shipment",
    "tracking_orderline",
    "cases_compensation",
}
# A sort of at most this many rows is a small store's few matches (fewer than a page of them, all read), not
# a view's history.
SMALL_SORT = 4 * (PAGE_SIZE + 1)
# What a larger sort may sit on: cases looked up by their keys (ids, an order's or a parcel's, a SKU's), never a
# range of the queue (store, status, due_at).
KEYED = re.compile(r"\b(id|order_id|shipment_id|sku_id) = ")

TYPES = [value for value in CaseType.values if value != CaseType.QUALITY_BATCH]
ORDER_LEVEL = ["oversold", "out_of_stock", "order_review", "not_received", "wrong_item", "missing_item",
               "quality", "enquiry"]  # fmt: skip
FIRST = ["Siti", "Ahmad", "Nur", "Tan", "Lim", "Wong", "Lee", "Muhammad", "Aisyah", "Kumar", "Raj", "Chong",
         "Farah", "Hafiz", "Mei", "Ling", "Priya", "Daniel", "Sarah", "Amir"]  # fmt: skip
LAST = ["Aminah", "Abdullah", "Ismail", "Tan", "Hui Min", "Kok Leong", "Hassan", "Rahman", "Yusof", "Ng",
        "Subramaniam", "Goh", "Ong", "Chan", "Teo", "Ibrahim", "Omar", "Zainal", "Krishnan", "Ali"]  # fmt: skip


@dataclass
class History:
    agent: object  # one of the big store's agents
    supervisor: object  # of all three stores
    store_ids: list[int]
    live_session_id: int
    order_id: str  # platform order id of an order with cases
    tracking_number: str
    buyer_name: str
    buyer_phone: str
    case_id: int


def _array(values) -> str:
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]"


def _h(expr: str, salt: int) -> str:
    """A well-mixed non-negative integer from `expr` (so the columns do not follow each other)."""
    return f"(hashint8(({expr})::bigint * 7919 + {salt}) & 2147483647)"


def _build_store(cursor, *, store_id: int, cases: int, agents: list[int], prefix: str, now: datetime) -> None:
    """A store's history over 120 days: orders in time order (a live session's orders together), two cases
    an order opened within three days of it, open when recent (half of those of the last ten days, and a
    few stuck older ones), due 24 or 72 h after opening; a parcel each, one or two lines each (one SKU on a
    fifth of the orders, the others rare); proposals waiting on 3 % of the open cases, refused ones on 15 %
    of the others."""
    orders = cases // 2
    params = {"store": store_id, "orders": orders, "cases": cases, "prefix": prefix, "now": now}
    cursor.execute(
        """INSERT INTO tracking_livesession (title, host, started_at, ended_at, store_id, external_id)
        SELECT 'Live ' || g, 'Host', %(now)s - g * interval '1 day', NULL, %(store)s, ''
        FROM generate_series(1, %(sessions)s) AS g""",
        {**params, "sessions": SESSIONS},
    )
    cursor.execute(
        """INSERT INTO tracking_sku (code, name, unit_price, is_combo, store_id)
        SELECT 'SKU-' || g, 'Item ' || g, 29.90, false, %(store)s FROM generate_series(1, %(skus)s) AS g""",
        {**params, "skus": SKUS},
    )
    cursor.execute(
        f"""INSERT INTO tracking_order (store_id, platform_order_id, buyer_name, buyer_platform_id, buyer_email,
            buyer_phone, buyer_language, country, province, city, district, street, postal_code, placed_at,
            ship_by, live_session_id, amount, currency, status, payment_flagged, created_at)
        SELECT %(store)s, %(prefix)s || g,
            ({_array(FIRST)})[1 + {_h("g", 1)} %% {len(FIRST)}] || ' '
                || ({_array(LAST)})[1 + {_h("g", 2)} %% {len(LAST)}] || ' ' || substr(md5(g::text), 1, 5),
            '', '', '+6012' || lpad(g::text, 7, '0'), 'en', 'MY', 'Selangor', 'Shah Alam', 'S7', g || ' Jalan 1',
            '40000', placed_at, placed_at + interval '48 hours',
            CASE WHEN g %% 10 < 3 THEN s.ids[1 + (g * %(sessions)s) / (%(orders)s + 1)] END,
            59.90, 'MYR', 'shipped', false, placed_at
        FROM generate_series(1, %(orders)s) AS g
        CROSS JOIN LATERAL (
            SELECT %(now)s - (%(orders)s - g) * (interval '120 days' / %(orders)s) AS placed_at) AS p
        CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM tracking_livesession
                    WHERE store_id = %(store)s) AS s""",  # noqa: S608 - generated literals
        {**params, "sessions": SESSIONS},
    )
    cursor.execute(
        f"""INSERT INTO tracking_orderline (order_id, sku_id, sku_code, sku_name, lot, quantity, unit_price)
        SELECT o.id, k.ids[pick.n], 'SKU-' || pick.n, 'Item ' || pick.n, '', 1, 29.90
        FROM tracking_order AS o
        CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM tracking_sku WHERE store_id = %(store)s) AS k
        CROSS JOIN LATERAL generate_series(1, 1 + o.id %% 2) AS line
        CROSS JOIN LATERAL (SELECT CASE WHEN line = 1 AND {_h("o.id", 3)} %% 5 = 0 THEN 1
                                   ELSE 2 + {_h("o.id * 2 + line", 4)} %% ({SKUS} - 1) END AS n) AS pick
        WHERE o.store_id = %(store)s""",  # noqa: S608 - generated literals
        params,
    )
    cursor.execute(
        f"""INSERT INTO tracking_shipment (store_id, order_id, carrier, carrier_booked, tracking_number, booked_at,
            accepted_at, status, substatus, last_event_at, last_progress_at, next_check_at, next_poll_at,
            poll_failures, created_at)
        SELECT o.store_id, o.id,
            (ARRAY['jtexpress-my', 'ninjavan-my', 'poslaju', 'dhl-ecommerce', 'citylink'])[
                CASE WHEN {_h("o.id", 5)} %% 100 < 45 THEN 1 WHEN {_h("o.id", 5)} %% 100 < 75 THEN 2
                     WHEN {_h("o.id", 5)} %% 100 < 90 THEN 3 WHEN {_h("o.id", 5)} %% 100 < 98 THEN 4 ELSE 5 END],
            '', 'JT' || o.platform_order_id, o.placed_at + interval '2 hours', o.placed_at + interval '5 hours',
            'InTransit', 'InTransit_003', o.placed_at + interval '1 day', o.placed_at + interval '1 day',
            NULL, NULL, 0, o.placed_at
        FROM tracking_order AS o WHERE o.store_id = %(store)s""",  # noqa: S608 - generated literals
        params,
    )
    agents_sql = "ARRAY[" + ",".join(str(pk) for pk in agents) + "]::int[]"
    open_statuses = _array(["new", "new", "new", "in_progress", "in_progress", "in_progress", "waiting_buyer",
                            "waiting_buyer", "waiting_carrier", "waiting_platform"])  # fmt: skip
    cursor.execute(
        f"""INSERT INTO cases_case (store_id, order_id, shipment_id, type, status, priority, assignee_id, parent_id,
            sku_id, lot, needs_attention, summary, facts, opened_at, first_contact_due_at, resolution_due_at,
            due_at, sla_paused_at, first_contact_at, resolved_at, resolution, fault_party, buyer_choice,
            updated_at)
        SELECT %(store)s, o.id, CASE WHEN c.type = ANY({_array(ORDER_LEVEL)}) THEN NULL ELSE sh.id END,
            c.type, c.status, (ARRAY[10, 10, 10, 20, 20, 20, 20, 20, 20, 20, 20, 30, 30, 30, 30, 30, 40, 40, 40, 40])[
                1 + {_h("c.g", 6)} %% 20],
            CASE WHEN c.is_open AND {_h("c.g", 7)} %% 4 = 0 THEN NULL
                 ELSE ({agents_sql})[1 + {_h("c.g", 8)} %% {len(agents)}] END,
            NULL, NULL, '', false, 'Case ' || c.g, '{{}}'::jsonb, c.opened_at, c.opened_at + interval '24 hours',
            c.opened_at + interval '72 hours',
            c.opened_at + CASE WHEN c.is_open AND {_h("c.g", 9)} %% 2 = 0 THEN interval '24 hours'
                               ELSE interval '72 hours' END + {_h("c.g", 10)} %% 3600 * interval '1 second',
            CASE WHEN c.status = 'waiting_buyer' THEN %(now)s - interval '1 hour' END,
            CASE WHEN c.status <> 'new' THEN c.opened_at + interval '3 hours' END,
            CASE WHEN NOT c.is_open THEN c.opened_at + interval '30 hours' END,
            CASE WHEN c.is_open THEN '' ELSE 'reshipped' END, 'unknown', '', %(now)s
        FROM (
            SELECT g, order_n, opened_at, type, is_open,
                CASE WHEN is_open THEN ({open_statuses})[1 + {_h("g", 11)} %% 10]
                     WHEN {_h("g", 12)} %% 5 < 2 THEN 'resolved' ELSE 'closed' END AS status
            FROM (
                SELECT g, 1 + (g - 1) %% %(orders)s AS order_n,
                    ({_array(TYPES)})[1 + (floor({len(TYPES)} * power({_h("1 + (g - 1) %% %(orders)s", 13)}
                        / 2147483648.0, 2))::int + (g - 1) / %(orders)s) %% {len(TYPES)}] AS type,
                    LEAST(%(now)s, %(now)s - (%(orders)s - (1 + (g - 1) %% %(orders)s)) * (interval '120 days' / %(orders)s)
                        + {_h("g", 14)} %% 72 * interval '1 hour') AS opened_at
                FROM generate_series(1, %(cases)s) AS g
            ) AS a
            CROSS JOIN LATERAL (SELECT (opened_at > %(now)s - interval '10 days' AND {_h("g", 15)} %% 2 = 0)
                                    OR {_h("g", 16)} %% 200 = 0 AS is_open) AS b
        ) AS c
        JOIN tracking_order AS o ON o.store_id = %(store)s AND o.platform_order_id = %(prefix)s || c.order_n
        JOIN tracking_shipment AS sh ON sh.order_id = o.id""",  # noqa: S608 - generated literals
        params,
    )
    cursor.execute(
        f"""INSERT INTO cases_compensation (kind, status, origin, amount, currency, quantity, note, reason,
            idempotency_key, proposed_at, decision_reason, platform_reference, failure_reason, updated_at,
            case_id, order_id, store_id)
        SELECT 'partial_refund', CASE WHEN c.status = ANY({_array(OPEN_STATUSES)}) THEN 'proposed' ELSE 'rejected' END,
            'agent', 10, 'MYR', 1, '', '', 'plan-' || c.id, c.opened_at, '', '', '', %(now)s, c.id, c.order_id,
            c.store_id
        FROM cases_case AS c
        WHERE c.store_id = %(store)s AND c.order_id IS NOT NULL AND (
            (c.status = ANY({_array(OPEN_STATUSES)}) AND {_h("c.id", 17)} %% 100 < 3) OR {_h("c.id", 18)} %% 100 < 15)""",  # noqa: S608
        params,
    )


@pytest.fixture(scope="module")
def history(django_db_setup, django_db_blocker) -> Iterator[History]:
    """One history for every test of the module, inside a transaction rolled back at the end (each test
    runs in a savepoint of it)."""
    with django_db_blocker.unblock(), transaction.atomic():
        now = timezone.now()
        stores = [make_store(code=f"plans-{i}") for i in range(3)]
        agents = [make_user(f"plans-agent-{i}") for i in range(AGENTS)]
        for user in agents:
            make_membership(user=user, store=stores[0])
        supervisor = make_user("plans-supervisor")
        for store in stores:
            make_membership(user=supervisor, store=store, role="supervisor")
        with connection.cursor() as cursor:
            for store, size, prefix in zip(stores, (CASES, CASES // 10, CASES // 100), "ABC", strict=True):
                _build_store(cursor, store_id=store.pk, cases=size, agents=[a.pk for a in agents], prefix=prefix,
                             now=now)  # fmt: skip
            for table in sorted(BIG_TABLES | {"tracking_sku", "tracking_livesession"}):
                cursor.execute(f"ANALYZE {table}")
            # Check the deferred foreign keys of these rows once, not at the end of every test.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute(
                """SELECT o.platform_order_id, s.tracking_number, o.buyer_name, o.buyer_phone, c.id
                FROM cases_case AS c JOIN tracking_order AS o ON o.id = c.order_id
                JOIN tracking_shipment AS s ON s.order_id = o.id
                WHERE c.store_id = %s ORDER BY c.id LIMIT 1 OFFSET 54321""",
                [stores[0].pk],
            )
            order_id, tracking_number, buyer_name, buyer_phone, case_id = cursor.fetchone()
            cursor.execute(
                "SELECT live_session_id FROM tracking_order WHERE store_id = %s AND live_session_id IS NOT NULL "
                "ORDER BY placed_at DESC LIMIT 1 OFFSET 300",
                [stores[0].pk],
            )
            (live_session_id,) = cursor.fetchone()
        yield History(
            agent=agents[1],
            supervisor=supervisor,
            store_ids=[store.pk for store in stores],
            live_session_id=live_session_id,
            order_id=order_id,
            tracking_number=tracking_number,
            buyer_name=buyer_name,
            buyer_phone=buyer_phone,
            case_id=case_id,
        )
        transaction.set_rollback(True)


def views(h: History) -> dict[str, dict]:
    """Every view of the queue, as the queue page asks cases_for_user for it."""
    found = {f"status {status}": {"status": status} for status in ("open", *CaseStatus.values, "all")}
    found.update({
        "open, of a type (the nav)": {"status": "open", "type": "stalled_in_transit"},
        "open, of a rare type": {"status": "open", "type": "enquiry"},
        "waiting on the buyer, of a type": {"status": "waiting_buyer", "type": "out_of_stock"},
        "all, of a type": {"status": "all", "type": "oversold"},
        "resolved, of a type": {"status": "resolved", "type": "oversold"},
        "open, one store": {"status": "open", "store_id": h.store_ids[0]},
        "all, one store": {"status": "all", "store_id": h.store_ids[0]},
        "my cases": {"status": "open", "queue": "mine"},
        "unassigned": {"status": "open", "queue": "unassigned"},
        "breaching soon": {"status": "open", "queue": "breaching"},
        "my cases, of a type": {"status": "open", "queue": "mine", "type": "out_of_stock"},
        "open, an assignee": {"status": "open", "assignee_id": h.agent.pk},
        "new, an assignee": {"status": "new", "assignee_id": h.agent.pk},
        "all, an assignee (their history)": {"status": "all", "assignee_id": h.agent.pk},
        "resolved, an assignee": {"status": "resolved", "assignee_id": h.agent.pk},
        "open, urgent": {"status": "open", "priority": 40},
        "all, urgent": {"status": "all", "priority": 40},
        "open, a carrier": {"status": "open", "carrier": "NinjaVan-MY"},
        "all, a carrier": {"status": "all", "carrier": "jtexpress-my"},
        "open, a live session": {"status": "open", "live_session_id": h.live_session_id},
        "all, a live session": {"status": "all", "live_session_id": h.live_session_id},
        "open, a SKU on many orders": {"status": "open", "sku": "sku-1"},
        "all, a SKU on many orders": {"status": "all", "sku": "SKU-1"},
        "all, a rare SKU": {"status": "all", "sku": "SKU-250"},
        "open, older than two days": {"status": "open", "older_than_hours": 48},
        "all, older than a month": {"status": "all", "older_than_hours": 24 * 30},
        "open, waiting for approval": {"status": "open", "pending_approval": True},
        "all, waiting for approval": {"status": "all", "pending_approval": True},
        "all, searched by order id": {"status": "all", "search": h.order_id},
        "all, searched by tracking number": {"status": "all", "search": h.tracking_number.lower()},
        "all, searched by buyer name": {"status": "all", "search": h.buyer_name.split()[-1]},
        "all, searched by a common name": {"status": "all", "search": "aminah"},
        "all, searched by phone": {"status": "all", "search": h.buyer_phone},
        "all, searched by phone as written": {"status": "all", "search": "+60 12-" + h.buyer_phone[5:]},
        "all, searched by case id": {"status": "all", "search": str(h.case_id)},
    })  # fmt: skip
    return found


DEEP_VIEWS = {"status open", "status all", "status resolved", "open, of a type (the nav)", "unassigned",
              "all, a carrier", "open, a SKU on many orders", "all, an assignee (their history)"}  # fmt: skip


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def unsorted_reads(plan: dict) -> Iterator[dict]:
    """The scans of the cases table under `plan` that no nested Limit bounds."""
    for child in plan.get("Plans", []):
        if child.get("Relation Name") == "cases_case":
            yield child
        if child["Node Type"] != "Limit":
            yield from unsorted_reads(child)


def cases_read(plan: dict) -> int:
    return sum(
        (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
         + node.get("Rows Removed by Index Recheck", 0)) * node.get("Actual Loops", 1)
        for node in nodes(plan)
        if node.get("Relation Name") == "cases_case"
    )  # fmt: skip


def plan_faults(sql: str, *, read_max: int = READ_MAX) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0][0]["Plan"]
    faults = [
        f"sequential scan of {node['Relation Name']}"
        for node in nodes(plan)
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in BIG_TABLES
    ]
    for sort in (node for node in nodes(plan) if node["Node Type"] == "Sort"):
        if sum(child["Actual Rows"] * child["Actual Loops"] for child in sort["Plans"]) <= SMALL_SORT:
            continue
        for scan in unsorted_reads(sort):
            condition = scan.get("Index Cond") or scan.get("Recheck Cond") or ""
            if not KEYED.search(condition):
                faults.append(
                    f"a sort of cases read by {scan.get('Index Name', scan['Node Type'])} {condition}"
                )
    if (read := cases_read(plan)) > read_max:
        faults.append(f"{read:,} cases read")
    return faults


def page_queries(user, filters: dict, *, after: int | None = None) -> list[str]:
    """The queries of the view's page that read cases: the deep page's anchor, the page itself. (Not a
    SKU's lookup: its count of the SKU's lines stops at SKU_LINES_SORTED.)"""
    with CaptureQueriesContext(connection) as ctx:
        case_page(cases_for_user(user, **filters), after=after)
    return [query["sql"] for query in ctx.captured_queries if "cases_case" in query["sql"]]


def explained(user, filters: dict, *, after: int | None = None) -> list[str]:
    read_max = READ_MAX * len(store_ids_for_user(user))
    return [
        fault
        for sql in page_queries(user, filters, after=after)
        for fault in plan_faults(sql, read_max=read_max)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["agent", "supervisor"])
def test_no_view_of_the_queue_scans_or_sorts_the_cases_history(history, who, monkeypatch):
    monkeypatch.setattr("cases.selectors.SKU_LINES_SORTED", SKU_LINES_SORTED)
    user = getattr(history, who)
    failures = {}
    for name, filters in views(history).items():
        if faults := explained(user, filters):
            failures[name] = faults
        if name in DEEP_VIEWS:
            rows = cases_for_user(user, **filters).values_list("pk", flat=True)[:DEEP]
            after = list(rows)[-1]
            if faults := explained(user, filters, after=after):
                failures[f"{name}, page {DEEP // PAGE_SIZE + 1}"] = faults

    assert not failures, "\n".join(f"{name}: {faults}" for name, faults in failures.items())


@pytest.mark.django_db
def test_the_views_find_what_they_filter_on(history):
    """The plans above are of queries that find rows: each view has a full page for the agent, a search
    its few matches (a plan of an empty result proves little)."""
    short = {}
    for name, filters in views(history).items():
        rows = case_page(cases_for_user(history.agent, **filters)).rows
        if len(rows) < (1 if "searched by" in name and "common" not in name else PAGE_SIZE):
            short[name] = len(rows)

    assert not short


@pytest.mark.django_db
def test_a_search_finds_the_parcel_through_the_order_and_parcel_indexes(history):
    for term in (history.order_id, history.tracking_number, history.tracking_number.lower()):
        with CaptureQueriesContext(connection) as ctx:
            assert len(shipments_find_for_user(history.supervisor, term)) == 1
        for query in ctx.captured_queries:
            if "tracking_" in query["sql"]:
                assert not plan_faults(query["sql"]), (term, query["sql"])
