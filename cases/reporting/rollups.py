"""Keeping the report rollups (cases.reporting.models) equal to the raw tables, a store-day at a time.

The unit of work is a store's local day and a scope (`RollupScope`: parcels, cases, money, orders, first
scans). `store_day_rebuild` deletes that day's rows from the scope's tables and writes them again from grouped
queries over the raw rows of that day alone (index range scans: parcels by the day they shipped, cases by the
day they were opened, orders by the day placed, first scans by their day, money by the day it moved), in one
transaction. Because a day is always rebuilt whole, a rollup row is by construction what a from-scratch
computation gives; what must be right is *which* days and scopes to rebuild.

Which days: `rollups_refresh` (the worker, every minute) looks, per store, for the rows changed since its
watermark (cases, orders, parcels, compensations, claims and appeals by their `updated_at`/`created_at`
indexes), less OVERLAP so that a transaction that committed late is seen by the next run, and marks the days
and scopes they touch in `RollupDirty` (an order whose status changed: its OrderDay only); the rule sweeper
marks the first-scan days of the parcels it evaluates (scans arrive with tracking events, which have no
change index). Then it rebuilds the marked days, each only in its marked scopes. A day marked again
while it is being rebuilt keeps its mark (the mark's time moved on) and is rebuilt by the next run.

Nothing here runs in a request or in the ingest path: the cost of the reports is paid by the worker, once a
minute, per changed store-day. `rollups_rebuild` (and `manage.py rebuild_rollups`) recomputes everything.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import (
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, NullIf, TruncDate
from django.utils import timezone

from cases.choices import (
    AppealDecision,
    CaseEventKind,
    ClaimStatus,
    CompensationStatus,
)
from cases.models import OPEN_CASE, Appeal, Case, CaseEvent, Claim, Compensation, Complaint
from cases.reporting.models import (
    BUCKETS,
    DURATION_BOUNDS,
    ROLLUP_MODELS,
    AgentDay,
    CaseDay,
    DispatchDay,
    MoneyDay,
    MoneyMeasure,
    OrderDay,
    ParcelDay,
    RollupDirty,
    RollupScope,
    RollupState,
    SkuDay,
)
from portal.db import skip_locked
from portal.models import Store
from tracking.choices import OrderStatus
from tracking.models import Order, OrderLine, Shipment

log = logging.getLogger(__name__)

# How far back each run looks again: a change committed up to this long after it was stamped is still seen.
OVERLAP = timedelta(minutes=10)
# Store-days rebuilt per store per run at most (the rest wait for the next minute, oldest mark first).
DAYS_PER_RUN = 200


@dataclass
class RefreshResult:
    stores: int = 0
    marked: int = 0
    rebuilt: int = 0


# ---------------------------------------------------------------------------------------------- the day


def day_bounds(store: Store, day: date) -> tuple[datetime, datetime]:
    """The store-local day as an aware [start, end) interval (23 or 25 hours long across a DST change)."""
    tz = store.tzinfo
    return datetime.combine(day, time.min, tzinfo=tz), datetime.combine(
        day + timedelta(days=1), time.min, tzinfo=tz
    )


def local_day(store: Store, moment: datetime) -> date:
    return timezone.localtime(moment, store.tzinfo).date()


def _destination(prefix: str = "") -> Coalesce:
    """Where a parcel goes, for routes: the order's province or state, else its city (city states)."""
    return Coalesce(NullIf(F(f"{prefix}province"), Value("")), F(f"{prefix}city"), Value(""))


def _histogram(prefix: str, since: str, until: str, where: Q) -> dict[str, Count]:
    """Per bucket of DURATION_BOUNDS, a count of the rows where `until` - `since` falls in it."""
    aggregates = {}
    lower = None
    for i in range(BUCKETS):
        q = where
        if lower is not None:
            q &= Q(**{f"{until}__gte": F(since) + timedelta(minutes=lower)})
        if i < len(DURATION_BOUNDS):
            q &= Q(**{f"{until}__lt": F(since) + timedelta(minutes=DURATION_BOUNDS[i])})
            lower = DURATION_BOUNDS[i]
        aggregates[f"{prefix}_{i}"] = Count("pk", filter=q)
    return aggregates


# ------------------------------------------------------------------------------------------ the rebuild


