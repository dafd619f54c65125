"""A store admin connects an existing shop: uploads the TikTok Shop Seller Center export, reads the preview,
confirms, watches the progress bar, and reads the first look. In Chromium, in English and Chinese."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from cases.engine import exceptions_sweep
from tests.browser.conftest import PASSWORD
from tests.factories import make_membership, make_user
from tests.tracking import exports
from tracking.imports import service
from tracking.models import Order, OrderImport, Shipment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_imports_a_tiktok_export_and_reads_the_first_look(
    page, log_in, screenshot, store, monkeypatch
):
    admin = make_user("admin-import", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    local_now = timezone.localtime(timezone.now(), store.tzinfo).replace(tzinfo=None)
    export = exports.orders(120, seed=21, start=local_now - timedelta(days=5))
    data = exports.as_csv(exports.tiktok_rows(export))
    monkeypatch.setattr(service, "CHUNK", 25)  # a few chunks, so the bar has somewhere to go

    log_in("admin-import")
    page.goto(f"/stores/{store.code}/")
    page.get_by_role("link", name="Import orders").click()
    page.get_by_label("Order export").set_input_files(
        files=[{"name": "tiktok-orders.csv", "mimeType": "text/csv", "buffer": data}]
    )
    page.get_by_role("button", name="Check the file").click()

    preview = page.locator("#import-preview")
    expect(preview).to_be_visible()
    imp = OrderImport.objects.get()
    expect(page.locator("#preview-new .big")).to_have_text(str(imp.preview["new"]))
    expect(page.locator("#refused-rows")).to_contain_text("Not paid yet")
    assert Order.objects.count() == 0
    screenshot("preview-en")

    # The worker: each time the page asks how far the import got, one more chunk is written first (in this
    # thread, so the test server never serves the page while the import writes).
    def one_chunk(route):
        service.imports_run(chunks=1)
        route.continue_()

    page.route(re.compile(r".*part=progress.*"), one_chunk)
    page.get_by_role("button", name=re.compile(r"Import \d+ orders")).click()

    bar = page.locator("#import-bar")
    expect(bar).to_be_visible()
    expect(bar).not_to_have_attribute("value", "0", timeout=15_000)
    screenshot("progress-en")

    expect(page.locator("#first-look")).to_be_visible(timeout=30_000)
    page.unroute(re.compile(r".*part=progress.*"))
    imp.refresh_from_db()
    assert imp.created == imp.preview["new"] == Order.objects.count()
    expect(page.locator("#history-arriving")).to_be_visible()  # the parcels' histories are on their way
    screenshot("first-look-en")

    # Half an hour later, no scan has come for these parcels: the grace is over, and the rules judge.
    Shipment.objects.filter(order__source_import=imp).update(
        created_at=timezone.now() - timedelta(minutes=31)
    )
    exceptions_sweep()
    page.reload()
    expect(page.locator("#history-arriving")).to_have_count(0)
    expect(page.locator("#look-cases li").first).to_be_visible()
    page.get_by_role("button", name="中文").click()
    expect(page.locator("#first-look h2")).to_have_text("初步概览")
    screenshot("first-look-zh")

    page.locator("#look-cases a").first.click()
    expect(page).to_have_url(re.compile(r"/cases/\?store=\d+&type="))
    expect(page.locator("tr.case-row").first).to_be_visible()


@pytest.mark.pages_not_found
def test_an_unknown_layout_is_mapped_in_the_page(page, log_in, screenshot, store):
    admin = make_user("admin-map", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    rows = [["单号", "货号", "件数", "下单日期", "收货人"]] + [
        [f"M{i}", "TEA-100", "2", "2026年11月20日 09:30", "陈小姐"] for i in range(6)
    ]
    log_in("admin-map")
    page.goto(f"/stores/{store.code}/imports/")
    page.get_by_label("Order export").set_input_files(
        files=[{"name": "orders.csv", "mimeType": "text/csv", "buffer": exports.as_csv(rows)}]
    )
    page.get_by_role("button", name="Check the file").click()

    expect(page.locator("#import-mapping")).to_be_visible()
    for index, field in enumerate(("order_id", "sku", "quantity", "created_at", "recipient")):
        page.locator(f"#col_{field}").select_option(value=str(index))
    screenshot("mapping-en")
    page.get_by_role("button", name="Read the file with these columns").click()

    expect(page.locator("#preview-new .big")).to_have_text("6")
