from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from cases.message_defaults import default_templates_ensure
from cases.models import MessageTemplate
from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_supervisor_copies_a_default_template_and_edits_it_with_a_live_preview(
    page, log_in, screenshot, store
):
    supervisor = make_user("sup-templates", password=PASSWORD)
    make_membership(user=supervisor, store=store, role="supervisor")
    case = make_case(store=store, type="stalled_in_transit")
    default_templates_ensure()
    log_in("sup-templates")

    page.get_by_role("link", name="Templates").click()
    expect(page).to_have_url(re.compile(r"/cases/templates/$"))
    page.locator("select[name=case_type]").select_option("stalled_in_transit")
    expect(page).to_have_url(re.compile(r"case_type=stalled_in_transit"))
    screenshot("list")

    row = page.locator("tr.template-row", has_text="Storefront").filter(has_text="English").first
    row.get_by_role("button", name="Duplicate as store template").click()
    expect(page).to_have_url(re.compile(r"/cases/templates/\d+/edit/$"))
    expect(page.locator("#template-preview")).to_contain_text(case.order.buyer_name)

    page.get_by_label("Body").fill("Hi {buyer_name}, news on {tracking_number}: {buyer}")
    expect(page.locator("#template-preview")).to_contain_text("Unknown placeholder(s): {buyer}")
    screenshot("edit-error")
    page.get_by_label("Body").fill("Hi {buyer_name}, news on {tracking_number} soon.")
    expect(page.locator("#template-preview")).to_contain_text(case.shipment.tracking_number)
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("#flash")).to_contain_text("saved")
    screenshot("edit")
    assert MessageTemplate.objects.get(store=store, body__startswith="Hi {buyer_name}, news on")
