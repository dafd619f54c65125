"""The demo behind the reports: four weeks of history, a past live session with its review written, and the
report rollups built by the seed (issue 23, "The demo shows all of it")."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db.models.functions import TruncDate
from django.urls import reverse

from cases.choices import CaseEventKind
from cases.models import Case
from cases.reporting.models import (
    ROLLUP_MODELS,
    CaseDay,
    DispatchDay,
    LiveReview,
    MoneyDay,
    OrderDay,
    ParcelDay,
)
from cases.reporting.review import REVIEW_AFTER, live_reviews_write_due
from cases.reporting.rollups import rollups_rebuild
from portal.demo import (
    DAMAGE_CLUSTER,
    DEFAULT_ORDERS,
    DEFAULT_SEED,
    HISTORY_DAYS,
    PAST_LIVE_TITLE,
    SETTLED_AFTER,
    STORES,
    WORSE_DAYS,
    WORSE_LANE,
    demo_plan,
    demo_seed,
)
from portal.models import Store
from tracking.models import LiveSession, Order

NOW = datetime(2026, 11, 12, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def plan():
    """The default demo's plan (the plan alone: no database), shared by the tests that only read it."""
    return demo_plan(orders=DEFAULT_ORDERS, seed=DEFAULT_SEED, now=NOW)


def rollup_rows() -> dict[str, list[tuple]]:
    """Every rollup row as a tuple of its values (ids aside), sorted: what a rebuild must give again."""
    rows = {}
    for model in ROLLUP_MODELS:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = sorted(model.objects.values_list(*fields), key=repr)
    return rows


def test_the_plan_has_four_weeks_of_everyday_orders_with_a_few_percent_of_exceptions(plan):

    for spec in STORES:
        regular = [o for o in plan.orders if o.store is spec and not o.live and not o.past_live]
        days = {o.placed_at.astimezone(ZoneInfo(spec.timezone)).date() for o in regular}
        assert len(days) >= HISTORY_DAYS + 1, spec.code  # every day of the four weeks, and today so far
        recent = sum(1 for o in regular if o.placed_at >= NOW - timedelta(days=3))
        assert recent < len(regular) * 0.2  # spread over the weeks, not piled up in the last days
    settled = [o for o in plan.orders if o.settled and not o.past_live and o.shipment]
    usual = [o for o in settled if not (o.store.code == WORSE_LANE[0] and o.shipment.carrier == WORSE_LANE[1]
                                        and o.buyer.province == WORSE_LANE[2])]  # fmt: skip
    share = sum(1 for o in usual if o.case) / len(usual)
    assert 0.02 <= share <= 0.07, share  # a few percent, as in a store's ordinary weeks
    assert sum(1 for o in plan.orders if o.cancelled and not o.past_live) > 0


def test_the_plan_makes_one_lane_visibly_worse_in_the_last_week(plan):
    store, carrier, province = WORSE_LANE

    def rate(since: datetime, until: datetime, *, lane: bool) -> tuple[float, int]:
        parcels = [
            o for o in plan.orders
            if o.store.code == store and o.shipment and since <= o.shipment.booked_at < until
            and (o.shipment.carrier == carrier and o.buyer.province == province) == lane
        ]  # fmt: skip
        return sum(1 for o in parcels if o.case) / len(parcels), len(parcels)

    week = NOW - timedelta(days=WORSE_DAYS)
    lane_now, parcels_now = rate(week, NOW, lane=True)
    lane_before, parcels_before = rate(NOW - timedelta(days=HISTORY_DAYS), week, lane=True)
    others_now, _ = rate(week, NOW, lane=False)
    assert parcels_now >= 20 and parcels_before >= 60  # enough parcels for a rate to mean something
    assert lane_now >= 0.1 and lane_now >= 2.5 * lane_before, (lane_now, lane_before)
    assert lane_now >= 2 * others_now, (lane_now, others_now)


def test_the_history_is_over_by_the_demos_now_and_each_case_went_in_order(plan):

    settled = [o for o in plan.orders if o.settled]
    assert all(o.placed_at < NOW - SETTLED_AFTER for o in settled if not o.past_live)
    for order in settled:
        if order.shipment is not None:
            events = order.shipment.events
            assert events and events[-1].checkpoint_at < NOW and not order.shipment.onward
            assert events[-1].tag in {"Delivered", "Exception"}
    cases = plan.settled_cases
    assert Counter(c.type for c in cases).keys() >= {
        "pickup_overdue", "stalled_in_transit", "delivery_failed", "damaged", "lost", "oversold",
    }  # fmt: skip
    assert any(c.outcome.reopened_at for c in cases)
    assert any(c.outcome.claim and c.outcome.claim.status == "paid" for c in cases)
    for case in cases:
        out = case.outcome
        assert case.opened_at < out.resolved_at < NOW, case
        if out.contact_at:
            assert case.opened_at <= out.contact_at <= out.resolved_at
        if out.reopened_at:
            assert out.first_resolved_at < out.reopened_at < out.resolved_at
        for comp in out.compensations:
            assert (
                case.opened_at <= comp.proposed_at <= comp.approved_at <= comp.executed_at <= out.resolved_at
            )
    # Some buyers were contacted proactively, some wrote first; some cases met their SLA, some did not.
    assert any(c.outcome.contact_by is None for c in cases) and any(c.outcome.complaint_at for c in cases)
    assert any(c.outcome.resolved_at - c.opened_at > timedelta(hours=72) for c in cases)