def shipped_on(queryset: QuerySet[Shipment], start: datetime, end: datetime) -> QuerySet[Shipment]:
    """Parcels shipped in [start, end): booked then, or first known then if never booked. The expression is
    the one `shipment_ship_day_idx` indexes."""
    return queryset.annotate(shipped=Coalesce("booked_at", "created_at")).filter(
        shipped__gte=start, shipped__lt=end
    )


def _parcel_rows(store: Store, day: date, start: datetime, end: datetime) -> list:
    shipments = shipped_on(Shipment.objects.filter(store=store), start, end).annotate(
        has_case=Exists(Case.objects.filter(shipment=OuterRef("pk"))),
        destination=_destination("order__"),
        session=F("order__live_session_id"),
    )
    rows: list = []
    for r in shipments.values("carrier", "destination", "session").annotate(
        n=Count("pk"), exceptional=Count("pk", filter=Q(has_case=True))
    ):
        rows.append(ParcelDay(
            store=store, day=day, carrier=r["carrier"], destination=r["destination"],
            live_session_id=r["session"], case_type="", parcels=r["n"], exceptional=r["exceptional"],
        ))  # fmt: skip
    # From the day's parcels to their cases (through the cases' shipment index), never the other way round:
    # a semi-join from the cases side read the whole cases table for every store-day.
    with_cases = shipments.filter(cases__isnull=False)
    for r in with_cases.values("carrier", "destination", "session", "cases__type").annotate(
        n=Count("pk", distinct=True)
    ):
        rows.append(ParcelDay(
            store=store, day=day, carrier=r["carrier"], destination=r["destination"], live_session_id=r["session"],
            case_type=r["cases__type"], parcels=r["n"],
        ))  # fmt: skip
    # Per SKU: a parcel counts once for each SKU its order carries.
    lines = shipments.filter(order__lines__isnull=False)
    for r in lines.values("order__lines__sku_code", "carrier", "session").annotate(
        n=Count("pk", distinct=True),
        exceptional=Count("pk", distinct=True, filter=Q(has_case=True)),
        name=Max("order__lines__sku_name"),
    ):
        rows.append(SkuDay(
            store=store, day=day, sku_code=r["order__lines__sku_code"], sku_name=r["name"] or "",
            carrier=r["carrier"], live_session_id=r["session"], case_type="", parcels=r["n"],
            exceptional=r["exceptional"],
        ))  # fmt: skip
    for r in (
        lines.filter(cases__isnull=False)
        .values("order__lines__sku_code", "carrier", "session", "cases__type")
        .annotate(n=Count("pk", distinct=True))
    ):
        rows.append(SkuDay(
            store=store, day=day, sku_code=r["order__lines__sku_code"], carrier=r["carrier"],
            live_session_id=r["session"], case_type=r["cases__type"], parcels=r["n"],
        ))  # fmt: skip
    return rows


def _case_measures() -> dict:
    contacted = Q(first_contact_at__isnull=False)
    resolved = Q(resolved_at__isnull=False) & ~OPEN_CASE
    return {
        "opened": Count("pk"),
        "still_open": Count("pk", filter=OPEN_CASE),
        "resolved": Count("pk", filter=resolved),
        "reopened": Count("pk", filter=Q(was_reopened=True)),
        "contacted": Count("pk", filter=contacted),
        "proactive": Count("pk", filter=contacted & Q(buyer_wrote_first=False)),
        "contact_due": Count("pk", filter=Q(first_contact_due_at__isnull=False)),
        "contact_in_sla": Count(
            "pk",
            filter=Q(first_contact_due_at__isnull=False, first_contact_at__lte=F("first_contact_due_at")),
        ),
        "resolution_due": Count("pk", filter=Q(resolution_due_at__isnull=False)),
        "resolved_in_sla": Count(
            "pk",
            filter=resolved & Q(resolution_due_at__isnull=False, resolved_at__lte=F("resolution_due_at")),
        ),
        **_histogram("contact", "opened_at", "first_contact_at", contacted),
        **_histogram("resolution", "opened_at", "resolved_at", resolved),
    }


def _opened_on(store: Store, start: datetime, end: datetime) -> QuerySet[Case]:
    wrote = Q(received_at__lt=OuterRef("first_contact_at"))
    return Case.objects.filter(store=store, opened_at__gte=start, opened_at__lt=end).annotate(
        was_reopened=Exists(CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEventKind.REOPENED)),
        buyer_wrote_first=Exists(Complaint.objects.filter(wrote, case=OuterRef("pk")))
        | Exists(
            CaseEvent.objects.filter(
                case=OuterRef("pk"),
                kind=CaseEventKind.BUYER_REPLIED,
                created_at__lt=OuterRef("first_contact_at"),
            )
        ),
    )


