"""The figures of /reports/: sums over the rollup tables (cases.reporting.models), never over raw cases or events.

Every figure is a table (`Table`): the page draws it (some as a chart with the table behind it), the CSV export
streams it, one definition for both. Filters (`Filters`) come from the URL and are scoped to the user's stores
before anything is read: supervisors and admins see their stores' figures, an agent only their own row of the
agents table.

Rates come with the counts behind them. Medians and p90s of durations are estimated from the rollups'
histograms (DURATION_BOUNDS), interpolated inside the bucket: exact to the bucket's width.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from cases.choices import CaseType, CompensationKind
from cases.reporting.models import (
    BUCKETS,
    DURATION_BOUNDS,
    AgentDay,
    CaseDay,
    MoneyDay,
    MoneyMeasure,
    OrderDay,
    ParcelDay,
    SkuDay,
)
from cases.workflow import MANAGER_ROLES
from portal.models import Store
from portal.selectors import store_ids_for_user, store_ids_with_roles
from tracking.carriers import carrier_name
from tracking.models import LiveSession

# A lane or carrier is compared week over week only with at least this many parcels in each week.
TREND_MIN_PARCELS = 20
TREND_TOP = 5
# A heat-table cell with fewer parcels is shown greyed: its rate says little.
HEAT_MIN_PARCELS = 5
BACKLOG_AGES = ((1, gettext_lazy("under 1 day")), (3, gettext_lazy("1-3 days")), (7, gettext_lazy("3-7 days")),
                (None, gettext_lazy("over 7 days")))  # fmt: skip

PRESETS = {
    "7d": gettext_lazy("Last 7 days"),
    "28d": gettext_lazy("Last 28 days"),
    "90d": gettext_lazy("Last 90 days"),
    "month": gettext_lazy("This month"),
    "last_month": gettext_lazy("Last month"),
    "custom": gettext_lazy("Custom"),
}


def period_for(preset: str, *, today: date) -> tuple[date, date]:
    if preset == "7d":
        return today - timedelta(days=6), today
    if preset == "90d":
        return today - timedelta(days=89), today
    if preset == "month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return today - timedelta(days=27), today


# ------------------------------------------------------------------------------------------ the shapes


@dataclass
class Filters:
    store_ids: list[int]
    start: date
    end: date
    carrier: str = ""
    case_type: str = ""
    live_session_id: int | None = None
    sku: str = ""
    region: str = ""
    agent_id: int | None = None  # an agent's own view: only their row

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass
class Column:
    key: str
    label: str
    kind: str = "int"  # text, int, percent, points (a difference of percentages), minutes, money, date


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    chart: str = ""  # "line" or "bar": drawn from the table by portal/static/portal/charts.js
    chart_x: int = 0
    chart_y: Sequence[int] = ()
    chart_percent: bool = False
    note: str = ""
    empty: str = ""

    @property
    def chart_y_attr(self) -> str:
        return ",".join(str(i) for i in self.chart_y)


@dataclass
class Report:
    filters: Filters
    manager: bool
    headline: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    heat: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- the math


def rate(part: int | None, whole: int | None) -> Decimal | None:
    """A percentage with two decimals, or None when there is nothing to divide by."""
    if not whole:
        return None
    return (Decimal(part or 0) * 100 / Decimal(whole)).quantize(Decimal("0.01"))


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram over DURATION_BOUNDS, in minutes, interpolated inside its bucket;
    in the open last bucket, its lower bound (the display says "over")."""
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= target:
            lower = DURATION_BOUNDS[i - 1] if i else 0
            if i >= len(DURATION_BOUNDS):
                return float(lower)
            upper = DURATION_BOUNDS[i]
            return lower + (upper - lower) * (target - seen) / n
        seen += n
    return float(DURATION_BOUNDS[-1])


def _histogram_sums(prefix: str) -> dict[str, Sum]:
    return {f"{prefix}_{i}": Sum(f"{prefix}_{i}") for i in range(BUCKETS)}


