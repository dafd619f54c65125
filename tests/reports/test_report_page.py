"""/reports/: every figure of a small store whose numbers are known by hand, scoping, CSV, agents' view."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cases.choices import CaseStatus, Resolution
from cases.compensation import Proposal, Result, compensation_propose, compensation_result
from cases.models import Case
from cases.reporting.rollups import rollups_rebuild
from cases.reporting.selectors import percentile
from cases.services import case_raise
from cases.workflow import case_transition
from tests.factories import (
    add_line,
    make_membership,
    make_order,
    make_shipment,
    make_sku,
    make_store,
    make_user,
)


def _at(store, day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=store.tzinfo)


def _parcels(store, day, count: int, *, carrier: str, province: str) -> list:
    parcels = []
    for _ in range(count):
        order = make_order(store=store, placed_at=_at(store, day, 8), province=province)
        parcels.append(make_shipment(order=order, carrier=carrier, booked_at=_at(store, day, 9)))
    return parcels


@pytest.fixture
def shop(store):
    """Two days of a store shipping from Selangor (local days d1 and d2, 3 and 2 days ago):
    d1: 4 parcels with flash-my to Penang (one lost), 2 with jt-my to Johor (one damaged); d2: 4 flash-my to
    Penang. The lost case: first contact 30 min after it opened, resolved 3 h after, a 10.00 coupon executed."""
    store.ship_from = "Selangor"
    store.save()
    boss = make_user("boss")
    make_membership(user=boss, store=store, role="supervisor")
    agent = make_user("agent-a")
    make_membership(user=agent, store=store, role="agent")
    today = timezone.localdate(timezone=store.tzinfo)
    d1, d2 = today - timedelta(days=3), today - timedelta(days=2)
    flash = _parcels(store, d1, 4, carrier="flash-my", province="Penang")
    jt = _parcels(store, d1, 2, carrier="jt-my", province="Johor")
    oil, rice = make_sku(store=store, code="OIL-5L"), make_sku(store=store, code="RICE-10")
    for parcel in flash + jt:  # d1's parcels carry the oil; jt's also the rice (two lines, one parcel)
        add_line(order=parcel.order, sku=oil, quantity=2)
    for parcel in jt:
        add_line(order=parcel.order, sku=rice)
    _parcels(store, d2, 4, carrier="flash-my", province="Penang")
    opened = _at(store, d1, 12)
    lost, _ = case_raise(type="lost", order=flash[0].order, shipment=flash[0], summary="lost", now=opened)
    case_raise(type="damaged", order=jt[0].order, shipment=jt[0], summary="damaged", now=opened)
    Case.objects.filter(pk=lost.pk).update(assignee=agent, first_contact_at=opened + timedelta(minutes=30))
    lost.refresh_from_db()
    coupon, _ = compensation_propose(case=lost, proposal=Proposal(kind="coupon", amount=Decimal("10.00")),
                                     actor=boss, idempotency_key="c1", now=opened + timedelta(hours=1))  # fmt: skip
    compensation_result(compensation=coupon, result=Result(executed=True, reference="P1"), actor=boss,
                        now=opened + timedelta(hours=2))  # fmt: skip
    case_transition(case=lost, to_status=CaseStatus.RESOLVED, resolution=Resolution.REFUNDED, actor=boss,
                    now=opened + timedelta(hours=3))  # fmt: skip
    rollups_rebuild()
    return {"boss": boss, "agent": agent, "d1": d1, "d2": d2}


def _rows(response, key):
    return response.context["report"].tables[key].rows


@pytest.mark.django_db
def test_every_exception_figure_of_a_store_known_by_hand(client, shop):
    client.force_login(shop["boss"])
    page = client.get("/reports/", {"period": "7d"})
    assert page.status_code == 200
    head = page.context["report"].headline
    assert (head["parcels"], head["exceptions"], head["exception_rate"]) == (10, 2, Decimal("20.00"))
    days = {row[0]: row[1:] for row in _rows(page, "exceptions_by_day")}
    assert days[shop["d1"]] == [6, 2, Decimal("33.33")]
    assert days[shop["d2"]] == [4, 0, Decimal("0.00")]
    assert len(days) == 7  # every day of the period, those without parcels too
    assert _rows(page, "exceptions_by_carrier") == [  # busiest first
        ["flash-my", 8, 1, Decimal("12.50")],
        ["jt-my", 2, 1, Decimal("50.00")],
    ]
    routes = {row[0]: row[1:] for row in _rows(page, "exceptions_by_route")}
    assert routes == {
        "Selangor → Penang": [8, 1, Decimal("12.50")],
        "Selangor → Johor": [2, 1, Decimal("50.00")],
    }
    heat = page.context["report"].heat
    assert heat["carriers"] == [
        ("flash-my", "flash-my"),
        ("jt-my", "jt-my"),
    ]  # codes no carrier name is known for
    assert [(cell["parcels"], cell["exceptions"]) for cell in heat["rows"][0][1]] == [(8, 1), (0, 0)]
    assert _rows(page, "exceptions_by_sku") == [  # a parcel counts once per SKU, whatever the quantity
        ["OIL-5L", 6, 2, Decimal("33.33")],
        ["RICE-10", 2, 1, Decimal("50.00")],
    ]
    rice = client.get("/reports/", {"period": "7d", "sku": "RICE-10", "type": "damaged"}).context["report"]
    assert (rice.headline["parcels"], rice.headline["exceptions"]) == (2, 1)
    # Filtered to a carrier and a case type, the figures follow.
    damaged = client.get("/reports/", {"period": "7d", "type": "damaged"}).context["report"].headline
    assert (damaged["parcels"], damaged["exceptions"]) == (10, 1)
    flash = client.get("/reports/", {"period": "7d", "carrier": "flash-my"}).context["report"].headline
    assert (flash["parcels"], flash["exceptions"], flash["exception_rate"]) == (8, 1, Decimal("12.50"))


@pytest.mark.django_db
def test_service_money_and_agent_figures_known_by_hand(client, shop):
    client.force_login(shop["boss"])
    page = client.get("/reports/", {"period": "7d"})
    service = {row[0]: row for row in _rows(page, "service_by_type")}
    lost = service["Lost"]
    # 30 minutes falls in the [30, 60) bucket: its median is read as the bucket's middle, 45 minutes.
    assert lost[1:4] == [1, 45.0, 57.0]
    assert lost[4] == 120 + (240 - 120) * 0.5  # resolved after 3 h: the [2 h, 4 h) bucket
    assert lost[6] == Decimal("100.00")  # first contact within the 24 h SLA
    assert lost[8] == Decimal("100.00")  # contacted before the buyer wrote
    assert service["Damaged"][1] == 1 and service["Damaged"][2] is None  # never contacted
    assert _rows(page, "backlog")[-1] == ["over 7 days", 0]
    assert sum(row[1] for row in _rows(page, "backlog")) == 1  # the damaged case, still open
    assert _rows(page, "money_by_kind") == [["Coupon", 1, Decimal("10.00"), "MYR"]]
    assert _rows(page, "net_cost") == [
        ["MYR", 10, Decimal("10.00"), Decimal("100.00")]
    ]  # 10.00 over 10 orders
    agents = _rows(page, "agents")
    assert agents[0][:3] == ["agent-a", 1, 1]
    assert agents[1] == [
        "boss",
        0,
        0,
        None,
        None,
        1,
        Decimal("10.00"),
    ]  # approved the coupon, no case of their own


def test_percentile_interpolates_inside_the_bucket():
    counts = [0] * 13
    counts[2] = 4  # four durations in [30, 60) minutes
    assert percentile(counts, 0.5) == 45.0
    assert percentile([0] * 13, 0.5) is None
    counts[12] = 4  # and four beyond a week: the p90 is "over a week"
    assert percentile(counts, 0.9) == 10080.0


@pytest.mark.django_db
def test_another_stores_figures_never_appear_on_the_page_or_in_the_csv(client, shop):
    other = make_store(code="other-shop", name="Other")
    _parcels(other, shop["d1"], 3, carrier="secret-carrier", province="Sabah")
    rollups_rebuild()
    client.force_login(shop["boss"])
    page = client.get("/reports/", {"period": "7d"})
    assert b"secret-carrier" not in page.content and b"Sabah" not in page.content
    assert page.context["report"].headline["parcels"] == 10
    body = b"".join(
        client.get("/reports/export/exceptions_by_carrier.csv", {"period": "7d"}).streaming_content
    )
    assert b"secret-carrier" not in body
    # Naming the other store in the URL does not widen the scope: it is not a choice.
    assert client.get("/reports/", {"store": "other-shop"}).status_code == 400


@pytest.mark.django_db
def test_the_csv_is_the_table_streamed_and_formula_safe(client, shop):
    client.force_login(shop["boss"])
    response = client.get("/reports/export/exceptions_by_route.csv", {"period": "7d"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Route", "Parcels shipped", "With an exception", "Exception rate"]
    assert ["Selangor → Penang", "8", "1", "12.50"] in rows
    assert client.get("/reports/export/nope.csv").status_code == 404


@pytest.mark.django_db
def test_an_agent_sees_only_their_own_figures(client, shop):
    client.force_login(shop["agent"])
    page = client.get("/reports/", {"period": "7d"})
    assert page.status_code == 200
    report = page.context["report"]
    assert list(report.tables) == ["agents"]
    assert [row[0] for row in report.tables["agents"].rows] == ["agent-a"]
    assert b"flash-my" not in page.content


@pytest.mark.django_db
def test_bad_filters_are_a_clear_400_and_an_outsider_a_404(client, shop):
    client.force_login(shop["boss"])
    bad = client.get("/reports/", {"period": "custom", "start": "2026-03-01", "end": "2026-02-01"})
    assert bad.status_code == 400 and "after its last day" in bad.content.decode()
    assert client.get("/reports/", {"start": "not a date", "end": "2026-02-01"}).status_code == 400
    outsider = make_user("nobody")
    client.force_login(outsider)
    assert client.get("/reports/").status_code == 404
    client.logout()
    assert client.get("/reports/").status_code == 302


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_for_ten_parcels_or_a_hundred(client, store, shop):
    client.force_login(shop["boss"])
    with CaptureQueriesContext(connection) as small:
        client.get("/reports/", {"period": "7d"})
    _parcels(store, shop["d2"], 90, carrier="kerry-my", province="Kedah")
    rollups_rebuild()
    with CaptureQueriesContext(connection) as large:
        client.get("/reports/", {"period": "7d"})
    assert len(large) == len(small)
    tables = {
        q["sql"].split('FROM "')[1].split('"')[0] for q in large.captured_queries if 'FROM "' in q["sql"]
    }
    assert not tables & {"cases_case", "tracking_trackingevent", "tracking_shipment", "cases_caseevent"}
