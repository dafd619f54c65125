"""Store health: the platforms' penalty metrics for one store, as they stand today and as projected from the
orders still to ship, the day the rolling rate would cross the penalty level, and the save list.

The formulas (each the platform's own, over its own window):

- TikTok Shop, Late Dispatch Rate (LDR) = orders dispatched after the dispatch SLA / orders dispatched, in the
  evaluation window (7 days, rolling). "Dispatched" is the carrier's scan that moves the order to In Transit.
  Recommended at most 4 %; enforcement may apply above 10 %. Worked example: 25 late out of 200 dispatched =
  12.5 %. https://seller-us.tiktok.com/university/essay?knowledge_id=3668989549299511 (the version of
  2026-03-02; the one of 2026-01-09 still called 4 % the requirement and the enforcement level: the two
  versions conflict, the newer one is the default here).
- Shopee, Late Shipment Rate (LSR) = orders shipped late / orders shipped, past 7 days; late = shipped after
  the ship-by date (Days to Ship). https://edu.bullmart.com/selling-and-billing-seller-performance-inner/
  (a copy of Shopee's seller FAQ). "Shipped" means at least one courier scan, and the penalty level in Malaysia
  went from 5 % to 10 % on 2024-06-17: https://lehleo.com/attention-shopee-to-adjust-merchant-shipping-policies-as-of-june-17th/.
  Sources conflict on the level: a 2024-01-15 announcement set 20 % for all markets
  (http://sellerby.com/p/1.html), and Singapore lowered it from 10 % to 5 % on 2026-03-10
  (https://59hwq.com/circle/5121.html). The default here is 10 %; a store sets its market's level.
  Worked example (secondary source): 5 late out of 20 shipped = 25 %, https://www.sellerby.com/p/3466.html.
- Shopee, Non-Fulfilment Rate (NFR) = orders cancelled by the seller or by the system for the seller's fault,
  or returned / refunded for the seller's fault / total orders, past 7 days; a penalty point above 10 %, one
  more for many non-fulfilled orders. Worked example: 40 of 250 = 16 %, above the 10 % target.
  https://www.shopeefunnel.online/2023/06/apakah-non-fulfilment-rate-nfr.html (Shopee Malaysia's article,
  reproduced) and http://sellerby.com/p/392.html (since 2024-01-29: non-fulfilled / (non-fulfilled + net
  orders), which is the same total). No official Shopee help page was reachable; these are copies and news.

Our approximations (said on the page too):

- dispatched / shipped = the parcel's first carrier scan (`Shipment.accepted_at`), late = that scan after the
  order's ship-by time (`Order.ship_by`); counted per parcel by the store-local day of the scan (`DispatchDay`),
  so an order split into two parcels counts twice (the platforms count orders);
- non-fulfilment = orders placed in the window that are now cancelled (our "cancelled" includes fully
  refunded) / orders placed in the window (`OrderDay`). Buyer cancellations count too (we cannot tell fault),
  returns and partial refunds of delivered orders do not, and a cancellation counts on the day the order was
  placed, not the day it was cancelled. Not projected: a cancellation cannot be foreseen;
- the window is the last N store-local days including today so far; the platforms may use completed days and
  publish daily (TikTok) or every Monday (Shopee).

Reading a page sums rollup rows and reads the store's unshipped orders through `order_unshipped_ship_by_idx`
(an index range scan); it never scans the raw cases or tracking events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cases.models import OPEN_CASE, Case
from cases.reporting.models import DispatchDay, HealthMetric, HealthThreshold, OrderDay
from cases.workflow import MANAGER_ROLES
from portal.choices import Platform, Role
from portal.models import Store
from portal.selectors import store_ids_with_roles, store_roles_for_user, user_is_store_admin
from tracking.choices import OrderStatus
from tracking.models import Order, Shipment

UNSHIPPED = (OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD)

# The metrics each platform penalises; a store on another platform has none (its save list still helps).
PLATFORM_METRICS: dict[str, tuple[str, ...]] = {
    Platform.TIKTOK_SHOP: (HealthMetric.LATE_DISPATCH,),
    Platform.SHOPEE: (HealthMetric.LATE_SHIPMENT, HealthMetric.NON_FULFILMENT),
}
DISPATCH_METRICS = frozenset({HealthMetric.LATE_DISPATCH, HealthMetric.LATE_SHIPMENT})

# The pessimistic scenario: the orders due within this many hours miss their ship-by.
SLIP = timedelta(hours=24)
SAVE_HOURS = (6, 12, 24, 48, 72)
SAVE_HOURS_DEFAULT = 24
SAVE_PAGE_SIZE = 50
MAX_WINDOW_DAYS = 90

OK, WARNING, BREACH, UNKNOWN = "ok", "warning", "breach", "unknown"
_SEVERITY = {UNKNOWN: 0, OK: 1, WARNING: 2, BREACH: 3}
STATUS_LABELS = {
    OK: gettext_lazy("OK"),  # at or under the recommended level, and no breach projected
    WARNING: gettext_lazy("Warning"),  # above the recommended level, or a breach projected
    BREACH: gettext_lazy("Above the penalty level"),  # now
    UNKNOWN: gettext_lazy("No threshold"),  # no level known for the metric
}


# ------------------------------------------------------------------------------------------- formulas


def percent(part: int, whole: int) -> Decimal | None:
    """part / whole in percent, two decimals (None when there is nothing to divide by)."""
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def above(part: int, whole: int, level: Decimal) -> bool:
    """Whether part / whole is strictly above `level` percent, exactly (no rounding): the platforms penalise
    a rate *greater than* their level."""
    return whole > 0 and Decimal(part) * 100 > level * whole


def late_dispatch_rate(late: int, dispatched: int) -> Decimal | None:
    """TikTok Shop: orders dispatched (first carrier scan) after the dispatch SLA / orders dispatched, in the
    evaluation window. Worked example of the help page: 25 / 200 = 12.5 %.
    https://seller-us.tiktok.com/university/essay?knowledge_id=3668989549299511"""
    return percent(late, dispatched)


