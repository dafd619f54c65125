"""The store page shows its admins how tracking comes in: each connection's webhook URL, masked secret,
counters and last error. Read-only: secrets and settings stay with Afterdesk's administrators."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import make_membership, make_store, make_user
from tracking.models import TrackingConnection

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def store_admin(client, store):
    user = make_user("olive")
    make_membership(user=user, store=store, role="admin")
    client.force_login(user)
    return client


def page(client, store) -> str:
    response = client.get(reverse("stores:detail", args=[store.code]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_a_store_admin_sees_each_connections_webhook_url_and_health_never_its_secret(store_admin, store):
    aftership = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret=SECRET, credentials={"api_key": "as-key-0123456789"},
        events_new=1200, events_duplicate=35, signatures_rejected=2,
        last_push_at=datetime(2026, 11, 20, 1, 30, tzinfo=UTC),
        last_error="aftership: 401 Unauthorized: the API key was refused.", last_error_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC),
    )  # fmt: skip
    TrackingConnection.objects.create(store=store, provider="kdniao", webhook_secret=SECRET, is_active=False)

    body = page(store_admin, store)

    assert f'value="{aftership.webhook_url}"' in body
    assert SECRET not in body and "as-key-0123456789" not in body
    assert aftership.masked_secret in body
    block = body[body.index(f'data-connection="{aftership.pk}"') :]
    assert "1200 new, 35 already known" in block
    assert "2 with a bad or missing signature, 0 malformed" in block
    assert "2026-11-20 09:30" in block  # the last push in the store's Kuala Lumpur time
    assert "the API key was refused" in block
    assert body.index("AfterShip") < body.index("Kdniao")  # active ones first
    assert "Switched off" in body


@pytest.mark.django_db
def test_a_store_without_a_connection_is_told_how_to_get_one(store_admin, store):
    body = page(store_admin, store)
    assert "No tracking provider is connected" in body
    assert "create_tracking_connection" in body


@pytest.mark.django_db
def test_another_stores_connections_are_never_shown(store_admin, store):
    other = make_store(code="store-b")
    theirs = TrackingConnection.objects.create(store=other, provider="aftership", webhook_secret=SECRET)

    body = page(store_admin, store)

    assert str(theirs.uuid) not in body
    assert "No tracking provider is connected" in body


@pytest.mark.django_db
def test_the_connections_cost_one_query_however_many(store_admin, store):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            page(store_admin, store)
        return len(ctx.captured_queries)

    TrackingConnection.objects.create(store=store, provider="aftership", webhook_secret=SECRET)
    one = queries()
    for provider in ("17track", "kdniao", "kuaidi100"):
        TrackingConnection.objects.create(store=store, provider=provider, webhook_secret=SECRET)

    assert queries() == one
