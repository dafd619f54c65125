"""The live war room's figures: one live session's orders, stock, dispatch and cases, as they stand now.

Every read is bounded by the session: its orders through the (live_session, placed_at) index, their lines,
parcels and cases through their order. The number of queries is fixed, whatever the number of orders: each
board is one aggregate query, grouped in the database, never a row per order brought into Python.

Units and stock follow cases.stock: an order of the session uses the session's quota of a SKU whether it has
shipped or not (cancelled orders aside), so a SKU is oversold the moment its units ordered pass its
allocation. A SKU the session allocated nothing of draws on the regular stock, and is short when its
unshipped units pass the stock available (on hand less allocated and reserved). A combo pack the session did
not allocate itself draws on its components.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncMinute
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from cases.choices import ORDER_LEVEL_TYPES, CaseStatus, CaseType
from cases.models import Case
from cases.reporting.models import LiveReview
from cases.workflow import MANAGER_ROLES
from portal.selectors import store_ids_with_roles, store_roles_for_user
from tracking.choices import OrderStatus
from tracking.models import SKU, LiveSession, LiveSessionAllocation, Order, OrderLine, Shipment, SKUComponent

LIVE_WINDOW = timedelta(minutes=60)  # while live, the orders board shows the last hour
MAX_POINTS = 240  # beyond this many minutes, the orders board groups several minutes into one point
PICKUP_HOURS = 24  # seed 002: a parcel should have its first carrier scan within 24 h of booking
UNSHIPPED = (OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD)
# Case types about a parcel on its way (every type raised about a shipment rather than an order).
LOGISTICS_TYPES = tuple(t for t in CaseType if t not in ORDER_LEVEL_TYPES and t != CaseType.QUALITY_BATCH)


# --- scoping -------------------------------------------------------------------------------------------


def live_sessions_for_manager(user: AbstractBaseUser | AnonymousUser) -> QuerySet[LiveSession]:
    """The live sessions of the stores the user supervises or administers, newest first, with the time their
    review was written (None: not yet)."""
    reviewed = LiveReview.objects.filter(live_session=OuterRef("pk")).values("written_at")[:1]
    return (
        LiveSession.objects.filter(store_id__in=store_ids_with_roles(user, MANAGER_ROLES))
        .select_related("store")
        .annotate(reviewed_at=Subquery(reviewed))
        .order_by("-started_at", "-pk")
    )


def live_session_get_for_manager(user: AbstractBaseUser | AnonymousUser, pk: int) -> LiveSession:
    """One live session of the user's stores, with its store. Http404 for another store's (it looks like one
    that does not exist); PermissionDenied for an agent of its store: the war room and the reviews are the
    supervisors' and admins'."""
    roles = store_roles_for_user(user)
    session = LiveSession.objects.select_related("store").filter(pk=pk, store_id__in=list(roles)).first()
    if session is None:
        raise Http404("No such live session.")
    if roles.get(session.store_id) not in MANAGER_ROLES:
        raise PermissionDenied(_("The war room and the post-live reviews are for supervisors and admins."))
    return session


def session_is_live(session: LiveSession, now: datetime) -> bool:
    return session.started_at <= now and (session.ended_at is None or session.ended_at > now)


# --- the boards ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinutePoint:
    at: datetime  # the start of the point's minute(s)
    orders: int
    cumulative: int


@dataclass(frozen=True)
class SkuBoard:
    sku_id: int
    code: str
    name: str
    allocation: int | None  # the session's quota; None: drawn from the regular stock
    units: int  # units ordered in the session (cancelled orders aside)
    unshipped: int  # of which not yet handed to a carrier
    on_hand: int | None  # None: the SKU's stock is not managed here
    available: int | None  # on hand less allocated and reserved
    over: int  # units past the allocation (or, without one, unshipped units past the stock available)

    @property
    def oversold(self) -> bool:
        return self.over > 0

    @property
    def used_percent(self) -> int | None:
        supply = self.allocation if self.allocation is not None else self.available
        if not supply or supply <= 0:
            return None
        return round(100 * (self.units if self.allocation is not None else self.unshipped) / supply)


@dataclass(frozen=True)
class Dispatch:
    orders: int  # not cancelled
    orders_booked: int  # with a parcel booked for pickup
    parcels: int
    scanned: int  # with the carrier's first scan
    scanned_in_time: int  # first scan within PICKUP_HOURS of booking (of placing, when never booked)
    waiting_over: int  # booked (or placed) PICKUP_HOURS ago or more, still no scan
    late_scanned: int  # first scan after the order's ship-by time
    late_unshipped: int  # orders past their ship-by time, not yet handed to a carrier

    @property
    def not_booked(self) -> int:
        return max(0, self.orders - self.orders_booked)


@dataclass(frozen=True)
class TypeCount:
    type: str
    label: str
    count: int
    open: int
    by_status: tuple[int, ...] = ()  # in CaseStatus order


@dataclass
class WarRoom:
    session: LiveSession
    now: datetime
    live: bool
    step_minutes: int  # minutes per point of the orders board
    points: list[MinutePoint]
    orders: int  # not cancelled
    cancelled: int
    amount: Decimal
    skus: list[SkuBoard]
    dispatch: Dispatch
    logistics: list[TypeCount]
    after_sales: list[TypeCount]
    statuses: list[tuple[str, str]] = field(default_factory=lambda: list(CaseStatus.choices))

    @property
    def oversold_skus(self) -> list[SkuBoard]:
        return [sku for sku in self.skus if sku.oversold]

    @property
    def units_over(self) -> int:
        return sum(sku.over for sku in self.skus)

    @property
    def oversold_cases(self) -> int:
        return next((row.count for row in self.after_sales if row.type == CaseType.OVERSOLD), 0)

    @property
    def logistics_total(self) -> int:
        return sum(row.count for row in self.logistics)

    @property
    def cases_open(self) -> int:
        return sum(row.open for row in self.after_sales)

    @property
    def peak(self) -> int:
        return max((point.orders for point in self.points), default=0)

    @property
    def logistics_rates(self) -> list[tuple[TypeCount, float | None]]:
        """Each logistics case type with its cases per 100 parcels of the session."""
        parcels = self.dispatch.parcels
        return [(row, round(100 * row.count / parcels, 1) if parcels else None) for row in self.logistics]

    @property
    def status_columns(self) -> str:
        """The after-sales table's status columns, for its chart (data-chart-y): after type and total."""
        return ",".join(str(2 + i) for i in range(len(self.statuses)))


