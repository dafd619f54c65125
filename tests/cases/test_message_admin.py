from __future__ import annotations

import pytest

from cases.models import MessageTemplate
from tests.factories import make_membership, make_user


@pytest.fixture
def supervisor_client(client, store):
    user = make_user("sam")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    make_membership(user=user, store=store, role="supervisor")
    client.force_login(user)
    return client


def _form(store_id, **overrides):
    data = {"store": store_id, "case_type": "stalled_in_transit", "language": "en", "channel": "storefront",
            "name": "Apology", "subject": "", "body": "Sorry {buyer_name}, {latest_checkpoint}.", "is_active": "on"}  # fmt: skip
    data.update(overrides)
    return data


def _global(**fields):
    return MessageTemplate.objects.create(
        store=None, case_type="lost", language="en", channel="storefront", name="Default", body="Hi {buyer_name}",
        **fields,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_supervisor_adds_a_template_for_their_store(supervisor_client, store):
    response = supervisor_client.post("/admin/cases/messagetemplate/add/", _form(store.pk))

    assert response.status_code == 302
    assert MessageTemplate.objects.get().store == store


@pytest.mark.django_db
def test_an_unknown_placeholder_is_a_form_error_and_nothing_is_saved(supervisor_client, store):
    response = supervisor_client.post("/admin/cases/messagetemplate/add/", _form(store.pk, body="Hi {nick}"))

    assert response.status_code == 200
    assert "Unknown placeholder(s): {nick}" in response.content.decode()
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_a_supervisor_may_read_but_not_change_a_global_template(supervisor_client, store):
    template = _global()

    assert supervisor_client.get(f"/admin/cases/messagetemplate/{template.pk}/change/").status_code == 200
    response = supervisor_client.post(
        f"/admin/cases/messagetemplate/{template.pk}/change/", _form("", body="Changed")
    )

    assert response.status_code == 403
    template.refresh_from_db()
    assert template.body == "Hi {buyer_name}"


@pytest.mark.django_db
def test_a_supervisor_cannot_make_a_global_template(supervisor_client, store):
    response = supervisor_client.post("/admin/cases/messagetemplate/add/", _form(""))
    assert response.status_code == 200
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_a_supervisor_cannot_see_another_stores_templates(supervisor_client, other_store):
    theirs = MessageTemplate.objects.create(
        store=other_store, case_type="lost", language="en", name="Theirs", body="Hi"
    )
    assert supervisor_client.get(f"/admin/cases/messagetemplate/{theirs.pk}/change/").status_code in (
        302,
        404,
    )
    assert "Theirs" not in supervisor_client.get("/admin/cases/messagetemplate/").content.decode()