def _case_rows(store: Store, day: date, start: datetime, end: datetime) -> list:
    cases = _opened_on(store, start, end)
    rows: list = []
    for r in (
        cases.annotate(
            carrier=Coalesce("shipment__carrier", Value("")),
            destination=_destination("order__"),
            session=F("order__live_session_id"),
        )
        .values("carrier", "type", "session", "destination")
        .annotate(**_case_measures())
    ):
        carrier, type, session, destination = (
            r.pop("carrier"),
            r.pop("type"),
            r.pop("session"),
            r.pop("destination"),
        )
        rows.append(CaseDay(
            store=store, day=day, carrier=carrier, case_type=type, live_session_id=session, destination=destination,
            **r,
        ))  # fmt: skip
    agents: dict[tuple[int, str], AgentDay] = {}
    measures = _case_measures()
    for r in (
        cases.filter(assignee__isnull=False)
        .values("assignee_id", "type")
        .annotate(
            handled=measures["opened"],
            resolved=measures["resolved"],
            contacted=measures["contacted"],
            **{
                k: v
                for k, v in measures.items()
                if k.startswith(("contact_", "resolution_")) and k[-1].isdigit()
            },
        )
    ):
        agent, type = r.pop("assignee_id"), r.pop("type")
        agents[agent, type] = AgentDay(store=store, day=day, agent_id=agent, case_type=type, **r)
    for r in (
        Compensation.objects.filter(
            store=store, proposed_at__gte=start, proposed_at__lt=end, approved_by__isnull=False,
            status__in=(CompensationStatus.APPROVED, CompensationStatus.EXECUTING, CompensationStatus.EXECUTED),
        )
        .values("approved_by_id", "case__type")
        .annotate(n=Count("pk"), amount=Sum("amount"))
    ):  # fmt: skip
        key = (r["approved_by_id"], r["case__type"])
        row = agents.get(key) or AgentDay(store=store, day=day, agent_id=key[0], case_type=key[1])
        row.approved, row.approved_amount = r["n"], r["amount"] or Decimal("0")
        agents[key] = row
    rows.extend(agents.values())
    return rows


def _first_sku() -> Subquery:
    return Subquery(
        OrderLine.objects.filter(order=OuterRef("order_id")).order_by("pk").values("sku_code")[:1]
    )


def _money_rows(store: Store, day: date, start: datetime, end: datetime) -> list:
    rows: list = []
    for r in (
        Compensation.objects.filter(
            store=store, proposed_at__gte=start, proposed_at__lt=end, status=CompensationStatus.EXECUTED
        )
        .annotate(
            carrier=Coalesce("case__shipment__carrier", "shipment__carrier", Value("")),
            sku_code_=Coalesce("sku__code", _first_sku(), Value("")),
        )
        .values("kind", "case__type", "carrier", "sku_code_", "order__live_session_id", "currency")
        .annotate(n=Count("pk"), total=Sum("amount"))
    ):
        rows.append(MoneyDay(
            store=store, day=day, measure=MoneyMeasure.COMPENSATION, kind=r["kind"], case_type=r["case__type"],
            carrier=r["carrier"], sku_code=r["sku_code_"], live_session_id=r["order__live_session_id"],
            currency=r["currency"], count=r["n"], amount=r["total"] or Decimal("0"),
        ))  # fmt: skip
    claims = Claim.objects.filter(store=store)
    for measure, q, amount in (
        (MoneyMeasure.CLAIM_SUBMITTED, Q(submitted_at__gte=start, submitted_at__lt=end), "amount_claimed"),
        (
            MoneyMeasure.CLAIM_ACCEPTED,
            Q(decided_at__gte=start, decided_at__lt=end, status__in=(ClaimStatus.ACCEPTED, ClaimStatus.PAID)),
            "amount_claimed",
        ),
        (MoneyMeasure.CLAIM_RECOVERED, Q(paid_at__gte=start, paid_at__lt=end), "amount_recovered"),
    ):
        for r in (
            claims.filter(q)
            .values("carrier", "case__type", "order__live_session_id", "currency")
            .annotate(n=Count("pk"), total=Sum(amount))
        ):
            rows.append(MoneyDay(
                store=store, day=day, measure=measure, case_type=r["case__type"], carrier=r["carrier"],
                live_session_id=r["order__live_session_id"], currency=r["currency"], count=r["n"],
                amount=r["total"] or Decimal("0"),
            ))  # fmt: skip
    appeals = Appeal.objects.filter(store=store)
    submitted = appeals.filter(submitted_at__gte=start, submitted_at__lt=end).count()
    if submitted:
        rows.append(MoneyDay(store=store, day=day, measure=MoneyMeasure.APPEAL_SUBMITTED, count=submitted))
    decided = {AppealDecision.WON: MoneyMeasure.APPEAL_WON, AppealDecision.PARTIAL: MoneyMeasure.APPEAL_PARTIAL,
               AppealDecision.LOST: MoneyMeasure.APPEAL_LOST}  # fmt: skip
    avoided = Decimal("0")
    avoided_count = 0
    for r in (
        appeals.filter(decided_at__gte=start, decided_at__lt=end)
        .exclude(decision="")
        .values("decision")
        .annotate(n=Count("pk"), avoided=Sum("penalty_avoided"), with_amount=Count("penalty_avoided"))
    ):
        rows.append(MoneyDay(store=store, day=day, measure=decided[r["decision"]], count=r["n"]))
        avoided += r["avoided"] or Decimal("0")
        avoided_count += r["with_amount"]
    if avoided_count:
        rows.append(MoneyDay(
            store=store, day=day, measure=MoneyMeasure.PENALTY_AVOIDED, currency=store.currency, count=avoided_count,
            amount=avoided,
        ))  # fmt: skip
    return rows