def _counts(row: dict, prefix: str) -> list[int]:
    return [row.get(f"{prefix}_{i}") or 0 for i in range(BUCKETS)]


# -------------------------------------------------------------------------------------------- scoping


def report_store_ids(user: AbstractBaseUser | AnonymousUser) -> tuple[list[int], bool]:
    """The stores whose figures the user sees, and whether as a manager (all figures) or an agent (own)."""
    managed = store_ids_with_roles(user, MANAGER_ROLES)
    if managed:
        return managed, True
    return store_ids_for_user(user), False


def report_stores(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Store]:
    ids, _manager = report_store_ids(user)
    return Store.objects.filter(pk__in=ids).order_by("name")


def filter_suggestions(store_ids: Iterable[int], *, since: date) -> dict[str, list[str]]:
    """What the carrier, destination and SKU filters may be typed as: the values of the rollups since `since`."""
    parcels = ParcelDay.objects.filter(store_id__in=list(store_ids), day__gte=since, case_type="")
    skus = SkuDay.objects.filter(store_id__in=list(store_ids), day__gte=since, case_type="")
    return {
        "carriers": [
            (c, carrier_name(c)) for c in sorted(set(parcels.values_list("carrier", flat=True).distinct()))
        ],
        "regions": sorted(
            set(parcels.exclude(destination="").values_list("destination", flat=True).distinct())
        )[:300],
        "skus": sorted(set(skus.values_list("sku_code", flat=True).distinct()))[:300],
    }


def live_sessions_for_report(store_ids: Iterable[int]) -> QuerySet[LiveSession]:
    return LiveSession.objects.filter(store_id__in=list(store_ids)).order_by("-started_at")


# ----------------------------------------------------------------------------------------- exceptions


# Each filter and the rollup column it narrows; a table without the column ignores the filter (the page says
# which figures a filter does not apply to).
FILTER_COLUMNS = {
    "carrier": "carrier",
    "case_type": "case_type",
    "live_session_id": "live_session_id",
    "sku": "sku_code",
    "region": "destination",
}


def _filtered(model, f: Filters, *, period: bool = True, skip: tuple[str, ...] = ()) -> QuerySet:
    """The model's rows of the user's stores (and of the period), narrowed by every filter it has a column for."""
    rows = model.objects.filter(store_id__in=f.store_ids)
    if period:
        rows = rows.filter(day__gte=f.start, day__lte=f.end)
    columns = {field.name for field in model._meta.get_fields()}
    for name, column in FILTER_COLUMNS.items():
        value = getattr(f, name)
        if value and column in columns and name not in skip:
            rows = rows.filter(**{column: value})
    return rows


def _parcel_base(f: Filters, model=ParcelDay) -> QuerySet:
    # The case type is not a filter here: the parcel rows ("") are read beside the type's (_exception_sums).
    return _filtered(model, f, skip=("case_type",))


def _exception_sums(f: Filters, *, prefix: str = "") -> dict[str, Sum]:
    """Parcels and exceptional parcels (of the chosen case type, or of any) as conditional sums, one query."""
    parcels = Sum("parcels", filter=Q(case_type=""))
    if f.case_type:
        exceptions = Sum("parcels", filter=Q(case_type=f.case_type))
    else:
        exceptions = Sum("exceptional", filter=Q(case_type=""))
    return {f"{prefix}parcels": parcels, f"{prefix}exceptions": exceptions}


def _exceptions_by(f: Filters, keys: Sequence[str], *, model=ParcelDay) -> list[dict]:
    """Parcels and exceptions grouped by `keys` (none: the totals), as dicts with "parcels" and "exceptions"."""
    rows = _parcel_base(f, model)
    # Without a case type only the parcel rows count (a partial index holds them alone).
    rows = rows.filter(case_type__in=("", f.case_type)) if f.case_type else rows.filter(case_type="")
    sums = _exception_sums(f, prefix="n_")
    found = [rows.aggregate(**sums)] if not keys else rows.values(*keys).annotate(**sums).order_by(*keys)
    return [
        {**{k: r[k] for k in keys}, "parcels": r["n_parcels"], "exceptions": r["n_exceptions"]} for r in found
    ]


