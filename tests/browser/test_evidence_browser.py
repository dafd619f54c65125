"""The carrier did not come: an agent drags the booking proof onto the case, builds the TikTok Shop B
appeal, sees what is missing, adds the chat log and downloads the packet. In Chromium."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from cases.models import Appeal, Evidence
from cases.services import case_raise
from tests.browser.conftest import PASSWORD
from tests.evidence_files import jpeg
from tests.factories import make_membership, make_order, make_shipment, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP = """([selector, files]) => {
  const zone = document.querySelector(selector);
  const transfer = new DataTransfer();
  for (const [name, type, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type}));
  }
  for (const kind of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  }
}"""


def test_an_agent_drops_the_proof_builds_the_no_show_appeal_and_downloads_the_packet(
    page, log_in, screenshot, store, tmp_path
):
    agent = make_user("agent-ev", password=PASSWORD)
    make_membership(user=agent, store=store, role="agent")
    order = make_order(store=store)
    parcel = make_shipment(order=order, booked_at=order.placed_at + timedelta(hours=1), accepted_at=None)
    case, _ = case_raise(
        type="pickup_overdue", order=order, shipment=parcel, summary="The carrier did not come"
    )
    booking = jpeg(taken="2026:11:12 09:15:00", size=(480, 320), color=(30, 120, 200))
    door = jpeg(taken="2026:11:12 18:02:00", size=(480, 320), color=(60, 60, 60))

    log_in("agent-ev")
    expect(page).to_have_url(re.compile(r"/cases/$"))
    page.goto(f"/cases/{case.pk}/")
    card = page.locator("#case-evidence")
    wanted = card.locator("[data-evidence-wanted]")
    expect(wanted).to_contain_text("Booking confirmation")
    expect(wanted).to_contain_text("Carrier chat log")
    expect(card.locator("[data-kind]")).to_have_value("booking_confirmation")  # what is wanted first

    page.evaluate(
        DROP,
        ["#case-evidence [data-dropzone]", [
            ["booking-screenshot.jpg", "image/jpeg", base64.b64encode(booking).decode()],
            ["booking-slip.jpg", "image/jpeg", base64.b64encode(door).decode()],
        ]],
    )  # fmt: skip
    items = page.locator("#case-evidence li.evidence-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("booking-screenshot.jpg")  # in the order dropped
    expect(items.nth(1)).to_contain_text("booking-slip.jpg")
    expect(items.first).to_contain_text("the photo's EXIF data")
    expect(page.locator("#case-evidence img.thumb")).to_have_count(2)
    expect(page.locator("#case-evidence [data-evidence-wanted]")).not_to_contain_text("Booking confirmation")
    stored = {e.original_name: e.sha256 for e in Evidence.objects.filter(case=case)}
    assert stored == {
        "booking-screenshot.jpg": hashlib.sha256(booking).hexdigest(),
        "booking-slip.jpg": hashlib.sha256(door).hexdigest(),
    }
    screenshot("case-page")

    page.locator("#case-evidence [data-build-appeal]").click()
    page.get_by_label(re.compile("late dispatch B")).check()
    page.get_by_role("button", name="Build the appeal").click()
    expect(page).to_have_url(re.compile(r"/cases/appeals/\d+/$"))
    checklist = page.locator("#appeal-checklist")
    expect(checklist.locator("[data-completeness]")).to_have_text("75% complete")
    expect(checklist.locator('[data-item="carrier_chat"]')).to_have_class("missing")
    expect(checklist.locator('[data-item="booking_confirmation"]')).to_have_class("met")
    expect(checklist.locator("[data-next]")).to_contain_text("Carrier chat log")
    expect(checklist.locator("[data-deadline]")).to_contain_text("The platform's deadline")
    page.get_by_role("button", name="Export the packet (ZIP)").click()
    expect(page.locator("#flash")).to_contain_text("Missing for this scenario: Carrier chat log")
    screenshot("checklist-incomplete")

    checklist.locator("[data-next] a").click()
    page.locator("#case-evidence [data-kind]").select_option("carrier_chat")
    chat = "18:02 J&T rider: sorry, no truck today, tomorrow\n18:05 我们: 已预约今天取件\n".encode()
    page.locator("#case-evidence [data-file-input]").set_input_files(
        files=[{"name": "carrier-chat.txt", "mimeType": "text/plain", "buffer": chat}]
    )
    expect(page.locator("#case-evidence li.evidence-item")).to_have_count(3)
    expect(page.locator("#case-evidence [data-evidence-wanted]")).to_have_count(0)
    page.go_back()
    page.reload()
    expect(checklist.locator("[data-completeness]")).to_have_text("100% complete")
    screenshot("checklist-complete")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export the packet (ZIP)").click()
    download = download_info.value
    appeal = Appeal.objects.get()
    assert download.suggested_filename == f"appeal-{store.code}-{appeal.pk}.zip"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("manifest.json"))
        files = {name: archive.read(name) for name in names if name.startswith("files/")}
        assert archive.read("summary.pdf").startswith(b"%PDF")
    number = order.platform_order_id
    assert sorted(files) == [
        f"files/{number}_01_booking_confirmation.jpg",
        f"files/{number}_02_booking_confirmation.jpg",
        f"files/{number}_03_carrier_chat.txt",
    ]
    assert files[f"files/{number}_03_carrier_chat.txt"] == chat
    assert {item["path"]: item["sha256"] for item in manifest["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()
    }
    assert manifest["appeal"]["scenario"] == "tts-late-dispatch-b" and manifest["appeal"]["complete"] is True
    assert manifest["exported_by"] == "agent-ev"
    appeal.refresh_from_db()
    assert appeal.status == "exported"
    page.reload()
    expect(page.locator("#appeal-checklist")).to_contain_text("Last exported")


def test_cases_ticked_in_the_queue_become_one_appeal(page, log_in, store):
    agent = make_user("agent-bulk", password=PASSWORD)
    make_membership(user=agent, store=store, role="agent")
    cases = []
    for _ in range(3):
        order = make_order(store=store)
        parcel = make_shipment(order=order, booked_at=order.placed_at + timedelta(hours=1), accepted_at=None)
        cases.append(case_raise(type="pickup_overdue", order=order, shipment=parcel, summary="No-show")[0])

    log_in("agent-bulk")
    expect(page).to_have_url(re.compile(r"/cases/$"))
    for case in cases[:2]:
        page.locator(f'#case-table input[name=ids][value="{case.pk}"]').check()
    page.get_by_role("button", name="Build an appeal for these").click()
    expect(page).to_have_url(re.compile(r"/cases/appeals/new/\?ids="))
    expect(page.locator("p.lead")).to_contain_text("covering 2 cases")
    page.get_by_label(re.compile("late dispatch B")).check()
    page.get_by_role("button", name="Build the appeal").click()
    expect(page).to_have_url(re.compile(r"/cases/appeals/\d+/$"))
    expect(page.locator("table")).to_contain_text(cases[0].order.platform_order_id)
    appeal = Appeal.objects.get()
    assert sorted(appeal.cases.values_list("pk", flat=True)) == sorted(c.pk for c in cases[:2])
    page.locator('a[href="/cases/appeals/"]').first.click()
    expect(page.locator(f'tr[data-appeal="{appeal.pk}"]')).to_contain_text("2")


def test_a_refused_file_among_good_ones_says_why_and_the_others_are_kept(page, log_in, store):
    agent = make_user("agent-refuse", password=PASSWORD)
    make_membership(user=agent, store=store, role="agent")
    order = make_order(store=store)
    parcel = make_shipment(order=order, booked_at=order.placed_at + timedelta(hours=1), accepted_at=None)
    case, _ = case_raise(type="pickup_overdue", order=order, shipment=parcel, summary="No-show")
    page_html = b"<!doctype html><html><script>alert(1)</script></html>"

    log_in("agent-refuse")
    expect(page).to_have_url(re.compile(r"/cases/$"))
    page.goto(f"/cases/{case.pk}/")
    page.evaluate(
        DROP,
        ["#case-evidence [data-dropzone]", [
            ["receipt.html", "text/html", base64.b64encode(page_html).decode()],
            ["door.jpg", "image/jpeg", base64.b64encode(jpeg()).decode()],
        ]],
    )  # fmt: skip
    expect(page.locator("#case-evidence li.evidence-item")).to_have_count(1)
    error = page.locator("#case-evidence [data-evidence-error]")
    expect(error).to_contain_text("receipt.html")
    expect(error).to_contain_text("Web pages and SVG images can carry scripts")
    assert list(Evidence.objects.values_list("original_name", flat=True)) == ["door.jpg"]
