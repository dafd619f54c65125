"""Issue 23's figures: the reports read rollups, so they cost the same at a million cases as at ten thousand.

Two stores (TikTok Shop and Shopee, one supervisor over both, ten agents), 10,000 cases and then (reset)
1,000,000 with 10 tracking events per case (10,000,000 at full size), generated inside PostgreSQL
(generate_series) over 90 days: one order and one parcel per case-sized unit, six carriers, fifteen
destinations and two origins, forty SKUs a store (a fifth of the orders with two), a weekly live session per
store (a seventh of the orders), cases on a third of the orders (three each, of distinct types), a few percent
open, first contact and resolution times spread from minutes to days, reopen and buyer-reply events,
compensation on one case in twelve, carrier claims on lost and damaged parcels. Then `rollups_rebuild()`
from scratch, timed: what the nightly rebuild command costs.

At each size, in-process with Django's test Client and a logged-in supervisor (as the queue section):
GET /reports/ (the default 28 days, every section), GET /reports/?carrier=..., a CSV export and
GET /reports/health/<store>/ for each store: median and p95. Targets: p95 under 300 ms at a million, and
p95(1M) / p95(10k) <= 1.5 (stated as rates, 1/p95, like the queue section). Beside them the same figures
computed straight from the raw tables (`raw_report`: the GROUP BYs over parcels, orders, cases and money the
rollups stand for, as well as PostgreSQL does them: grouping sets, one pass per table), fewer times.

Rollup maintenance, at the large size, against the figures of the sections it rides on (measured here, in
this run, on this data): the rule sweeper (1,000 due parcels, as the rules section) with and without
`dispatch_days_mark` (its one hook), and the ingest pipeline (tracking section's batches: AfterShip pushes
through `trackings_ingest`, 1,000 a transaction); then `rollups_refresh()`, the worker's minute, absorbing
what each changed. Target: < 10 % added.

Finally EXPLAIN ANALYZE of every query of the report page and the health page at the large size: each should
read the rollup indexes (rollup_*_day_idx); a sequential scan of a big table is called out.
"""

from __future__ import annotations

import importlib
import os
import re
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.choices import OPEN_STATUSES, CaseType
from cases.engine import exceptions_sweep
from cases.models import Case, CaseEvent, Claim, Compensation, Complaint
from cases.reporting.health import pending_days, pending_orders
from cases.reporting.models import ROLLUP_MODELS, HealthThreshold, RollupDirty, RollupState
from cases.reporting.rollups import day_bounds, dispatch_days_mark, rollups_rebuild, rollups_refresh
from cases.reporting.selectors import Filters, report_build
from cases.rules import PARCEL_TYPES
from portal.bench import BenchContext
from portal.bench import tracking as tracking_bench
from portal.bench.queue import _p, size_label
from portal.bench.report import Comparison, Measure, Table
from portal.choices import Platform, Role
from portal.models import Membership, Store
from tracking.models import (
    SKU,
    LiveSession,
    Order,
    OrderLine,
    Shipment,
    TrackingConnection,
    TrackingEvent,
    UnmatchedTracking,
    WebhookDelivery,
)

SMALL, LARGE = 10_000, 1_000_000
EVENTS_PER_CASE = 10  # 10,000,000 tracking events at a million cases
DAYS = 90
CASES_PER_ORDER = 3  # on the orders that have cases at all (a third of them)
EVENT_CHUNK = 100_000  # parcels per INSERT of their events (a million events a statement)
WARMUPS, REQUESTS = 3, 100  # as the queue section: a p95 of fewer samples is mostly noise
RAW_RUNS = 5  # the raw computation takes seconds at a million: fewer runs, after one warm-up
P95_BUDGET_MS = 300.0
RATIO_MAX = 1.5
OVERHEAD_MAX = 0.10
SWEEP_DUE, SWEEP_ROUNDS = 1_000, 3  # the rules section's sweep: 1,000 due parcels
AGENTS = 10
SKUS = 40
DATA_LAG = timedelta(minutes=30)  # the data ends this long before now (see _build: the refresh's OVERLAP)

# (province, city); repeated entries weigh the busy states. "" province: a city state (the route uses the city).
REGIONS = [
    *[("Selangor", "Shah Alam")] * 4, *[("Kuala Lumpur", "Kuala Lumpur")] * 3, *[("Johor", "Johor Bahru")] * 2,
    *[("Penang", "George Town")] * 2, ("Perak", "Ipoh"), ("Sabah", "Kota Kinabalu"), ("Sarawak", "Kuching"),
    ("Kedah", "Alor Setar"), ("Kelantan", "Kota Bharu"), ("Pahang", "Kuantan"), ("Negeri Sembilan", "Seremban"),
    ("Melaka", "Melaka"), ("Terengganu", "Kuala Terengganu"), ("Perlis", "Kangar"), ("", "Putrajaya"),
]  # fmt: skip
CARRIERS = [*["jtexpress-my"] * 4, *["ninjavan-my"] * 3, *["poslaju"] * 2, *["flash-express-my"] * 2,
            "dhl-ecommerce-my", "citylink"]  # fmt: skip
FILTER_CARRIER = "ninjavan-my"
CSV_TABLE = "exceptions_by_route"
TYPES = [t for t in CaseType.values if t != CaseType.QUALITY_BATCH]  # 16: three a order, offsets 0, 5, 10
RESOLUTIONS = ["delivered", "reshipped", "refunded", "partial_refund", "no_action", "condition_cleared"]
KINDS = ["coupon", "partial_refund", "reship", "gift", "wait_bonus", "full_refund"]
ROLLUP_INDEX = re.compile(r"rollup_\w+_day_idx")
BIG_TABLES = ("tracking_order", "tracking_orderline", "tracking_shipment", "tracking_trackingevent", "cases_case",
              "cases_caseevent", "cases_compensation", "cases_claim")  # fmt: skip


@dataclass
class World:
    """What both sizes share: stores, people, SKUs, live sessions, tracking connections."""

    stores: list[Store]
    supervisor: Any
    agents: list[Any]
    sessions: list[int]  # per store, WEEKS each, store 0's first
    skus: list[list[int]]  # per store
    connections: list[TrackingConnection]
    start: datetime  # the data: start .. end
    end: datetime
    weeks: int


@dataclass
class SizeResult:
    total: int
    counts: dict[str, int]
    build_seconds: float
    rebuild_seconds: float
    store_days: int
    rollup_rows: dict[str, int]
    pages: dict[str, list[float]] = field(default_factory=dict)
    sql: dict[str, tuple[int, float]] = field(default_factory=dict)  # page -> (queries, ms of SQL)
    figures: list[float] = field(default_factory=list)  # report_build alone (rollups), ms
    raw: list[float] = field(default_factory=list)  # raw_report, ms
    raw_health: list[float] = field(default_factory=list)
    agreement: list[str] = field(default_factory=list)
    pending: int = 0  # orders still to ship, both stores: what the health page reads besides rollups


def run(context: BenchContext) -> list[Table]:
    small, large = context.size(SMALL, minimum=300), context.size(LARGE, minimum=1_500)
    requests = max(5, round(REQUESTS * min(1.0, context.scale * 10)))
    raw_runs = max(2, min(RAW_RUNS, requests))
    load_before = os.getloadavg()[0]
    world = _world(timezone.now())
    results = []
    plans: list[str] = []
    maintenance: Table | None = None
    for total in (small, large):
        result = _measure_size(context, world, total=total, requests=requests, raw_runs=raw_runs)
        results.append(result)
        if total == large:
            plans = _explain(context, world)
            maintenance = _maintenance(context, world, total=total)
    tables = [_pages_table(results, requests), _raw_table(results, raw_runs), maintenance]
    tables[0].notes.append(
        f"Load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on "
        f"{os.cpu_count()} cores: others' work on the machine shows in the p95s."
    )
    tables[0].notes.extend(plans)
    return [t for t in tables if t is not None]


# --------------------------------------------------------------------------------------------- the data


