"""The pages that are not ours (Swagger UI, the Django admin) and the htmx ones work under the CSP.

The `page` fixture fails a test on any Content-Security-Policy refusal Chromium reports on the console.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.factories import make_case, make_membership, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_under_the_policy(page):
    page.goto("/api/docs/")

    expect(page.get_by_role("heading", name=re.compile("Afterdesk API"))).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()


def test_a_staff_supervisor_uses_the_admin_under_the_policy(page, log_in, store):
    supervisor = make_user("sam-super", password=PASSWORD)
    supervisor.is_staff = supervisor.is_superuser = True
    supervisor.save()
    make_membership(user=supervisor, store=store, role="supervisor")
    make_case(store=store)

    log_in("sam-super")
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto("/admin/auth/user/")
    page.locator("input[name=_selected_action]").first.check()  # the actions bar is the admin's own script
    expect(page.locator(".action-counter")).to_contain_text("1 of")
    page.goto("/admin/auth/user/add/")
    expect(page.locator("input[name=username]")).to_be_visible()


def test_a_locked_out_login_says_so_on_the_login_page(page, log_in, settings, store):
    make_user("lou-locked", password=PASSWORD)
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in("lou-locked", f"wrong-{attempt}")

    expect(page.locator("[data-locked-out]")).to_contain_text("Too many failed logins")
    log_in("lou-locked")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.locator("[data-locked-out]")).to_be_visible()


def test_confirmations_and_auto_submitting_filters_work_without_inline_handlers(page, log_in, store):
    from cases.models import WebhookEndpoint

    admin = make_user("ada-admin", password=PASSWORD)
    make_membership(user=admin, store=store, role="admin")
    endpoint = WebhookEndpoint.objects.create(store=store, url="https://shop.example/hook", secret="whsec_x")

    log_in("ada-admin")
    page.goto(f"/stores/{store.code}/webhooks/{endpoint.pk}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("button", name="Remove")).to_be_visible()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove").click()
    expect(page).not_to_have_url(re.compile(rf"/webhooks/{endpoint.pk}/$"))
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()

    page.goto("/cases/claims/")
    page.get_by_label("Status").select_option(index=1)
    expect(page).to_have_url(re.compile(r"/cases/claims/\?status=\w+"))
