"""Issue 20's figures: the storefront API's bulk upsert and its case list.

1. Bulk upsert: 100,000 orders (2 lines, 1 parcel each) sent as 1,000-order `POST /api/v1/orders/bulk`
   requests over HTTP to gunicorn (the API's own service, set-based), against a per-order ORM `create()` loop
   of the same rows (order, two lines, one parcel: four INSERTs, each committed) in the same run. Target:
   >= 10x the loop's orders/s. Then the full rule and stock evaluation of those orders (the worker's
   `orders_due_evaluate` for the stock and review rules, `exceptions_sweep` for their new parcels), run
   after the last request: it must finish within 60 s of it.
2. `GET /api/v1/cases`, first page and a deep cursor page (half way through the list), at 10,000 and at
   1,000,000 cases (the queue bench's generator): p95 < 100 ms, and p95(1M) / p95(10k) <= 1.5. In process,
   with Django's test client and a store API key.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

import orjson
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.utils import timezone

from cases.engine import exceptions_sweep
from cases.models import Case
from cases.orders import orders_due_evaluate
from portal.api.pagination import cursor_for
from portal.bench import BenchContext
from portal.bench.http import drive, each_once, wsgi_server
from portal.bench.queue import _p, _reset_and_build, size_label
from portal.bench.report import Comparison, Measure, Table
from portal.choices import Role
from portal.models import Membership, Store
from portal.services import api_key_create
from tracking.models import SKU, LiveSession, LiveSessionAllocation, Order, OrderLine, Shipment, StockLevel

ORDERS = 100_000
BULK = 1_000
LOOP_ORDERS = 3_000  # the ORM loop's sample: its rate does not depend on how many it writes
SKUS = 40
ALLOCATED_SHARE = 0.98  # the live session's stock covers 98% of what it sold: the latest 2% are oversold
EVALUATION_BUDGET_S = 60.0
CASES_SMALL, CASES_LARGE = 10_000, 1_000_000
WARMUPS, REQUESTS = 5, 100
P95_BUDGET_MS = 100.0
RATIO_MAX = 1.5


def run(context: BenchContext) -> list[Table]:
    return [_bulk(context), _case_list(context)]


# --- 1. bulk upsert --------------------------------------------------------------------------------


def _store(code: str) -> Store:
    return Store.objects.create(code=code, name="Bench", platform="tiktok_shop", region="MY", currency="MYR",
                                timezone="Asia/Kuala_Lumpur")  # fmt: skip


def _catalogue(store: Store) -> tuple[list[str], LiveSession]:
    codes = [f"SKU-{n:03d}" for n in range(SKUS)]
    skus = SKU.objects.bulk_create(
        SKU(store=store, code=code, name=f"Item {code}", unit_price=Decimal("29.90")) for code in codes
    )
    StockLevel.objects.bulk_create(StockLevel(sku=sku, on_hand=5_000, allocated=1_000) for sku in skus)
    now = timezone.now()
    session = LiveSession.objects.create(store=store, external_id="live-bench", title="Bench live", host="Mei",
                                         started_at=now - timedelta(hours=3), ended_at=now - timedelta(hours=1))  # fmt: skip
    LiveSessionAllocation.objects.bulk_create(
        LiveSessionAllocation(live_session=session, sku=sku, quantity=1_000) for sku in skus[:10]
    )
    return codes, session


def _orders(n: int, *, prefix: str, codes: list[str], rng: random.Random) -> list[dict]:
    now = timezone.now()
    out = []
    for i in range(n):
        placed = now - timedelta(hours=2) + timedelta(milliseconds=i * 50)
        a, b = rng.sample(codes, 2)
        out.append({
            "platform_order_id": f"{prefix}{i:07d}",
            "buyer": {"name": f"Buyer {i}", "platform_id": f"tt-{i}", "phone": "+60123456789", "language": "ms"},
            "address": {"country": "MY", "province": "Selangor", "city": "Shah Alam", "district": f"S{i % 50}",
                        "street": f"{i} Jalan Bench {i % 997}", "postal_code": "40000"},
            "placed_at": placed.isoformat(),
            "ship_by": (placed + timedelta(days=2)).isoformat(),
            "live_session": "live-bench" if i % 3 == 0 else None,
            "amount": "89.70",
            "currency": "MYR",
            "lines": [{"sku": a, "quantity": 2, "unit_price": "29.90", "lot": "L2411"},
                      {"sku": b, "quantity": 1, "unit_price": "29.90"}],
            "shipments": [{"carrier": "jtexpress-my", "tracking_number": f"JT{prefix}{i:09d}",
                           "booked_at": (placed + timedelta(hours=1)).isoformat()}],
        })  # fmt: skip
    return out


def _allocate(session: LiveSession, orders: list[dict], *, share: float) -> None:
    """Size the stock to what the orders ask for, SKU by SKU: the live session's allocations cover `share` of
    its orders (the latest few percent are oversold, as in a livestream that sold a little past its stock),
    and the regular stock covers every other order with some to spare."""
    session_demand: dict[str, int] = {}
    regular_demand: dict[str, int] = {}
    allocated_skus = set(
        LiveSessionAllocation.objects.filter(live_session=session).values_list("sku__code", flat=True)
    )
    for order in orders:
        for line in order["lines"]:
            pool = (
                session_demand if order["live_session"] and line["sku"] in allocated_skus else regular_demand
            )
            pool[line["sku"]] = pool.get(line["sku"], 0) + line["quantity"]
    for sku in SKU.objects.filter(store=session.store).select_related("stock"):
        quota = int(session_demand.get(sku.code, 0) * share)
        LiveSessionAllocation.objects.filter(live_session=session, sku=sku).update(quantity=quota)
        sku.stock.allocated = quota
        sku.stock.on_hand = quota + regular_demand.get(sku.code, 0) + 100
        sku.stock.save(update_fields=["allocated", "on_hand"])


def _orm_loop(store: Store, orders: list[dict], sessions: dict[str, int], skus: dict[str, SKU]) -> float:
    """The per-order ORM baseline: create() for the order, its lines and its parcel, each committed."""
    t0 = time.perf_counter()
    for data in orders:
        buyer, address = data["buyer"], data["address"]
        order = Order.objects.create(
            store=store, platform_order_id=data["platform_order_id"], buyer_name=buyer["name"],
            buyer_platform_id=buyer["platform_id"], buyer_phone=buyer["phone"], buyer_language=buyer["language"],
            country=address["country"], province=address["province"], city=address["city"],
            district=address["district"], street=address["street"], postal_code=address["postal_code"],
            placed_at=data["placed_at"], ship_by=data["ship_by"],
            live_session_id=sessions.get(data["live_session"] or ""), amount=Decimal(data["amount"]),
            currency=data["currency"],
        )  # fmt: skip
        for line in data["lines"]:
            sku = skus[line["sku"]]
            OrderLine.objects.create(order=order, sku=sku, sku_code=sku.code, sku_name=sku.name, lot=line.get("lot", ""),
                                     quantity=line["quantity"], unit_price=Decimal(line["unit_price"]))  # fmt: skip
        for parcel in data["shipments"]:
            Shipment.objects.create(store=store, order=order, carrier=parcel["carrier"],
                                    tracking_number=parcel["tracking_number"], booked_at=parcel["booked_at"])  # fmt: skip
    return time.perf_counter() - t0


def _bulk(context: BenchContext) -> Table:
    total = context.size(ORDERS, minimum=2_000)
    loop_n = context.size(LOOP_ORDERS, minimum=200)
    rng = random.Random(20)

    loop_store = _store("bench-api-loop")
    codes, session = _catalogue(loop_store)
    skus = {sku.code: sku for sku in SKU.objects.filter(store=loop_store)}
    loop_seconds = _orm_loop(loop_store, _orders(loop_n, prefix="L", codes=codes, rng=rng),
                             {"live-bench": session.pk}, skus)  # fmt: skip
    loop_rate = loop_n / loop_seconds
    context.log(f"  ORM create() loop: {loop_n:,} orders in {loop_seconds:.1f} s ({loop_rate:,.0f} orders/s)")

    store = _store("bench-api")
    codes, session = _catalogue(store)
    _, secret = api_key_create(store=store, name="bench")
    orders = _orders(total, prefix="A", codes=codes, rng=rng)
    _allocate(session, orders, share=ALLOCATED_SHARE)
    bodies = [orjson.dumps({"orders": orders[i : i + BULK]}) for i in range(0, total, BULK)]
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    requests = [("POST", "/api/v1/orders/bulk", body, headers) for body in bodies]
    with wsgi_server(database_url=context.database_url, extra_env={"API_RATE_LIMIT": ""}) as server:
        result = drive(server=server, source=each_once(requests), concurrency=2, duration=3_600)
    if result.errors or result.ok != len(requests):
        raise RuntimeError(f"bulk requests failed: {result.statuses}; {result.first_error}")
    written = Order.objects.filter(store=store).count()
    if written != total:
        raise RuntimeError(f"expected {total:,} orders written, found {written:,}")
    api_rate = total / result.elapsed
    context.log(f"  API bulk: {total:,} orders in {result.elapsed:.1f} s ({api_rate:,.0f} orders/s)")

    t0 = time.perf_counter()
    evaluated = orders_due_evaluate()
    rounds = 0
    while exceptions_sweep().evaluated:
        rounds += 1
    evaluation = time.perf_counter() - t0
    due_left = Order.objects.filter(store=store, rules_due_at__isnull=False).count()
    parcels_due = Shipment.objects.filter(store=store, next_check_at__lte=timezone.now()).count()
    oversold = Case.objects.filter(store=store, type="oversold").count()
    context.log(
        f"  evaluation after the last request: {evaluation:.1f} s ({evaluated.evaluated:,} orders evaluated)"
    )

    table = Table(title=f"Storefront API bulk upsert: {total:,} orders in {BULK:,}-order requests over HTTP")
    loop = Measure(
        "per-order ORM create() loop", loop_rate, "orders/s", f"{loop_n:,} orders, 4 INSERTs each, autocommit"
    )
    table.references.append(loop)
    table.comparisons.append(
        Comparison(
            Measure("POST /api/v1/orders/bulk", api_rate, "orders/s", "gunicorn 2x4, 2 clients"),
            loop,
            target=10.0,
        )
    )
    budget = Measure("budget", 60 / EVALUATION_BUDGET_S, "per min", f"{EVALUATION_BUDGET_S:.0f} s")
    table.comparisons.append(
        Comparison(
            Measure(
                "rules and stock evaluated after the last request",
                60 / evaluation,
                "per min",
                f"{evaluation:.1f} s",
            ),
            budget,
            target=1.0,
        )
    )
    table.notes.append(
        f"Evaluation: {evaluated.evaluated:,} order evaluations (stock and review), {oversold:,} oversold cases, "
        f"{rounds} parcel-rule sweeps; {due_left} orders and {parcels_due} parcels still due after it. The live "
        f"session's allocations cover {ALLOCATED_SHARE:.0%} of what it sold. Run "
        "after the last request, in one process: the worker, woken by each request, would have started during "
        "the load, so this is the worst case."
    )
    table.notes.append(f"Request statuses: {dict(result.statuses)}.")
    return table


# --- 2. the case list ------------------------------------------------------------------------------


def _case_list(context: BenchContext) -> Table:
    small, large = context.size(CASES_SMALL, minimum=500), context.size(CASES_LARGE, minimum=2_000)
    requests = max(5, round(REQUESTS * min(1.0, context.scale * 10)))
    store = _store("bench-api-cases")
    users = [
        get_user_model().objects.create_user(username=f"bench-api-agent-{i}", password=None) for i in range(5)
    ]
    for user in users:
        Membership.objects.create(user=user, store=store, role=Role.AGENT)
    _, secret = api_key_create(store=store, name="bench")
    now = timezone.now()
    times = {}
    for total in (small, large):
        _reset_and_build(context, store, users, total=total, now=now)
        times[total] = _measure(context, secret, total=total, requests=requests)

    table = Table(
        title=f"GET /api/v1/cases: {small:,} cases against {large:,} (in-process, {requests} requests each)"
    )
    budget = Measure("budget", 1000 / P95_BUDGET_MS, "req/s", f"{P95_BUDGET_MS:.0f} ms")
    for page in times[small]:
        p95_small, p95_large = _p(times[small][page], 95), _p(times[large][page], 95)
        small_rate = Measure(
            f"at {size_label(small)}", 1000 / p95_small, "req/s", f"1/p95, {p95_small:.1f} ms"
        )
        large_rate = Measure(
            f"{page} at {size_label(large)}", 1000 / p95_large, "req/s", f"1/p95, {p95_large:.1f} ms"
        )
        table.comparisons.append(Comparison(large_rate, small_rate, target=1 / RATIO_MAX))
        table.comparisons.append(Comparison(large_rate, budget, target=1.0))
        table.notes.append(
            f"{page}: p95 {p95_small:.1f} ms at {small:,}, {p95_large:.1f} ms at {large:,}; time ratio "
            f"{p95_large / p95_small:.2f} (target <= {RATIO_MAX})."
        )
    table.notes.append(
        "Rows: ratio = p95(small)/p95(large), target 0.67 means p95(large) <= 1.5 x p95(small)."
    )
    return table


def _measure(context: BenchContext, secret: str, *, total: int, requests: int) -> dict[str, list[float]]:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    half = Case.objects.order_by("pk").values_list("pk", flat=True)[total // 2]
    urls = {"first page": "/api/v1/cases", "deep cursor page": f"/api/v1/cases?after={cursor_for([half])}"}
    out: dict[str, list[float]] = {}
    with override_settings(ALLOWED_HOSTS=["testserver"], API_RATE_LIMIT=""):
        for name, url in urls.items():
            for _ in range(WARMUPS):
                _get(client, url)
            samples = []
            for _ in range(requests):
                t0 = time.perf_counter()
                _get(client, url)
                samples.append((time.perf_counter() - t0) * 1000)
            out[name] = samples
            context.log(
                f"  {name} at {total:,}: median {_p(samples, 50):.1f} ms, p95 {_p(samples, 95):.1f} ms"
            )
    return out


def _get(client: Client, url: str) -> None:
    response = client.get(url, secure=True)
    if response.status_code != 200 or len(response.json()["results"]) != 50:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:200]!r}")