def _world(now: datetime) -> World:
    end = now - DATA_LAG
    start = end - timedelta(days=DAYS)
    weeks = -(-DAYS // 7)
    stores = [
        Store.objects.create(code="bench-reports-tt", name="Bench TikTok", platform=Platform.TIKTOK_SHOP,
                             region="MY", currency="MYR", timezone="Asia/Kuala_Lumpur", ship_from="Selangor"),
        Store.objects.create(code="bench-reports-sp", name="Bench Shopee", platform=Platform.SHOPEE,
                             region="MY", currency="MYR", timezone="Asia/Kuala_Lumpur", ship_from="Johor"),
    ]  # fmt: skip
    users = get_user_model().objects
    supervisor = users.create_user(username="bench-supervisor", password=None)
    agents = [users.create_user(username=f"bench-agent-{i}", first_name=f"Agent {i}", password=None)
              for i in range(AGENTS)]  # fmt: skip
    for store in stores:
        Membership.objects.create(user=supervisor, store=store, role=Role.SUPERVISOR)
        Membership.objects.bulk_create(Membership(user=a, store=store, role=Role.AGENT) for a in agents)
    skus = [
        [s.pk for s in SKU.objects.bulk_create(
            SKU(store=store, code=f"SKU-{i:02d}", name=f"Bench product {i}", unit_price=Decimal(10 + i))
            for i in range(SKUS)
        )]
        for store in stores
    ]  # fmt: skip
    sessions = []
    for store in stores:
        sessions += [
            s.pk
            for s in LiveSession.objects.bulk_create(
                LiveSession(store=store, external_id=f"bench-live-{w}", title=f"{store.name} live, week {w + 1}",
                            host="Bench host", started_at=start + timedelta(days=7 * w, hours=12),
                            ended_at=start + timedelta(days=7 * w, hours=15))
                for w in range(weeks)
            )
        ]  # fmt: skip
    connections = TrackingConnection.objects.bulk_create(
        TrackingConnection(store=s, provider="aftership", webhook_secret=secrets.token_urlsafe(24), pull_enabled=False)
        for s in stores
    )  # fmt: skip
    # The platforms' thresholds are written by a data migration, which the flush between sections removed.
    defaults = importlib.import_module("cases.migrations.0011_health_thresholds").DEFAULTS
    for platform, metric, window, recommended, penalty, source in defaults:
        HealthThreshold.objects.get_or_create(
            store=None, platform=platform, metric=metric,
            defaults={"window_days": window, "recommended_percent": recommended, "penalty_percent": penalty,
                      "source": source},
        )  # fmt: skip
    return World(stores, supervisor, agents, sessions, skus, connections, start, end, weeks)


def _h(expr: str, salt: int, mod: int) -> str:
    """A deterministic pseudo-random 0..mod-1 of an integer SQL expression (a bijection mod a prime, then mod)."""
    return f"((({expr})::bigint * 2654435761 + {salt * 40503}) %% 1000003 %% {mod})"


def _schedule(g: str, placed: str) -> tuple[str, str, str, str]:
    """An order's parcel, from the order's id and placing time (SQL): booked 2-20 h after the order, first
    carrier scan 1-36 h after booking (a few after the 48 h ship-by: the late dispatch rate), delivered 1-4
    days later; one order in fifty cancelled. Returns (booked, accepted, delivered, cancelled) expressions."""
    booked = f"({placed} + ({_h(g, 4, 19)} + 2) * interval '1 hour')"
    accepted = f"({booked} + ({_h(g, 5, 36)} + 1) * interval '1 hour')"
    delivered = f"({accepted} + ({_h(g, 7, 72)} + 24) * interval '1 hour')"
    return booked, accepted, delivered, f"({_h(g, 6, 50)} = 0)"


def _sql(cursor, statement: str, params: dict) -> int:
    cursor.execute(statement, params)
    return cursor.rowcount


def _truncate() -> None:
    raw = [Order, OrderLine, Shipment, TrackingEvent, Case, CaseEvent, Compensation, Claim, Complaint,
           UnmatchedTracking, WebhookDelivery, RollupDirty, RollupState, *ROLLUP_MODELS]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in raw)} RESTART IDENTITY CASCADE")