def late_shipment_rate(late: int, shipped: int) -> Decimal | None:
    """Shopee: orders shipped after their ship-by date / orders shipped, past 7 days (example: 5 / 20 = 25 %,
    https://www.sellerby.com/p/3466.html; definition: https://edu.bullmart.com/selling-and-billing-seller-performance-inner/)."""
    return percent(late, shipped)


def non_fulfilment_rate(non_fulfilled: int, orders: int) -> Decimal | None:
    """Shopee: orders cancelled or returned for the seller's fault / total orders, past 7 days (example:
    40 / 250 = 16 %, https://www.shopeefunnel.online/2023/06/apakah-non-fulfilment-rate-nfr.html)."""
    return percent(non_fulfilled, orders)


FORMULAS = {
    HealthMetric.LATE_DISPATCH: late_dispatch_rate,
    HealthMetric.LATE_SHIPMENT: late_shipment_rate,
    HealthMetric.NON_FULFILMENT: non_fulfilment_rate,
}


# ----------------------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Threshold:
    metric: str
    window_days: int
    recommended: Decimal | None
    penalty: Decimal
    source: str
    own: bool  # the store's own level (else the platform's default)


@dataclass(frozen=True)
class Levels:
    """A store's own levels for one metric, as an admin sets them."""

    window_days: int
    recommended: Decimal | None
    penalty: Decimal

    def check(self) -> None:
        if not 1 <= self.window_days <= MAX_WINDOW_DAYS:
            raise ValidationError(_("The window is 1 to %(max)d days."), params={"max": MAX_WINDOW_DAYS})
        if not Decimal(0) < self.penalty <= Decimal(100):
            raise ValidationError(_("The penalty level is above 0 and at most 100."))
        if self.recommended is not None and not Decimal(0) <= self.recommended <= self.penalty:
            raise ValidationError(_("The recommended level is between 0 and the penalty level."))


def _as_threshold(row: HealthThreshold) -> Threshold:
    return Threshold(
        metric=row.metric, window_days=row.window_days, recommended=row.recommended_percent,
        penalty=row.penalty_percent, source=row.source, own=row.store_id is not None,
    )  # fmt: skip


def threshold_rows(store: Store) -> dict[str, tuple[HealthThreshold | None, HealthThreshold | None]]:
    """Per metric of the store's platform: (the platform's default row, the store's own row). One query."""
    metrics = PLATFORM_METRICS.get(store.platform, ())
    found: dict[str, list[HealthThreshold | None]] = {metric: [None, None] for metric in metrics}
    if metrics:
        for row in HealthThreshold.objects.filter(
            Q(store__isnull=True) | Q(store=store), platform=store.platform, metric__in=metrics
        ):
            found[row.metric][0 if row.store_id is None else 1] = row
    return {metric: (pair[0], pair[1]) for metric, pair in found.items()}