def _order_rows(store: Store, day: date, start: datetime, end: datetime) -> list:
    return [
        OrderDay(
            store=store,
            day=day,
            live_session_id=r["live_session_id"],
            destination=r["destination"],
            orders=r["n"],
            cancelled=r["cancelled"],
            amount=r["total"] or Decimal("0"),
        )
        for r in Order.objects.filter(store=store, placed_at__gte=start, placed_at__lt=end)
        .annotate(destination=_destination())
        .values("live_session_id", "destination")
        .annotate(
            n=Count("pk"), cancelled=Count("pk", filter=Q(status=OrderStatus.CANCELLED)), total=Sum("amount")
        )
    ]


def _dispatch_rows(store: Store, day: date, start: datetime, end: datetime) -> list:
    return [
        DispatchDay(store=store, day=day, **r)
        for r in Shipment.objects.filter(store=store, accepted_at__gte=start, accepted_at__lt=end)
        .values("carrier")
        .annotate(
            dispatched=Count("pk"),
            late=Count("pk", filter=Q(accepted_at__gt=F("order__ship_by"))),
            without_ship_by=Count("pk", filter=Q(order__ship_by__isnull=True)),
            **_histogram("dispatch", "order__placed_at", "accepted_at", Q()),
        )
    ]


# Each scope: the function that builds its rows for a store-day, and the tables those rows go to.
PARTS = {
    RollupScope.PARCELS: (_parcel_rows, (ParcelDay, SkuDay)),
    RollupScope.CASES: (_case_rows, (CaseDay, AgentDay)),
    RollupScope.MONEY: (_money_rows, (MoneyDay,)),
    RollupScope.ORDERS: (_order_rows, (OrderDay,)),
    RollupScope.DISPATCH: (_dispatch_rows, (DispatchDay,)),
}
EVERY_SCOPE = frozenset(PARTS)


def store_day_rebuild(store: Store, day: date, scopes: Iterable[str] = EVERY_SCOPE) -> int:
    """The rollup rows of this store-day (those of `scopes`: every table by default), from the raw rows of
    that day. Returns the rows written."""
    start, end = day_bounds(store, day)
    rows: dict[type, list] = defaultdict(list)
    models = []
    for scope in sorted(set(scopes)):
        build, tables = PARTS[RollupScope(scope)]
        models += tables
        for row in build(store, day, start, end):
            rows[type(row)].append(row)
    with transaction.atomic():
        for model in models:
            model.objects.filter(store=store, day=day).delete()
            if rows[model]:
                model.objects.bulk_create(rows[model], batch_size=500)
    return sum(len(r) for r in rows.values())


# ----------------------------------------------------------------------------------- which days changed


Changes = dict[str, set[date]]  # scope -> days