def _build(context: BenchContext, w: World, *, total: int) -> tuple[dict[str, int], float]:
    """`total` orders with a parcel each, 10 events a parcel, `total` cases (a third of the orders, three
    each), their events, compensation and claims. Every timestamp is at most w.end (DATA_LAG before the run
    began), so the refresh's look-back (OVERLAP) after the from-scratch rebuild finds nothing of it."""
    _truncate()
    started = time.perf_counter()
    order_t, line_t, ship_t = Order._meta.db_table, OrderLine._meta.db_table, Shipment._meta.db_table
    event_t, case_t, ce_t = TrackingEvent._meta.db_table, Case._meta.db_table, CaseEvent._meta.db_table
    comp_t, claim_t = Compensation._meta.db_table, Claim._meta.db_table
    affected = -(-total // CASES_PER_ORDER)
    params = {
        "n": total, "affected": affected, "cases": total, "start": w.start, "end": w.end, "span": w.end - w.start,
        "stores": [s.pk for s in w.stores], "sessions": w.sessions, "weeks": w.weeks,
        "provinces": [p for p, _c in REGIONS], "cities": [c for _p, c in REGIONS], "carriers": CARRIERS,
        "skus0": w.skus[0], "skus1": w.skus[1], "agents": [a.pk for a in w.agents], "types": TYPES,
        "parcel_types": list(PARCEL_TYPES), "open_statuses": list(OPEN_STATUSES), "resolutions": RESOLUTIONS,
        "kinds": KINDS, "locations": ["Shah Alam Hub", "Petaling Jaya", "Johor Bahru DC", "Penang Gateway"],
    }  # fmt: skip
    _booked, accepted, delivered, cancelled = _schedule("g", "placed")
    regions = len(REGIONS)
    log = context.log
    with connection.cursor() as cursor:
        n = _sql(cursor, f"""
            INSERT INTO {order_t} (id, store_id, platform_order_id, buyer_name, buyer_platform_id, buyer_email,
                buyer_phone, buyer_language, country, province, city, district, street, postal_code, placed_at,
                ship_by, live_session_id, amount, currency, status, payment_flagged, created_at, updated_at)
            SELECT g, (%(stores)s::bigint[])[1 + g %% 2], 'R' || g, 'Buyer ' || g, '', '', '', 'en', 'MY',
                (%(provinces)s::text[])[1 + {_h('g', 1, regions)}], (%(cities)s::text[])[1 + {_h('g', 1, regions)}],
                '', g || ' Jalan Bench', '40000', placed, placed + interval '48 hours',
                CASE WHEN {_h('g', 2, 7)} = 0 THEN (%(sessions)s::bigint[])[1 + (g %% 2) * %(weeks)s
                    + LEAST(%(weeks)s - 1, floor(extract(epoch FROM placed - %(start)s) / 604800)::int)] END,
                20 + {_h('g', 3, 180)}, 'MYR',
                CASE WHEN {cancelled} THEN 'cancelled' WHEN {accepted} > %(end)s THEN 'awaiting_shipment'
                     WHEN {delivered} <= %(end)s THEN 'delivered' ELSE 'shipped' END,
                false, placed, LEAST(placed + interval '3 days', %(end)s)
            FROM (SELECT g, %(start)s + ((g - 0.5) / %(n)s)::float8 * %(span)s AS placed
                  FROM generate_series(1, %(n)s) AS g) AS a""", params)  # noqa: S608 - fixed identifiers  # fmt: skip
        log(f"  {n:,} orders")
        n = _sql(cursor, f"""
            INSERT INTO {line_t} (order_id, sku_id, sku_code, sku_name, lot, quantity, unit_price)
            SELECT o.id, CASE WHEN o.store_id = (%(stores)s::bigint[])[1] THEN (%(skus0)s::bigint[])[1 + i]
                              ELSE (%(skus1)s::bigint[])[1 + i] END,
                'SKU-' || lpad(i::text, 2, '0'), 'Bench product ' || i, 'L' || (o.id %% 7), 1 + o.id %% 3, 10 + i
            FROM (SELECT o.id, o.store_id, {_h('o.id', 19, SKUS)} AS i FROM {order_t} AS o
                  UNION ALL
                  SELECT o.id, o.store_id, ({_h('o.id', 19, SKUS)} + 7) %% {SKUS} FROM {order_t} AS o
                  WHERE {_h('o.id', 20, 5)} = 0) AS o""", params)  # noqa: S608  # fmt: skip
        log(f"  {n:,} order lines")
        b, a, d, x = _schedule("o.id", "o.placed_at")
        n = _sql(cursor, f"""
            INSERT INTO {ship_t} (id, store_id, order_id, carrier, carrier_booked, tracking_number, booked_at,
                accepted_at, status, substatus, last_event_at, last_progress_at, delivered_at, next_check_at,
                next_poll_at, poll_failures, created_at)
            SELECT id, store_id, id, carrier, '', 'RB' || id, booked, accepted,
                CASE WHEN delivered IS NOT NULL THEN 'Delivered' WHEN accepted IS NOT NULL THEN 'InTransit'
                     ELSE 'InfoReceived' END,
                CASE WHEN delivered IS NOT NULL THEN 'Delivered_001' WHEN accepted IS NOT NULL THEN 'InTransit_003'
                     ELSE 'InfoReceived_001' END,
                last_event, last_event, delivered,
                CASE WHEN delivered IS NULL AND NOT cancelled THEN %(end)s + interval '3 days' END,
                NULL, 0, LEAST(COALESCE(booked, placed_at + interval '1 hour'), %(end)s)
            FROM (
                SELECT *, COALESCE(delivered, accepted + (%(end)s - accepted) / 2, booked) AS last_event
                FROM (
                    SELECT o.id, o.store_id, o.placed_at, {x} AS cancelled,
                        (%(carriers)s::text[])[1 + {_h('o.id', 8, len(CARRIERS))}] AS carrier,
                        CASE WHEN {b} <= %(end)s THEN {b} END AS booked,
                        CASE WHEN NOT {x} AND {a} <= %(end)s THEN {a} END AS accepted,
                        CASE WHEN NOT {x} AND {d} <= %(end)s THEN {d} END AS delivered
                    FROM {order_t} AS o
                ) AS s
            ) AS s""", params)  # noqa: S608  # fmt: skip
        shipments = n
        log(f"  {n:,} parcels")
        per_parcel = max(1, round(EVENTS_PER_CASE * total / shipments))
        events = 0
        t0 = time.perf_counter()
        for first in range(1, shipments + 1, EVENT_CHUNK):
            events += _sql(cursor, f"""
                INSERT INTO {event_t} (shipment_id, checkpoint_at, tag, subtag, raw_code, raw_text, location,
                    source, dedupe_key, received_at)
                SELECT s.id, s.t0 + (s.t1 - s.t0) * (k::float8 / {max(1, per_parcel - 1)}),
                    CASE WHEN k = {per_parcel - 1} AND s.status = 'Delivered' THEN 'Delivered'
                         WHEN k > 0 AND s.accepted_at IS NOT NULL THEN 'InTransit' ELSE 'InfoReceived' END,
                    CASE WHEN k = {per_parcel - 1} AND s.status = 'Delivered' THEN 'Delivered_001'
                         WHEN k > 0 AND s.accepted_at IS NOT NULL THEN 'InTransit_003' ELSE 'InfoReceived_001' END,
                    k::text, 'Bench checkpoint ' || k, (%(locations)s::text[])[1 + (s.id + k) %% 4], 'bench',
                    'b' || k, s.t0 + (s.t1 - s.t0) * (k::float8 / {max(1, per_parcel - 1)})
                FROM (SELECT id, status, accepted_at, COALESCE(booked_at, created_at) AS t0,
                          GREATEST(COALESCE(booked_at, created_at), COALESCE(last_event_at, booked_at, created_at)) AS t1
                      FROM {ship_t} WHERE id >= %(first)s AND id < %(last)s) AS s
                CROSS JOIN generate_series(0, {per_parcel - 1}) AS k""",  # noqa: S608
                {**params, "first": first, "last": first + EVENT_CHUNK})  # fmt: skip
            if first == 1 or (first - 1) // EVENT_CHUNK % 3 == 2:
                rate = events / max(1e-9, time.perf_counter() - t0)
                log(f"  {events:,} tracking events ({rate:,.0f}/s)")
        log(f"  {events:,} tracking events in {time.perf_counter() - t0:.0f} s")
        # Cases: case c is the (c-1) % 3-th of affected order (c-1) / 3, spread evenly over the orders (ids
        # follow time), of a type 5 apart from its siblings' (so never two open of a type on one order).
        n = _sql(cursor, f"""
            INSERT INTO {case_t} (id, store_id, order_id, shipment_id, type, status, priority, assignee_id,
                parent_id, sku_id, lot, needs_attention, summary, facts, opened_at, first_contact_due_at,
                resolution_due_at, due_at, sla_paused_at, first_contact_at, resolved_at, resolution, fault_party,
                buyer_choice, buyer_choice_at, updated_at)
            SELECT c, store_id, order_id, CASE WHEN type = ANY(%(parcel_types)s::text[]) THEN order_id END, type,
                status, (ARRAY[10, 20, 20, 20, 30, 40])[1 + {_h('c', 21, 6)}],
                CASE WHEN is_open AND {_h('c', 22, 10)} = 0 THEN NULL
                     ELSE (%(agents)s::bigint[])[1 + {_h('c', 23, AGENTS)}] END,
                NULL, NULL, '', false, 'Bench case ' || c, '{{}}'::jsonb, opened,
                opened + interval '24 hours', opened + interval '72 hours',
                CASE WHEN first_contact IS NULL THEN opened + interval '24 hours' ELSE opened + interval '72 hours' END,
                CASE WHEN status = 'waiting_buyer' THEN opened + interval '1 hour' END, first_contact, resolved,
                CASE WHEN is_open THEN '' ELSE (%(resolutions)s::text[])[1 + {_h('c', 24, len(RESOLUTIONS))}] END,
                CASE WHEN type = ANY(%(parcel_types)s::text[]) THEN 'carrier' ELSE 'unknown' END, '', NULL,
                COALESCE(resolved, first_contact, opened)
            FROM (
                SELECT *, CASE WHEN is_open THEN NULL
                               ELSE GREATEST(first_contact, LEAST(first_contact + (30 + {_h('c', 15, 5000)}) * interval '1 minute', %(end)s)) END AS resolved
                FROM (
                    SELECT *, CASE WHEN status = 'new' THEN NULL
                                   ELSE GREATEST(opened, LEAST(opened + (3 + {_h('c', 14, 1000)} ^ 2 / 400) * interval '1 minute', %(end)s)) END AS first_contact
                    FROM (
                        SELECT *, CASE WHEN is_open THEN (%(open_statuses)s::text[])[1 + {_h('c', 13, len(OPEN_STATUSES))}]
                                       WHEN {_h('c', 13, 3)} = 0 THEN 'resolved' ELSE 'closed' END AS status
                        FROM (
                            SELECT *, (opened > %(end)s - interval '3 days' AND {_h('c', 12, 3)} = 0)
                                      OR {_h('c', 12, 200)} = 1 AS is_open
                            FROM (
                                SELECT c, o.id AS order_id, o.store_id,
                                    (%(types)s::text[])[1 + ({_h('o.id', 9, len(TYPES))} + ((c - 1) %% {CASES_PER_ORDER}) * 5) %% {len(TYPES)}] AS type,
                                    GREATEST(o.placed_at + interval '10 minutes', LEAST(
                                        o.placed_at + ({_h('c', 10, 96)} + 4 + ((c - 1) %% {CASES_PER_ORDER}) * 5) * interval '1 hour',
                                        %(end)s - {_h('c', 11, 1440)} * interval '1 minute')) AS opened
                                FROM generate_series(1, %(cases)s) AS c
                                JOIN {order_t} AS o ON o.id = 1 + ((c - 1) / {CASES_PER_ORDER})::bigint * %(n)s / %(affected)s
                            ) AS a
                        ) AS b
                    ) AS c
                ) AS d
            ) AS e""", params)  # noqa: S608  # fmt: skip
        cases = n
        log(f"  {n:,} cases")
        n = _sql(cursor, f"""
            INSERT INTO {ce_t} (case_id, kind, actor_id, created_at, message, data)
            SELECT id, 'raised', NULL::integer, opened_at, '', '{{}}'::jsonb FROM {case_t}
            UNION ALL
            SELECT id, 'reopened', NULL, LEAST(opened_at + interval '1 day', resolved_at), '', '{{}}'::jsonb
            FROM {case_t} WHERE resolved_at IS NOT NULL AND {_h('id', 16, 40)} = 0
            UNION ALL
            SELECT id, 'buyer_replied', NULL, opened_at + interval '2 minutes', '', '{{}}'::jsonb
            FROM {case_t} WHERE first_contact_at IS NOT NULL AND {_h('id', 17, 6)} = 0""", params)  # noqa: S608  # fmt: skip
        log(f"  {n:,} case events")
        n = _sql(cursor, f"""
            INSERT INTO {comp_t} (store_id, case_id, order_id, kind, status, origin, amount, currency, percent,
                valid_until, sku_id, quantity, replaces_shipment_id, shipment_id, note, reason, idempotency_key,
                proposed_by_id, proposed_at, approved_by_id, approved_at, decided_by_id, decision_reason,
                executed_at, platform_reference, failure_reason, updated_at)
            SELECT store_id, id, order_id, kind, status, 'agent', amount, 'MYR', NULL, NULL, NULL, 1, NULL, NULL,
                '', '', 'bench-' || id, agent, proposed,
                CASE WHEN status <> 'rejected' THEN agent END,
                CASE WHEN status <> 'rejected' THEN proposed + interval '10 minutes' END,
                CASE WHEN status = 'rejected' THEN agent END, '',
                CASE WHEN status = 'executed' THEN proposed + interval '70 minutes' END, '', '',
                proposed + interval '70 minutes'
            FROM (
                SELECT c.id, c.store_id, c.order_id,
                    CASE WHEN k = 'full_refund' AND (c.id - 1) %% {CASES_PER_ORDER} <> 0 THEN 'coupon' ELSE k END AS kind,
                    CASE {_h('c.id', 26, 10)} WHEN 0 THEN 'rejected' WHEN 1 THEN 'approved' ELSE 'executed' END AS status,
                    5 + {_h('c.id', 27, 75)} AS amount, (%(agents)s::bigint[])[1 + {_h('c.id', 28, AGENTS)}] AS agent,
                    LEAST(c.first_contact_at + interval '30 minutes', %(end)s - interval '2 hours') AS proposed
                FROM (SELECT c.*, (%(kinds)s::text[])[1 + {_h('c.id', 25, len(KINDS))}] AS k FROM {case_t} AS c
                      WHERE c.resolved_at IS NOT NULL AND {_h('c.id', 29, 12)} = 0) AS c
            ) AS c""", params)  # noqa: S608  # fmt: skip
        log(f"  {n:,} compensations")
        n = _sql(cursor, f"""
            INSERT INTO {claim_t} (store_id, case_id, order_id, shipment_id, carrier, status, amount_claimed,
                amount_recovered, currency, deadline, reference, note, created_by_id, created_at, submitted_at,
                decided_at, paid_at, updated_at)
            SELECT store_id, id, order_id, shipment_id, carrier, status, claimed,
                CASE WHEN status = 'paid' THEN round(claimed * 0.8, 2) ELSE 0 END, 'MYR',
                (resolved_at + interval '30 days')::date, '', '', NULL, resolved_at, resolved_at,
                CASE WHEN status <> 'submitted' THEN decided END,
                CASE WHEN status = 'paid' THEN LEAST(decided + interval '2 days', %(end)s) END,
                COALESCE(CASE WHEN status <> 'submitted' THEN decided END, resolved_at)
            FROM (
                SELECT c.id, c.store_id, c.order_id, c.shipment_id, s.carrier, c.resolved_at,
                    c.resolved_at + interval '3 days' AS decided, 30 + {_h('c.id', 30, 120)} AS claimed,
                    CASE WHEN c.resolved_at + interval '3 days' > %(end)s THEN 'submitted'
                         ELSE (ARRAY['rejected', 'accepted', 'paid', 'paid'])[1 + {_h('c.id', 31, 4)}] END AS status
                FROM {case_t} AS c JOIN {ship_t} AS s ON s.id = c.shipment_id
                WHERE c.type IN ('lost', 'damaged') AND c.resolved_at IS NOT NULL AND {_h('c.id', 32, 3)} = 0
            ) AS c""", params)  # noqa: S608  # fmt: skip
        log(f"  {n:,} carrier claims")
        for model in (Order, Shipment, Case):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
            )
        t0 = time.perf_counter()
        for model in (Order, OrderLine, Shipment, TrackingEvent, Case, CaseEvent, Compensation, Claim):
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
        log(f"  VACUUM ANALYZE in {time.perf_counter() - t0:.0f} s")
    counts = {"orders": total, "parcels": shipments, "events": events, "cases": cases}
    return counts, time.perf_counter() - started


