"""The post-live review (seed 002): 48 h after a live session ends, its figures frozen into a LiveReview.

What is frozen (`LiveReview.figures`, JSON, see `review_figures`): the orders, the oversold orders and how
their buyers chose, the time from booking (or placing) to the carrier's first scan, the exception rate of
each carrier against the store's usual one, complaints by category, the compensation executed, and the top
five problems with the cases behind them. Labels are kept as codes (a case type, a carrier, a category) and
the recommendations as message ids with their parameters (cases.texts.Text), so a review reads in the
reader's language whenever it is opened.

Recommendations are drawn from the numbers and only when the numbers support them: each has its threshold
below, as a named constant.

Who writes it: the worker's schedule (`live_reviews_write_due`) once a session ended REVIEW_AFTER ago, or
anyone with `manage.py live_review SESSION_ID` (replacing the review written before). Supervisors and admins
of the store with an email address are told once per session (`LiveReview.notified_at`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Max, Q, Sum, Value
from django.db.models.functions import Coalesce, NullIf
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.choices import (
    ORDER_LEVEL_TYPES,
    BuyerChoice,
    CaseType,
    CompensationKind,
    CompensationStatus,
    ComplaintCategory,
)
from cases.models import Case, Compensation, Complaint
from cases.reporting.live import (
    PICKUP_HOURS,
    case_counts,
    dispatch_progress,
    dispatch_start,
    parcels_with_case,
    session_parcels,
    session_totals,
    sku_boards,
)
from cases.reporting.models import LiveReview, ParcelDay
from cases.texts import Text
from cases.workflow import MANAGER_ROLES
from portal.models import Membership
from tracking.carriers import carrier_name
from tracking.models import LiveSession, OrderLine, Shipment

FIGURES_VERSION = 1
REVIEW_AFTER = timedelta(hours=48)  # seed 002: the review is written within 48 h of the live's end
NOTIFY_WITHIN = timedelta(days=7)  # reviews of sessions that ended longer ago are written but not emailed
DUE_BATCH = 20  # sessions reviewed per run of the schedule; the next run takes the rest
USUAL_DAYS = 28  # the store's usual: the 28 days before the session's first day
PROBLEMS_SHOWN = 5
PROBLEM_CASE_IDS = 50  # case ids kept per problem (the count is kept whole)
RECOMMENDATIONS_SHOWN = 8

# Recommendation thresholds: a recommendation is written only when its numbers reach these.
DAMAGE_MIN_PARCELS = 3  # damaged parcels of one carrier x SKU x destination
DAMAGE_RATE = 0.05  # ... and at least this share of that lane's parcels of the SKU
OVERSOLD_MIN_UNITS = 1  # units sold past the allocation (or the stock) of a SKU
SLOW_PICKUP_SHARE = 0.20  # share of a carrier's parcels first scanned more than PICKUP_HOURS after booking
SLOW_PICKUP_MIN_PARCELS = 10
EXCEPTION_RATE_FACTOR = 1.5  # a carrier's exception rate in the session against its usual one ...
EXCEPTION_RATE_MIN_GAP = 0.02  # ... and at least 2 percentage points above it
EXCEPTION_MIN_PARCELS = 20  # parcels of the carrier in the session
LATE_DISPATCH_SHARE = 0.04  # parcels first scanned after the order's ship-by (TikTok Shop warns at 4 %)
LATE_DISPATCH_MIN_PARCELS = 10
REFUND_SHARE = 0.5  # share of oversold buyers who answered and took a refund
REFUND_MIN_ANSWERS = 5


# --- the figures ---------------------------------------------------------------------------------------


def review_figures(session: LiveSession, *, now: datetime) -> dict[str, Any]:
    """The review's figures as they stand at `now` (JSON: counts, Decimal amounts as strings, rates as
    fractions, times in ISO 8601). A fixed number of queries, whatever the session's size, except the
    dispatch times, which read one row per scanned parcel of the session."""
    store = session.store
    totals = session_totals(session, now=now)
    dispatch = dispatch_progress(
        session, now=now, orders=totals["orders"], late_unshipped=totals["late_unshipped"]
    )
    hours = _dispatch_hours(session)
    carriers, usual_source = _carriers(session, now=now)
    return {
        "version": FIGURES_VERSION,
        "session": {
            "id": session.pk,
            "title": session.title,
            "host": session.host,
            "store": store.name,
            "store_code": store.code,
            "timezone": store.timezone,
            "currency": store.currency,
            "ship_from": store.ship_from,
            "started_at": _iso(session.started_at),
            "ended_at": _iso(session.ended_at),
            "computed_at": _iso(now),
        },
        "orders": {
            "count": totals["orders"],
            "cancelled": totals["cancelled"],
            "amount": _money(totals["amount"]),
        },
        "oversold": _oversold(session),
        "dispatch": {
            "parcels": dispatch.parcels,
            "scanned": dispatch.scanned,
            "median_hours": _round(_percentile(hours, 0.5)),
            "p90_hours": _round(_percentile(hours, 0.9)),
            "within_24h": dispatch.scanned_in_time,
            "within_24h_share": _share(dispatch.scanned_in_time, dispatch.parcels),
            "late_scanned": dispatch.late_scanned,
            "late_share": _share(dispatch.late_scanned, dispatch.parcels),
            "late_unshipped": dispatch.late_unshipped,
        },
        "carriers": carriers,
        "usual_source": usual_source,
        "usual_days": USUAL_DAYS,
        "complaints": _complaints(session),
        "compensation": _compensation(session),
        "cases": [
            {"type": row["type"], "count": row["count"], "open": row["open"]} for row in _case_types(session)
        ],
        "problems": _problems(session),
        "damage_lanes": _damage_lanes(session),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _money(value: Decimal | None) -> str:
    return f"{(value or Decimal('0')):.2f}"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _percentile(values: list[float], q: float) -> float | None:
    """The q-quantile, interpolating between the two nearest values (as numpy's default does)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _dispatch_hours(session: LiveSession) -> list[float]:
    """Hours from booking (placing, when the pickup was never booked) to the first carrier scan."""
    rows = (
        session_parcels(session)
        .filter(accepted_at__isnull=False)
        .annotate(start=dispatch_start())
        .values_list("start", "accepted_at")
    )
    return [max(0.0, (scanned - start).total_seconds() / 3600) for start, scanned in rows]


def _oversold(session: LiveSession) -> dict[str, Any]:
    """Orders with an oversold case and what their buyers chose (the latest case of an order decides)."""
    choices: dict[str, int] = dict.fromkeys([*BuyerChoice.values, "none"], 0)
    latest: dict[int, str] = {}
    rows = (
        Case.objects.filter(store_id=session.store_id, order__live_session=session, type=CaseType.OVERSOLD)
        .order_by("order_id", "opened_at", "pk")
        .values_list("order_id", "buyer_choice")
    )
    for order_id, choice in rows:
        latest[order_id] = choice or "none"
    for choice in latest.values():
        choices[choice if choice in choices else "none"] += 1
    skus = [
        {"sku": board.code, "name": board.name, "allocation": board.allocation, "units": board.units,
         "on_hand": board.on_hand, "over": board.over}
        for board in sku_boards(session)
        if board.over
    ]  # fmt: skip
    return {"orders": len(latest), "units": sum(s["over"] for s in skus), "choices": choices, "skus": skus}


def _carriers(session: LiveSession, *, now: datetime) -> tuple[list[dict[str, Any]], str]:
    """Per carrier of the session: parcels, those with a case, those slow to their first scan; and the same
    carrier's usual exception rate over the store's USUAL_DAYS before the session's first day."""
    deadline_passed = Q(accepted_at__isnull=True, pickup_deadline__lte=now)
    deadline = ExpressionWrapper(
        dispatch_start() + timedelta(hours=PICKUP_HOURS), output_field=DateTimeField()
    )
    rows = (
        session_parcels(session)
        .annotate(pickup_deadline=deadline, has_case=parcels_with_case())
        .values_list("carrier")
        .annotate(
            parcels=Count("pk"),
            exceptional=Count("pk", filter=Q(has_case=True)),
            slow=Count("pk", filter=Q(accepted_at__gt=F("pickup_deadline")) | deadline_passed),
        )
        .order_by()
    )
    usual, source = _usual(session)
    carriers = []
    for carrier, parcels, exceptional, slow in rows:
        usual_parcels, usual_exceptional = usual.get(carrier, (0, 0))
        carriers.append({
            "carrier": carrier, "parcels": parcels, "exceptional": exceptional,
            "rate": _share(exceptional, parcels), "slow_pickup": slow, "slow_share": _share(slow, parcels),
            "usual_parcels": usual_parcels, "usual_exceptional": usual_exceptional,
            "usual_rate": _share(usual_exceptional, usual_parcels),
        })  # fmt: skip
    carriers.sort(key=lambda row: (-row["parcels"], row["carrier"]))
    return carriers, source


def _usual(session: LiveSession) -> tuple[dict[str, tuple[int, int]], str]:
    """{carrier: (parcels, parcels with a case)} over the USUAL_DAYS local days before the session's first
    day, and where they came from: "rollup" (ParcelDay) or "raw"."""
    store = session.store
    first_day = timezone.localtime(session.started_at, store.tzinfo).date()
    since = first_day - timedelta(days=USUAL_DAYS)
    rolled = (
        ParcelDay.objects.filter(store=store, day__gte=since, day__lt=first_day, case_type="")
        .values_list("carrier")
        .annotate(parcels=Sum("parcels"), exceptional=Sum("exceptional"))
        .order_by()
    )
    usual = {carrier: (parcels or 0, exceptional or 0) for carrier, parcels, exceptional in rolled}
    if usual:
        return usual, "rollup"
    # The report tables hold nothing for the store over those days (never built, or rebuilt since): count the
    # raw parcels of those days instead, by the day they shipped as ParcelDay does (booked, else first known),
    # so the figure means the same; the (store, shipped day) index bounds the read to the 28 days.
    start = datetime.combine(since, time.min, tzinfo=store.tzinfo)
    end = datetime.combine(first_day, time.min, tzinfo=store.tzinfo)
    raw = (
        Shipment.objects.filter(store=store)
        .annotate(shipped_at=Coalesce("booked_at", "created_at"), has_case=parcels_with_case())
        .filter(shipped_at__gte=start, shipped_at__lt=end)
        .values_list("carrier")
        .annotate(parcels=Count("pk"), exceptional=Count("pk", filter=Q(has_case=True)))
        .order_by()
    )
    return {carrier: (parcels, exceptional) for carrier, parcels, exceptional in raw}, "raw"


def _complaints(session: LiveSession) -> list[dict[str, Any]]:
    """Complaints about the session's orders by category: the agent's label, else the classifier's."""
    counts: dict[str, int] = defaultdict(int)
    rows = (
        Complaint.objects.filter(store_id=session.store_id, order__live_session=session)
        .values_list("label", "category")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for label, category, n in rows:
        counts[label or category or ComplaintCategory.OTHER] += n
    return [
        {"category": c, "count": n} for c, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _compensation(session: LiveSession) -> dict[str, Any]:
    rows = (
        Compensation.objects.filter(
            store_id=session.store_id, order__live_session=session, status=CompensationStatus.EXECUTED
        )
        .values_list("kind", "currency")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by("kind", "currency")
    )
    by_kind = [{"kind": k, "currency": c, "count": n, "amount": _money(a)} for k, c, n, a in rows]
    total = sum((Decimal(row["amount"]) for row in by_kind if row["currency"] == session.store.currency),
                Decimal("0"))  # fmt: skip
    return {"by_kind": by_kind, "count": sum(row["count"] for row in by_kind), "total": _money(total)}


def _case_types(session: LiveSession) -> list[dict[str, Any]]:
    return [{"type": row.type, "count": row.count, "open": row.open} for row in case_counts(session)]


def _problems(session: LiveSession) -> list[dict[str, Any]]:
    """The five largest groups of the session's cases: a parcel's case type x its carrier, an order's case
    type x each SKU on the order; with the ids of the cases behind each (two queries)."""
    cases = Case.objects.filter(store_id=session.store_id, order__live_session=session)
    rows = list(cases.order_by("pk").values_list("pk", "type", "shipment__carrier", "order_id"))
    skus: dict[int, list[tuple[str, str]]] = defaultdict(list)
    lines = (
        OrderLine.objects.filter(order_id__in=cases.filter(type__in=ORDER_LEVEL_TYPES).values("order_id"))
        .values_list("order_id", "sku_code", "sku_name")
        .order_by("order_id", "sku_code")
        .distinct()
    )
    for order_id, code, name in lines:
        if (code, name) not in skus[order_id]:
            skus[order_id].append((code, name))
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for pk, case_type, carrier, order_id in rows:
        if case_type in ORDER_LEVEL_TYPES:
            keys = [("sku", code, name) for code, name in skus.get(order_id, [])]
        else:
            keys = [("carrier", carrier or "", carrier or "")]
        for dimension, key, name in keys:
            group = groups.setdefault(
                (case_type, dimension, key),
                {
                    "type": case_type,
                    "dimension": dimension,
                    "key": key,
                    "name": name,
                    "count": 0,
                    "case_ids": [],
                },
            )
            group["count"] += 1
            if len(group["case_ids"]) < PROBLEM_CASE_IDS:
                group["case_ids"].append(pk)
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["type"], g["dimension"], g["key"]))
    return ranked[:PROBLEMS_SHOWN]


def _damage_lanes(session: LiveSession) -> list[dict[str, Any]]:
    """Parcels and damaged parcels by carrier x SKU x destination (province, else city), where any parcel
    was damaged: what the packaging recommendation reads."""
    destination = Coalesce(NullIf("order__province", Value("")), "order__city")
    rows = (
        session_parcels(session)
        .annotate(destination=destination)
        .values_list("carrier", "order__lines__sku_code", "destination")
        .annotate(
            parcels=Count("pk", distinct=True),
            damaged=Count("pk", distinct=True, filter=Q(cases__type=CaseType.DAMAGED)),
            name=Max("order__lines__sku_name"),
        )
        .filter(damaged__gt=0)
        .order_by()
    )
    lanes = [
        {"carrier": carrier, "sku": sku or "", "name": name or sku or "", "destination": dest or "",
         "parcels": parcels, "damaged": damaged}
        for carrier, sku, dest, parcels, damaged, name in rows
    ]  # fmt: skip
    return sorted(
        lanes, key=lambda lane: (-lane["damaged"], lane["carrier"], lane["sku"], lane["destination"])
    )


# --- the recommendations -------------------------------------------------------------------------------


def review_recommendations(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain sentences drawn from the figures, each only when its numbers pass its threshold; kept as a kind,
    a message id and its parameters (rendered in the reader's language), most pressing first."""
    found: list[tuple[float, str, Text]] = []
    ship_from = figures["session"].get("ship_from") or ""
    for lane in figures.get("damage_lanes", []):
        rate = _share(lane["damaged"], lane["parcels"]) or 0
        if lane["damaged"] >= DAMAGE_MIN_PARCELS and rate >= DAMAGE_RATE:
            params = {
                "carrier": lane["carrier"], "percent": _percent(rate), "sku": lane["name"],
                "damaged": lane["damaged"], "parcels": lane["parcels"],
                "destination": lane["destination"] or "—",
            }  # fmt: skip
            if ship_from:
                text = Text(gettext_noop(
                    "%(carrier)s damaged %(percent)s%% of parcels with %(sku)s on the %(origin)s → %(destination)s "
                    "lane (%(damaged)s of %(parcels)s): change the packaging or the carrier."
                ), origin=ship_from, **params)  # fmt: skip
            else:
                text = Text(gettext_noop(
                    "%(carrier)s damaged %(percent)s%% of parcels with %(sku)s going to %(destination)s "
                    "(%(damaged)s of %(parcels)s): change the packaging or the carrier."
                ), **params)  # fmt: skip
            found.append((3 + rate, "damage", text))
    for sku in figures["oversold"]["skus"]:
        if sku["over"] < OVERSOLD_MIN_UNITS:
            continue
        if sku["allocation"] is not None:
            text = Text(gettext_noop(
                "Oversold %(units)s units of %(sku)s past its allocation of %(allocation)s: allocate at most the "
                "stock on hand when setting up the live, and stop the deal when the allocation runs out."
            ), units=sku["over"], sku=sku["name"], allocation=sku["allocation"])  # fmt: skip
        else:
            text = Text(gettext_noop(
                "Oversold %(units)s units of %(sku)s, which the live had no allocation of: allocate stock to "
                "every SKU the host sells."
            ), units=sku["over"], sku=sku["name"])  # fmt: skip
        found.append((2 + sku["over"] / 1000, "oversold", text))
    for row in figures["carriers"]:
        slow_share = row.get("slow_share") or 0
        if row["parcels"] >= SLOW_PICKUP_MIN_PARCELS and slow_share >= SLOW_PICKUP_SHARE:
            text = Text(gettext_noop(
                "%(percent)s%% of %(carrier)s parcels were first scanned more than %(hours)s h after booking "
                "(%(slow)s of %(parcels)s): book pickups earlier or move volume to another carrier."
            ), percent=_percent(slow_share), carrier=row["carrier"], hours=PICKUP_HOURS, slow=row["slow_pickup"],
               parcels=row["parcels"])  # fmt: skip
            found.append((1 + slow_share, "slow_pickup", text))
        rate, usual = row.get("rate") or 0, row.get("usual_rate")
        if (
            row["parcels"] >= EXCEPTION_MIN_PARCELS and usual is not None
            and rate >= usual * EXCEPTION_RATE_FACTOR and rate - usual >= EXCEPTION_RATE_MIN_GAP
        ):  # fmt: skip
            text = Text(gettext_noop(
                "%(carrier)s had an exception on %(percent)s%% of this live's parcels (%(exceptional)s of "
                "%(parcels)s), against %(usual)s%% usually: raise it with the carrier or move volume to a "
                "steadier one."
            ), carrier=row["carrier"], percent=_percent(rate), exceptional=row["exceptional"],
               parcels=row["parcels"], usual=_percent(usual))  # fmt: skip
            found.append((1 + rate, "carrier_exceptions", text))
    dispatch = figures["dispatch"]
    late_share = dispatch.get("late_share") or 0
    if dispatch["parcels"] >= LATE_DISPATCH_MIN_PARCELS and late_share >= LATE_DISPATCH_SHARE:
        text = Text(gettext_noop(
            "%(percent)s%% of parcels were first scanned after their ship-by time (%(late)s of %(parcels)s): "
            "plan warehouse shifts and pickups for the live's volume, and file the platform's delay "
            "declaration before the deadline."
        ), percent=_percent(late_share), late=dispatch["late_scanned"], parcels=dispatch["parcels"])  # fmt: skip
        found.append((1 + late_share, "late_dispatch", text))
    choices = figures["oversold"]["choices"]
    answered = sum(n for choice, n in choices.items() if choice != "none")
    refunds = choices.get(BuyerChoice.REFUND, 0)
    if answered >= REFUND_MIN_ANSWERS and refunds / answered >= REFUND_SHARE:
        text = Text(gettext_noop(
            "%(percent)s%% of the oversold buyers who answered took a refund (%(refunds)s of %(answered)s): "
            "offer a swap from stock or a firm restock date first."
        ), percent=_percent(refunds / answered), refunds=refunds, answered=answered)  # fmt: skip
        found.append((refunds / answered, "refunds", text))
    found.sort(key=lambda item: -item[0])
    return [{"kind": kind, **text.as_data()} for _, kind, text in found[:RECOMMENDATIONS_SHOWN]]


def _percent(share: float) -> float | int:
    value = round(share * 100, 1)
    return int(value) if value == int(value) else value


def recommendation_text(recommendation: dict[str, Any]) -> str:
    """One stored recommendation in the active language ("" when it no longer renders)."""
    text = Text.from_data(recommendation)
    if text is None:
        return ""
    try:
        return text.render()
    except (KeyError, ValueError, TypeError):
        return ""


# --- writing and telling -------------------------------------------------------------------------------


def live_review_write(
    *, session: LiveSession, actor: AbstractBaseUser | None = None, now: datetime | None = None
) -> LiveReview:
    """Write the session's review now, replacing the one written before (there is one per session).

    Holds the session's row while it computes, so two writers take turns; keeps `notified_at` of the review
    it replaces, so supervisors are told once per session. `actor` None: the schedule or a command.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            LiveSession.objects.select_for_update(of=("self",)).select_related("store").get(pk=session.pk)
        )
        return _write(locked, actor=actor, now=now)


def _write(session: LiveSession, *, actor: AbstractBaseUser | None, now: datetime) -> LiveReview:
    figures = review_figures(session, now=now)
    recommendations = review_recommendations(figures)
    review, _created = LiveReview.objects.update_or_create(
        live_session=session,
        defaults={
            "figures": figures,
            "recommendations": recommendations,
            "written_at": now,
            "written_by": actor,
        },
    )
    return review


@dataclass
class DueResult:
    written: int = 0
    notified: int = 0


def live_reviews_write_due(*, now: datetime | None = None, limit: int = DUE_BATCH) -> DueResult:
    """Write the review of every session that ended REVIEW_AFTER ago or more and has none, then email the
    supervisors of the reviews not yet announced.

    Safe to run twice or concurrently: a session is claimed with SKIP LOCKED (another worker's is left to
    it) and checked again for a review under the lock; the one-to-one keeps a second row out whatever
    happens. An email is claimed before it is sent (`notified_at`) and released if sending fails, so it is
    sent once, and again only after a failure.
    """
    now = now or timezone.now()
    result = DueResult()
    due = list(
        LiveSession.objects.filter(ended_at__lte=now - REVIEW_AFTER, review__isnull=True)
        .order_by("ended_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        with transaction.atomic():
            session = (
                LiveSession.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("store")
                .filter(pk=pk)
                .first()
            )
            if session is None or LiveReview.objects.filter(live_session_id=pk).exists():
                continue
            _write(session, actor=None, now=now)
            result.written += 1
    result.notified = live_reviews_notify(now=now)
    return result


def live_reviews_notify(*, now: datetime | None = None) -> int:
    """Email the link to each review not yet announced (of a session that ended within NOTIFY_WITHIN plus
    REVIEW_AFTER) to the supervisors and admins of its store who have an address. Returns the reviews
    announced."""
    now = now or timezone.now()
    waiting = LiveReview.objects.filter(
        notified_at__isnull=True, live_session__ended_at__gte=now - REVIEW_AFTER - NOTIFY_WITHIN
    ).values_list("pk", flat=True)
    told = 0
    for pk in list(waiting):
        if not LiveReview.objects.filter(pk=pk, notified_at__isnull=True).update(notified_at=now):
            continue  # another worker claimed it
        review = LiveReview.objects.select_related("live_session__store").get(pk=pk)
        try:
            _email(review)
        except Exception:
            LiveReview.objects.filter(pk=pk, notified_at=now).update(notified_at=None)  # the next run retries
            raise
        told += 1
    return told


def review_recipients(store_id: int) -> list[str]:
    return sorted(
        set(
            Membership.objects.filter(store_id=store_id, role__in=MANAGER_ROLES, user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )


def review_url(review: LiveReview) -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}{reverse('reports:live_review', args=[review.live_session_id])}"


def _email(review: LiveReview) -> None:
    session = review.live_session
    recipients = review_recipients(session.store_id)
    if not recipients:
        return
    context = {
        "session": session,
        "review": review,
        "url": review_url(review),
        "sections": review_sections(review.figures)[:3],
        "recommendations": [recommendation_text(r) for r in review.recommendations],
    }
    subject = _("Post-live review: %(title)s") % {"title": session.title}
    send_mail(
        subject=f"[Afterdesk] {subject}",
        message=render_to_string("reports/email/live_review.txt", context),
        from_email=None,
        recipient_list=recipients,
    )


# --- showing the figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str  # the same figure has the same key in every review: the comparison lines them up by it
    label: str
    value: str


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    rows: list[Row]


def _pct(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _hours(value: float | None) -> str:
    return "—" if value is None else _("%(hours)s h") % {"hours": f"{value:.1f}"}


def review_sections(figures: dict[str, Any]) -> list[Section]:
    """The figures as labelled rows, in the active language: what the page, the PDF, the email and the
    comparison show."""
    if not figures:
        return []
    currency = figures["session"].get("currency", "")
    orders, oversold, dispatch = figures["orders"], figures["oversold"], figures["dispatch"]
    choice_labels = {**dict(BuyerChoice.choices), "none": _("No answer yet")}
    type_labels, kind_labels = dict(CaseType.choices), dict(CompensationKind.choices)
    category_labels = dict(ComplaintCategory.choices)
    sections = [
        Section("orders", _("Orders"), [
            Row("orders.count", _("Orders"), str(orders["count"])),
            Row("orders.cancelled", _("Cancelled"), str(orders["cancelled"])),
            Row("orders.amount", _("Amount"), f"{currency} {orders['amount']}"),
        ]),
        Section("oversold", _("Oversold"), [
            Row("oversold.orders", _("Oversold orders"), str(oversold["orders"])),
            Row("oversold.units", _("Units sold past the allocation or stock"), str(oversold["units"])),
            *[
                Row(f"oversold.choice.{choice}", _("Buyers who chose: %(choice)s") % {"choice": choice_labels[choice]},
                    str(n))
                for choice, n in oversold["choices"].items() if choice in choice_labels
            ],
        ]),
        Section("dispatch", _("Dispatch"), [
            Row("dispatch.parcels", _("Parcels"), str(dispatch["parcels"])),
            Row("dispatch.scanned", _("Picked up (carrier's first scan)"), str(dispatch["scanned"])),
            Row("dispatch.median", _("Booking to first scan, median"), _hours(dispatch["median_hours"])),
            Row("dispatch.p90", _("Booking to first scan, 90th percentile"), _hours(dispatch["p90_hours"])),
            Row("dispatch.within_24h", _("First scan within 24 h"),
                f"{_pct(dispatch['within_24h_share'])} ({dispatch['within_24h']})"),
            Row("dispatch.late", _("First scan after ship-by"),
                f"{_pct(dispatch['late_share'])} ({dispatch['late_scanned']})"),
            Row("dispatch.late_unshipped", _("Past ship-by, not handed over"), str(dispatch["late_unshipped"])),
        ]),
        Section("carriers", _("Exception rate by carrier"), [
            Row(f"carrier.{row['carrier']}", carrier_name(row["carrier"]) or _("No carrier"),
                _("%(rate)s (%(exceptional)s of %(parcels)s); usually %(usual)s") % {
                    "rate": _pct(row["rate"]), "exceptional": row["exceptional"], "parcels": row["parcels"],
                    "usual": _pct(row["usual_rate"]),
                })
            for row in figures["carriers"]
        ]),
        Section("complaints", _("Complaints by category"), [
            Row(f"complaints.{row['category']}", str(category_labels.get(row["category"], row["category"])),
                str(row["count"]))
            for row in figures["complaints"]
        ]),
        Section("compensation", _("Compensation executed"), [
            *[
                Row(f"compensation.{row['kind']}.{row['currency']}", str(kind_labels.get(row["kind"], row["kind"])),
                    f"{row['count']} · {row['currency']} {row['amount']}")
                for row in figures["compensation"]["by_kind"]
            ],
            Row("compensation.total", _("Total"), f"{currency} {figures['compensation']['total']}"),
        ]),
        Section("cases", _("Cases by type"), [
            Row(f"cases.{row['type']}", str(type_labels.get(row["type"], row["type"])),
                _("%(count)s (%(open)s open)") % {"count": row["count"], "open": row["open"]})
            for row in figures["cases"]
        ]),
    ]  # fmt: skip
    return sections


def problem_label(problem: dict[str, Any]) -> str:
    """ "Damaged · Flash Express", "Oversold · SKU-1 Serum": a top problem's name in the active language."""
    type_label = str(dict(CaseType.choices).get(problem["type"], problem["type"]))
    if problem["dimension"] == "carrier":
        other = carrier_name(problem["key"]) or _("No carrier")
    else:
        other = f"{problem['key']} {problem['name']}".strip()
    return f"{type_label} · {other}"


def review_compare_rows(reviews: list[LiveReview]) -> list[tuple[str, str, list[str]]]:
    """(section title, label, one value per review) for every row any of the reviews has, in order; "—"
    where a review has no such row (a carrier it did not use)."""
    order: list[tuple[str, str]] = []
    labels: dict[str, tuple[str, str]] = {}
    values: list[dict[str, str]] = []
    for review in reviews:
        mine: dict[str, str] = {}
        for section in review_sections(review.figures):
            for row in section.rows:
                if row.key not in labels:
                    labels[row.key] = (section.title, row.label)
                    order.append((section.key, row.key))
                mine[row.key] = row.value
        values.append(mine)
    section_order = [s.key for s in review_sections(reviews[0].figures)] if reviews else []
    order.sort(
        key=lambda item: section_order.index(item[0]) if item[0] in section_order else len(section_order)
    )
    return [(labels[key][0], labels[key][1], [mine.get(key, "—") for mine in values]) for _, key in order]
