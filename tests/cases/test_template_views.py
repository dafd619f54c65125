from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.messages import message_send
from cases.models import BuyerMessage, MessageTemplate
from tests.factories import make_case, make_membership, make_user

BODY = "Hi {buyer_name}, your parcel {tracking_number} is on its way. {store_name}"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def supervisor_client(store):
    user = make_user("sam")
    make_membership(user=user, store=store, role="supervisor")
    return _client(user)


def _template(*, store=None, name="Stalled", case_type="stalled_in_transit", **fields) -> MessageTemplate:
    values = {"language": "en", "channel": "storefront", "body": BODY, **fields}
    return MessageTemplate.objects.create(store=store, case_type=case_type, name=name, **values)


def _form(target, **overrides) -> dict[str, str]:
    data = {
        "store": str(target.pk), "case_type": "stalled_in_transit", "language": "en", "channel": "storefront",
        "name": "Stalled, friendly", "subject": "", "body": BODY, "is_active": "on",
    }  # fmt: skip
    data.update(overrides)
    return data


# --- the list -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_supervisor_sees_their_stores_templates_and_the_globals_but_not_another_stores(
    supervisor_client, store, other_store
):
    own = _template(store=store, name="Own")
    default = _template(name="Default")
    foreign = _template(store=other_store, name="Foreign")

    body = supervisor_client.get(reverse("cases:template_list")).content.decode()

    assert f'data-template-id="{own.pk}"' in body
    assert f'data-template-id="{default.pk}"' in body
    assert f'data-template-id="{foreign.pk}"' not in body
    assert 'href="/cases/templates/"' in supervisor_client.get(reverse("cases:list")).content.decode()


@pytest.mark.django_db
def test_the_list_filters_by_case_type_language_and_channel(supervisor_client, store):
    wanted = _template(store=store, name="Wanted", language="ms", channel="email")
    other_language = _template(store=store, name="English", channel="email")
    other_type = _template(store=store, name="Oversold", case_type="oversold", language="ms", channel="email")

    response = supervisor_client.get(
        reverse("cases:template_list"),
        {"case_type": "stalled_in_transit", "language": "ms", "channel": "email"},
        headers={"HX-Request": "true"},
    )

    body = response.content.decode()
    assert f'data-template-id="{wanted.pk}"' in body
    assert f'data-template-id="{other_language.pk}"' not in body
    assert f'data-template-id="{other_type.pk}"' not in body
    assert "<html" not in body


@pytest.mark.django_db
def test_an_agent_gets_403_on_every_template_page_and_no_nav_link(agent_client, store):
    template = _template(store=store)
    urls = [
        ("get", reverse("cases:template_list")),
        ("get", reverse("cases:template_new")),
        ("post", reverse("cases:template_new")),
        ("get", reverse("cases:template_edit", args=[template.pk])),
        ("post", reverse("cases:template_edit", args=[template.pk])),
        ("post", reverse("cases:template_duplicate", args=[template.pk])),
        ("post", reverse("cases:template_active", args=[template.pk])),
        ("post", reverse("cases:template_preview")),
    ]

    for method, url in urls:
        assert getattr(agent_client, method)(url).status_code == 403, url
    assert 'href="/cases/templates/"' not in agent_client.get(reverse("cases:list")).content.decode()


@pytest.mark.django_db
def test_another_stores_template_is_a_404_on_every_path(supervisor_client, other_store):
    foreign = _template(store=other_store, name="Foreign")
    paths = [
        ("get", reverse("cases:template_edit", args=[foreign.pk]), {}),
        ("post", reverse("cases:template_edit", args=[foreign.pk]), _form(other_store)),
        ("post", reverse("cases:template_duplicate", args=[foreign.pk]), {}),
        ("post", reverse("cases:template_active", args=[foreign.pk]), {"active": "0"}),
    ]

    for method, url, data in paths:
        assert getattr(supervisor_client, method)(url, data).status_code == 404, url
    foreign.refresh_from_db()
    assert foreign.is_active and foreign.name == "Foreign"


@pytest.mark.django_db
def test_a_supervisor_cannot_create_a_template_in_a_store_they_do_not_manage(
    supervisor_client, store, other_store
):
    agent_elsewhere = make_user("ana")
    make_membership(user=agent_elsewhere, store=other_store, role="agent")
    make_membership(user=supervisor_client.user, store=other_store, role="agent")

    response = supervisor_client.post(reverse("cases:template_new"), _form(other_store))

    assert response.status_code == 400
    assert not MessageTemplate.objects.filter(store=other_store).exists()


@pytest.mark.django_db
def test_the_list_page_costs_the_same_queries_for_10_and_50_templates(supervisor_client, store):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert supervisor_client.get(reverse("cases:template_list")).status_code == 200
        return len(queries)

    for n in range(10):
        _template(store=store, name=f"T{n}")
    ten = count()
    for n in range(10, 50):
        _template(store=store if n % 2 else None, name=f"T{n}")
    assert count() == ten
    assert ten <= 8


# --- new and edit ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_supervisor_creates_a_template_and_its_subject_is_kept_for_email_only(supervisor_client, store):
    response = supervisor_client.post(
        reverse("cases:template_new"), _form(store, subject="About {order_id}", is_active="on")
    )

    template = MessageTemplate.objects.get(store=store, name="Stalled, friendly")
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:template_edit", args=[template.pk])
    assert template.body == BODY and template.subject == "" and template.is_active

    supervisor_client.post(
        reverse("cases:template_edit", args=[template.pk]),
        _form(store, channel="email", subject="About {order_id}", name="Renamed"),
    )
    template.refresh_from_db()
    assert (template.name, template.channel, template.subject) == ("Renamed", "email", "About {order_id}")