def _uses_sku(f: Filters) -> bool:
    return bool(f.sku)


def exceptions_section(report: Report) -> None:
    f = report.filters
    model = SkuDay if _uses_sku(f) else ParcelDay
    cols = [
        Column("parcels", _("Parcels shipped")),
        Column("exceptions", _("With an exception")),
        Column("rate", _("Exception rate"), "percent"),
    ]
    totals = _exceptions_by(f, (), model=model)
    total = totals[0] if totals else {}
    report.headline.update(
        parcels=total.get("parcels") or 0,
        exceptions=total.get("exceptions") or 0,
        exception_rate=rate(total.get("exceptions"), total.get("parcels")),
    )

    by_day = {r["day"]: r for r in _exceptions_by(f, ("day",), model=model)}
    day_rows = []
    for n in range(f.days):
        day = f.start + timedelta(days=n)
        r = by_day.get(day, {})
        day_rows.append(
            [
                day,
                r.get("parcels") or 0,
                r.get("exceptions") or 0,
                rate(r.get("exceptions"), r.get("parcels")),
            ]
        )
    report.tables["exceptions_by_day"] = Table(
        "exceptions_by_day", _("Exception rate by day"), [Column("day", _("Day"), "date"), *cols], day_rows,
        chart="line", chart_y=(3,), chart_percent=True,
    )  # fmt: skip

    def grouped(
        key: str, title: str, first: str, keys: Sequence[str], label: Callable[[dict], str], chart: str = ""
    ):
        rows = [[label(r), r["parcels"] or 0, r["exceptions"] or 0, rate(r["exceptions"], r["parcels"])]
                for r in _exceptions_by(f, keys, model=model) if r["parcels"] or r["exceptions"]]  # fmt: skip
        rows.sort(key=lambda row: (-row[1], row[0]))  # the busiest first: a rate on 3 parcels is not news
        report.tables[key] = Table(
            key,
            title,
            [Column("group", first, "text"), *cols],
            rows,
            chart=chart,
            chart_y=(3,),
            chart_percent=True,
        )

    grouped(
        "exceptions_by_carrier",
        _("By carrier"),
        _("Carrier"),
        ("carrier",),
        lambda r: carrier_name(r["carrier"]),
        "bar",
    )
    sessions = dict(LiveSession.objects.filter(store_id__in=f.store_ids).values_list("pk", "title"))
    grouped(
        "exceptions_by_session", _("By live session"), _("Live session"), ("live_session_id",),
        lambda r: sessions.get(r["live_session_id"], _("Not from a live session")),
    )  # fmt: skip
    sku_rows = []
    for r in _exceptions_by(f, ("sku_code",), model=SkuDay):
        if r["parcels"]:
            sku_rows.append(
                [r["sku_code"], r["parcels"] or 0, r["exceptions"] or 0, rate(r["exceptions"], r["parcels"])]
            )
    sku_rows.sort(key=lambda row: (-row[1], row[0]))
    report.tables["exceptions_by_sku"] = Table(
        "exceptions_by_sku", _("By SKU"), [Column("sku", _("SKU"), "text"), *cols], sku_rows[:50],
        note=_("A parcel counts once for every SKU it carries.") if sku_rows else "",
    )  # fmt: skip
    if _uses_sku(f):
        report.notes.append(_("Routes are not broken down by SKU: the route tables show every SKU."))
    route_filters = Filters(**{**f.__dict__, "sku": ""})
    routes = _exceptions_by(route_filters, ("store_id", "destination", "carrier"))
    _routes(report, routes, cols, _origins(f))
    _trends(report, f)


def _origins(f: Filters) -> dict[int, str]:
    """Where each store's parcels start: its `ship_from`, read now (changing it needs no rebuild)."""
    return dict(Store.objects.filter(pk__in=f.store_ids).values_list("pk", "ship_from"))


def _route_label(origin: str, destination: str) -> str:
    return f"{origin or '?'} → {destination or '?'}"


