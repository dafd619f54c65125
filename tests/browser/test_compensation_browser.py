"""An oversold buyer is offered A/B/C, chooses, and gets a refund a supervisor approves: in Chromium."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from cases.models import Compensation, StorePolicy
from cases.services import case_raise
from tests.browser.conftest import PASSWORD
from tests.factories import make_membership, make_order, make_sku, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_offers_a_b_c_and_a_supervisor_approves_the_refund_over_her_limit(
    page, log_in, screenshot, store
):
    agent = make_user("agent-comp", password=PASSWORD)
    make_membership(user=agent, store=store, role="agent")
    boss = make_user("super-comp", password=PASSWORD)
    make_membership(user=boss, store=store, role="supervisor")
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("50"), refund_coupon_amount=Decimal("5"))
    make_sku(store=store, code="SERUM-50", name="Glow Serum 50 ml", on_hand=20)
    order = make_order(store=store, amount="89.90")
    case, _ = case_raise(
        type="oversold", order=order, summary="Oversold: 1 x SERUM-30 short, sold past the live-session allocation.",
        facts={
            "suggested_path": "swap",
            "options": [
                {"key": "A", "path": "wait", "available": True, "until": "2026-12-12"},
                {"key": "B", "path": "swap", "available": True, "swap_for": {"SERUM-30": [{"sku_code": "SERUM-50"}]}},
                {"key": "C", "path": "refund_coupon", "available": True},
            ],
        },
    )  # fmt: skip

    log_in("agent-comp")
    expect(page).to_have_url(re.compile(r"/cases/$"))
    page.goto(f"/cases/{case.pk}/")
    panel = page.locator("#case-compensation")
    expect(panel.locator('[data-offer="A"]')).to_contain_text("Wait for the restock (2026-12-12)")
    expect(panel.locator('[data-offer="B"]')).to_contain_text("Swap for Glow Serum 50 ml")
    expect(panel.locator('[data-offer="C"]')).to_contain_text("Full refund plus a 5.00 coupon")
    expect(panel.locator('[data-offer="B"]')).to_contain_text("suggested")
    screenshot("offers")

    panel.get_by_role("button", name="Refund").click()  # the buyer chose C in the chat
    expect(page.locator("#case-compensation [data-buyer-choice]")).to_have_text("Refund")
    page.locator('#case-compensation [data-offer="C"]').get_by_role("button", name="C").click()
    expect(page.locator("#flash")).to_contain_text("Proposed: Full refund plus a 5.00 coupon")
    refund = page.locator("#case-compensation li.compensation", has_text="Full refund")
    expect(refund).to_contain_text("Proposed")
    expect(refund.locator("[data-needs-supervisor]")).to_contain_text("a supervisor approves it")
    expect(page.locator("#case-compensation li.compensation", has_text="Coupon")).to_contain_text("Approved")
    expect(page.locator("#case-timeline ol.timeline")).to_contain_text("Proposed Full refund: 89.90 MYR.")
    screenshot("proposed")

    page.get_by_role("button", name="Log out").click()
    log_in("super-comp")
    expect(page.locator('#queue-nav a[data-queue="approvals"] .count')).to_have_text("1")
    page.locator('#queue-nav a[data-queue="approvals"]').click()
    row = page.locator("tr.approval-row", has_text="Full refund")
    expect(row).to_contain_text("89.90 MYR")
    row.get_by_role("checkbox").check()
    screenshot("approvals")
    page.get_by_role("button", name="Approve the ticked ones").click()
    expect(page.locator("#flash")).to_contain_text("Approved 1 proposal.")
    expect(page.locator("#approvals")).to_contain_text("Nothing waits for approval.")
    refund_row = Compensation.objects.get(kind="full_refund")
    assert (refund_row.status, refund_row.approved_by.username) == ("approved", "super-comp")
