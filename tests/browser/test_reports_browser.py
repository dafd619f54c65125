"""A supervisor reads the reports of the demo shop: opens /reports/, narrows them to one carrier, exports a
table as CSV, reads the store's health, opens the war room of the demo's live session (its boards refresh
themselves) and its post-live review. In Chromium, in English and Chinese, with screenshots of each page.

The data: the demo at a small size (its stores, its live session with the flash deal sold past its
allocation, the cases raised on its parcels) plus three weeks of history on the TikTok store, so the trends
mean something: parcels with three carriers to three destinations, damaged parcels piling up on one carrier in
the last week, a lost parcel contacted, compensated with an executed coupon and resolved. All written before
the pages open (with SQLite the live server shares the test's connection)."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from cases.choices import CaseStatus, Resolution
from cases.compensation import Proposal, Result, compensation_propose, compensation_result
from cases.models import Case
from cases.reporting.review import live_review_write
from cases.reporting.rollups import day_bounds, rollups_rebuild, shipped_on
from cases.reporting.selectors import period_for
from cases.services import case_raise
from cases.workflow import case_transition
from portal.demo import FLASH_DEAL_SKU, LIVE_TITLE, TTS_MY, demo_seed
from portal.models import Store
from tests.factories import add_line, make_order, make_shipment
from tracking.carriers import carrier_name
from tracking.choices import OrderStatus
from tracking.models import SKU, LiveSession, Shipment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARRIER = "ninjavan-my"  # the one the supervisor narrows the reports to (typed as its code)
CARRIER_NAME = carrier_name(CARRIER, language="en")  # how the tables name it
HISTORY_DAYS = 21
# Parcels a day per carrier, and where they go: 4 x 7 a week keeps ninjavan-my above the trend's 20 a week.
DAILY = (("ninjavan-my", 4), ("jtexpress-my", 2), ("poslaju", 1))
DESTINATIONS = ("Pulau Pinang", "Johor", "Sabah")  # spelt as the demo's buyers spell them
DAMAGED_DAYS = {2, 4, 5, 9}  # days ago a ninjavan-my parcel arrived broken: three last week, one before


def _at(store: Store, day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=store.tzinfo)


def _history(store: Store, supervisor, agent) -> None:
    serum = SKU.objects.get(store=store, code="LUMI-VC-SER30")
    today = timezone.localdate(timezone=store.tzinfo)
    n = 0
    for ago in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=ago)
        for carrier, count in DAILY:
            for index in range(count):
                n += 1
                placed = _at(store, day, 9)
                order = make_order(
                    store=store, placed_at=placed, province=DESTINATIONS[n % len(DESTINATIONS)],
                    city="", status=OrderStatus.SHIPPED,
                )  # fmt: skip
                add_line(order=order, sku=serum, lot="LOT-2611A")
                parcel = make_shipment(
                    order=order, carrier=carrier, tracking_number=f"HIST{n:06d}", booked_at=_at(store, day, 11),
                    accepted_at=_at(store, day, 16), last_event_at=_at(store, day, 16), status="InTransit",
                )  # fmt: skip
                opened = _at(store, day + timedelta(days=2), 10)
                if carrier == CARRIER and index == 0 and ago in DAMAGED_DAYS:
                    case, _ = case_raise(type="damaged", order=order, shipment=parcel, now=opened,
                                         summary="Bottle arrived cracked")  # fmt: skip
                    if ago == 9:  # contacted within two hours, reshipped the next day
                        Case.objects.filter(pk=case.pk).update(assignee=agent,
                                                               first_contact_at=opened + timedelta(hours=2))  # fmt: skip
                        case.refresh_from_db()
                        case_transition(case=case, to_status=CaseStatus.RESOLVED, resolution=Resolution.RESHIPPED,
                                        actor=supervisor, now=opened + timedelta(days=1))  # fmt: skip
                    elif ago == 2:  # contacted, still being worked
                        Case.objects.filter(pk=case.pk).update(assignee=agent,
                                                               first_contact_at=opened + timedelta(minutes=20))  # fmt: skip
                if carrier == "jtexpress-my" and index == 0 and ago == 10:
                    lost, _ = case_raise(type="lost", order=order, shipment=parcel, now=opened,
                                         summary="Lost at the sorting hub")  # fmt: skip
                    Case.objects.filter(pk=lost.pk).update(assignee=agent,
                                                           first_contact_at=opened + timedelta(minutes=40))  # fmt: skip
                    lost.refresh_from_db()
                    coupon, _ = compensation_propose(
                        case=lost, proposal=Proposal(kind="coupon", amount=Decimal("15.00")), actor=supervisor,
                        idempotency_key="history-lost-coupon", now=opened + timedelta(hours=1),
                    )  # fmt: skip
                    compensation_result(compensation=coupon, result=Result(executed=True, reference="CPN-1"),
                                        actor=supervisor, now=opened + timedelta(hours=2))  # fmt: skip
                    case_transition(case=lost, to_status=CaseStatus.RESOLVED, resolution=Resolution.REFUNDED,
                                    actor=supervisor, now=opened + timedelta(hours=5))  # fmt: skip


@pytest.fixture
def shop(live_server):
    demo_seed(orders=80, seed=7)
    store = Store.objects.get(code=TTS_MY.code)
    users = get_user_model().objects
    supervisor, agent = users.get(username="supervisor"), users.get(username="agent")
    _history(store, supervisor, agent)
    rollups_rebuild()
    session = LiveSession.objects.filter(store=store, title=LIVE_TITLE).get()
    live_review_write(session=session, actor=supervisor)
    # The carrier's parcels the page's default period (28 days) counts: shipped on one of its store-local days.
    first, last = period_for("28d", today=timezone.localdate())
    carrier_parcels = shipped_on(
        Shipment.objects.filter(store=store, carrier=CARRIER),
        day_bounds(store, first)[0],
        day_bounds(store, last)[1],
    )
    return {
        "store": store,
        "session": session,
        "parcels": carrier_parcels.count(),
        "exceptions": carrier_parcels.filter(cases__isnull=False).distinct().count(),
    }


@pytest.fixture
def console_errors(page):
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def _log_in_as_supervisor(page, log_in) -> None:
    log_in("supervisor", settings.DEMO_PASSWORD)
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def _charts_drawn(page, scope: str) -> None:
    """Every table with data-chart in `scope` got its chart drawn (charts.js puts it in a .chart-box before)."""
    page.wait_for_function(
        """scope => {
            const tables = document.querySelectorAll(scope + " table[data-chart]");
            const canvases = [...document.querySelectorAll(scope + " .chart-box canvas")];
            return tables.length > 0 && canvases.length === tables.length
                && canvases.every(c => c._chart && c.width > 0 && c.height > 0);
        }""",
        arg=scope,
    )


def _to_chinese(page) -> None:
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()


def test_a_supervisor_reads_the_reports_narrows_them_to_a_carrier_and_exports_a_table(
    page, log_in, screenshot, shop, console_errors
):
    _log_in_as_supervisor(page, log_in)
    page.goto("/reports/")
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    headline = page.locator("#headline")
    for figure in ("exception-rate", "cases-opened", "contact-p50", "contact-sla", "proactive", "backlog"):
        expect(headline.locator(f'[data-figure="{figure}"]')).not_to_be_empty()
    expect(headline.locator('[data-figure="exception-rate"]')).to_have_text(re.compile(r"\d"))
    everything = int(re.search(r"of (\d+) parcels", headline.inner_text()).group(1))
    _charts_drawn(page, "#table-exceptions_by_day")
    _charts_drawn(page, "#table-exceptions_by_carrier")
    carriers = page.locator("#table-exceptions_by_carrier tbody th")
    expect(carriers.filter(has_text=CARRIER_NAME)).to_have_count(1)
    assert carriers.count() >= len(DAILY)  # the carriers of the history, and the demo's
    expect(page.locator("#table-worse_carriers")).to_be_visible()
    expect(page.locator("#table-money_by_kind tbody")).to_contain_text("Coupon")
    expect(page.locator("table.heat th", has_text="Selangor → Pulau Pinang")).to_be_visible()
    screenshot("reports-en")

    # One carrier: typed in the filter form, the URL carries it, every table follows.
    page.get_by_label("Carrier", exact=True).fill(CARRIER)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"[?&]carrier={CARRIER}(&|$)"))
    expect(carriers).to_have_count(1)
    expect(carriers).to_have_text(CARRIER_NAME)
    row = page.locator("#table-exceptions_by_carrier tbody tr")
    expect(row.locator("td").nth(0)).to_have_text(str(shop["parcels"]))
    expect(row.locator("td").nth(1)).to_have_text(str(shop["exceptions"]))
    assert f"of {shop['parcels']} parcels" in headline.inner_text() and shop["parcels"] < everything
    _charts_drawn(page, "#table-exceptions_by_carrier")
    screenshot("reports-carrier-en")

    # Its CSV: the table's header, then the filtered rows only.
    table = page.locator("#table-exceptions_by_carrier")
    header = [text.strip() for text in table.locator("thead th").all_text_contents()]
    with page.expect_download() as info:
        table.get_by_role("link", name="CSV").click()
    download = info.value
    assert f"carrier={CARRIER}" in download.url
    assert re.fullmatch(r"afterdesk-exceptions_by_carrier-\d{8}-\d{8}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(io.StringIO(file.read())))
    assert rows[0] == header == ["Carrier", "Parcels shipped", "With an exception", "Exception rate"]
    rate = (Decimal(shop["exceptions"] * 100) / shop["parcels"]).quantize(Decimal("0.01"))
    assert rows[1:] == [[CARRIER_NAME, str(shop["parcels"]), str(shop["exceptions"]), str(rate)]]

    # The store's health, from the reports' own navigation.
    page.get_by_role("link", name="Store health").click()
    expect(page).to_have_url(re.compile(r"/reports/health/$"))
    expect(page.locator(f'#health-stores tr.health-row[data-store="{TTS_MY.code}"]').first).to_be_visible()
    page.get_by_role("link", name=shop["store"].name, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/reports/health/{TTS_MY.code}/$"))
    expect(page.locator("#health-metrics section.card").first).to_be_visible()
    expect(page.locator("#health-status")).to_be_visible()
    expect(page.locator("#save-list")).to_be_visible()
    screenshot("health-en")

    _to_chinese(page)
    expect(page.get_by_role("link", name="← 店铺健康")).to_be_visible()
    screenshot("health-zh")
    page.goto(f"/reports/?carrier={CARRIER}")
    _charts_drawn(page, "#table-exceptions_by_carrier")
    page.goto("/reports/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    _charts_drawn(page, "#table-exceptions_by_day")
    expect(page.get_by_role("heading", name="报表", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="异常：来源分析")).to_be_visible()
    expect(page.locator("#headline .tile")).to_have_count(6)
    screenshot("reports-zh")
    assert console_errors == []


def test_a_supervisor_opens_the_war_room_of_the_demo_live_and_its_review(
    page, log_in, screenshot, shop, console_errors
):
    session = shop["session"]
    _log_in_as_supervisor(page, log_in)
    page.goto("/reports/")
    page.get_by_role("link", name="Live sessions").click()
    expect(page).to_have_url(re.compile(r"/reports/live/$"))
    listed = page.locator(f'tr[data-session="{session.pk}"]')
    expect(listed).to_contain_text(LIVE_TITLE)
    expect(listed.get_by_role("link", name="Read the review")).to_be_visible()
    listed.get_by_role("link", name="Open the war room").click()

    expect(page).to_have_url(re.compile(rf"/reports/live/{session.pk}/$"))
    expect(page.get_by_role("heading", name=LIVE_TITLE, level=1)).to_be_visible()
    boards = page.locator("#war-room-boards")
    assert boards.get_attribute("hx-trigger") == "poll" and boards.get_attribute("data-poll") == "20"
    assert boards.get_attribute("hx-get").endswith(f"/reports/live/{session.pk}/boards/")
    for board in ("Orders during the session", "Stock per SKU", "Dispatch", "Logistics exceptions",
                  "After-sales cases"):  # fmt: skip
        expect(boards.get_by_role("heading", name=board, exact=True)).to_be_visible()
    expect(boards.locator("#oversold-alert")).to_contain_text(FLASH_DEAL_SKU)
    expect(boards.locator(f'tr.oversold[data-sku="{FLASH_DEAL_SKU}"] .badge-bad')).to_have_text(
        re.compile(r"^\d+$")
    )
    expect(boards.locator("#tile-oversold")).to_have_class(re.compile(r"\btile-bad\b"))
    _charts_drawn(page, "#war-room-boards")
    screenshot("war-room-en")

    # The poll itself: the tab shown again asks for the boards at once; they are swapped in and redrawn.
    page.locator("#war-room-boards").evaluate("boards => boards.dataset.before = 'poll'")
    with page.expect_response(re.compile(rf"/reports/live/{session.pk}/boards/")) as answer:
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    assert answer.value.status == 200
    expect(page.locator("#war-room-boards:not([data-before])")).to_be_attached()  # swapped for new boards
    expect(page.locator("#war-room-boards #oversold-alert")).to_contain_text(FLASH_DEAL_SKU)
    _charts_drawn(page, "#war-room-boards")

    page.get_by_role("link", name="Post-live review").click()
    expect(page).to_have_url(re.compile(rf"/reports/live/{session.pk}/review/$"))
    expect(page.get_by_role("heading", name=f"Post-live review: {LIVE_TITLE}")).to_be_visible()
    expect(page.locator("#recommendations")).to_be_visible()
    expect(page.locator("#review-carriers")).to_be_visible()
    expect(page.get_by_role("link", name="Download PDF")).to_be_visible()
    screenshot("review-en")

    _to_chinese(page)
    expect(page.get_by_role("heading", name=f"直播复盘：{LIVE_TITLE}")).to_be_visible()
    expect(page.locator("#recommendations h2")).to_have_text("建议")
    screenshot("review-zh")
    page.goto(f"/reports/live/{session.pk}/")
    expect(page.locator("#war-room-boards #oversold-alert")).to_contain_text(FLASH_DEAL_SKU)
    expect(page.locator("#tile-oversold")).to_contain_text("超卖件数")
    _charts_drawn(page, "#war-room-boards")
    screenshot("war-room-zh")
    assert console_errors == []
