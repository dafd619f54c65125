from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_order, make_shipment, make_user
from tracking.models import TrackingConnection, TrackingRegistration
from tracking.services import EventData, events_ingest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T0 = datetime(2026, 11, 19, 1, 12, tzinfo=UTC)


def test_an_agent_reads_a_parcels_story_from_the_queue_and_goes_back_to_its_case(
    page, log_in, screenshot, store
):
    agent = make_user("agent-parcel", password=PASSWORD)
    make_membership(user=agent, store=store)
    case = make_case(store=store, type="delivery_failed")
    events_ingest(
        shipment=case.shipment,
        events=[
            EventData(T0, "InTransit", "InTransit_002", "kdniao", "1", "【杭州市】您的快件已被 杭州余杭网点 揽收", "杭州市"),
            EventData(T0 + timedelta(hours=14), "InTransit", "InTransit_003", "kdniao", "204", "【杭州市】快件已到达 杭州转运中心", "杭州市"),
            EventData(T0 + timedelta(hours=54), "AttemptFail", "AttemptFail_002", "kdniao", "405", "【长沙市】派件失败：收件人电话无人接听", "长沙市"),
        ],
    )  # fmt: skip
    TrackingConnection.objects.create(store=store, provider="simulator", webhook_secret="s" * 16)
    seventeen = TrackingConnection.objects.create(store=store, provider="17track", webhook_secret="s" * 16)
    TrackingRegistration.objects.create(
        connection=seventeen, shipment=case.shipment, status="refused", attempts=1,
        next_attempt_at=T0 + timedelta(days=3), error="-18019903: Carrier can not be detected.",
    )  # fmt: skip
    log_in("agent-parcel")

    page.get_by_role("link", name=case.shipment.tracking_number).click()

    expect(page).to_have_url(re.compile(rf"/shipments/{case.shipment.pk}/$"))
    rows = page.locator("tr.event-row")
    expect(rows).to_have_count(3)
    newest = rows.first
    expect(newest).to_contain_text("Failed attempt")  # normalized
    expect(newest).to_contain_text("派件失败：收件人电话无人接听")  # as the carrier wrote it
    expect(newest).to_contain_text("2026-11-21 15:12")  # 07:12 UTC in the store's Asia/Kuala_Lumpur
    expect(rows.last).to_contain_text("Acceptance scan")
    # Why 17TRACK pushes nothing for this parcel, and when it is asked again (store time).
    refused = page.locator('[data-registration="refused"]')
    expect(refused).to_contain_text("Carrier can not be detected.")
    expect(refused).to_contain_text("asked again 2026-11-22 09:12")
    screenshot("parcel-en")

    page.get_by_role("button", name="Refresh tracking").click()
    expect(page.get_by_text("Tracking refresh requested")).to_be_visible()
    screenshot("parcel-refresh-requested")
    expect(page).to_have_url(re.compile(rf"/shipments/{case.shipment.pk}/$"))

    page.get_by_role("button", name="中文").click()
    expect(page.locator("tr.event-row").first).to_contain_text("投递失败")
    expect(page.get_by_text("17TRACK 推送")).to_be_visible()
    screenshot("parcel-zh")

    page.locator("#parcel-cases").get_by_role("link", name=str(case.pk)).click()
    expect(page).to_have_url(re.compile(rf"/cases/{case.pk}/$"))


def test_an_agent_finds_a_parcel_nobody_flagged_from_the_queue_search_box(page, log_in, screenshot, store):
    agent = make_user("agent-lookup", password=PASSWORD)
    make_membership(user=agent, store=store)
    make_case(store=store)  # the queue is not empty: the search narrows it down
    parcel = make_shipment(
        order=make_order(store=store, platform_order_id="579123456"), tracking_number="JT77001"
    )
    events_ingest(
        shipment=parcel,
        events=[EventData(T0, "InTransit", "InTransit_002", "simulator", "PU", "Picked up [Shah Alam DP]", "Shah Alam")],
    )  # fmt: skip
    log_in("agent-lookup")

    # A buyer quotes the number in lower case; the table updates as the agent types.
    page.locator("#id_q").press_sequentially("jt77001")
    hits = page.locator("[data-parcel-hits]")
    expect(hits).to_contain_text("JT77001")
    expect(hits).to_contain_text("In transit")
    expect(hits).to_contain_text("579123456")
    expect(page.get_by_text("No case matches, but the parcel above does")).to_be_visible()
    screenshot("queue-parcel-lookup")

    hits.get_by_role("link", name="JT77001").click()
    expect(page).to_have_url(re.compile(rf"/shipments/{parcel.pk}/$"))
    expect(page.locator("tr.event-row")).to_have_count(1)
