"""Store admins manage the storefront API on the store page: keys (shown once, revoked) and webhook
endpoints (secret shown once, delivery log, send again). Nobody else reaches any of it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.models import EventDelivery, EventDeliveryAttempt, WebhookEndpoint
from cases.outbox import events_dispatch
from portal.models import ApiKey
from tests.api import Api
from tests.factories import make_case, make_membership, make_store, make_user


@pytest.fixture
def store_admin(client, store):
    user = make_user("olive")
    make_membership(user=user, store=store, role="admin")
    client.force_login(user)
    client.user = user
    return client


@pytest.mark.django_db
def test_a_key_is_shown_once_then_only_its_prefix(store_admin, store):
    response = store_admin.post(reverse("stores:api_key_create", args=[store.code]), {"name": "Shopify sync"})
    assert response.status_code == 200
    key = ApiKey.objects.get()
    body = response.content.decode()
    secret = body.split("data-new-key")[1].split('value="')[1].split('"')[0]
    assert secret.startswith(key.prefix)
    assert Api(store, secret=secret).get("store").status_code == 200
    assert key.created_by == store_admin.user
    page = store_admin.get(reverse("stores:detail", args=[store.code])).content.decode()
    assert secret not in page and f"{key.prefix}…" in page and "Shopify sync" in page


@pytest.mark.django_db
def test_a_key_needs_a_name(store_admin, store):
    response = store_admin.post(
        reverse("stores:api_key_create", args=[store.code]), {"name": ""}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_a_revoked_key_stops_working(store_admin, store):
    api = Api(store)
    response = store_admin.post(
        reverse("stores:api_key_revoke", args=[store.code, api.key.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "Revoked" in response.content.decode()
    assert api.get("store").status_code == 401


@pytest.mark.django_db
def test_an_endpoint_is_added_and_its_page_shows_the_delivery_log(store_admin, store):
    response = store_admin.post(
        reverse("stores:webhook_create", args=[store.code]),
        {"url": "https://shop.example.com/hooks", "event_types": ["case.created", "case.resolved"]},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in response.content.decode()  # once, here
    assert endpoint.event_types == ["case.created", "case.resolved"]
    make_case(store=store)
    events_dispatch()
    delivery = EventDelivery.objects.get()
    EventDeliveryAttempt.objects.create(
        delivery=delivery, at=timezone.now(), status_code=503, latency_ms=87, response_excerpt="upstream busy"
    )
    page = store_admin.get(reverse("stores:webhook", args=[store.code, endpoint.pk])).content.decode()
    assert endpoint.secret not in page
    assert "HTTP 503" in page and "87 ms" in page and "upstream busy" in page
    assert "hmac.compare_digest" in page  # the receiver's recipe

    EventDelivery.objects.update(status="failed", next_attempt_at=None)
    store_admin.post(reverse("stores:webhook_redeliver", args=[store.code, endpoint.pk, delivery.pk]))
    assert EventDelivery.objects.get().status == "pending"


@pytest.mark.django_db
def test_an_endpoint_is_switched_off_rolled_and_removed(store_admin, store):
    endpoint = WebhookEndpoint.objects.create(
        store=store, url="https://shop.example.com/h", secret="whsec_old"
    )
    url = reverse("stores:webhook_change", args=[store.code, endpoint.pk])
    store_admin.post(url, {"action": "deactivate"})
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    rolled = store_admin.post(url, {"action": "roll"})
    endpoint.refresh_from_db()
    assert endpoint.secret != "whsec_old" and endpoint.secret in rolled.content.decode()
    assert store_admin.post(url, {"action": "explode"}).status_code == 400
    store_admin.post(url, {"action": "delete"})
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_a_bad_endpoint_url_is_a_form_error(store_admin, store):
    response = store_admin.post(reverse("stores:webhook_create", args=[store.code]), {"url": "not a url"})
    assert response.status_code == 400
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "supervisor", None])
def test_only_the_stores_admins_reach_its_api_pages(client, store, role):
    user = make_user("intruder")
    if role:
        make_membership(user=user, store=store, role=role)
    else:
        make_membership(user=user, store=make_store(code="theirs"), role="admin")
    client.force_login(user)
    key = Api(store).key
    endpoint = WebhookEndpoint.objects.create(store=store, url="https://shop.example.com/h", secret="whsec_x")
    make_case(store=store)
    events_dispatch()
    delivery = EventDelivery.objects.get()
    pages = [
        ("post", reverse("stores:api_key_create", args=[store.code]), {"name": "x"}),
        ("post", reverse("stores:api_key_revoke", args=[store.code, key.pk]), {}),
        ("post", reverse("stores:webhook_create", args=[store.code]), {"url": "https://a.example"}),
        ("get", reverse("stores:webhook", args=[store.code, endpoint.pk]), None),
        ("post", reverse("stores:webhook_change", args=[store.code, endpoint.pk]), {"action": "delete"}),
        ("post", reverse("stores:webhook_redeliver", args=[store.code, endpoint.pk, delivery.pk]), {}),
    ]
    for method, url, data in pages:
        response = client.get(url) if method == "get" else client.post(url, data)
        assert response.status_code == 404, url
    assert ApiKey.objects.get().is_active and ApiKey.objects.count() == 1
    assert WebhookEndpoint.objects.count() == 1
