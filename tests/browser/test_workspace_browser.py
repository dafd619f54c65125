from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cases.message_defaults import default_templates_ensure
from cases.models import BuyerMessage, Case
from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _log_in(page, log_in, username: str) -> None:
    log_in(username)
    expect(page).to_have_url(re.compile(r"/cases/$"))


def _count(page, queue: str):
    return page.locator(f'#queue-nav a[data-queue="{queue}"] .count')


def test_an_agent_works_a_stalled_case_from_the_queue_to_resolved(page, log_in, screenshot, store):
    agent = make_user("agent-work", password=PASSWORD)
    make_membership(user=agent, store=store)
    stalled = [make_case(store=store, type="stalled_in_transit") for _ in range(3)]
    make_case(store=store, type="lost")
    default_templates_ensure()
    _log_in(page, log_in, "agent-work")

    expect(_count(page, "type-stalled_in_transit")).to_have_text("3")
    page.locator('#queue-nav a[data-queue="type-stalled_in_transit"]').click()
    expect(page).to_have_url(re.compile(r"[?&]type=stalled_in_transit"))
    expect(page.locator("tr.case-row")).to_have_count(3)
    screenshot("queue")

    first = stalled[0]
    page.locator(f'tr.case-row[data-case-id="{first.pk}"] a').first.click()
    expect(page.get_by_role("heading", name=re.compile(rf"Case #{first.pk}"))).to_be_visible()
    expect(_count(page, "type-stalled_in_transit")).to_have_text("3")
    page.evaluate("window.__sameDocument = true")

    page.locator("#id_template").select_option(label="Simplified Chinese · Storefront · Default")
    preview = page.locator("#message-preview .msgbody")
    expect(preview).to_contain_text(first.order.buyer_name)
    expect(preview).to_contain_text("您好")
    page.get_by_role("button", name="Send to buyer").click()
    expect(page.locator("#flash")).to_contain_text("queued for")
    expect(page.locator("#case-timeline ol.timeline")).to_contain_text("Message queued")
    expect(page.locator("#case-timeline ul.msglist")).to_contain_text("您好")

    page.keyboard.press("r")
    expect(page.locator("#id_resolution")).to_be_focused()
    page.locator("#id_resolution").select_option("delivered")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#case-status")).to_have_text("Resolved")
    expect(page.locator("#case-timeline ol.timeline")).to_contain_text("Resolved")
    expect(_count(page, "type-stalled_in_transit")).to_have_text("2")
    assert page.evaluate("window.__sameDocument") is True
    screenshot("case")

    page.go_back()
    expect(_count(page, "type-stalled_in_transit")).to_have_text("2")
    expect(page.locator("tr.case-row")).to_have_count(2)
    assert BuyerMessage.objects.filter(case=first, language="zh-hans").count() == 1
    assert Case.objects.get(pk=first.pk).status == "resolved"


def test_an_agent_bulk_claims_twenty_cases(page, log_in, screenshot, store):
    agent = make_user("agent-bulk", password=PASSWORD)
    make_membership(user=agent, store=store)
    for _ in range(20):
        make_case(store=store, type="lost")
    _log_in(page, log_in, "agent-bulk")
    page.locator('#queue-nav a[data-queue="unassigned"]').click()
    expect(page.locator('#queue-nav a[data-queue="unassigned"][aria-current="page"]')).to_be_visible()
    expect(page).to_have_url(re.compile(r"[?&]queue=unassigned"))
    expect(page.locator("tr.case-row")).to_have_count(20)
    expect(_count(page, "mine")).to_have_text("0")
    page.evaluate("window.__sameDocument = true")

    page.locator("[data-select-all]").check()
    expect(page.locator("[data-selected-count]")).to_have_text("20")
    page.locator("[data-bulkbar]").get_by_role("button", name="Claim").click()

    expect(page.locator("#flash")).to_contain_text("Claimed 20 cases.")
    expect(_count(page, "mine")).to_have_text("20")
    expect(_count(page, "unassigned")).to_have_text("0")
    assert page.evaluate("window.__sameDocument") is True
    assert Case.objects.filter(assignee=agent).count() == 20
    screenshot("bulk-claimed")


@pytest.mark.pages_not_found
def test_an_agent_of_store_a_gets_404_on_store_bs_case_and_its_partials(page, log_in, store, other_store):
    agent = make_user("agent-a", password=PASSWORD)
    make_membership(user=agent, store=store)
    theirs = make_case(store=other_store)
    _log_in(page, log_in, "agent-a")

    response = page.goto(f"/cases/{theirs.pk}/")
    assert response is not None and response.status == 404
    for path in ("timeline/", "message/preview/?template=1", "next/"):
        partial = page.request.get(f"/cases/{theirs.pk}/{path}", headers={"HX-Request": "true"})
        assert partial.status == 404, path