@pytest.mark.django_db
def test_the_form_shows_the_placeholders_beside_the_body(supervisor_client):
    body = supervisor_client.get(reverse("cases:template_new")).content.decode()

    assert "{buyer_name}" in body and "The buyer&#x27;s name on the order" in body
    assert "{store_name}" in body


@pytest.mark.django_db
def test_an_unknown_placeholder_is_a_form_error_and_nothing_is_saved(supervisor_client, store):
    response = supervisor_client.post(
        reverse("cases:template_new"), _form(store, body="Hi {buyer}, see {order_id}")
    )

    assert response.status_code == 400
    assert "Unknown placeholder(s): {buyer}" in response.content.decode()
    assert not MessageTemplate.objects.exists()

    template = _template(store=store)
    response = supervisor_client.post(
        reverse("cases:template_edit", args=[template.pk]), _form(store, body="{nope}")
    )
    assert response.status_code == 400
    template.refresh_from_db()
    assert template.body == BODY


@pytest.mark.django_db
def test_a_name_the_store_already_uses_is_a_form_error(supervisor_client, store):
    _template(store=store, name="Stalled, friendly")

    response = supervisor_client.post(reverse("cases:template_new"), _form(store))

    assert response.status_code == 400
    assert "already has a template of this name" in response.content.decode()
    assert MessageTemplate.objects.count() == 1


@pytest.mark.django_db
def test_a_supervisor_cannot_edit_a_global_template(supervisor_client, store):
    default = _template(name="Default")

    page = supervisor_client.get(reverse("cases:template_edit", args=[default.pk]))
    response = supervisor_client.post(
        reverse("cases:template_edit", args=[default.pk]), _form(store, name="Hijacked")
    )
    off = supervisor_client.post(reverse("cases:template_active", args=[default.pk]), {"active": "0"})

    assert page.status_code == 200 and "Duplicate as store template" in page.content.decode()
    assert response.status_code == 403
    assert off.status_code == 403
    default.refresh_from_db()
    assert default.name == "Default" and default.store is None and default.is_active


@pytest.mark.django_db
def test_a_superuser_edits_a_global_template(store):
    admin = make_user("root")
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    client = _client(admin)
    default = _template(name="Default")

    response = client.post(
        reverse("cases:template_edit", args=[default.pk]), _form(store, store="", name="Default, warmer")
    )

    assert response.status_code == 302
    default.refresh_from_db()
    assert default.name == "Default, warmer" and default.store is None


# --- duplicate and deactivate ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_global_template_is_duplicated_into_the_supervisors_store(supervisor_client, store):
    default = _template(name="Default", channel="email", subject="About {order_id}")
    _template(store=store, name="Default", channel="email")

    response = supervisor_client.post(
        reverse("cases:template_duplicate", args=[default.pk]), {"store": store.pk}
    )

    copy = MessageTemplate.objects.get(store=store, name="Default (copy)")
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:template_edit", args=[copy.pk])
    assert (copy.body, copy.subject, copy.channel, copy.is_active) == (
        BODY,
        "About {order_id}",
        "email",
        True,
    )
    assert MessageTemplate.objects.get(pk=default.pk).store is None


@pytest.mark.django_db
def test_duplicating_into_a_store_the_supervisor_does_not_manage_is_refused(
    supervisor_client, store, other_store
):
    default = _template(name="Default")

    response = supervisor_client.post(
        reverse("cases:template_duplicate", args=[default.pk]), {"store": other_store.pk}
    )

    assert response.status_code == 302
    assert not MessageTemplate.objects.filter(store=other_store).exists()


@pytest.mark.django_db
def test_a_template_used_by_sent_messages_is_deactivated_not_deleted(supervisor_client, store):
    template = _template(store=store)
    case = make_case(store=store)
    message = message_send(case=case, template=template, actor=supervisor_client.user)

    response = supervisor_client.post(
        reverse("cases:template_active", args=[template.pk]),
        {"active": "0", "next": reverse("cases:template_list") + "?language=en"},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("cases:template_list") + "?language=en"
    template.refresh_from_db()
    assert not template.is_active
    assert BuyerMessage.objects.get(pk=message.pk).template_id == template.pk

    supervisor_client.post(reverse("cases:template_active", args=[template.pk]), {"active": "1"})
    template.refresh_from_db()
    assert template.is_active


# --- preview --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_preview_fills_the_text_from_a_case_of_that_type_in_the_users_stores(supervisor_client, store):
    case = make_case(store=store)

    response = supervisor_client.post(
        reverse("cases:template_preview"), _form(store, body="Hi {buyer_name} {restock_date}"),
        headers={"HX-Request": "true"},
    )  # fmt: skip

    body = response.content.decode()
    assert response.status_code == 200
    assert case.order.buyer_name in body
    assert f"case #{case.pk}" in body
    assert "<code>restock_date</code>" in body
    assert "<html" not in body


@pytest.mark.django_db
def test_the_preview_uses_sample_values_without_a_case_and_never_another_stores(
    supervisor_client, store, other_store
):
    foreign = make_case(store=other_store)

    response = supervisor_client.post(reverse("cases:template_preview"), _form(store))

    body = response.content.decode()
    assert "Nur Aisyah" in body and "sample values" in body
    assert foreign.order.buyer_name not in body


@pytest.mark.django_db
def test_the_preview_names_an_unknown_placeholder(supervisor_client, store):
    response = supervisor_client.post(reverse("cases:template_preview"), _form(store, body="Hi {buyer}"))

    assert response.status_code == 400
    assert "Unknown placeholder(s): {buyer}" in response.content.decode()
    assert not MessageTemplate.objects.exists()
