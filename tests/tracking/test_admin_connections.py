"""A tracking connection is set up and re-keyed in the admin; its secrets are written there, never shown."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.factories import make_order, make_shipment
from tracking.models import TrackingConnection, TrackingRegistration

ADD_URL = "/admin/tracking/trackingconnection/add/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-123"))
    return client


def _form(**fields) -> dict:
    data = {
        "is_active": "on", "pull_enabled": "on", "register_parcels": "on", "base_url": "", "new_webhook_secret": "", "new_api_key": "",
        "business_id": "", "requests_per_second": "", "subscribe_request_type": "", "shipper_codes": "",
        "company_codes": "", "customer_names": "", "sender": "",
    }  # fmt: skip
    data.update(fields)
    return data


def test_an_admin_adds_a_connection_and_its_secrets_are_only_ever_shown_masked(admin_client, store, settings):
    settings.PUBLIC_URL = "https://desk.example.com"
    response = admin_client.post(
        ADD_URL,
        _form(
            store=store.pk,
            provider="kdniao",
            new_webhook_secret="app-key-0123456789",
            new_api_key="app-key-0123456789",
            business_id="1234567",
            requests_per_second="20",
        ),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    connection = TrackingConnection.objects.get(store=store, provider="kdniao")
    assert connection.webhook_secret == "app-key-0123456789"
    assert connection.credentials == {"api_key": "app-key-0123456789", "business_id": "1234567",
                                      "requests_per_second": 20.0}  # fmt: skip
    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "app-key-0123456789" not in page
    assert "app-" in page  # masked: the first four characters tell which key is set
    assert f"https://desk.example.com{connection.webhook_path}" in page  # the whole URL, to paste
    assert 'value="1234567"' in page  # not a secret: shown to be edited


def test_a_new_connection_without_a_signing_secret_is_refused(admin_client, store):
    response = admin_client.post(ADD_URL, _form(store=store.pk, provider="aftership"))

    assert response.status_code == 200
    assert "without it every push is refused" in response.content.decode()
    assert not TrackingConnection.objects.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"new_webhook_secret": "short"}, "at least 8 characters"),
        (
            {"new_webhook_secret": "long-enough-secret", "requests_per_second": "0"},
            "greater than or equal to 0.1",
        ),
    ],
)
def test_bad_input_is_a_form_error_and_writes_nothing(admin_client, store, fields, message):
    response = admin_client.post(ADD_URL, _form(store=store.pk, provider="aftership", **fields))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not TrackingConnection.objects.exists()


def test_saving_with_the_secret_fields_empty_keeps_the_secrets_and_new_ones_replace_them(admin_client, store):
    connection = TrackingConnection.objects.create(
        store=store, provider="aftership", webhook_secret="old-secret-123",
        credentials={"api_key": "old-api-key-123", "requests_per_second": 5}, pull_enabled=False,
        last_error="PermanentProviderError: 401 Unauthorized",
    )  # fmt: skip
    url = f"/admin/tracking/trackingconnection/{connection.pk}/change/"

    # Fixing a refused key: the old secret stays, the key is replaced, pulling is switched back on.
    response = admin_client.post(url, _form(new_api_key="new-api-key-456", requests_per_second="5"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.webhook_secret == "old-secret-123"
    assert connection.credentials == {"api_key": "new-api-key-456", "requests_per_second": 5.0}
    assert connection.pull_enabled

    # Rotating the secret; the quota field emptied: back to the provider's documented default.
    response = admin_client.post(url, _form(new_webhook_secret="rotated-secret-789"))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.webhook_secret == "rotated-secret-789"
    assert connection.credentials == {"api_key": "new-api-key-456"}
    # The store and provider the webhook URL and the stored deliveries belong to can't be changed here.
    admin_client.post(url, _form(store=store.pk, provider="kdniao"))
    connection.refresh_from_db()
    assert connection.provider == "aftership"


def test_registrations_show_on_the_connection_and_refused_ones_are_asked_again_from_the_admin(
    admin_client, store
):
    connection = TrackingConnection.objects.create(store=store, provider="17track", webhook_secret="s" * 16)
    refused, registered, waiting = (
        make_shipment(order=make_order(store=store), tracking_number=number)
        for number in ("BAD1", "OK1", "NEW1")
    )
    TrackingRegistration.objects.create(
        connection=connection, shipment=refused, status="refused", attempts=6, next_attempt_at=None,
        error="-18019903: Carrier can not be detected.",
    )  # fmt: skip
    TrackingRegistration.objects.create(
        connection=connection, shipment=registered, status="registered", next_attempt_at=None
    )
    TrackingRegistration.objects.create(connection=connection, shipment=waiting)

    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "1 registered, 1 waiting, 1 refused" in page
    assert "stopped by the provider" not in page
    TrackingRegistration.objects.create(
        connection=connection, shipment=make_shipment(order=make_order(store=store), tracking_number="YT1"),
        status="stopped", attempts=1, error="TRACKING_STOPPED",
    )  # fmt: skip
    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "1 registered, 1 waiting, 1 refused; 1 stopped by the provider, to be started again" in page
    listing = admin_client.get("/admin/tracking/trackingregistration/?status=refused").content.decode()
    assert "BAD1" in listing and "Carrier can not be detected." in listing and "OK1" not in listing

    url = "/admin/tracking/trackingregistration/"
    done = TrackingRegistration.objects.get(shipment=registered)
    only_done = admin_client.post(
        url, {"action": "register_again", "_selected_action": [done.pk]}, follow=True
    )
    assert [str(m) for m in only_done.context["messages"]] == ["All of the selected parcels are registered."]
    given_up = TrackingRegistration.objects.get(shipment=refused)
    response = admin_client.post(
        url, {"action": "register_again", "_selected_action": [given_up.pk, done.pk]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["1 parcel will be registered again."]
    given_up.refresh_from_db()
    assert given_up.attempts == 0 and given_up.next_attempt_at is not None
    assert admin_client.get(f"{url}add/").status_code == 403
    assert admin_client.post(f"{url}{given_up.pk}/delete/", {"post": "yes"}).status_code == 403


def test_kdniao_subscription_settings_are_set_in_the_admin_and_a_malformed_line_is_refused(
    admin_client, store
):
    fields = _form(
        store=store.pk, provider="kdniao", new_webhook_secret="app-key-0123456789", business_id="1234567",
        subscribe_request_type="1008", shipper_codes="jtexpress-cn = JTSD\n\n", customer_names="JD = 020K123456",
    )  # fmt: skip
    bad = admin_client.post(ADD_URL, {**fields, "customer_names": "JD 020K123456"})
    assert bad.status_code == 200
    assert "Line 1 is not “code = value”: JD 020K123456" in bad.content.decode()
    assert not TrackingConnection.objects.exists()

    assert admin_client.post(ADD_URL, fields).status_code == 302
    connection = TrackingConnection.objects.get()
    assert connection.credentials == {
        "business_id": "1234567", "subscribe_request_type": "1008", "shipper_codes": {"jtexpress-cn": "JTSD"},
        "customer_names": {"JD": "020K123456"},
    }  # fmt: skip
    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "jtexpress-cn = JTSD" in page and "JD = 020K123456" in page

    # The provider reads them as set.
    from tracking.providers import provider_for
    from tracking.providers.base import TrackingRef

    provider = provider_for(connection)
    assert provider.shipper_code("jtexpress-cn") == "JTSD"
    assert provider.customer_name("JD", TrackingRef("JDVA1", "jd")) == "020K123456"

    url = f"/admin/tracking/trackingconnection/{connection.pk}/change/"
    assert admin_client.post(url, _form(business_id="1234567")).status_code == 302  # emptied: removed
    connection.refresh_from_db()
    assert connection.credentials == {"business_id": "1234567"}


def test_the_kdniao_sender_is_set_in_the_admin_in_kdniaos_field_names(admin_client, store):
    fields = _form(
        store=store.pk, provider="kdniao", new_webhook_secret="app-key-0123456789", business_id="1237100"
    )
    bad = admin_client.post(ADD_URL, {**fields, "sender": "Name = Lumi\nStreet = 科技园 1 号"})
    assert bad.status_code == 200
    assert "Not a field of Kdniao&#x27;s Sender: Street" in bad.content.decode()
    assert not TrackingConnection.objects.exists()

    sender = "Name = Lumi 仓库\nMobile = 13800138000\nProvinceName = 广东省\nCityName = 深圳市\nAddress = 科技园 1 号"
    assert admin_client.post(ADD_URL, {**fields, "sender": sender}).status_code == 302

    connection = TrackingConnection.objects.get()
    assert connection.credentials["sender"] == {
        "Name": "Lumi 仓库", "Mobile": "13800138000", "ProvinceName": "广东省", "CityName": "深圳市",
        "Address": "科技园 1 号",
    }  # fmt: skip
    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "ProvinceName = 广东省" in page


def test_the_admin_checks_the_selected_connections_credentials_with_their_providers(
    admin_client, store, other_store, httpserver
):
    httpserver.expect_request("/getquota", headers={"17token": "good-key"}).respond_with_json(
        {"code": 0, "data": {"quota_total": 200, "quota_remain": 150}}
    )
    httpserver.expect_request("/getquota").respond_with_json(
        {"code": -18010001, "data": {"errors": [{"code": -18010001, "message": "Access key is invalid."}]}}
    )
    base_url = httpserver.url_for("/").rstrip("/")
    good = TrackingConnection.objects.create(
        store=store,
        provider="17track",
        webhook_secret="s" * 16,
        credentials={"api_key": "good-key"},
        base_url=base_url,
    )
    bad = TrackingConnection.objects.create(
        store=other_store,
        provider="17track",
        webhook_secret="s" * 16,
        credentials={"api_key": "bad"},
        base_url=base_url,
    )
    before = list(TrackingConnection.objects.order_by("pk").values())

    response = admin_client.post(
        "/admin/tracking/trackingconnection/",
        {"action": "check_credentials", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )

    page = response.content.decode()
    # One message per connection, named (the admin capitalizes its first letter), success or error.
    assert (
        f'<li class="success">{good.store.code.capitalize()} / 17TRACK: 17TRACK accepted the key; 150' in page
    )
    assert (
        f'<li class="error">{bad.store.code.capitalize()} / 17TRACK: 17track: credentials refused (-18010001'
        in page
    )
    assert list(TrackingConnection.objects.order_by("pk").values()) == before  # a check writes nothing


def test_checking_more_connections_than_ten_at_once_asks_for_fewer_and_sends_nothing(
    admin_client, httpserver
):
    from tests.factories import make_store

    connections = [
        TrackingConnection.objects.create(
            store=make_store(code=f"chk-{i}"),
            provider="17track",
            webhook_secret="s" * 16,
            credentials={"api_key": "k"},
            base_url=httpserver.url_for("/").rstrip("/"),
        )
        for i in range(11)
    ]

    response = admin_client.post(
        "/admin/tracking/trackingconnection/",
        {"action": "check_credentials", "_selected_action": [c.pk for c in connections]},
        follow=True,
    )

    assert "Select at most 10 connections to check at once." in response.content.decode()
    assert httpserver.log == []


def test_a_kuaidi100_connection_is_added_with_its_key_customer_and_salt(admin_client, store):
    fields = _form(
        store=store.pk, provider="kuaidi100", new_webhook_secret="salt-0123456789abcdef", new_api_key="k100-key",
        customer="B2C4D6E8F0A1",
    )  # fmt: skip
    assert admin_client.post(ADD_URL, fields).status_code == 302

    connection = TrackingConnection.objects.get()
    assert connection.credentials == {"api_key": "k100-key", "customer": "B2C4D6E8F0A1"}
    assert connection.webhook_secret == "salt-0123456789abcdef"
    from tracking.providers import provider_for

    provider = provider_for(connection)
    assert (provider.key, provider.customer, provider.callback_url) == (
        "k100-key", "B2C4D6E8F0A1", connection.webhook_url,
    )  # fmt: skip


def test_kuaidi100_company_codes_are_set_in_the_admin_and_a_malformed_one_is_refused(admin_client, store):
    fields = _form(
        store=store.pk, provider="kuaidi100", new_webhook_secret="salt-0123456789", new_api_key="key-0123456789",
        customer="B2C4D6E8F0A1B3C5", company_codes="ANE = AnNengWuLiu\n",
    )  # fmt: skip
    bad = admin_client.post(ADD_URL, {**fields, "company_codes": "ane = annengwuliu\nfast = 快捷"})
    assert bad.status_code == 200
    assert (
        "A Kuaidi100 company code is letters and digits only (like zhongtong): fast = 快捷"
        in bad.content.decode()
    )
    assert not TrackingConnection.objects.exists()

    assert admin_client.post(ADD_URL, fields).status_code == 302
    connection = TrackingConnection.objects.get()
    assert connection.credentials["company_codes"] == {"ane": "annengwuliu"}
    page = admin_client.get(f"/admin/tracking/trackingconnection/{connection.pk}/change/").content.decode()
    assert "ane = annengwuliu" in page

    from tracking.providers import provider_for

    assert provider_for(connection).company_code("ane") == "annengwuliu"
