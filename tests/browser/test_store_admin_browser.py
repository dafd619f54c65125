from __future__ import annotations

import pytest
from playwright.sync_api import expect

from cases.models import Case
from cases.workflow import case_claim
from portal.models import Membership
from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_store_admin_adds_promotes_and_removes_a_member_in_place(page, log_in, screenshot, store):
    admin = make_user("ada-admin", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    lee = make_user("lee")
    lee.email = "lee@shop.example"
    lee.save()
    leaving = make_user("lou")
    make_membership(user=leaving, store=store, role="agent")
    case = make_case(store=store)
    case_claim(case=case, actor=leaving)

    log_in("ada-admin")
    page.get_by_role("link", name="Stores").click()
    page.get_by_role("link", name="Manage").click()
    page.evaluate("window.__noReload = true")  # gone if the page reloads: every action below swaps in place

    page.locator("#member-add input[name=username_or_email]").fill("LEE@shop.example")
    page.locator("#member-add select[name=role]").select_option("agent")
    page.locator("#member-add").get_by_role("button", name="Add").click()
    expect(page.locator("#flash")).to_contain_text("Added lee as agent")
    row = page.locator("#store-members tr", has_text="lee@shop.example")
    expect(row).to_be_visible()

    row.get_by_label("Role of lee").select_option("supervisor")
    row.get_by_role("button", name="Change role").click()
    expect(page.locator("#flash")).to_contain_text("lee is now supervisor")
    assert Membership.objects.get(user=lee, store=store).role == "supervisor"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#store-members tr", has_text="lou").get_by_role("button", name="Remove").click()
    expect(page.locator("#flash")).to_contain_text("Removed lou")
    expect(page.locator("#store-members tr", has_text="lou")).to_have_count(0)
    assert Case.objects.get(pk=case.pk).assignee_id is None  # back to Unassigned
    assert page.evaluate("window.__noReload") is True
    screenshot("members")


def test_a_store_admin_copies_the_webhook_url_for_the_providers_dashboard(page, log_in, screenshot, store):
    from tracking.models import TrackingConnection

    admin = make_user("ada-hooks", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    connection = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="whsec-0123456789abcdef", events_new=42
    )
    log_in("ada-hooks")
    page.get_by_role("link", name="Stores").click()
    page.get_by_role("link", name="Manage").click()

    tracking = page.locator("#store-tracking")
    url = tracking.get_by_label("Webhook URL")
    expect(url).to_have_value(connection.webhook_url)
    url.focus()  # selected whole, ready to copy
    selected = page.evaluate(
        "(() => { const e = document.activeElement; return e.value.slice(e.selectionStart, e.selectionEnd); })()"
    )
    assert selected == connection.webhook_url
    expect(tracking).to_contain_text("42 new, 0 already known")
    expect(tracking).not_to_contain_text("whsec-0123456789abcdef")
    screenshot("store-tracking")


def test_a_store_admin_makes_an_api_key_and_a_webhook_endpoint_and_reads_its_deliveries(
    page, log_in, screenshot, store, live_server
):
    import httpx
    from django.utils import timezone

    from cases.models import EventDelivery, EventDeliveryAttempt, WebhookEndpoint
    from cases.outbox import events_dispatch

    admin = make_user("ada-api", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    log_in("ada-api")
    page.get_by_role("link", name="Stores").click()
    page.get_by_role("link", name="Manage").click()
    page.evaluate("window.__noReload = true")

    section = page.locator("#store-api")
    section.locator("#api-key-add input[name=name]").fill("Shopify sync")
    section.get_by_role("button", name="Create a key").click()
    secret = page.get_by_label("New API key").input_value()
    assert secret.startswith("afd_")
    # the key works at once, from outside the browser
    answer = httpx.get(f"{live_server.url}/api/v1/store", headers={"Authorization": f"Bearer {secret}"})
    assert answer.json()["key_name"] == "Shopify sync"

    section = page.locator("#store-api")
    section.get_by_label("URL").fill("https://shop.example.com/afterdesk/events")
    section.get_by_label("case.resolved").check()
    section.get_by_role("button", name="Add the endpoint").click()
    expect(page.locator("[data-new-endpoint]")).to_contain_text("https://shop.example.com/afterdesk/events")
    assert page.evaluate("window.__noReload") is True
    screenshot("store-api")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#store-api tr", has_text="Shopify sync").get_by_role("button", name="Revoke").click()
    expect(page.locator("#store-api tr", has_text="Shopify sync")).to_contain_text("Revoked")
    assert (
        httpx.get(
            f"{live_server.url}/api/v1/store", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 401
    )

    WebhookEndpoint.objects.update(event_types=[])  # every type from now on
    make_case(store=store, type="lost")
    events_dispatch()
    delivery = EventDelivery.objects.get()
    EventDeliveryAttempt.objects.create(
        delivery=delivery, at=timezone.now(), status_code=502, latency_ms=143, response_excerpt="Bad gateway"
    )
    page.locator("#store-api").get_by_role("link", name="https://shop.example.com/afterdesk/events").click()
    expect(page.locator("table.deliveries")).to_contain_text("HTTP 502")
    expect(page.locator("table.deliveries")).to_contain_text("143 ms")
    page.locator("table.deliveries tr", has_text="HTTP 502").get_by_role("button", name="Send again").click()
    expect(page.locator("#flash")).to_contain_text("will be sent again")
    screenshot("webhook-endpoint")