def days_mark(store_id: int, changes: Changes, *, now: datetime | None = None) -> int:
    """Mark these store-days' tables for a rebuild (a mark already there moves to now, so that a rebuild
    running meanwhile does not take it away). Returns the store-days marked."""
    now = now or timezone.now()
    marks = [
        RollupDirty(store_id=store_id, day=day, scope=scope, marked_at=now)
        for scope, days in changes.items()
        for day in days
        if day is not None
    ]
    if marks:
        RollupDirty.objects.bulk_create(
            marks, update_conflicts=True, update_fields=["marked_at"], unique_fields=["store", "day", "scope"]
        )
    return len({mark.day for mark in marks})


def dispatch_days_mark(parcels: Iterable[Shipment], *, now: datetime) -> None:
    """The rule sweeper's hook: the days of the first carrier scans of the parcels it just looked at (a scan
    arrives as a tracking event, and tracking events carry no index the refresh could look for changes by)."""
    by_store: dict[int, set[date]] = defaultdict(set)
    for parcel in parcels:
        # Every scanned parcel, not only those scanned first just now, and every day from its first scan to
        # its latest: a first scan that arrives after later ones moves the parcel to an earlier day, and the
        # day it leaves (which nothing remembers) lies in between. Rebuilding a day's first scans is one
        # aggregate over that day's parcels (`shipment_dispatch_day_idx`).
        if parcel.accepted_at is None or not Shipment.store.is_cached(parcel):
            continue
        first = local_day(parcel.store, parcel.accepted_at)
        last = local_day(parcel.store, max(parcel.last_event_at or parcel.accepted_at, parcel.accepted_at))
        by_store[parcel.store_id].update(
            first + timedelta(days=n) for n in range(min((last - first).days, 31) + 1)
        )
    for store_id, days in by_store.items():
        days_mark(store_id, {RollupScope.DISPATCH: days}, now=now)


def _days(queryset: QuerySet, field: str, store: Store) -> set[date]:
    return {
        d
        for d in queryset.exclude(**{f"{field}__isnull": True})
        .annotate(_d=TruncDate(field, tzinfo=store.tzinfo))
        .values_list("_d", flat=True)
        .distinct()
        if d is not None
    }


def changed_days(store: Store, since: datetime) -> Changes:
    """The store-days, by scope, whose rollups may differ from the raw rows because of a change stamped since
    `since`. What no stamp tells (an order's destination, session or ship-by edited after its parcels were
    counted; a first scan that arrived after later ones) is left to the nightly reconcile."""
    changes: Changes = defaultdict(set)

    def ship_days(parcels: QuerySet[Shipment]) -> set[date]:
        return _days(parcels.annotate(_s=Coalesce("booked_at", "created_at")), "_s", store)

    cases = Case.objects.filter(store=store, updated_at__gte=since)
    changes[RollupScope.CASES] |= _days(cases, "opened_at", store)
    changes[RollupScope.PARCELS] |= _days(
        cases.annotate(_s=Coalesce("shipment__booked_at", "shipment__created_at")), "_s", store
    )
    parcels = Shipment.objects.filter(store=store, created_at__gte=since)
    changes[RollupScope.PARCELS] |= ship_days(parcels)
    changes[RollupScope.DISPATCH] |= _days(parcels, "accepted_at", store)
    orders = Order.objects.filter(store=store, updated_at__gte=since)
    changes[RollupScope.ORDERS] |= _days(orders, "placed_at", store)
    # A new order's parcels may carry an older creation stamp (known since booking): counted by the order's.
    new = Shipment.objects.filter(store=store, order__in=orders.filter(created_at__gte=since).values("pk"))
    changes[RollupScope.PARCELS] |= ship_days(new)
    changes[RollupScope.DISPATCH] |= _days(new, "accepted_at", store)
    compensations = Compensation.objects.filter(store=store, updated_at__gte=since)
    proposed = _days(compensations, "proposed_at", store)
    changes[RollupScope.MONEY] |= proposed
    changes[RollupScope.CASES] |= proposed  # what each agent approved
    claims = Claim.objects.filter(store=store, updated_at__gte=since)
    for field in ("submitted_at", "decided_at", "paid_at"):
        changes[RollupScope.MONEY] |= _days(claims, field, store)
    appeals = Appeal.objects.filter(store=store, updated_at__gte=since)
    for field in ("submitted_at", "decided_at"):
        changes[RollupScope.MONEY] |= _days(appeals, field, store)
    return changes


