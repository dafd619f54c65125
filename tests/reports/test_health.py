"""Store health (cases.reporting.health and its pages): the platforms' formulas against their own worked
examples, a small store whose every figure is computed by hand (today, projected, the breach date, the save
list), store scoping, agents refused, the thresholds page, and the store page's pinned query count."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from cases.models import Case
from cases.reporting.health import (
    BREACH,
    WARNING,
    above,
    late_dispatch_rate,
    late_shipment_rate,
    non_fulfilment_rate,
    pending_by_day,
    pending_days,
    pending_orders,
    project,
    save_list,
    store_health,
    thresholds_for_store,
)
from cases.reporting.models import HealthMetric, HealthThreshold
from cases.reporting.rollups import rollups_rebuild
from cases.services import case_raise
from tests.factories import make_membership, make_order, make_shipment, make_store, make_user
from tracking.models import Order

KL = ZoneInfo("Asia/Kuala_Lumpur")  # the factories' store time zone (UTC+8, no DST)
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Kuala Lumpur
TODAY = date(2026, 11, 20)
TIKTOK_LDR = "https://seller-us.tiktok.com/university/essay?knowledge_id=3668989549299511"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=KL)


def dispatched(store, day: int, n: int, late: int = 0, **order_fields) -> None:
    """n parcels whose first carrier scan is at 10:00 that day, `late` of them after their ship-by."""
    scan = at(day, 10)
    for i in range(n):
        placed = scan - timedelta(hours=60 if i < late else 10)  # ship-by = placed + 48 h
        order = make_order(store=store, placed_at=placed, **{"status": "shipped", **order_fields})
        make_shipment(order=order, accepted_at=scan)


def pending(store, ship_by: datetime, **fields):
    """An order still to ship, due at `ship_by`."""
    placed = min(ship_by - timedelta(hours=48), NOW - timedelta(hours=1))
    return make_order(store=store, placed_at=placed, ship_by=ship_by, **fields)


def log_in(client, store, role: str, username: str):
    """A user with this role in the store, logged in; returns the user."""
    user = make_user(username)
    make_membership(user=user, store=store, role=role)
    client.force_login(user)
    return user


# ------------------------------------------------------------------------- the platforms' worked examples


def test_late_dispatch_rate_is_tiktoks_worked_example():
    # TikTok Shop, Guide to Late Dispatch Rate: 200 orders dispatched in the evaluation period, 25 of them
    # after the dispatch SLA: 25 / 200 = 0.125, 12.5 %, above the 10 % enforcement level.
    # https://seller-us.tiktok.com/university/essay?knowledge_id=3668989549299511
    assert late_dispatch_rate(25, 200) == Decimal("12.50")
    assert above(25, 200, Decimal("10")) and above(25, 200, Decimal("4"))
    # "Recommended at most 4 %": exactly 4 % is not above it.
    assert late_dispatch_rate(8, 200) == Decimal("4.00") and not above(8, 200, Decimal("4"))
    assert late_dispatch_rate(0, 0) is None and not above(0, 0, Decimal("4"))


def test_shopee_rates_are_their_worked_examples():
    # Late Shipment Rate = late / shipped, past 7 days: 5 / 20 = 25 % (https://www.sellerby.com/p/3466.html;
    # definition: https://edu.bullmart.com/selling-and-billing-seller-performance-inner/).
    assert late_shipment_rate(5, 20) == Decimal("25.00")
    # Non-Fulfilment Rate: Seller A, 250 orders, 40 not fulfilled: 40 / 250 = 16 %, above the 10 % target
    # (https://www.shopeefunnel.online/2023/06/apakah-non-fulfilment-rate-nfr.html).
    assert non_fulfilment_rate(40, 250) == Decimal("16.00") and above(40, 250, Decimal("10"))
    assert not above(25, 250, Decimal("10"))  # exactly 10 % is not above the level


def test_the_platforms_defaults_are_written_by_the_migration(store):
    defaults = {
        (t.platform, t.metric): t for t in HealthThreshold.objects.filter(store__isnull=True)
    }  # fmt: skip
    ldr = defaults["tiktok_shop", HealthMetric.LATE_DISPATCH]
    assert (ldr.window_days, ldr.recommended_percent, ldr.penalty_percent) == (7, Decimal("4"), Decimal("10"))
    assert ldr.source == TIKTOK_LDR
    assert defaults["shopee", HealthMetric.LATE_SHIPMENT].penalty_percent == Decimal("10")
    assert defaults["shopee", HealthMetric.NON_FULFILMENT].penalty_percent == Decimal("10")
    assert thresholds_for_store(store)[HealthMetric.LATE_DISPATCH].own is False


def test_the_projection_walks_the_rolling_window():
    history = {date(2026, 11, 14): (10, 0), date(2026, 11, 20): (10, 1)}
    added = {date(2026, 11, 21): (2, 2)}
    p = project(history, added, today=TODAY, until=date(2026, 11, 21), window_days=7, penalty=Decimal("10"))
    # 11-20: 1 / 20 = 5 %; 11-21: the 14th leaves the window: (1 + 2) / (10 + 2) = 25 %.
    assert (p.on, p.late, p.total, p.rate, p.breach_on) == (
        date(2026, 11, 21),
        3,
        12,
        Decimal("25.00"),
        date(2026, 11, 21),
    )


# --------------------------------------------------------------------------- a small store, by hand


@pytest.fixture
def tiktok_store(store):
    """store-a (TikTok Shop, Asia/Kuala_Lumpur) on 2026-11-20 at 12:00. Every figure below by hand:

    first carrier scans (the window is 11-14 .. 11-20):
      11-13: 5, all late (before the window: never counted)
      11-16: 5, on time;  11-18: 20, 1 late;  11-20: 5, on time (one of them an order the storefront has not
      marked shipped yet: dispatched all the same, so not pending)
      now: 1 late / 30 = 3.33 %  (recommended <= 4 %, penalised > 10 %)

    orders still to ship (by ship-by):
      P1 11-19 10:00, P2 11-20 11:00     past their ship-by: late for sure, counted today
      P3 11-21 02:00, P4 11-21 05:00, P5 11-21 09:00, P6 11-21 11:00   due in the next 24 h
      P7 11-22 15:00                     due later
      stale 11-01 (more than 7 days late: left out), later 11-30 (after the window ahead: left out)
    """
    dispatched(store, 13, 5, late=5)
    dispatched(store, 16, 5)
    dispatched(store, 18, 20, late=1)
    dispatched(store, 20, 4)
    unmarked = make_order(store=store, placed_at=at(20, 8), ship_by=at(20, 18))  # awaiting shipment
    make_shipment(order=unmarked, accepted_at=at(20, 10))
    orders = {
        "P1": pending(store, at(19, 10)),
        "P2": pending(store, at(20, 11), status="on_hold"),
        "P3": pending(store, at(21, 2)),
        "P4": pending(store, at(21, 5)),
        "P5": pending(store, at(21, 9)),
        "P6": pending(store, at(21, 11)),
        "P7": pending(store, at(22, 15)),
        "stale": pending(store, at(1, 10)),
        "later": pending(store, at(30, 10)),
    }
    # Not to ship: cancelled, or marked shipped by the storefront (their parcels await their first scan).
    pending(store, at(20, 20), status="cancelled")
    shipped = pending(store, at(20, 20), status="shipped")
    make_shipment(order=shipped, accepted_at=None)
    # A parcel booked for P4, no scan yet; an open case on P5 and a resolved one on P3.
    make_shipment(order=orders["P4"], carrier="flash-my", tracking_number="FL0001", accepted_at=None)
    case, _ = case_raise(type="oversold", order=orders["P5"], summary="Sold beyond stock")
    done, _ = case_raise(type="oversold", order=orders["P3"], summary="Sold beyond stock")
    Case.objects.filter(pk=done.pk).update(status="resolved")
    rollups_rebuild([store.pk])
    store.orders_by_name = orders
    store.open_case = case
    store.done_case = done
    return store


@pytest.mark.django_db
def test_a_small_store_by_hand(tiktok_store, other_store):
    pending(other_store, at(20, 15))  # another store's order due in 3 h
    health = store_health(tiktok_store, now=NOW)
    (ldr,) = health.metrics
    assert ldr.metric == HealthMetric.LATE_DISPATCH
    assert (ldr.first, ldr.last) == (date(2026, 11, 14), TODAY)
    assert (ldr.late, ldr.total, ldr.rate) == (1, 30, Decimal("3.33"))

    # By ship-by day: 11-19 (1 overdue), 11-20 (1 overdue), 11-21 (4, due in 24 h), 11-22 (1), stale, later.
    by_day = {p.day: (p.orders, p.overdue, p.due_soon) for p in pending_by_day(tiktok_store, now=NOW)}
    assert by_day == {
        date(2026, 11, 1): (1, 1, 0), date(2026, 11, 19): (1, 1, 0), date(2026, 11, 20): (1, 1, 0),
        date(2026, 11, 21): (4, 0, 4), date(2026, 11, 22): (1, 0, 0), date(2026, 11, 30): (1, 0, 0),
    }  # fmt: skip
    assert (health.overdue, health.due_soon, health.pending, health.stale, health.later) == (2, 4, 7, 1, 1)

    # Every pending order on time (only P1 and P2 late, counted today):
    #   11-20: window 14..20 = 30 + 2 -> 3 / 32 = 9.375 %   not above 10
    #   11-21: window 15..21 = 30 + 2 + 4 -> 3 / 36           the 13th was never in
    #   11-22: window 16..22 = 30 + 2 + 4 + 1 -> 3 / 37 = 8.11 %
    assert (ldr.on_time.on, ldr.on_time.late, ldr.on_time.total) == (date(2026, 11, 22), 3, 37)
    assert ldr.on_time.rate == Decimal("8.11") and ldr.on_time.breach_on is None
    # The 4 due in 24 h slip too: 11-20 3 / 32 (not above 10), 11-21 (1 + 2 + 4) / 36 = 19.4 %: breach.
    assert (ldr.slip.late, ldr.slip.total, ldr.slip.rate) == (7, 37, Decimal("18.92"))
    assert ldr.slip.breach_on == date(2026, 11, 21)
    assert ldr.status == WARNING  # 3.33 % is under 4 %, but a breach is projected
    assert health.status == WARNING

    rows = list(save_list(tiktok_store, now=NOW, hours=24))
    names = {o.pk: name for name, o in tiktok_store.orders_by_name.items()}
    assert [names[o.pk] for o in rows] == ["P3", "P4", "P5", "P6"]  # by deadline; never another store's
    assert [c.pk for c in rows[2].open_cases] == [tiktok_store.open_case.pk] and rows[0].open_cases == []
    assert [s.tracking_number for s in rows[1].shipments.all()] == ["FL0001"]
    assert [names[o.pk] for o in save_list(tiktok_store, now=NOW, hours=72)][-1] == "P7"
    assert [names[o.pk] for o in save_list(tiktok_store, now=NOW, hours=24, late=True)] == ["P1", "P2"]


@pytest.mark.django_db
def test_the_store_page_shows_the_figures_and_the_save_list(client, tiktok_store):
    log_in(client, tiktok_store, "supervisor", "sue")
    url = reverse("reports:health_store", args=[tiktok_store.code])
    with time_machine.travel(NOW, tick=False):
        page = client.get(url).content.decode()
        late = client.get(url + "?late=1").content.decode()
        bad = client.get(url + "?hours=5")
    assert 'data-status="warning"' in page
    assert 'data-figure="now">3.33 %' in page and 'data-figure="on-time">8.11 %' in page
    assert 'data-figure="slip">18.92 %' in page and "2026-11-21" in page
    orders = tiktok_store.orders_by_name
    positions = [page.index(f'data-order="{orders[n].platform_order_id}"') for n in ("P3", "P4", "P5", "P6")]
    assert positions == sorted(positions)
    assert orders["P7"].platform_order_id not in page and orders["P1"].platform_order_id not in page
    assert reverse("cases:detail", args=[tiktok_store.open_case.pk]) in page
    assert reverse("cases:detail", args=[tiktok_store.done_case.pk]) not in page
    assert "update its handling time in TikTok Shop Seller Center" in page
    assert "2026-11-21 02:00" in page  # the deadline, in the store's time
    assert orders["P1"].platform_order_id in late and orders["P3"].platform_order_id not in late
    assert orders["stale"].platform_order_id not in late
    assert bad.status_code == 400 and b'role="alert"' in bad.content


@pytest.mark.django_db
def test_a_shopee_store_by_hand(client, other_store):
    shop = make_store(code="shopee-my", name="Shopee Shop", platform="shopee")
    # 20 orders placed in the window, 3 of them cancelled: NFR 3 / 20 = 15 % > 10 %: breach.
    for _ in range(3):
        make_order(store=shop, placed_at=at(17, 9), status="cancelled")
    dispatched(shop, 18, 10, late=1)  # also 10 orders placed 11-18 or -16
    for _ in range(7):
        make_order(store=shop, placed_at=at(19, 9), status="delivered")
    make_order(store=shop, placed_at=at(10, 9), status="cancelled")  # before the window
    rollups_rebuild([shop.pk])
    health = store_health(shop, now=NOW)
    lsr, nfr = health.metrics
    # LSR: 1 / 10 = 10 %: not above the 10 % penalty level, above the 5 % recommended one.
    assert (lsr.metric, lsr.late, lsr.total, lsr.rate, lsr.status) == (
        "late_shipment",
        1,
        10,
        Decimal("10.00"),
        WARNING,
    )
    assert lsr.on_time.rate == Decimal("10.00") and lsr.on_time.breach_on is None  # nothing pending
    assert (nfr.metric, nfr.late, nfr.total, nfr.rate, nfr.status) == (
        "non_fulfilment",
        3,
        20,
        Decimal("15.00"),
        BREACH,
    )
    assert not nfr.projected and health.status == BREACH

    user = log_in(client, shop, "admin", "ada")
    make_membership(user=user, store=other_store, role="supervisor")
    with time_machine.travel(NOW, tick=False):
        index = client.get(reverse("reports:health")).content.decode()
        page = client.get(reverse("reports:health_store", args=[shop.code])).content.decode()
    assert 'data-store="shopee-my" data-metric="non_fulfilment" data-status="breach"' in index
    assert 'data-store="store-b" data-metric="late_dispatch" data-status="ok"' in index
    assert "Shopee has no per-order delay declaration" not in page  # nothing due: no reminder
    assert 'data-figure="now">15.00 %' in page


# --------------------------------------------------------------------------------------------- scoping


@pytest.mark.django_db
def test_another_stores_health_is_a_404(client, store, other_store):
    pending(other_store, NOW + timedelta(hours=2))
    user = log_in(client, store, "supervisor", "sue")
    make_membership(user=user, store=make_store(code="store-c"), role="agent")
    for code in ("store-b", "store-c", "no-such"):
        assert client.get(reverse("reports:health_store", args=[code])).status_code == 404
        assert client.get(reverse("reports:thresholds", args=[code])).status_code == 404
    index = client.get(reverse("reports:health")).content.decode()
    assert 'data-store="store-a"' in index and "store-b" not in index and "store-c" not in index


@pytest.mark.django_db
def test_agents_cannot_see_store_health(agent_client, store):
    assert agent_client.get(reverse("reports:health")).status_code == 403
    assert agent_client.get(reverse("reports:health_store", args=[store.code])).status_code == 403
    assert agent_client.get(reverse("reports:thresholds", args=[store.code])).status_code == 403
    response = agent_client.post(
        reverse("reports:thresholds", args=[store.code]), {"late_dispatch-own": "on", "late_dispatch-window_days": "7",
                                                           "late_dispatch-penalty_percent": "50"},
    )  # fmt: skip
    assert response.status_code == 403 and not HealthThreshold.objects.filter(store=store).exists()


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_log_in(client, store):
    response = client.get(reverse("reports:health_store", args=[store.code]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# ------------------------------------------------------------------------------------------ thresholds


def levels(**values) -> dict[str, str]:
    return {f"late_dispatch-{k}": v for k, v in values.items()}


@pytest.mark.django_db
def test_a_store_admin_sets_and_clears_the_stores_own_levels(client, tiktok_store):
    log_in(client, tiktok_store, "admin", "ada")
    url = reverse("reports:thresholds", args=[tiktok_store.code])
    assert b'id="thresholds-form"' in client.get(url).content
    response = client.post(
        url, levels(own="on", window_days="7", recommended_percent="2", penalty_percent="3")
    )
    assert response.status_code == 302
    own = HealthThreshold.objects.get(store=tiktok_store)
    assert (own.platform, own.metric, own.window_days) == ("tiktok_shop", "late_dispatch", 7)
    assert (own.recommended_percent, own.penalty_percent) == (Decimal("2"), Decimal("3"))
    health = store_health(tiktok_store, now=NOW)
    assert health.metrics[0].threshold.own and health.status == BREACH  # 3.33 % > 3 %
    assert 'data-own="yes"' in client.get(url).content.decode()

    assert client.post(url, levels(window_days="7", penalty_percent="3")).status_code == 302  # unticked
    assert not HealthThreshold.objects.filter(store=tiktok_store).exists()
    assert HealthThreshold.objects.filter(store__isnull=True, platform="tiktok_shop").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "values, field",
    [
        ({"recommended_percent": "12", "penalty_percent": "8", "window_days": "7"}, "recommended_percent"),
        ({"penalty_percent": "0", "window_days": "7"}, "penalty_percent"),
        ({"penalty_percent": "101", "window_days": "7"}, "penalty_percent"),
        ({"penalty_percent": "ten", "window_days": "7"}, "penalty_percent"),
        ({"penalty_percent": "8", "window_days": "0"}, "window_days"),
        ({"window_days": "7"}, "penalty_percent"),
    ],
)
def test_a_bad_level_is_a_form_error_and_writes_nothing(client, store, values, field):
    log_in(client, store, "admin", "ada")
    response = client.post(reverse("reports:thresholds", args=[store.code]), levels(own="on", **values))
    assert response.status_code == 400
    assert response.context["table"][0]["form"].errors[field]
    assert b'role="alert"' in response.content
    assert not HealthThreshold.objects.filter(store=store).exists()


@pytest.mark.django_db
def test_supervisors_see_the_thresholds_but_do_not_change_them(client, store):
    log_in(client, store, "supervisor", "sue")
    url = reverse("reports:thresholds", args=[store.code])
    page = client.get(url).content.decode()
    assert 'id="thresholds-readonly"' in page and 'id="thresholds-form"' not in page
    assert "penalised above 10 %" in page and TIKTOK_LDR in page
    response = client.post(url, levels(own="on", window_days="7", penalty_percent="50"))
    assert response.status_code == 403 and not HealthThreshold.objects.filter(store=store).exists()


# ---------------------------------------------------------------------------------------- query count


@pytest.mark.django_db
@pytest.mark.parametrize("orders", [10, 100])
def test_the_store_page_costs_the_same_queries_for_10_and_100_pending_orders(
    client, store, orders, django_assert_num_queries
):
    dispatched(store, 18, 5, late=1)
    for i in range(orders):
        order = pending(store, NOW + timedelta(hours=1 + i % 20))
        make_shipment(order=order, accepted_at=None)
        case_raise(type="oversold", order=order, summary="Sold beyond stock")
    rollups_rebuild([store.pk])
    log_in(client, store, "supervisor", "sue")
    url = reverse("reports:health_store", args=[store.code])
    # session, user, memberships, store, thresholds, pending by day, dispatch rollups, save-list count,
    # save-list page, its parcels, its open cases
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(11) as captured:
        response = client.get(url)
    assert response.status_code == 200
    assert response.content.decode().count('class="save-row"') == min(orders, 50)
    # The figures come from the rollups and the unshipped orders: no tracking event or case timeline is read.
    assert not [
        q for q in captured.captured_queries if "trackingevent" in q["sql"] or "caseevent" in q["sql"]
    ]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan is PostgreSQL's")
def test_the_pending_orders_are_read_through_the_partial_index(store):
    for hours in range(30):
        pending(store, NOW + timedelta(hours=hours))
    template = make_order(store=store, status="delivered")
    fields = {
        f.attname: getattr(template, f.attname) for f in Order._meta.concrete_fields if not f.primary_key
    }
    Order.objects.bulk_create(  # the shipped history the partial index leaves out
        [Order(**{**fields, "platform_order_id": f"H{i:06d}"}) for i in range(2000)]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tracking_order")
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows: make the planner show its index
        for queryset in (
            pending_days(store, now=NOW),
            pending_orders(store).filter(ship_by__lt=NOW).order_by("ship_by"),
            save_list(store, now=NOW, hours=24),
        ):
            plan = queryset.explain()
            assert "order_unshipped_ship_by_idx" in plan, plan


# ------------------------------------------------------------------------------------------ the admin


def staff(client, store, role: str, username: str):
    user = log_in(client, store, role, username)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.mark.django_db
def test_a_store_admin_sets_the_stores_level_in_the_django_admin(client, store):
    staff(client, store, "admin", "ada")
    default = HealthThreshold.objects.get(store__isnull=True, platform="tiktok_shop")
    form = {"store": store.pk, "platform": "shopee", "metric": "late_dispatch", "window_days": 7,
            "recommended_percent": "3", "penalty_percent": "8", "source": ""}  # fmt: skip

    refused = client.post("/admin/cases/healththreshold/add/", {**form, "recommended_percent": "9"})
    assert refused.status_code == 200 and not HealthThreshold.objects.filter(store=store).exists()
    assert client.post("/admin/cases/healththreshold/add/", form).status_code == 302
    own = HealthThreshold.objects.get(store=store)
    assert (own.platform, own.penalty_percent) == ("tiktok_shop", Decimal("8"))  # the store's own platform
    # The platform's default: seen, not changed, by a store admin.
    assert client.get(f"/admin/cases/healththreshold/{default.pk}/change/").status_code == 200
    response = client.post(f"/admin/cases/healththreshold/{default.pk}/change/", {**form, "store": ""})
    assert response.status_code == 403
    default.refresh_from_db()
    assert default.penalty_percent == Decimal("10")


@pytest.mark.django_db
def test_supervisors_do_not_change_thresholds_in_the_django_admin(client, store):
    staff(client, store, "supervisor", "sue")
    assert client.get("/admin/cases/healththreshold/").status_code == 403


@pytest.mark.django_db
def test_a_store_without_platform_metrics_still_has_its_save_list(client):
    shop = make_store(code="lazada-my", platform="lazada")
    due = pending(shop, NOW + timedelta(hours=3))
    log_in(client, shop, "supervisor", "sue")
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("reports:health_store", args=[shop.code])).content.decode()
        thresholds = client.get(reverse("reports:thresholds", args=[shop.code]))
    assert 'id="no-metrics"' in page and f'data-order="{due.platform_order_id}"' in page
    assert "file the platform's delay declaration before the deadline if it has one" in page
    assert thresholds.status_code == 200 and b"nothing to set" in thresholds.content