def war_room(session: LiveSession, *, now: datetime | None = None) -> WarRoom:
    """Every board of the war room for one session (its `store` loaded). Eight queries, whatever its size."""
    now = now or timezone.now()
    live = session_is_live(session, now)
    totals = session_totals(session, now=now)
    step, points = _orders_per_minute(session, now=now, live=live)
    cases = case_counts(session)
    return WarRoom(
        session=session, now=now, live=live, step_minutes=step, points=points,
        orders=totals["orders"], cancelled=totals["cancelled"], amount=totals["amount"],
        skus=sku_boards(session), dispatch=dispatch_progress(session, now=now, orders=totals["orders"],
                                                             late_unshipped=totals["late_unshipped"]),
        logistics=[row for row in cases if row.type in LOGISTICS_TYPES], after_sales=cases,
    )  # fmt: skip


def session_orders(session: LiveSession) -> QuerySet[Order]:
    # The store too, although a session's orders are its store's: a wrong row can never leak into a board.
    return Order.objects.filter(live_session=session, store_id=session.store_id)


def session_totals(session: LiveSession, *, now: datetime) -> dict[str, Any]:
    """Orders (cancelled aside), cancelled, their amount, and those past ship-by not yet shipped. One query."""
    not_cancelled = ~Q(status=OrderStatus.CANCELLED)
    totals = session_orders(session).aggregate(
        orders=Count("pk", filter=not_cancelled),
        cancelled=Count("pk", filter=Q(status=OrderStatus.CANCELLED)),
        amount=Sum("amount", filter=not_cancelled),
        late_unshipped=Count("pk", filter=Q(status__in=UNSHIPPED, ship_by__lt=now)),
    )
    totals["amount"] = totals["amount"] or Decimal("0")
    return totals