def test_the_past_live_session_has_oversold_buyers_choices_and_a_damage_cluster(plan):

    assert plan.past_ended_at < NOW - REVIEW_AFTER
    past = [o for o in plan.orders if o.past_live]
    oversold = [o for o in past if o.oversold]
    assert {o.case.outcome.choice for o in oversold} >= {"wait", "swap", "refund"}
    for order in oversold:
        refunded = order.case.outcome.choice == "refund"
        assert order.cancelled == refunded and (order.shipment is None) == refunded
    carrier, sku = DAMAGE_CLUSTER
    damaged = Counter(
        o.buyer.province for o in past
        if o.case and o.case.type == "damaged" and o.shipment.carrier == carrier
        and any(line.sku_code == sku for line in o.lines)
    )  # fmt: skip
    assert max(damaged.values()) >= 3


@pytest.mark.django_db
def test_the_seeded_demo_has_its_reports_at_once_and_a_second_run_changes_none_of_them(client):
    with time_machine.travel(NOW, tick=False):
        demo_seed(orders=120, seed=7, now=NOW)

    # Four weeks of orders in each store, and where its parcels start from.
    for store in Store.objects.all():
        assert store.ship_from
        days = Order.objects.filter(store=store).annotate(day=TruncDate("placed_at", tzinfo=store.tzinfo))
        assert days.values("day").distinct().count() >= 28, store.code
    # The history's cases were worked and resolved in the past, with their timeline.
    history = Case.objects.filter(opened_at__lt=NOW - SETTLED_AFTER)
    assert history.exists() and not history.exclude(status="resolved").exists()
    assert history.filter(first_contact_at__isnull=False).count() > history.count() / 2
    for case in history.prefetch_related("events"):
        kinds = [e.kind for e in case.events.all()]
        assert kinds[0] == CaseEventKind.RAISED and kinds[-1] in {
            CaseEventKind.RESOLVED,
            CaseEventKind.UPDATED,
        }
        assert case.resolved_at <= NOW
    # A live session that ended over 48 h ago, its review written by the schedule and its supervisors told.
    past = LiveSession.objects.get(title=PAST_LIVE_TITLE)
    assert past.ended_at < NOW - REVIEW_AFTER
    review = LiveReview.objects.get(live_session=past)
    assert review.written_by is None and review.notified_at is not None
    assert past.ended_at + REVIEW_AFTER <= review.written_at < NOW
    assert (
        review.figures["orders"]["count"]
        == Order.objects.filter(live_session=past).exclude(status="cancelled").count()
    )
    mail.outbox.clear()
    with time_machine.travel(NOW, tick=False):
        due = live_reviews_write_due(now=NOW)
    assert (due.written, due.notified) == (0, 0) and not mail.outbox
    # The report rollups are built, and are what a rebuild from the raw tables gives.
    for model in (ParcelDay, CaseDay, OrderDay, DispatchDay):
        assert set(model.objects.values_list("store__code", flat=True)) == {"tts-my", "shopee-th"}, model
    assert MoneyDay.objects.exists()
    built = rollup_rows()
    rollups_rebuild()
    assert rollup_rows() == built

    with time_machine.travel(NOW + timedelta(hours=5), tick=False):
        again = demo_seed(orders=120, seed=7)

    assert not again.created_anything and again.rollup_days == 0
    assert rollup_rows() == built
    assert LiveReview.objects.get().written_at == review.written_at
    # The pages show it.
    logged_in = client.post(reverse("login"), {"username": "supervisor", "password": settings.DEMO_PASSWORD})
    assert logged_in.status_code == 302
    with time_machine.travel(NOW, tick=False):
        assert client.get(reverse("reports:live_review", args=[past.pk])).status_code == 200
        assert client.get(reverse("reports:war_room", args=[past.pk])).status_code == 200
        assert client.get(reverse("reports:health_store", args=["shopee-th"])).status_code == 200
