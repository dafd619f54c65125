"""An agent takes a buyer's call: logs the complaint in Chinese on the order's parcel page, sees it read as
damaged with the small-damage coupon proposed, and, being the tenth on the lot, the batch incident. In
Chromium, with screenshots."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cases.choices import CaseType
from cases.complaints.intake import complaint_receive
from cases.models import Case, StorePolicy
from tests.browser.conftest import PASSWORD
from tests.factories import add_line, make_membership, make_order, make_shipment, make_sku, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EARLIER = [
    "the oil bottle leaked all over the box", "bottle cracked, oil everywhere", "botol minyak bocor dalam kotak",
    "瓶子碎了，油漏得整个箱子都是", "ขวดแตก น้ำมันรั่วเต็มกล่องเลย", "chai dầu bị vỡ, chảy hết ra hộp",
    "oil leaking from the cap, box soaked", "minyak tumpah, botol retak kak", "油漏了一半，箱子全湿了",
]  # fmt: skip


def test_an_agent_logs_a_chinese_phone_complaint_and_sees_the_coupon_and_the_batch_incident(
    page, log_in, screenshot, store
):
    agent = make_user("agent-complaint", password=PASSWORD)
    make_membership(user=agent, store=store)
    StorePolicy.objects.create(
        store=store, small_damage_coupon=Decimal("5.00"), small_damage_order_max=Decimal("80")
    )
    oil = make_sku(store=store, code="OIL-1L8", name="Golden Palm Cooking Oil 1.8 L")
    orders = []
    for _ in range(10):
        order = make_order(store=store, amount="18.50")
        add_line(order=order, sku=oil, lot="LOT-2611")
        make_shipment(order=order, status="Delivered")
        orders.append(order)
    now = timezone.now()
    for index, (order, text) in enumerate(zip(orders[:9], EARLIER, strict=True)):
        complaint_receive(order=order, text=text, received_at=now - timedelta(minutes=60 - index))
    assert not Case.objects.filter(type=CaseType.QUALITY_BATCH).exists()  # nine: not yet a pattern

    log_in("agent-complaint")
    page.goto(f"/tracking/shipments/{orders[9].shipments.get().pk}/")
    form = page.locator("#log-complaint")
    form.get_by_label("What the buyer said, in their words").fill("油瓶摔碎了，漏得整个箱子都是油，怎么办")
    form.get_by_label("Channel").select_option("phone")
    screenshot("logging")
    form.get_by_role("button", name="Log and route").click()

    expect(page).to_have_url(re.compile(r"/cases/\d+/$"))
    expect(page.locator(".messages, [role=status]").filter(has_text="Logged as Damaged")).to_be_visible()
    expect(page.get_by_text("The small-damage coupon (5.00) is proposed.")).to_be_visible()
    timeline = page.locator("#case-timeline")
    expect(timeline.locator(".complaint-category")).to_contain_text("Damaged")
    expect(page.locator("#case-compensation")).to_contain_text("5.00")
    expect(page.get_by_text("Part of batch incident")).to_be_visible()
    screenshot("damaged-case")

    page.get_by_role("link", name=re.compile(r"^#\d+$")).first.click()
    expect(page.get_by_role("heading", name=re.compile("10 complaints in this incident"))).to_be_visible()
    screenshot("batch-incident")
    incident = Case.objects.get(type=CaseType.QUALITY_BATCH)
    assert incident.children.count() == 10 and incident.lot == "LOT-2611"