def _routes(report: Report, rows: list[dict], cols: list[Column], origins: dict[int, str]) -> None:
    by_route: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    carriers: dict[str, int] = defaultdict(int)
    for r in rows:
        route = _route_label(origins.get(r["store_id"], ""), r["destination"])
        by_route[route][0] += r["parcels"] or 0
        by_route[route][1] += r["exceptions"] or 0
        cells[route, r["carrier"]] = (r["parcels"] or 0, r["exceptions"] or 0)
        carriers[r["carrier"]] += r["parcels"] or 0
    table_rows = [[route, p, e, rate(e, p)] for route, (p, e) in by_route.items() if p]
    table_rows.sort(key=lambda row: -row[1])
    report.tables["exceptions_by_route"] = Table(
        "exceptions_by_route",
        _("By route"),
        [Column("route", pgettext("shipping route", "Route"), "text"), *cols],
        table_rows[:50],
    )
    # The heat table: the busiest routes x carriers, each cell the rate with its counts.
    top_routes = [row[0] for row in table_rows[:15]]
    top_carriers = sorted(carriers, key=lambda c: -carriers[c])[:8]
    heat_rows = []
    for route in top_routes:
        line = []
        for carrier in top_carriers:
            parcels, exceptions = cells.get((route, carrier), (0, 0))
            value = rate(exceptions, parcels)
            level = _heat_level(value) if parcels >= HEAT_MIN_PARCELS else "few"
            line.append({"parcels": parcels, "exceptions": exceptions, "rate": value, "level": level})
        heat_rows.append((route, line))
    report.heat = {"carriers": [(c, carrier_name(c)) for c in top_carriers], "rows": heat_rows,
                   "min_parcels": HEAT_MIN_PARCELS}  # fmt: skip
    heat_table = Table(
        "route_carrier", _("Exception rate by route and carrier"),
        [Column("route", pgettext("shipping route", "Route"), "text")]
        + [Column(c, carrier_name(c), "percent") for c in top_carriers],
    )  # fmt: skip
    heat_table.rows = [[route, *(cell["rate"] for cell in line)] for route, line in heat_rows]
    report.tables["route_carrier"] = heat_table


def _heat_level(value: Decimal | None) -> int:
    """0-5 for the heat table's colour classes (heat-0 .. heat-5); None: no parcels."""
    if value is None:
        return -1
    for level, bound in enumerate((1, 2, 4, 7, 12)):
        if value < bound:
            return level
    return 5


def _trends(report: Report, f: Filters) -> None:
    """Carriers and lanes whose exception rate rose most from the week before the period's last week."""
    last_start = f.end - timedelta(days=6)
    prev_start = last_start - timedelta(days=7)
    base = Filters(**{**f.__dict__, "start": prev_start, "end": f.end, "sku": ""})
    sums = {}
    for label, start, end in (
        ("now", last_start, f.end),
        ("before", prev_start, last_start - timedelta(days=1)),
    ):
        week = Q(day__gte=start, day__lte=end)
        parcels = Sum("parcels", filter=Q(case_type="") & week)
        exceptions = (
            Sum("parcels", filter=Q(case_type=f.case_type) & week)
            if f.case_type
            else Sum("exceptional", filter=Q(case_type="") & week)
        )
        sums[f"{label}_parcels"], sums[f"{label}_exceptions"] = parcels, exceptions
    origins = _origins(f)
    cols = [
        Column("group", _("Carrier"), "text"),
        Column("before_rate", _("Week before"), "percent"),
        Column("now_rate", _("Last week"), "percent"),
        Column("change", _("Change"), "points"),
        Column("now_parcels", _("Parcels last week")),
    ]
    for key, title, keys, label in (
        ("worse_carriers", _("Carriers getting worse"), ("carrier",), lambda r: carrier_name(r["carrier"])),
        ("worse_lanes", _("Lanes getting worse"), ("store_id", "destination", "carrier"),
         lambda r: f"{_route_label(origins.get(r['store_id'], ''), r['destination'])} · {carrier_name(r['carrier'])}"),
    ):  # fmt: skip
        rows = _parcel_base(base)
        rows = rows.filter(case_type__in=("", f.case_type)) if f.case_type else rows.filter(case_type="")
        found = []
        for r in rows.values(*keys).annotate(**sums).order_by(*keys):
            if (r["now_parcels"] or 0) < TREND_MIN_PARCELS or (r["before_parcels"] or 0) < TREND_MIN_PARCELS:
                continue
            now, before = (
                rate(r["now_exceptions"], r["now_parcels"]),
                rate(r["before_exceptions"], r["before_parcels"]),
            )
            if now is not None and before is not None and now > before:
                found.append([label(r), before, now, now - before, r["now_parcels"]])
        found.sort(key=lambda row: -row[3])
        table_cols = list(cols)
        if key == "worse_lanes":
            table_cols[0] = Column("group", _("Lane"), "text")
        report.tables[key] = Table(
            key, title, table_cols, found[:TREND_TOP],
            empty=_("Nothing got worse by this measure (at least %(n)d parcels in each week).")
            % {"n": TREND_MIN_PARCELS},
        )  # fmt: skip