# ------------------------------------------------------------------------------------------ measurement


def _filters(world: World, *, carrier: str = "") -> Filters:
    today = timezone.localdate()  # as the view: period_for("28d", today=...)
    return Filters(store_ids=[s.pk for s in world.stores], start=today - timedelta(days=27), end=today,
                   carrier=carrier)  # fmt: skip


def _urls(world: World) -> dict[str, str]:
    return {
        "GET /reports/": "/reports/",
        "GET /reports/, one carrier": f"/reports/?carrier={FILTER_CARRIER}",
        "CSV export": f"/reports/export/{CSV_TABLE}.csv",
        **{f"store health, {s.get_platform_display()}": f"/reports/health/{s.code}/" for s in world.stores},
    }


def _fetch(client: Client, url: str) -> None:
    response = client.get(url, secure=True)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    if response.streaming:
        b"".join(response.streaming_content)  # the CSV is written while it streams


def _static_settings():
    # In-process: the test client's host, and plain static storage (no collectstatic manifest needed).
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    return override_settings(
        ALLOWED_HOSTS=["testserver"], STORAGES={**settings.STORAGES, "staticfiles": static}
    )


def _timed(fn: Callable[[], Any], runs: int, warmups: int = 1) -> list[float]:
    for _ in range(warmups):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def _measure_size(
    context: BenchContext, world: World, *, total: int, requests: int, raw_runs: int
) -> SizeResult:
    context.log(f"  building {total:,} cases ...")
    counts, build_seconds = _build(context, world, total=total)
    context.log(f"  built in {build_seconds:.0f} s: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    t0 = time.perf_counter()
    store_days = rollups_rebuild()
    rebuild_seconds = time.perf_counter() - t0
    with connection.cursor() as cursor:
        for model in ROLLUP_MODELS:
            cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
    rollup_rows = {m.__name__: m.objects.count() for m in ROLLUP_MODELS}
    context.log(
        f"  rollups_rebuild(): {store_days} store-days in {rebuild_seconds:.1f} s; rows "
        + ", ".join(f"{k} {v:,}" for k, v in rollup_rows.items())
    )
    result = SizeResult(total, counts, build_seconds, rebuild_seconds, store_days, rollup_rows)
    client = Client()
    client.force_login(world.supervisor)
    with _static_settings():
        for name, url in _urls(world).items():
            for _ in range(WARMUPS):
                _fetch(client, url)
            with CaptureQueriesContext(connection) as queries:
                _fetch(client, url)
            result.sql[name] = (len(queries), sum(float(q["time"]) for q in queries.captured_queries) * 1000)
            result.pages[name] = _timed(lambda url=url: _fetch(client, url), requests, warmups=0)
            samples = result.pages[name]
            context.log(f"  {name} at {total:,}: median {_p(samples, 50):.1f} ms, p95 {_p(samples, 95):.1f} ms; "
                        f"{result.sql[name][0]} queries, {result.sql[name][1]:.1f} ms in SQL")  # fmt: skip
    filters = _filters(world)
    result.figures = _timed(lambda: report_build(filters, manager=True), requests, warmups=WARMUPS)
    result.raw = _timed(lambda: raw_report(filters), raw_runs)
    result.raw_health = _timed(lambda: [raw_health(s) for s in world.stores], raw_runs)
    context.log(f"  figures at {total:,}: rollups median {_p(result.figures, 50):.1f} ms, raw tables median "
                f"{_p(result.raw, 50):.0f} ms; health raw median {_p(result.raw_health, 50):.1f} ms")  # fmt: skip
    result.agreement = _agreement(world, filters)
    result.pending = sum(pending_orders(s).count() for s in world.stores)
    for line in result.agreement:
        context.log("  " + line)
    return result


# ------------------------------------------------------------------------------ the same from raw tables


def _period(world: World, filters: Filters) -> tuple[datetime, datetime]:
    store = world.stores[0]  # both stores keep Kuala Lumpur time
    return day_bounds(store, filters.start)[0], day_bounds(store, filters.end)[1]


def raw_report(filters: Filters) -> dict[str, list[tuple]]:
    """The report page's figures from the raw tables: what /reports/ would cost without rollups. The same
    tables as cases.reporting.selectors (exceptions by day, carrier, live session, route x carrier and SKU,
    the week-over-week trends, service by case type with exact medians and p90s, backlog by age, agents,
    compensation by kind, type, carrier and SKU, claims, orders for the cost per 100), each as GROUP BY (or
    GROUPING SETS, one pass) over the period's rows, which the store/time indexes find."""
    store = Store.objects.filter(pk__in=filters.store_ids).order_by("pk").first()
    start, end = day_bounds(store, filters.start)[0], day_bounds(store, filters.end)[1]
    week = day_bounds(store, filters.end - timedelta(days=6))[0]
    before = week - timedelta(days=7)
    p = {"stores": filters.store_ids, "start": start, "end": end, "tz": store.timezone, "carrier": filters.carrier,
         "week": week, "before": before, "open": list(OPEN_STATUSES), "today": timezone.localdate()}  # fmt: skip
    ship_t, order_t, line_t = Shipment._meta.db_table, Order._meta.db_table, OrderLine._meta.db_table
    case_t, ce_t, complaint_t = Case._meta.db_table, CaseEvent._meta.db_table, Complaint._meta.db_table
    comp_t, claim_t = Compensation._meta.db_table, Claim._meta.db_table
    carrier = "AND s.carrier = %(carrier)s" if filters.carrier else ""
    shipped = "COALESCE(s.booked_at, s.created_at)"
    parcels = f"""
        SELECT s.id, s.order_id, s.store_id, s.carrier, o.live_session_id AS session, {shipped} AS shipped,
            COALESCE(NULLIF(o.province, ''), o.city, '') AS destination,
            EXISTS (SELECT 1 FROM {case_t} AS c WHERE c.shipment_id = s.id) AS exceptional
        FROM {ship_t} AS s JOIN {order_t} AS o ON o.id = s.order_id
        WHERE s.store_id = ANY(%(stores)s) AND {shipped} >= %(lo)s AND {shipped} < %(end)s {carrier}"""  # noqa: S608
    buyer_first = f"""(EXISTS (SELECT 1 FROM {complaint_t} AS m WHERE m.case_id = c.id AND m.received_at < c.first_contact_at)
        OR EXISTS (SELECT 1 FROM {ce_t} AS e WHERE e.case_id = c.id AND e.kind = 'buyer_replied'
                   AND e.created_at < c.first_contact_at))"""  # noqa: S608  # fmt: skip
    case_carrier = f"LEFT JOIN {ship_t} AS s ON s.id = c.shipment_id" if filters.carrier else ""
    minutes = "extract(epoch FROM ({} - c.opened_at)) / 60"
    statements = {
        "exceptions": (f"""
            SELECT (shipped AT TIME ZONE %(tz)s)::date, carrier, session, store_id, destination,
                GROUPING((shipped AT TIME ZONE %(tz)s)::date, carrier, session, store_id, destination),
                count(*), count(*) FILTER (WHERE exceptional)
            FROM ({parcels}) AS p
            GROUP BY GROUPING SETS ((), ((shipped AT TIME ZONE %(tz)s)::date), (carrier), (session),
                                    (store_id, destination, carrier))""", {"lo": start}),  # noqa: S608
        "trends": (f"""
            SELECT carrier, store_id, destination, GROUPING(carrier, store_id, destination),
                count(*) FILTER (WHERE shipped >= %(week)s), count(*) FILTER (WHERE shipped >= %(week)s AND exceptional),
                count(*) FILTER (WHERE shipped < %(week)s), count(*) FILTER (WHERE shipped < %(week)s AND exceptional)
            FROM ({parcels}) AS p GROUP BY GROUPING SETS ((carrier), (store_id, destination, carrier))""",  # noqa: S608
                   {"lo": before}),
        "skus": (f"""
            SELECT l.sku_code, count(DISTINCT p.id), count(DISTINCT p.id) FILTER (WHERE p.exceptional)
            FROM ({parcels}) AS p JOIN {line_t} AS l ON l.order_id = p.order_id
            GROUP BY l.sku_code""", {"lo": start}),  # noqa: S608
        "service": (f"""
            SELECT type, GROUPING(type), count(*),
                percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {minutes.format('c.first_contact_at')})
                    FILTER (WHERE c.first_contact_at IS NOT NULL),
                percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {minutes.format('c.resolved_at')})
                    FILTER (WHERE c.resolved_at IS NOT NULL AND NOT c.status = ANY(%(open)s)),
                count(*) FILTER (WHERE c.first_contact_at <= c.first_contact_due_at), count(c.first_contact_due_at),
                count(*) FILTER (WHERE c.resolved_at <= c.resolution_due_at AND NOT c.status = ANY(%(open)s)),
                count(c.resolution_due_at),
                count(*) FILTER (WHERE c.first_contact_at IS NOT NULL AND NOT {buyer_first}),
                count(c.first_contact_at),
                count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {ce_t} AS e WHERE e.case_id = c.id AND e.kind = 'reopened')),
                count(*) FILTER (WHERE c.resolved_at IS NOT NULL AND NOT c.status = ANY(%(open)s))
            FROM {case_t} AS c {case_carrier}
            WHERE c.store_id = ANY(%(stores)s) AND c.opened_at >= %(start)s AND c.opened_at < %(end)s {carrier}
            GROUP BY ROLLUP (type)""", {}),  # noqa: S608
        "backlog": (f"""
            SELECT CASE WHEN age < 1 THEN 0 WHEN age < 3 THEN 1 WHEN age < 7 THEN 2 ELSE 3 END, count(*)
            FROM (SELECT %(today)s - (c.opened_at AT TIME ZONE %(tz)s)::date AS age FROM {case_t} AS c {case_carrier}
                  WHERE c.store_id = ANY(%(stores)s) AND c.status = ANY(%(open)s) {carrier}) AS c
            GROUP BY 1""", {}),  # noqa: S608
        "agents": (f"""
            SELECT c.assignee_id, count(*), count(*) FILTER (WHERE c.resolved_at IS NOT NULL AND NOT c.status = ANY(%(open)s)),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY {minutes.format('c.first_contact_at')})
                    FILTER (WHERE c.first_contact_at IS NOT NULL),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY {minutes.format('c.resolved_at')})
                    FILTER (WHERE c.resolved_at IS NOT NULL AND NOT c.status = ANY(%(open)s))
            FROM {case_t} AS c
            WHERE c.store_id = ANY(%(stores)s) AND c.opened_at >= %(start)s AND c.opened_at < %(end)s
                AND c.assignee_id IS NOT NULL
            GROUP BY c.assignee_id""", {}),  # noqa: S608
        "approved": (f"""
            SELECT approved_by_id, count(*), sum(amount) FROM {comp_t}
            WHERE store_id = ANY(%(stores)s) AND proposed_at >= %(start)s AND proposed_at < %(end)s
                AND approved_by_id IS NOT NULL AND status IN ('approved', 'executing', 'executed')
            GROUP BY approved_by_id""", {}),  # noqa: S608
        "money": (f"""
            SELECT kind, case_type, carrier, sku, currency, GROUPING(kind, case_type, carrier, sku), count(*), sum(amount)
            FROM (SELECT m.kind, c.type AS case_type, m.currency, m.amount,
                      COALESCE(s.carrier, r.carrier, '') AS carrier,
                      COALESCE(k.code, (SELECT l.sku_code FROM {line_t} AS l WHERE l.order_id = m.order_id
                                        ORDER BY l.id LIMIT 1), '') AS sku
                  FROM {comp_t} AS m JOIN {case_t} AS c ON c.id = m.case_id
                  LEFT JOIN {ship_t} AS s ON s.id = c.shipment_id LEFT JOIN {ship_t} AS r ON r.id = m.shipment_id
                  LEFT JOIN {SKU._meta.db_table} AS k ON k.id = m.sku_id
                  WHERE m.store_id = ANY(%(stores)s) AND m.proposed_at >= %(start)s AND m.proposed_at < %(end)s
                      AND m.status = 'executed' {carrier.replace('s.carrier', 'COALESCE(s.carrier, r.carrier, %(empty)s)')}) AS m
            GROUP BY GROUPING SETS ((kind, currency), (case_type, currency), (carrier, currency), (sku, currency))""",  # noqa: S608
                  {"empty": ""}),
        "claims": (f"""
            SELECT currency,
                count(*) FILTER (WHERE submitted_at >= %(start)s AND submitted_at < %(end)s),
                sum(amount_claimed) FILTER (WHERE submitted_at >= %(start)s AND submitted_at < %(end)s),
                count(*) FILTER (WHERE decided_at >= %(start)s AND decided_at < %(end)s AND status IN ('accepted', 'paid')),
                sum(amount_claimed) FILTER (WHERE decided_at >= %(start)s AND decided_at < %(end)s AND status IN ('accepted', 'paid')),
                count(*) FILTER (WHERE paid_at >= %(start)s AND paid_at < %(end)s),
                sum(amount_recovered) FILTER (WHERE paid_at >= %(start)s AND paid_at < %(end)s)
            FROM {claim_t} AS s WHERE store_id = ANY(%(stores)s) {carrier} GROUP BY currency""", {}),  # noqa: S608
        "orders": (f"""
            SELECT store_id, count(*) FROM {order_t}
            WHERE store_id = ANY(%(stores)s) AND placed_at >= %(start)s AND placed_at < %(end)s
            GROUP BY store_id""", {}),  # noqa: S608
    }  # fmt: skip
    out: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        for name, (statement, extra) in statements.items():
            cursor.execute(statement, {**p, **extra})
            out[name] = cursor.fetchall()
    return out


def raw_health(store: Store) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The store-health page's figures from the raw tables: parcels first scanned in the window by day and
    how many after the order's ship-by, orders placed in the window and cancelled, the orders still to ship
    by the day of their ship-by (the one query the page shares)."""
    today = timezone.localtime(timezone.now(), store.tzinfo).date()
    since = day_bounds(store, today - timedelta(days=6))[0]
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT (s.accepted_at AT TIME ZONE %(tz)s)::date, count(*), count(*) FILTER (WHERE s.accepted_at > o.ship_by)
            FROM {Shipment._meta.db_table} AS s JOIN {Order._meta.db_table} AS o ON o.id = s.order_id
            WHERE s.store_id = %(store)s AND s.accepted_at >= %(since)s GROUP BY 1""",  # noqa: S608
                       {"tz": store.timezone, "store": store.pk, "since": since})  # fmt: skip
        dispatched = cursor.fetchall()
        cursor.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE status = 'cancelled') FROM {Order._meta.db_table}
            WHERE store_id = %(store)s AND placed_at >= %(since)s""", {"store": store.pk, "since": since})  # noqa: S608  # fmt: skip
        orders = cursor.fetchall()
    pending = list(pending_days(store, now=timezone.now()))
    return dispatched, orders, pending


def _agreement(world: World, filters: Filters) -> list[str]:
    """The headline figures both ways: the raw computation must say what the rollups say."""
    report = report_build(filters, manager=True)
    raw = raw_report(filters)
    total = next(r for r in raw["exceptions"] if r[5] == 31)
    service_total = next(r for r in raw["service"] if r[1] == 1)
    pairs = {
        "parcels": (report.headline.get("parcels"), total[6]),
        "with an exception": (report.headline.get("exceptions"), total[7]),
        "cases opened": (report.headline.get("cases_opened"), service_total[2]),
        "open backlog": (report.headline.get("backlog"), sum(r[1] for r in raw["backlog"])),
    }
    same = all(a == b for a, b in pairs.values())
    detail = ", ".join(
        f"{k} {a:,}" if a == b else f"{k} {a:,} (rollups) vs {b:,} (raw)" for k, (a, b) in pairs.items()
    )
    return [f"headline figures, rollups against raw tables: {'the same' if same else 'DIFFERENT'}: {detail}."]


# ---------------------------------------------------------------------------------------------- EXPLAIN


def _explain(context: BenchContext, world: World) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every query the report page (default and one carrier) and the health
    pages ran: which index each read, and any sequential scan of a table that grows with the data."""
    client = Client()
    client.force_login(world.supervisor)
    captured: list[tuple[str, str]] = []
    with _static_settings():
        for name, url in _urls(world).items():
            if name == "CSV export":
                continue
            with CaptureQueriesContext(connection) as queries:
                _fetch(client, url)
            captured += [(name, q["sql"]) for q in queries.captured_queries]
    notes = [
        "EXPLAIN ANALYZE at the large size, every query of the pages above (CSV aside: a section of the page):"
    ]
    slow: list[tuple[float, str, str, str]] = []
    seen: set[str] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        for page, sql in captured:
            if not sql.lstrip().upper().startswith("SELECT") or sql in seen:
                continue
            seen.add(sql)
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            ms = float(m.group(1)) if (m := re.search(r"Execution Time: ([\d.]+) ms", plan)) else 0.0
            tables = sorted(set(re.findall(r'(?:FROM|JOIN) "(\w+)"', sql)))
            indexes = sorted(set(re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:Backward )?(?:using|on) (\w+)", plan)))  # fmt: skip
            scans = sorted(set(re.findall(r"Seq Scan on (\w+)", plan)))
            big = [t for t in scans if t in BIG_TABLES or (t.startswith("cases_") and t.endswith("day"))]
            rollup_tables = [t for t in tables if t.endswith("day") and t.startswith("cases_")]
            unread = rollup_tables and not any(ROLLUP_INDEX.match(i) for i in indexes)
            flag = "SCAN " if big or unread else ""
            slow.append((ms, page, sql, plan))
            notes.append(
                f"  {flag}{page}: {', '.join(tables) or '?'}: {ms:.1f} ms; "
                f"{'index ' + ', '.join(indexes) if indexes else 'no index'}"
                f"{'; seq scan ' + ', '.join(scans) if scans else ''}"
            )
        transaction.set_rollback(True)
    slow.sort(key=lambda x: -x[0])
    for ms, page, sql, plan in slow[:3]:
        notes.append(f"Slowest: {page}, {ms:.1f} ms: {sql[:300]}{' ...' if len(sql) > 300 else ''}")
        notes.extend("  " + line for line in plan.splitlines())
    flagged = [n for n in notes if n.startswith("  SCAN")]
    context.log(f"  EXPLAIN: {len(seen)} distinct queries, {len(flagged)} flagged")
    return notes


# ------------------------------------------------------------------------------------------ maintenance


class _Stopwatch:
    """Wraps a function: calls it and adds up the time spent in it."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def _refresh() -> tuple[float, int]:
    """rollups_refresh() until nothing is left marked (one run rebuilds at most DAYS_PER_RUN a store)."""
    t0 = time.perf_counter()
    rebuilt = 0
    while True:
        result = rollups_refresh()
        rebuilt += result.rebuilt
        if not RollupDirty.objects.exists():
            return time.perf_counter() - t0, rebuilt


def _maintenance(context: BenchContext, world: World, *, total: int) -> Table:
    due = context.size(SWEEP_DUE, minimum=20)
    table = Table(
        title=f"Rollup maintenance at {total:,} cases: the worker's refresh against the sweeper and ingest"
    )
    _refresh()  # whatever the EXPLAIN's pages left
    idle = [_refresh() for _ in range(3)]
    table.references.append(
        Measure(
            "rollups_refresh(), nothing changed",
            statistics.median(seconds for seconds, _ in idle) * 1000,
            "ms",
            f"the worker's minute when idle: the change scans alone; {max(n for _, n in idle)} store-days rebuilt",
        )
    )

    # 1. The sweeper: SWEEP_ROUNDS rounds of (with the hook, without it) on fresh sets of parcels in transit.
    pool = list(Shipment.objects.filter(status="InTransit").order_by("-pk").values_list("pk", flat=True)
                [: due * SWEEP_ROUNDS * 2])  # fmt: skip
    due = min(due, len(pool) // (SWEEP_ROUNDS * 2))
    with_mark, without_mark, mark_seconds, refreshes, days = [], [], [], [], []
    for number in range(SWEEP_ROUNDS * 2):
        hooked = number % 2 == 0
        ids = pool[number * due : (number + 1) * due]
        Shipment.objects.filter(pk__in=ids).update(next_check_at=timezone.now() - timedelta(minutes=1))
        watch = _Stopwatch(dispatch_days_mark) if hooked else _Stopwatch(lambda parcels, now: None)
        with mock.patch("cases.engine.dispatch_days_mark", watch):
            t0 = time.perf_counter()
            swept = exceptions_sweep(now=timezone.now())
            elapsed = time.perf_counter() - t0
        if swept.evaluated < due:
            raise RuntimeError(f"sweep evaluated {swept.evaluated}, expected {due}")
        marked = RollupDirty.objects.count()
        seconds, rebuilt = _refresh()
        if hooked:
            with_mark.append(elapsed)
            mark_seconds.append(watch.seconds)
            refreshes.append(seconds)
            days.append((marked, rebuilt))
        else:
            without_mark.append(elapsed)
        context.log(f"  sweep of {due:,} {'with' if hooked else 'without'} dispatch_days_mark: {elapsed * 1000:.0f} ms "
                    f"({swept.raised} cases raised, mark {watch.seconds * 1000:.1f} ms, {marked} days marked); "
                    f"refresh {seconds * 1000:.0f} ms, {rebuilt} store-days rebuilt")  # fmt: skip
    sweep_with, sweep_without = statistics.median(with_mark), statistics.median(without_mark)
    mark, refresh = statistics.median(mark_seconds), statistics.median(refreshes)
    base = Measure(f"sweep of {due:,} due parcels, no rollup hook", due / sweep_without, "parcels/s",
                   f"median of {SWEEP_ROUNDS}, {sweep_without * 1000:.0f} ms")  # fmt: skip
    table.references.append(base)
    table.references.append(Measure("dispatch_days_mark inside the sweep", mark * 1000, "ms",
                                    f"median; {mark / sweep_with:.1%} of the sweep"))  # fmt: skip
    table.references.append(Measure("rollups_refresh() after one sweep", refresh * 1000, "ms",
                                    f"median; {statistics.median(d[1] for d in days):.0f} store-days rebuilt"))  # fmt: skip
    target = 1 / (1 + OVERHEAD_MAX)
    table.comparisons.append(Comparison(
        Measure("sweep with dispatch_days_mark", due / sweep_with, "parcels/s", f"median, {sweep_with * 1000:.0f} ms"),
        base, target))  # fmt: skip
    table.comparisons.append(Comparison(
        Measure("sweep + the refresh absorbing it", due / (sweep_with + refresh), "parcels/s",
                f"{(sweep_with + refresh) * 1000:.0f} ms"), base, target))  # fmt: skip
    table.notes.append(
        f"Sweeper: {due:,} due parcels in transit among {total:,}, {SWEEP_ROUNDS} rounds with the hook and "
        f"{SWEEP_ROUNDS} without, alternating, fresh parcels each. dispatch_days_mark costs {mark * 1000:.1f} ms "
        f"({mark / sweep_with:.1%} of the sweep; sweep median {sweep_with * 1000:.0f} ms with it, "
        f"{sweep_without * 1000:.0f} ms without: the difference is mostly noise). The refresh then absorbing "
        f"what one sweep changed (its raised cases and marked first-scan days) takes {refresh * 1000:.0f} ms = "
        f"{refresh / sweep_with:.0%} of the sweep; it runs in the worker once a minute, not in the sweep's "
        f"transaction, and costs per store-day changed, not per parcel."
    )

    # 2. Ingest: the tracking section's pipeline (AfterShip pushes, one trackings_ingest per 1,000) on the most
    # recent parcels of this data, then the sweep that follows it (the parcels are due) and the refreshes.
    parcels_n = min(context.size(tracking_bench.SHIPMENTS, minimum=20), Shipment.objects.count())
    per_call = min(
        tracking_bench.PAYLOADS_PER_CALL, context.size(tracking_bench.PAYLOADS_PER_CALL, minimum=5)
    )
    index = {s.pk: i for i, s in enumerate(world.stores)}
    now = timezone.now().replace(microsecond=0)
    # Parcels booked two days ago or more, so that every checkpoint of the push (up to 44 h after booking) is past.
    recent = Shipment.objects.filter(booked_at__lte=now - timedelta(days=2)).order_by("-pk").values_list("pk", "store_id", "tracking_number", "order_id",
                                                           "booked_at", "created_at")[:parcels_n]  # fmt: skip
    parcels = [tracking_bench._Parcel(index[store], pk, number, f"R{order}", booked or created)
               for pk, store, number, order, booked, created in recent]  # fmt: skip
    batches = []
    for i, conn in enumerate(world.connections):
        bodies = [
            tracking_bench._body(p, event_id=str(uuid.uuid4()), now=now)
            for p in parcels
            if p.store_index == i
        ]
        batches += [(conn, bodies[k : k + per_call]) for k in range(0, len(bodies), per_call)]
    fixture = tracking_bench._Fixture(world.connections, parcels, batches, [], now)
    pipeline = tracking_bench._pipeline(fixture)
    if pipeline.unmatched:
        raise RuntimeError(f"{pipeline.unmatched} pushes matched no parcel")
    marked_after_ingest = RollupDirty.objects.count()
    refresh_ingest, rebuilt_ingest = _refresh()
    watch = _Stopwatch(dispatch_days_mark)
    with mock.patch("cases.engine.dispatch_days_mark", watch):
        t0 = time.perf_counter()
        swept = exceptions_sweep(now=timezone.now())
        sweep_after = time.perf_counter() - t0
    marked_after_sweep = RollupDirty.objects.count()
    refresh_sweep, rebuilt_sweep = _refresh()
    events = pipeline.ingest.new
    context.log(f"  ingest of {len(parcels):,} pushes ({events:,} new events): {pipeline.seconds:.1f} s; refresh "
                f"{refresh_ingest * 1000:.0f} ms ({rebuilt_ingest} store-days); sweep of {swept.evaluated:,} after it "
                f"{sweep_after:.1f} s (mark {watch.seconds * 1000:.0f} ms, {swept.raised} raised); refresh "
                f"{refresh_sweep * 1000:.0f} ms ({rebuilt_sweep} store-days)")  # fmt: skip
    ingest_base = Measure(f"ingest pipeline, {len(parcels):,} pushes", events / pipeline.seconds, "events/s",
                          f"{per_call:,} a transaction, {pipeline.seconds:.1f} s")  # fmt: skip
    table.references.append(ingest_base)
    table.references.append(Measure("rollups_refresh() after the ingest", refresh_ingest * 1000, "ms",
                                    f"{marked_after_ingest} store-days marked, {rebuilt_ingest} rebuilt"))  # fmt: skip
    table.references.append(Measure(f"sweep of the {swept.evaluated:,} parcels it made due", sweep_after, "s",
                                    f"dispatch_days_mark {watch.seconds * 1000:.0f} ms of it"))  # fmt: skip
    table.references.append(Measure("rollups_refresh() after that sweep", refresh_sweep * 1000, "ms",
                                    f"{marked_after_sweep} store-days marked, {rebuilt_sweep} rebuilt"))  # fmt: skip
    both = refresh_ingest + refresh_sweep
    table.comparisons.append(Comparison(
        Measure("ingest + every refresh it caused", events / (pipeline.seconds + both), "events/s",
                f"{pipeline.seconds + both:.1f} s"), ingest_base, target))  # fmt: skip
    sweep_base = Measure("that sweep without its hook", swept.evaluated / max(1e-9, sweep_after - watch.seconds),
                         "parcels/s", f"{sweep_after - watch.seconds:.1f} s")  # fmt: skip
    table.comparisons.append(Comparison(
        Measure("that sweep with dispatch_days_mark + its refresh", swept.evaluated / (sweep_after + refresh_sweep),
                "parcels/s", f"{sweep_after + refresh_sweep:.1f} s"), sweep_base, target))  # fmt: skip
    table.notes.append(
        f"Ingest: {len(parcels):,} AfterShip pushes (the tracking section's payloads, {tracking_bench.CHECKPOINTS} "
        f"checkpoints each) for the newest parcels of the data, through its pipeline ({per_call:,} a "
        f"trackings_ingest call and transaction): {pipeline.seconds:.1f} s. Nothing in the ingest path touches "
        f"the rollups; the refresh right after it rebuilt {rebuilt_ingest} store-days in {refresh_ingest * 1000:.0f} "
        f"ms ({refresh_ingest / pipeline.seconds:.1%} of the ingest). The first scans it brought reach the rollups "
        f"through the sweep that follows (dispatch_days_mark {watch.seconds * 1000:.0f} ms of {sweep_after:.1f} s), "
        f"whose refresh took {refresh_sweep * 1000:.0f} ms: together {both / pipeline.seconds:.1%} of the ingest."
    )
    table.notes.append(
        "Rows: ratio = rate with the rollup work over the rate without; target 0.91 means at most 10 % added."
    )
    return table


# --------------------------------------------------------------------------------------------- tables


def _pages_table(results: list[SizeResult], requests: int) -> Table:
    small, large = results[0], results[-1]
    table = Table(
        title=f"Reports from rollups: {small.total:,} cases against {large.total:,} "
        f"({large.counts['events']:,} tracking events; in-process, {requests} requests each)"
    )
    for r in results:
        for page, samples in r.pages.items():
            table.references.append(Measure(f"{page}, {r.total:,} cases", _p(samples, 50), "ms median",
                                            f"p95 {_p(samples, 95):.1f} ms"))  # fmt: skip
    budget = Measure("budget", 1000 / P95_BUDGET_MS, "req/s", f"{P95_BUDGET_MS:.0f} ms")
    for page in small.pages:
        p95_small, p95_large = _p(small.pages[page], 95), _p(large.pages[page], 95)
        small_rate = Measure(
            f"at {size_label(small.total)}", 1000 / p95_small, "req/s", f"1/p95, {p95_small:.1f} ms"
        )
        large_rate = Measure(f"{page} at {size_label(large.total)}", 1000 / p95_large, "req/s",
                             f"1/p95, {p95_large:.1f} ms")  # fmt: skip
        table.comparisons.append(Comparison(large_rate, small_rate, target=1 / RATIO_MAX))
        table.comparisons.append(Comparison(large_rate, budget, target=1.0))
        table.notes.append(
            f"{page}: p95 {p95_small:.1f} ms at {small.total:,}, {p95_large:.1f} ms at {large.total:,}: ratio "
            f"{p95_large / p95_small:.2f} (target <= {RATIO_MAX}); {large.sql[page][0]} queries, "
            f"{large.sql[page][1]:.0f} ms of SQL in one request at {large.total:,} ({small.sql[page][1]:.0f} ms at "
            f"{small.total:,})."
        )
    table.notes.append(
        f"store health: besides two rollup sums it reads the orders still to ship (order_unshipped_ship_by_idx, "
        f"grouped by ship-by day): {small.pending:,} at {small.total:,} against {large.pending:,} at "
        f"{large.total:,}, so its cost follows the daily order volume (the unshipped backlog), not the history."
    )
    table.notes.append(
        f"CSV export ({CSV_TABLE}): report_build(only=table) computes the table's whole section (exceptions: "
        "every table and the trends), not the one table."
    )
    table.notes.append(
        "Rows: 'rate' comparisons are 1/p95, so ratio = p95(small)/p95(large) and target 0.67 means "
        f"p95(large) <= {RATIO_MAX} x p95(small); against 'budget', ratio >= 1 means p95 <= {P95_BUDGET_MS:.0f} ms."
    )
    for r in results:
        table.notes.append(
            f"{r.total:,} cases: "
            + ", ".join(f"{v:,} {k}" for k, v in r.counts.items())
            + f" over {DAYS} days and 2 stores, built in {r.build_seconds:.0f} s; rollups_rebuild() from scratch "
            f"{r.rebuild_seconds:.1f} s for {r.store_days} store-days ({r.rebuild_seconds / max(1, r.store_days) * 1000:.0f} "
            "ms a store-day); rollup rows " + ", ".join(f"{k} {v:,}" for k, v in r.rollup_rows.items()) + "."
        )
    return table


def _raw_table(results: list[SizeResult], raw_runs: int) -> Table:
    table = Table(title="What the rollups buy: the report's figures from the rollups and from the raw tables")
    for r in results:
        table.references += [
            Measure(f"figures from rollups (report_build), {r.total:,} cases", _p(r.figures, 50), "ms median",
                    f"p95 {_p(r.figures, 95):.1f} ms"),
            Measure(f"figures from the raw tables, {r.total:,} cases", _p(r.raw, 50), "ms median",
                    f"{raw_runs} runs, max {max(r.raw):.0f} ms"),
            Measure(f"store health from the raw tables, {r.total:,} cases", _p(r.raw_health, 50) / 2, "ms median",
                    "per store"),
        ]  # fmt: skip
    large = results[-1]
    raw = Measure(f"raw tables at {size_label(large.total)}", 1000 / _p(large.raw, 50), "/s",
                  f"median {_p(large.raw, 50):.0f} ms")  # fmt: skip
    rollups = Measure(f"figures from rollups at {size_label(large.total)}", 1000 / _p(large.figures, 50), "/s",
                      f"median {_p(large.figures, 50):.1f} ms")  # fmt: skip
    table.comparisons.append(Comparison(rollups, raw, target=1.0))
    table.notes.append(
        "Both compute the page's figures only (no template): report_build() sums rollup rows; raw_report() runs "
        "the equivalent GROUP BYs over parcels, orders, order lines, cases, case events, compensation and claims "
        "of the 28 days (grouping sets, one pass per table, through the store/time indexes). Ratio = how many "
        "times faster the rollups are."
    )
    for r in results:
        table.notes.extend(f"{r.total:,} cases: {line}" for line in r.agreement)
    return table