def thresholds_for_store(store: Store) -> dict[str, Threshold | None]:
    """The levels that apply to the store: its own where set, else the platform's default (None: neither)."""
    return {
        metric: _as_threshold(own or default) if (own or default) else None
        for metric, (default, own) in threshold_rows(store).items()
    }


def thresholds_set(*, store: Store, actor: AbstractBaseUser, levels: Mapping[str, Levels | None]) -> None:
    """Set the store's own levels, metric by metric (None: back to the platform's default). Store admins only
    (PermissionDenied). All or nothing: every level is checked first, then written in one transaction."""
    if not user_is_store_admin(actor, store):
        raise PermissionDenied(_("Only the store's admins set its health thresholds."))
    allowed = PLATFORM_METRICS.get(store.platform, ())
    for metric, level in levels.items():
        if metric not in allowed:
            raise ValidationError(
                _("%(metric)s is not a metric of this platform."), params={"metric": metric}
            )
        if level is not None:
            level.check()
    with transaction.atomic():
        for metric, level in levels.items():
            mine = HealthThreshold.objects.filter(store=store, platform=store.platform, metric=metric)
            if level is None:
                mine.delete()
                continue
            HealthThreshold.objects.update_or_create(
                store=store, platform=store.platform, metric=metric,
                defaults={"window_days": level.window_days, "recommended_percent": level.recommended,
                          "penalty_percent": level.penalty},
            )  # fmt: skip


# -------------------------------------------------------------------------------------------- scoping


def health_stores_for_user(user: AbstractBaseUser | AnonymousUser) -> list[Store]:
    """The stores whose health the user may see: those they supervise or administer (agents: none)."""
    return list(
        Store.objects.filter(pk__in=store_ids_with_roles(user, MANAGER_ROLES)).order_by("name", "code")
    )


def health_store_get_for_user(user: AbstractBaseUser | AnonymousUser, code: str) -> Store:
    """The store with this code if the user supervises or administers it; Http404 otherwise (another store,
    or one where they are only an agent, looks like a store that does not exist)."""
    store = Store.objects.filter(pk__in=store_ids_with_roles(user, MANAGER_ROLES), code=code).first()
    if store is None:
        raise Http404("No such store.")
    return store


def user_edits_thresholds(user: AbstractBaseUser | AnonymousUser, store: Store) -> bool:
    return store_roles_for_user(user).get(store.pk) == Role.ADMIN


# ---------------------------------------------------------------------------------- orders still to ship


def pending_orders(store: Store) -> QuerySet[Order]:
    """The store's orders still to ship: awaiting shipment or on hold, and no parcel of theirs scanned by a
    carrier yet (a first scan may arrive before the storefront says "shipped": it is then already counted as
    dispatched). Read through `order_unshipped_ship_by_idx`."""
    scanned = Shipment.objects.filter(order=OuterRef("pk"), accepted_at__isnull=False)
    return Order.objects.filter(store=store, status__in=UNSHIPPED).filter(~Exists(scanned))


@dataclass(frozen=True)
class PendingDay:
    day: date  # the store-local day of the orders' ship-by time
    orders: int
    overdue: int  # ship-by already passed: late whenever they ship
    due_soon: int  # ship-by within SLIP from now


def pending_days(store: Store, *, now: datetime) -> QuerySet:
    """The orders still to ship grouped by the store-local day of their ship-by (`d`): how many (`n`), how
    many past it (`overdue`), how many due within SLIP (`soon`)."""
    return (
        pending_orders(store)
        .annotate(d=TruncDate("ship_by", tzinfo=store.tzinfo))
        .values("d")
        .annotate(
            n=Count("pk"),
            overdue=Count("pk", filter=Q(ship_by__lt=now)),
            soon=Count("pk", filter=Q(ship_by__gte=now, ship_by__lt=now + SLIP)),
        )
        .order_by("d")
    )


def pending_by_day(store: Store, *, now: datetime) -> list[PendingDay]:
    """The orders still to ship, counted by the day of their ship-by time. One grouped query."""
    return [PendingDay(r["d"], r["n"], r["overdue"], r["soon"]) for r in pending_days(store, now=now)]