# -------------------------------------------------------------------------------------------- service


def _case_base(f: Filters) -> QuerySet:
    return _filtered(CaseDay, f, period=False)


SERVICE_SUMS = (
    "opened", "still_open", "resolved", "reopened", "contacted", "proactive", "contact_due", "contact_in_sla",
    "resolution_due", "resolved_in_sla",
)  # fmt: skip


def _service_row(label: str, r: dict) -> list[Any]:
    contact, resolution = _counts(r, "contact"), _counts(r, "resolution")
    return [
        label,
        r["opened"] or 0,
        percentile(contact, 0.5),
        percentile(contact, 0.9),
        percentile(resolution, 0.5),
        percentile(resolution, 0.9),
        rate(r["contact_in_sla"], r["contact_due"]),
        rate(r["resolved_in_sla"], r["resolution_due"]),
        rate(r["proactive"], r["contacted"]),
        rate(r["reopened"], r["resolved"]),
    ]


def service_columns(first: Column) -> list[Column]:
    return [
        first,
        Column("opened", _("Cases opened")),
        Column("contact_p50", _("First contact, median"), "minutes"),
        Column("contact_p90", _("First contact, p90"), "minutes"),
        Column("resolution_p50", _("Resolution, median"), "minutes"),
        Column("resolution_p90", _("Resolution, p90"), "minutes"),
        Column("contact_sla", _("First contact in SLA"), "percent"),
        Column("resolution_sla", _("Resolved in SLA"), "percent"),
        Column("proactive", _("Contacted before the buyer wrote"), "percent"),
        Column("reopened", _("Reopened"), "percent"),
    ]


def service_section(report: Report) -> None:
    f = report.filters
    period = _case_base(f).filter(day__gte=f.start, day__lte=f.end)
    sums = (
        {name: Sum(name) for name in SERVICE_SUMS}
        | _histogram_sums("contact")
        | _histogram_sums("resolution")
    )
    labels = dict(CaseType.choices)
    by_type = [r for r in period.values("case_type").annotate(**sums).order_by("case_type") if r["opened"]]
    rows = [_service_row(str(labels.get(r["case_type"], r["case_type"])), r) for r in by_type]
    rows.sort(key=lambda row: -row[1])
    total = {name: sum(r[name] or 0 for r in by_type) for name in sums}  # the types' rows added up
    if total["opened"]:
        rows.append(_service_row(_("All types"), total))
    report.tables["service_by_type"] = Table(
        "service_by_type", _("Service by case type"), service_columns(Column("type", _("Case type"), "text")), rows,
        note=_("Cases opened in the period; times are estimated from hourly buckets (exact to the bucket)."),
    )  # fmt: skip
    report.headline.update(
        cases_opened=total["opened"] or 0,
        contact_sla=rate(total["contact_in_sla"], total["contact_due"]),
        proactive=rate(total["proactive"], total["contacted"]),
        contact_p50=percentile(_counts(total, "contact"), 0.5),
    )
    # Backlog: every case still open, whenever opened, by age.
    today = timezone.localdate()
    ages = [0] * len(BACKLOG_AGES)
    for r in _case_base(f).filter(still_open__gt=0).values("day").annotate(n=Sum("still_open")):
        age = (today - r["day"]).days
        for i, (limit, _label) in enumerate(BACKLOG_AGES):
            if limit is None or age < limit:
                ages[i] += r["n"]
                break
    report.tables["backlog"] = Table(
        "backlog", _("Open cases by age"), [Column("age", _("Opened"), "text"), Column("open", _("Open cases"))],
        [[str(label), n] for (_limit, label), n in zip(BACKLOG_AGES, ages, strict=True)], chart="bar", chart_y=(1,),
    )  # fmt: skip
    report.headline["backlog"] = sum(ages)