def _orders_per_minute(session: LiveSession, *, now: datetime, live: bool) -> tuple[int, list[MinutePoint]]:
    """Orders placed per minute: the last hour while live, the whole session after it (every minute, those
    without an order too, so the line does not skip them)."""
    zone = session.store.tzinfo
    orders = session_orders(session).exclude(status=OrderStatus.CANCELLED)
    if live:
        start = max(session.started_at, now - LIVE_WINDOW)
        orders = orders.filter(placed_at__gte=start)
    else:
        start = session.started_at
    rows = list(
        orders.annotate(minute=TruncMinute("placed_at", tzinfo=zone))
        .values_list("minute")
        .annotate(n=Count("pk"))
        .order_by("minute")
    )
    first = _minute(start)
    end = now if live else (session.ended_at or now)
    if rows:
        first = min(first, _minute(rows[0][0]))
        end = max(end, rows[-1][0])
    minutes = max(1, int((_minute(end) - first).total_seconds() // 60) + 1)
    step = max(1, math.ceil(minutes / MAX_POINTS))
    buckets = [0] * math.ceil(minutes / step)
    for minute, n in rows:
        index = int((_minute(minute) - first).total_seconds() // 60) // step
        buckets[min(index, len(buckets) - 1)] += n
    points, running = [], 0
    for index, n in enumerate(buckets):
        running += n
        points.append(MinutePoint(at=first + timedelta(minutes=index * step), orders=n, cumulative=running))
    return step, points


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def sku_boards(session: LiveSession) -> list[SkuBoard]:
    """Per SKU the session sold or allocated: its quota, units ordered, stock and units over. Four queries."""
    lines = (
        OrderLine.objects.filter(
            order__live_session=session, order__store_id=session.store_id, sku__isnull=False
        )
        .exclude(order__status=OrderStatus.CANCELLED)
        .values_list("sku_id")
        .annotate(units=Sum("quantity"), unshipped=Sum("quantity", filter=Q(order__status__in=UNSHIPPED)))
        .order_by()
    )
    sold = {sku: (units, unshipped or 0) for sku, units, unshipped in lines}
    allocations = dict(
        LiveSessionAllocation.objects.filter(live_session=session).values_list("sku_id", "quantity")
    )
    recipes: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for combo, component, quantity in SKUComponent.objects.filter(combo_id__in=list(sold)).values_list(
        "combo_id", "component_id", "quantity"
    ):
        recipes[combo].append((component, quantity))

    units: dict[int, int] = defaultdict(int)
    unshipped: dict[int, int] = defaultdict(int)
    for sku, (n, waiting) in sold.items():
        if sku in allocations or sku not in recipes:
            units[sku] += n
            unshipped[sku] += waiting
        else:  # a pack the session did not allocate itself: its components' units
            for component, per_pack in recipes[sku]:
                units[component] += n * per_pack
                unshipped[component] += waiting * per_pack
    ids = set(units) | set(allocations)
    skus = {
        sku.pk: sku
        for sku in SKU.objects.filter(pk__in=ids, store_id=session.store_id).select_related("stock")
    }
    boards = []
    for pk, sku in skus.items():
        stock = getattr(sku, "stock", None)
        allocation = allocations.get(pk)
        on_hand = stock.on_hand if stock else None
        available = stock.available if stock else None
        if allocation is not None:
            over = max(0, units[pk] - allocation)
        elif available is not None:
            over = max(0, unshipped[pk] - max(0, available))
        else:
            over = 0
        boards.append(
            SkuBoard(
                sku_id=pk,
                code=sku.code,
                name=sku.name,
                allocation=allocation,
                units=units[pk],
                unshipped=unshipped[pk],
                on_hand=on_hand,
                available=available,
                over=over,
            )
        )
    return sorted(boards, key=lambda board: (-board.over, -board.units, board.code))


def session_parcels(session: LiveSession) -> QuerySet[Shipment]:
    return Shipment.objects.filter(order__live_session=session, store_id=session.store_id)


def dispatch_start() -> Coalesce:
    """When the clock to the first carrier scan starts: the pickup booking, else the order's placing."""
    return Coalesce("booked_at", "order__placed_at")


def dispatch_progress(session: LiveSession, *, now: datetime, orders: int, late_unshipped: int) -> Dispatch:
    """Booked, picked up within PICKUP_HOURS, late against ship-by. One query."""
    deadline = ExpressionWrapper(
        dispatch_start() + timedelta(hours=PICKUP_HOURS), output_field=DateTimeField()
    )
    figures = (
        session_parcels(session)
        .annotate(pickup_deadline=deadline)
        .aggregate(
            parcels=Count("pk"),
            orders_booked=Count("order_id", distinct=True, filter=Q(booked_at__isnull=False)),
            scanned=Count("pk", filter=Q(accepted_at__isnull=False)),
            scanned_in_time=Count("pk", filter=Q(accepted_at__lte=F("pickup_deadline"))),
            waiting_over=Count("pk", filter=Q(accepted_at__isnull=True, pickup_deadline__lte=now)),
            late_scanned=Count("pk", filter=Q(accepted_at__gt=F("order__ship_by"))),
        )
    )
    return Dispatch(orders=orders, late_unshipped=late_unshipped, **figures)


def case_counts(session: LiveSession) -> list[TypeCount]:
    """The session's cases by type, with their count in each status. One query."""
    rows = (
        Case.objects.filter(store_id=session.store_id, order__live_session=session)
        .values_list("type", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    statuses = list(CaseStatus.values)
    by_type: dict[str, list[int]] = {}
    for case_type, status, n in rows:
        counts = by_type.setdefault(case_type, [0] * len(statuses))
        if status in statuses:
            counts[statuses.index(status)] += n
    open_index = [statuses.index(s) for s in statuses if s not in (CaseStatus.RESOLVED, CaseStatus.CLOSED)]
    labels = dict(CaseType.choices)
    result = [
        TypeCount(
            type=case_type,
            label=str(labels.get(case_type, case_type)),
            count=sum(counts),
            open=sum(counts[i] for i in open_index),
            by_status=tuple(counts),
        )
        for case_type, counts in by_type.items()
    ]
    return sorted(result, key=lambda row: (-row.count, row.type))


def parcels_with_case() -> Exists:
    """A parcel some case is about (of any type): ParcelDay's `exceptional`, the same definition."""
    return Exists(Case.objects.filter(shipment=OuterRef("pk")))