# --------------------------------------------------------------------------------------------- projection

Counts = Mapping[date, tuple[int, int]]  # day -> (total, late)


@dataclass(frozen=True)
class Projection:
    on: date  # the day the projected rate is for: once the pending orders counted have shipped
    late: int
    total: int
    breach_on: date | None  # the first day from today on whose rolling rate is above the penalty level

    @property
    def rate(self) -> Decimal | None:
        return percent(self.late, self.total)


def rolling(counts: Iterable[Counts], *, first: date, last: date) -> tuple[int, int]:
    """(late, total) over the days first..last of each of `counts`."""
    late = total = 0
    for by_day in counts:
        for day, (t, n) in by_day.items():
            if first <= day <= last:
                total += t
                late += n
    return late, total


def project(
    history: Counts, added: Counts, *, today: date, until: date, window_days: int, penalty: Decimal
) -> Projection:
    """Walk the rolling window day by day from today to `until`, with the dispatches already counted
    (`history`) and the pending orders placed on the days they are expected to ship (`added`); the rate on
    `until`, and the first day above `penalty`. Orders not placed yet are not in it."""
    breach_on = None
    late = total = 0
    for offset in range((until - today).days + 1):
        day = today + timedelta(days=offset)
        late, total = rolling((history, added), first=day - timedelta(days=window_days - 1), last=day)
        if breach_on is None and above(late, total, penalty):
            breach_on = day
    return Projection(on=until, late=late, total=total, breach_on=breach_on)


def scenarios(
    pending: Iterable[PendingDay], *, today: date, window_days: int
) -> tuple[dict[date, tuple[int, int]], dict[date, tuple[int, int]], date, int, int]:
    """The pending orders as projected dispatches, each on the day of its ship-by (today if that has passed),
    under two scenarios: "on time" (only the overdue ones are late: they are late whenever they ship) and
    "slip" (the ones due within SLIP are late too). Orders more than a window past their ship-by are left
    out (the platform has most likely cancelled them; their status here is stale), and so are orders due after
    the window ahead. Returns (on time, slip, the last day counted, stale orders, later orders)."""
    on_time: dict[date, tuple[int, int]] = {}
    slip: dict[date, tuple[int, int]] = {}
    stale_before = today - timedelta(days=window_days)
    cap = today + timedelta(days=window_days - 1)
    until = today
    stale = later = 0
    for p in pending:
        if p.day < stale_before:
            stale += p.orders
            continue
        if p.day > cap:
            later += p.orders
            continue
        day = max(p.day, today)
        until = max(until, day)
        t, n = on_time.get(day, (0, 0))
        on_time[day] = (t + p.orders, n + p.overdue)
        t, n = slip.get(day, (0, 0))
        slip[day] = (t + p.orders, n + p.overdue + p.due_soon)
    return on_time, slip, until, stale, later


# ------------------------------------------------------------------------------------------- the figures


@dataclass
class MetricHealth:
    metric: str
    threshold: Threshold | None
    first: date  # the window: first..last, store-local days
    last: date
    late: int  # late / non-fulfilled
    total: int  # dispatched / orders
    on_time: Projection | None = None  # dispatch metrics only
    slip: Projection | None = None
    status: str = UNKNOWN

    @property
    def label(self) -> str:
        return HealthMetric(self.metric).label

    @property
    def rate(self) -> Decimal | None:
        return FORMULAS[self.metric](self.late, self.total)

    @property
    def projected(self) -> bool:
        return self.on_time is not None

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


@dataclass
class StoreHealth:
    store: Store
    now: datetime
    today: date
    metrics: list[MetricHealth] = field(default_factory=list)
    window_days: int = 7  # the widest window of its metrics: how far back and ahead pending orders count
    overdue: int = 0  # orders still to ship past their ship-by (within a window)
    due_soon: int = 0  # due within SLIP
    pending: int = 0  # every order still to ship counted in the projection
    stale: int = 0  # more than a window past their ship-by: left out
    later: int = 0  # due after the window ahead: left out

    @property
    def status(self) -> str:
        return max((m.status for m in self.metrics), key=_SEVERITY.__getitem__, default=UNKNOWN)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def until(self) -> date:
        """The last day the projection reaches (the same for every metric of the widest window)."""
        return max((m.on_time.on for m in self.metrics if m.on_time), default=self.today)