def all_days(store: Store) -> set[date]:
    """Every day the store has anything on: the range from its first to its last raw row."""
    bounds = []
    for queryset, field in (
        (Order.objects.filter(store=store), "placed_at"),
        (Shipment.objects.filter(store=store).annotate(_s=Coalesce("booked_at", "created_at")), "_s"),
        (Shipment.objects.filter(store=store), "accepted_at"),
        (Case.objects.filter(store=store), "opened_at"),
        (Compensation.objects.filter(store=store), "proposed_at"),
        (Claim.objects.filter(store=store), "submitted_at"),
        (Claim.objects.filter(store=store), "paid_at"),
        (Appeal.objects.filter(store=store), "decided_at"),
    ):
        found = queryset.aggregate(first=Min(field), last=Max(field))
        bounds += [found["first"], found["last"]]
    moments = [m for m in bounds if m is not None]
    if not moments:
        return set()
    first, last = local_day(store, min(moments)), local_day(store, max(moments))
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


# ------------------------------------------------------------------------------------------- the worker


def _state_claim(store: Store) -> RollupState | None:
    RollupState.objects.get_or_create(store=store)
    return skip_locked(RollupState.objects.filter(store=store)).first()


def store_refresh(store: Store, *, now: datetime, limit: int = DAYS_PER_RUN) -> tuple[int, int]:
    """One store: mark what changed since the watermark, rebuild up to `limit` marked days. Another worker
    refreshing the store meanwhile makes this one skip it. Returns (days marked, days rebuilt)."""
    with transaction.atomic():
        state = _state_claim(store)
        if state is None:
            return 0, 0
        if state.watermark is None:
            days = all_days(store)
            changes: Changes = dict.fromkeys(EVERY_SCOPE, days)
        else:
            changes = changed_days(store, state.watermark - OVERLAP)
        marked = days_mark(store.pk, changes, now=now)
        state.watermark = now
        state.save(update_fields=["watermark"])
    rebuilt = 0
    marks: dict[date, dict[str, datetime]] = defaultdict(dict)
    for mark in RollupDirty.objects.filter(store=store).order_by("marked_at", "day")[: limit * len(PARTS)]:
        marks[mark.day][mark.scope] = mark.marked_at
    for day, scopes in list(marks.items())[:limit]:
        with transaction.atomic():
            if _state_claim(store) is None:
                break
            started = timezone.now()
            store_day_rebuild(store, day, scopes)
            for scope, marked_at in scopes.items():
                RollupDirty.objects.filter(
                    store=store, day=day, scope=scope, marked_at__lte=max(marked_at, started)
                ).delete()
            rebuilt += 1
    if rebuilt:
        RollupState.objects.filter(store=store).update(
            refreshed_at=timezone.now(), days_rebuilt=F("days_rebuilt") + rebuilt
        )
    return marked, rebuilt


def rollups_refresh(*, now: datetime | None = None, store_ids: Iterable[int] | None = None) -> RefreshResult:
    """The worker's minute: every store's changed days rebuilt."""
    now = now or timezone.now()
    result = RefreshResult()
    stores = Store.objects.all() if store_ids is None else Store.objects.filter(pk__in=list(store_ids))
    for store in stores.order_by("pk"):
        marked, rebuilt = store_refresh(store, now=now)
        result.stores += 1
        result.marked += marked
        result.rebuilt += rebuilt
    if result.rebuilt:
        log.info("reports: %d store-days rebuilt over %d stores", result.rebuilt, result.stores)
    return result


def rollups_rebuild(store_ids: Iterable[int] | None = None, *, since: date | None = None) -> int:
    """From scratch: every day of these stores (from `since` on), and the watermark moved to now. Returns the
    store-days rebuilt."""
    stores = Store.objects.all() if store_ids is None else Store.objects.filter(pk__in=list(store_ids))
    total = 0
    for store in stores.order_by("pk"):
        now = timezone.now()
        days = sorted(d for d in all_days(store) if since is None or d >= since)
        with transaction.atomic():
            for model in ROLLUP_MODELS:
                stale = model.objects.filter(store=store)
                if since is not None:
                    stale = stale.filter(day__gte=since)
                stale.exclude(day__in=days).delete()
        for day in days:
            store_day_rebuild(store, day)
        RollupDirty.objects.filter(store=store, marked_at__lte=now, day__in=days).delete()
        RollupState.objects.update_or_create(
            store=store, defaults={"watermark": now, "refreshed_at": timezone.now()}
        )
        total += len(days)
    return total
