from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_logs_in_sees_the_case_list_and_switches_to_chinese(page, log_in, screenshot, store):
    agent = make_user("agent-browser", password=PASSWORD)
    make_membership(user=agent, store=store)
    stalled = make_case(store=store, type="stalled_in_transit")
    lost = make_case(store=store, type="lost")

    log_in("agent-browser")

    expect(page).to_have_url(re.compile(r"/cases/$"))
    expect(page.get_by_role("heading", name="Cases")).to_be_visible()
    expect(page.locator("tr.case-row")).to_have_count(2)
    expect(page.get_by_text(stalled.shipment.tracking_number)).to_be_visible()
    expect(page.get_by_text(lost.order.platform_order_id)).to_be_visible()
    screenshot("queue-en")

    page.get_by_role("button", name="中文").click()

    expect(page.get_by_role("heading", name="工单")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("tr.case-row").get_by_text("运输停滞")).to_be_visible()
    screenshot("queue-zh")


def test_filtering_the_queue_updates_the_table_and_the_url_without_a_reload(page, log_in, store):
    agent = make_user("agent-filter", password=PASSWORD)
    make_membership(user=agent, store=store)
    make_case(store=store, type="stalled_in_transit")
    lost = make_case(store=store, type="lost")
    log_in("agent-filter")
    page.evaluate("window.__sameDocument = true")

    page.locator("#id_type").select_option("lost")

    expect(page.locator("tr.case-row")).to_have_count(1)
    expect(page.get_by_text(lost.order.platform_order_id)).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]type=lost"))
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.pages_not_found
def test_another_stores_case_page_is_not_found_in_the_browser(page, log_in, store, other_store):
    agent = make_user("agent-scope", password=PASSWORD)
    make_membership(user=agent, store=store)
    theirs = make_case(store=other_store)
    log_in("agent-scope")

    response = page.goto(f"/cases/{theirs.pk}/")

    assert response is not None and response.status == 404
