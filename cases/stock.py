"""The stock rules: orders beyond the stock that can serve them become `oversold` or `out_of_stock` cases.

How the stock figures are read (every number below rests on this):

- `StockLevel.on_hand` is what is physically in the warehouse. Shipping an order takes its units out, so
  only orders not yet shipped (awaiting shipment or on hold) still draw on it.
- `StockLevel.allocated` is the part of `on_hand` set aside for live sessions, and `reserved` the part set
  aside for approved swaps. Neither is free for anyone else: regular orders draw on
  `on_hand - allocated - reserved`, the SKU's available stock.
- `LiveSessionAllocation.quantity` is the session's quota, fixed when the live is set up: how many units the
  host may sell. Every order of the session that is not cancelled used it, shipped or not; shipped orders
  already have their units, so they come off the quota first and the unshipped orders share what remains.
  A session order for a SKU the session has no allocation for draws on the regular stock.
- A combo pack holds no stock of its own: a line of q packs draws q x component quantity of each component,
  unless the live session allocated the pack itself, in which case it draws packs from that allocation.
- A SKU without a StockLevel row is not stock-managed here: only live-session allocations are checked for it.

Each pool (one live session's allocation of one SKU, or one SKU's regular stock) serves its orders in the
order they were placed (placed_at, then id). The orders whose cumulative demand passes the pool's supply are
short: the latest orders are the oversold ones.

Oversold and out of stock are two names for one shortage, and an order has at most one of them open:
- short against a live-session allocation: `oversold` (the live sold past what was set aside);
- short against the regular stock while nothing at all is available (on_hand - allocated <= 0) and a restock
  ETA is known: `out_of_stock` (the item is gone and coming back; the path follows the ETA);
- any other shortage: `oversold`.
An order that already has an open case of either type keeps that one while it stays short (its facts are
refreshed), so an agent working it is never handed a second case for the same shortage. When stock covers
the order again (restock, bigger allocation, earlier orders cancelled) the open case clears.

A case's facts name the SKUs short, by how much, the restock ETA and the suggested path with its options;
they hold no figure that moves with every shipment, so re-evaluating after each stock movement refreshes a
case only when its shortage changed (`days_to_restock` moves once a day). A case opens when the shortage is
found (`now`), which starts its 24 h first-contact clock.

Once an agent has resolved an order's stock case (the buyer agreed to wait, took a swap ...), the rules
leave that order's shortage to the agent and raise nothing new for it; a case that cleared by itself does
not count, so a later shortage of the same order is raised again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_noop

from cases.choices import CaseType, Resolution
from cases.engine import SweepResult, findings_apply
from cases.models import OPEN_CASE, Case
from cases.policy import PolicyBook, Thresholds
from cases.rules import Finding
from cases.texts import Text
from portal.models import Store
from tracking.choices import OrderStatus
from tracking.models import SKU, LiveSessionAllocation, Order, OrderLine, SKUComponent, StockLevel

STOCK_TYPES = (CaseType.OVERSOLD, CaseType.OUT_OF_STOCK)
UNSHIPPED = (OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD)
FULFILLED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
SWAP_SUGGESTIONS = 3  # in-stock SKUs offered per short SKU, closest in price first

Pool = tuple[int | None, int]  # (live session id, or None for the regular stock; SKU id)
Recipes = Mapping[int, tuple[tuple[int, int], ...]]  # combo SKU id -> ((component SKU id, quantity), ...)


@dataclass(frozen=True)
class SkuInfo:
    code: str
    name: str
    unit_price: Decimal
    stock_managed: bool  # has a StockLevel row
    available: int  # on_hand - allocated - reserved
    restock_eta: date | None


@dataclass(frozen=True)
class Shortage:
    pool: Pool
    ordered: int  # units the order draws from the pool
    short: int  # of which the pool cannot serve
    allocation: int | None  # a live session's quota of the SKU; None for the regular stock


def stock_evaluate(
    *,
    store: Store,
    sku_ids: Collection[int] | None = None,
    live_session_ids: Collection[int] | None = None,
    now: datetime | None = None,
) -> SweepResult:
    """Make the store's oversold and out-of-stock cases match its stock now.

    Scope: the unshipped orders that draw on the given SKUs (a component's combos included) or belong to the
    given live sessions (both given: either), or every unshipped order of the store when neither is given;
    plus the orders in that scope that still have an open stock case (shipped or cancelled since), so those
    cases clear. Each order's verdict considers all of its lines, whatever the scope.

    Idempotent: a second run with the same data raises and changes nothing. Runs in one transaction holding
    the store's row lock, so two evaluations of one store take turns and each sees the other's cases. Reads
    take a fixed number of queries however many orders are evaluated; writes happen only for cases raised,
    refreshed or cleared, through the case services.
    """
    now = now or timezone.now()
    with transaction.atomic():
        store_lock(store)
        return _evaluate(store, sku_ids=sku_ids, live_session_ids=live_session_ids, now=now)


def store_lock(store: Store) -> None:
    """Serialize a store's stock and review evaluations (a no-op on SQLite, whose writers take turns anyway)."""
    list(Store.objects.select_for_update().filter(pk=store.pk).values_list("pk", flat=True))


def _evaluate(
    store: Store, *, sku_ids: Collection[int] | None, live_session_ids: Collection[int] | None, now: datetime
) -> SweepResult:
    thresholds = PolicyBook([store.pk]).for_store(store.pk)
    recipes = _recipes(store)
    candidates_qs = _candidates(store, sku_ids=sku_ids, live_session_ids=live_session_ids, recipes=recipes)
    orders = {order.pk: order for order in candidates_qs}
    result = SweepResult(evaluated=len(orders))
    if not orders:
        return result

    line_skus = set(
        OrderLine.objects.filter(order__in=candidates_qs.values("pk"), sku__isnull=False).values_list(
            "sku_id", flat=True
        )
    )
    skus = line_skus | {component for sku in line_skus for component, _ in recipes.get(sku, ())}
    skus |= {combo for combo, parts in recipes.items() if any(component in skus for component, _ in parts)}
    walk = _walk(store, skus=skus, recipes=recipes)
    info = _sku_info(skus, recipes)

    open_cases: dict[int, dict[str, Case]] = defaultdict(dict)
    for case in Case.objects.filter(OPEN_CASE, order__in=candidates_qs.values("pk"), type__in=STOCK_TYPES):
        open_cases[case.order_id][case.type] = case
    handled = set(
        Case.objects.filter(order__in=candidates_qs.values("pk"), type__in=STOCK_TYPES)
        .exclude(OPEN_CASE)
        .exclude(resolution=Resolution.CONDITION_CLEARED)
        .values_list("order_id", flat=True)
    )
    short_skus: dict[int, int] = {}
    for pk, order in orders.items():
        for shortage in walk.shortages.get(pk, ()) if order.status in UNSHIPPED else ():
            short_skus[shortage.pool[1]] = max(short_skus.get(shortage.pool[1], 0), shortage.short)
    swaps = _swap_stock(store, info, short_skus=short_skus, committed=walk.committed) if short_skus else {}
    today = timezone.localtime(now, store.tzinfo).date()

    for pk, order in orders.items():
        mine = open_cases.get(pk, {})
        findings: dict[CaseType, Finding] = {}
        order_shortages = walk.shortages.get(pk, []) if order.status in UNSHIPPED else []
        if order_shortages and (mine or pk not in handled):
            finding = _finding(
                order_shortages, open_types=mine.keys(), info=info, swaps=swaps, thresholds=thresholds,
                today=today, now=now,
            )  # fmt: skip
            findings[finding.type] = finding
        if findings or mine:
            findings_apply(
                order=order, shipment=None, evaluated=STOCK_TYPES, findings=findings, open_cases=mine,
                thresholds=thresholds, now=now, result=result,
            )  # fmt: skip
    return result


def _recipes(store: Store) -> dict[int, tuple[tuple[int, int], ...]]:
    recipes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    links = SKUComponent.objects.filter(combo__store=store).order_by("combo_id", "component_id")
    for combo, component, quantity in links.values_list("combo_id", "component_id", "quantity"):
        recipes[combo].append((component, quantity))
    return {combo: tuple(parts) for combo, parts in recipes.items()}


def _candidates(
    store: Store,
    *,
    sku_ids: Collection[int] | None,
    live_session_ids: Collection[int] | None,
    recipes: Recipes,
) -> QuerySet[Order]:
    scope = Q()
    if sku_ids is not None or live_session_ids is not None:
        scope = Q(pk__in=[])
        if sku_ids:
            touched = set(sku_ids) | {c for sku in sku_ids for c, _ in recipes.get(sku, ())}
            touched |= {combo for combo, parts in recipes.items() if any(c in touched for c, _ in parts)}
            scope |= Q(pk__in=OrderLine.objects.filter(sku_id__in=touched).values("order_id"))
        if live_session_ids:
            scope |= Q(live_session_id__in=live_session_ids)
    with_open_case = Case.objects.filter(OPEN_CASE, store=store, type__in=STOCK_TYPES).values("order_id")
    return Order.objects.filter(scope, store=store).filter(Q(status__in=UNSHIPPED) | Q(pk__in=with_open_case))


def _draws(
    *, sku: int, quantity: int, session: int | None, allocated: Collection[Pool], managed: Collection[int],
    recipes: Recipes,
) -> Iterable[tuple[Pool, int]]:  # fmt: skip
    """The pools one order line draws on, with the units it takes from each."""
    if session is not None and (session, sku) in allocated:
        yield (session, sku), quantity
        return
    for component, per_pack in recipes.get(sku, ((sku, 1),)):
        if session is not None and (session, component) in allocated:
            yield (session, component), quantity * per_pack
        elif component in managed:
            yield (None, component), quantity * per_pack


@dataclass
class Walk:
    shortages: dict[int, list[Shortage]]  # order id -> the pools it is short in
    committed: dict[int, int]  # SKU id -> units its unshipped regular orders take from the regular stock


def _walk(store: Store, *, skus: set[int], recipes: Recipes) -> Walk:
    """Walk every pool the given SKUs draw on, oldest order first; the orders past its supply are short."""
    lines = list(
        OrderLine.objects.filter(
            order__store=store, order__status__in=UNSHIPPED, sku_id__in=skus
        ).values_list("order_id", "order__placed_at", "order__live_session_id", "sku_id", "quantity")
    )
    sessions = {session for _, _, session, _, _ in lines if session is not None}
    allocations: dict[Pool, int] = {
        (session, sku): quantity
        for session, sku, quantity in LiveSessionAllocation.objects.filter(
            live_session_id__in=sessions, sku_id__in=skus
        ).values_list("live_session_id", "sku_id", "quantity")
    }
    stock: dict[int, int] = {
        sku: on_hand - allocated - reserved
        for sku, on_hand, allocated, reserved in StockLevel.objects.filter(sku_id__in=skus).values_list(
            "sku_id", "on_hand", "allocated", "reserved"
        )
    }
    supply: dict[Pool, int] = {pool: quantity for pool, quantity in allocations.items()}
    if allocations:
        fulfilled = (
            OrderLine.objects.filter(
                order__live_session_id__in={session for session, _ in allocations},
                order__status__in=FULFILLED,
                sku_id__in=skus,
            )
            .values_list("order__live_session_id", "sku_id")
            .annotate(units=Sum("quantity"))
        )
        for session, sku, units in fulfilled:
            for pool, taken in _draws(
                sku=sku, quantity=units, session=session, allocated=allocations, managed=(), recipes=recipes
            ):
                supply[pool] -= taken

    demand: dict[Pool, dict[tuple[datetime, int], int]] = defaultdict(lambda: defaultdict(int))
    for order, placed_at, session, sku, quantity in lines:
        for pool, units in _draws(
            sku=sku, quantity=quantity, session=session, allocated=allocations, managed=stock, recipes=recipes
        ):
            demand[pool][(placed_at, order)] += units

    walk = Walk(shortages=defaultdict(list), committed={})
    for pool, orders in demand.items():
        session, sku = pool
        have = max(0, supply[pool] if session is not None else stock[sku])
        running = 0
        for (_, order), units in sorted(orders.items()):
            running += units
            if running > have:
                quota = allocations.get(pool)
                walk.shortages[order].append(Shortage(pool, units, min(units, running - have), quota))
        if session is None:
            walk.committed[sku] = running
    return walk


def _sku_info(skus: set[int], recipes: Recipes) -> dict[int, SkuInfo]:
    rows = SKU.objects.filter(pk__in=skus).values_list(
        "pk",
        "code",
        "name",
        "unit_price",
        "stock__on_hand",
        "stock__allocated",
        "stock__reserved",
        "stock__restock_eta",
    )
    info = {
        pk: SkuInfo(
            code,
            name,
            unit_price,
            on_hand is not None,
            (on_hand or 0) - (allocated or 0) - (reserved or 0),
            eta,
        )
        for pk, code, name, unit_price, on_hand, allocated, reserved, eta in rows
    }
    for combo, parts in recipes.items():
        if combo in info and not info[combo].stock_managed:
            # A pack is back when its last component is.
            etas = [info[c].restock_eta if c in info else None for c, _ in parts]
            eta = None if None in etas else max(etas)
            info[combo] = SkuInfo(info[combo].code, info[combo].name, info[combo].unit_price, False, 0, eta)
    return info


def _swap_stock(
    store: Store, info: Mapping[int, SkuInfo], *, short_skus: Mapping[int, int], committed: Mapping[int, int]
) -> dict[int, list[dict[str, Any]]]:
    """For each short SKU, the in-stock SKUs of the store an agent could offer instead, closest in price.

    A swap must have regular stock free (available, less what its own unshipped orders already take, when
    they were walked) for the most an order is short; a short SKU is never offered as a swap.
    """
    in_stock = (
        StockLevel.objects.filter(sku__store=store, sku__is_combo=False)
        .annotate(free=F("on_hand") - F("allocated") - F("reserved"))
        .filter(free__gt=0)
        .values_list("sku_id", "sku__code", "sku__name", "sku__unit_price", "free")
    )
    free_stock = [
        (sku, code, name, price, free - committed.get(sku, 0))
        for sku, code, name, price, free in in_stock
        if sku not in short_skus
    ]
    swaps: dict[int, list[dict[str, Any]]] = {}
    for sku, needed in short_skus.items():
        price = info[sku].unit_price
        ranked = sorted(
            (abs(unit_price - price), code, other, name, free)
            for other, code, name, unit_price, free in free_stock
            if free >= needed
        )
        swaps[sku] = [
            {"sku_id": other, "sku_code": code, "sku_name": name}
            for _, code, other, name, _ in ranked[:SWAP_SUGGESTIONS]
        ]
    return swaps


def _finding(
    shortages: list[Shortage],
    *,
    open_types: Collection[str],
    info: Mapping[int, SkuInfo],
    swaps: Mapping[int, list[dict[str, Any]]],
    thresholds: Thresholds,
    today: date,
    now: datetime,
) -> Finding:
    shortages = sorted(shortages, key=lambda s: (info[s.pool[1]].code, s.pool[0] or 0))
    etas = [info[s.pool[1]].restock_eta for s in shortages]
    eta = None if None in etas else max(etas)  # the order can ship when its last short SKU is back
    days = max(0, (eta - today).days) if eta else None
    nothing_left = all(s.pool[0] is None and info[s.pool[1]].available <= 0 for s in shortages)
    if CaseType.OVERSOLD in open_types:
        type = CaseType.OVERSOLD
    elif CaseType.OUT_OF_STOCK in open_types or (nothing_left and eta is not None):
        type = CaseType.OUT_OF_STOCK
    else:
        type = CaseType.OVERSOLD
    swap_for = {info[s.pool[1]].code: swaps.get(s.pool[1], []) for s in shortages}
    can_swap = all(swap_for.values())
    if type == CaseType.OVERSOLD:
        path, refund = _oversold_path(days, can_swap=can_swap, thresholds=thresholds), "refund_coupon"
    else:
        path, refund = _out_of_stock_path(days, thresholds=thresholds), "refund"

    skus_short = [
        {
            "sku_id": s.pool[1],
            "sku_code": info[s.pool[1]].code,
            "sku_name": info[s.pool[1]].name,
            "units_ordered": s.ordered,
            "units_short": s.short,
            "source": "live_session" if s.pool[0] is not None else "stock",
            "live_session_id": s.pool[0],
            "allocation": s.allocation,
            "restock_eta": _iso(info[s.pool[1]].restock_eta),
        }
        for s in shortages
    ]
    facts: dict[str, Any] = {
        "skus_short": skus_short,
        "units_short": sum(s.short for s in shortages),
        "restock_eta": _iso(eta),
        "days_to_restock": days,
        "suggested_path": path,
        "options": [
            {"key": "A", "path": "wait", "available": eta is not None, "until": _iso(eta)},
            {"key": "B", "path": "swap", "available": can_swap, "swap_for": swap_for},
            {"key": "C", "path": refund, "available": True},
        ],
    }
    short = ", ".join(f"{s['units_short']} x {s['sku_code']}" for s in skus_short)
    if type == CaseType.OUT_OF_STOCK and eta:
        summary = Text(
            gettext_noop("Out of stock: %(short)s short; restock expected %(date)s, in %(days)s days."),
            short=short, date=eta.isoformat(), days=days,
        )  # fmt: skip
    elif type == CaseType.OUT_OF_STOCK:
        summary = Text(gettext_noop("Out of stock: %(short)s short; no restock date."), short=short)
    elif any(s.pool[0] is not None for s in shortages):
        summary = Text(
            gettext_noop("Oversold: %(short)s short, sold past the live-session allocation."), short=short
        )
    else:
        summary = Text(gettext_noop("Oversold: %(short)s short, sold past the stock."), short=short)
    return Finding(type=type, since=now, summary=summary, facts=facts)


def _oversold_path(days: int | None, *, can_swap: bool, thresholds: Thresholds) -> str:
    """Wait when the restock is close, refund plus coupon when it is far; in between or with no date, a swap
    when there is something to swap to."""
    if days is not None and days <= thresholds.restock_wait_days:
        return "wait"
    if days is not None and days > thresholds.refund_push_days:
        return "refund_coupon"
    if can_swap:
        return "swap"
    return "wait" if days is not None else "refund_coupon"


def _out_of_stock_path(days: int | None, *, thresholds: Thresholds) -> str:
    """Offer to wait for a close restock; steer to a refund before a far one triggers auto-compensation."""
    if days is None or days > thresholds.refund_push_days:
        return "refund"
    if days <= thresholds.restock_wait_days:
        return "wait"
    return "agent_choice"  # the agent offers waiting or a swap


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