def _status(metric: MetricHealth) -> str:
    t = metric.threshold
    if t is None:
        return UNKNOWN
    if above(metric.late, metric.total, t.penalty):
        return BREACH
    projected_breach = any(p is not None and p.breach_on is not None for p in (metric.on_time, metric.slip))
    if projected_breach or (t.recommended is not None and above(metric.late, metric.total, t.recommended)):
        return WARNING
    return OK


def store_today(store: Store, now: datetime) -> date:
    return timezone.localtime(now, store.tzinfo).date()


def store_health(store: Store, *, now: datetime | None = None) -> StoreHealth:
    """Every metric of the store's platform, now and projected. Queries: the thresholds, the dispatch rollups
    (if a dispatch metric), the order rollups (if non-fulfilment), the pending orders grouped by day."""
    now = now or timezone.now()
    today = store_today(store, now)
    health = StoreHealth(store=store, now=now, today=today)
    thresholds = thresholds_for_store(store)
    pending = pending_by_day(store, now=now)
    health.window_days = max((_window(t) for t in thresholds.values()), default=7)
    health.stale, health.later = scenarios(pending, today=today, window_days=health.window_days)[3:]
    counted = [
        p for p in pending
        if today - timedelta(days=health.window_days) <= p.day < today + timedelta(days=health.window_days)
    ]  # fmt: skip
    health.overdue = sum(p.overdue for p in counted)
    health.due_soon = sum(p.due_soon for p in counted)
    health.pending = sum(p.orders for p in counted)

    dispatch = [m for m in thresholds if m in DISPATCH_METRICS]
    history: dict[date, tuple[int, int]] = {}
    if dispatch:
        since = today - timedelta(days=max(_window(thresholds[m]) for m in dispatch) - 1)
        for r in (
            DispatchDay.objects.filter(store=store, day__gte=since, day__lte=today)
            .values("day")
            .annotate(n=Sum("dispatched"), late=Sum("late"))
            .order_by()
        ):
            history[r["day"]] = (r["n"], r["late"])
    for metric, threshold in thresholds.items():
        window = _window(threshold)
        first = today - timedelta(days=window - 1)
        if metric in DISPATCH_METRICS:
            late, total = rolling((history,), first=first, last=today)
            m = MetricHealth(
                metric=metric, threshold=threshold, first=first, last=today, late=late, total=total
            )
            on_time, slip, until = scenarios(pending, today=today, window_days=window)[:3]
            penalty = threshold.penalty if threshold else Decimal(100)  # no level: no breach to date
            m.on_time = project(
                history, on_time, today=today, until=until, window_days=window, penalty=penalty
            )
            m.slip = project(history, slip, today=today, until=until, window_days=window, penalty=penalty)
        else:
            found = OrderDay.objects.filter(store=store, day__gte=first, day__lte=today).aggregate(
                orders=Sum("orders"), cancelled=Sum("cancelled")
            )
            m = MetricHealth(
                metric=metric, threshold=threshold, first=first, last=today,
                late=found["cancelled"] or 0, total=found["orders"] or 0,
            )  # fmt: skip
        m.status = _status(m)
        health.metrics.append(m)
    return health


def _window(threshold: Threshold | None) -> int:
    return threshold.window_days if threshold else 7


# ---------------------------------------------------------------------------------------- the save list


def save_list(
    store: Store, *, now: datetime, hours: int, late: bool = False, stale_days: int = 7
) -> QuerySet[Order]:
    """The orders that will be late unless they ship within `hours` (ship-by from now to now + hours), by
    deadline; with `late`, those already past their ship-by (back to the start of the day `stale_days` ago). With their parcels and
    their open cases (`open_cases`), in three queries whatever their number."""
    orders = pending_orders(store)
    if late:
        first_day = store_today(store, now) - timedelta(days=stale_days)  # as the projection's `stale` count
        since = datetime.combine(first_day, time.min, tzinfo=store.tzinfo)
        orders = orders.filter(ship_by__gte=since, ship_by__lt=now)
    else:
        orders = orders.filter(ship_by__gte=now, ship_by__lt=now + timedelta(hours=hours))
    return orders.order_by("ship_by", "pk").prefetch_related(
        Prefetch("shipments", queryset=Shipment.objects.order_by("pk")),
        Prefetch("cases", queryset=Case.objects.filter(OPEN_CASE).order_by("pk"), to_attr="open_cases"),
    )