# --------------------------------------------------------------------------------------------- agents


def agents_section(report: Report) -> None:
    f = report.filters
    rows_q = _filtered(AgentDay, f)
    if f.agent_id is not None:
        rows_q = rows_q.filter(agent_id=f.agent_id)
    sums = (
        {name: Sum(name) for name in ("handled", "resolved", "contacted", "approved", "approved_amount")}
        | _histogram_sums("contact")
        | _histogram_sums("resolution")
    )
    found = list(rows_q.values("agent_id").annotate(**sums))
    names = {u.pk: u.get_full_name() or u.get_username()
             for u in get_user_model().objects.filter(pk__in=[r["agent_id"] for r in found])}  # fmt: skip
    rows = []
    for r in found:
        contact, resolution = _counts(r, "contact"), _counts(r, "resolution")
        rows.append([
            names.get(r["agent_id"], "?"), r["handled"] or 0, r["resolved"] or 0, percentile(contact, 0.5),
            percentile(resolution, 0.5), r["approved"] or 0, r["approved_amount"] or Decimal("0"),
        ])  # fmt: skip
    rows.sort(key=lambda row: (-row[1], row[0]))
    report.tables["agents"] = Table(
        "agents", _("Agents") if f.agent_id is None else _("My figures"),
        [
            Column("agent", _("Agent"), "text"), Column("handled", _("Cases handled")),
            Column("resolved", _("Resolved")), Column("contact_p50", _("First contact, median"), "minutes"),
            Column("resolution_p50", _("Resolution, median"), "minutes"),
            Column("approved", _("Compensations approved")), Column("approved_amount", _("Amount approved"), "money"),
        ],
        rows,
        note=_("Cases assigned to the agent, by the day they were opened; compensation by the day proposed."),
        empty=_("No cases assigned in this period."),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- money


def _money_base(f: Filters) -> QuerySet:
    return _filtered(MoneyDay, f)


def money_section(report: Report) -> None:
    f = report.filters
    base = _money_base(f)
    compensation = base.filter(measure=MoneyMeasure.COMPENSATION)
    kinds, types = dict(CompensationKind.choices), dict(CaseType.choices)
    money_cols = [
        Column("count", _("Count")),
        Column("amount", _("Amount"), "money"),
        Column("currency", _("Currency"), "text"),
    ]
    for key, title, field_name, first, label in (
        ("money_by_kind", _("Compensation by kind"), "kind", _("Kind"), lambda v: str(kinds.get(v, v))),
        ("money_by_type", _("Compensation by case type"), "case_type", _("Case type"), lambda v: str(types.get(v, v))),
        ("money_by_carrier", _("Compensation by carrier"), "carrier", _("Carrier"), lambda v: carrier_name(v) or _("No parcel")),
        ("money_by_sku", _("Compensation by SKU"), "sku_code", _("SKU"), lambda v: v or _("No SKU")),
    ):  # fmt: skip
        rows = [[label(r[field_name]), r["n"], r["total"], r["currency"]]
                for r in compensation.values(field_name, "currency").annotate(n=Sum("count"), total=Sum("amount"))]  # fmt: skip
        rows.sort(key=lambda row: -row[2])
        report.tables[key] = Table(
            key, title, [Column("group", first, "text"), *money_cols], rows[:50],
            empty=_("No compensation executed in this period."),
        )  # fmt: skip
    measures = {(r["measure"], r["currency"]): r for r in base.exclude(measure=MoneyMeasure.COMPENSATION)
                .values("measure", "currency").annotate(n=Sum("count"), total=Sum("amount"))}  # fmt: skip
    labels = dict(MoneyMeasure.choices)
    claim_rows = []
    for measure in (MoneyMeasure.CLAIM_SUBMITTED, MoneyMeasure.CLAIM_ACCEPTED, MoneyMeasure.CLAIM_RECOVERED,
                    MoneyMeasure.APPEAL_SUBMITTED, MoneyMeasure.APPEAL_WON, MoneyMeasure.APPEAL_PARTIAL,
                    MoneyMeasure.APPEAL_LOST, MoneyMeasure.PENALTY_AVOIDED):  # fmt: skip
        for (m, currency), r in sorted(measures.items()):
            if m == measure:
                money = m.startswith("claim") or m == MoneyMeasure.PENALTY_AVOIDED
                claim_rows.append([str(labels[m]), r["n"] or 0, r["total"] if money else None, currency])
    report.tables["claims_appeals"] = Table(
        "claims_appeals", _("Carrier claims and platform appeals"), [Column("what", _("What"), "text"), *money_cols],
        claim_rows, empty=_("No claim or appeal moved in this period."),
    )  # fmt: skip
    # Net cost per 100 orders, per currency: compensation paid less what carriers paid back.
    orders = _filtered(OrderDay, f)
    currencies = dict(Store.objects.filter(pk__in=f.store_ids).values_list("pk", "currency"))
    order_counts: dict[str, int] = defaultdict(int)
    for r in orders.values("store_id").annotate(n=Sum("orders")):
        order_counts[currencies[r["store_id"]]] += r["n"] or 0
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for r in compensation.values("currency").annotate(total=Sum("amount")):
        paid[r["currency"]] += r["total"] or 0
    for (m, currency), r in measures.items():
        if m == MoneyMeasure.CLAIM_RECOVERED:
            paid[currency] -= r["total"] or 0
    net_rows = []
    for currency in sorted(set(order_counts) | set(paid)):
        n = order_counts.get(currency, 0)
        per_100 = (paid[currency] * 100 / n).quantize(Decimal("0.01")) if n else None
        net_rows.append([currency, n, paid[currency], per_100])
    report.tables["net_cost"] = Table(
        "net_cost", _("Net cost per 100 orders"),
        [Column("currency", _("Currency"), "text"), Column("orders", _("Orders placed")),
         Column("net", _("Compensation less recovered"), "money"), Column("per_100", _("Per 100 orders"), "money")],
        net_rows,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- entry


SECTIONS: dict[str, Callable[[Report], None]] = {
    "exceptions": exceptions_section,
    "service": service_section,
    "money": money_section,
    "agents": agents_section,
}
TABLE_SECTIONS = {
    **dict.fromkeys(
        ("exceptions_by_day", "exceptions_by_carrier", "exceptions_by_session", "exceptions_by_sku",
         "exceptions_by_route", "route_carrier", "worse_carriers", "worse_lanes"), "exceptions"),
    **dict.fromkeys(("service_by_type", "backlog"), "service"),
    **dict.fromkeys(("money_by_kind", "money_by_type", "money_by_carrier", "money_by_sku", "claims_appeals",
                     "net_cost"), "money"),
    "agents": "agents",
}  # fmt: skip


def report_build(filters: Filters, *, manager: bool, only: str | None = None) -> Report:
    """The report for these (already scoped) filters: every section, or the one holding table `only`."""
    report = Report(filters=filters, manager=manager)
    if not manager:
        agents_section(report)
        return report
    sections = [TABLE_SECTIONS[only]] if only else list(SECTIONS)
    for name in sections:
        SECTIONS[name](report)
    return report
