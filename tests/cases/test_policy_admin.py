from __future__ import annotations

import pytest

from cases.models import StorePolicy
from tests.factories import make_membership, make_user


@pytest.fixture
def supervisor_client(client, store):
    user = make_user("sam")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    make_membership(user=user, store=store, role="supervisor")
    client.force_login(user)
    return client


COMPENSATION = {
    "agent_case_limit": "50", "agent_daily_limit": "500", "coupons_per_case": 1, "refund_coupon_amount": "5",
    "small_damage_coupon": "10", "small_damage_order_max": "100", "grace_days": '{"stalled_in_transit": 3}',
    "claim_days": 30,
}  # fmt: skip
# The late-parcel settings (history grace, no proactive message for old orders): required fields of the form.
LATE_PARCELS = {"history_grace_minutes": 30, "no_contact_after_days": 7}


@pytest.mark.django_db
def test_a_supervisor_edits_their_stores_policy_in_the_admin(supervisor_client, store):
    policy = StorePolicy.objects.create(store=store)

    response = supervisor_client.post(
        f"/admin/cases/storepolicy/{policy.pk}/change/",
        {"store": store.pk, "pickup_hours": 18, "stalled_hours": 12, "no_update_hours": 48, "restock_wait_days": 7,
         "refund_push_days": 15, "review_orders_per_address": 3, "batch_threshold": 10, "batch_window_hours": 24,
         "first_contact_hours": 24, "resolution_hours": 72, "high_value_amount": "200", **COMPENSATION, **LATE_PARCELS},
    )  # fmt: skip

    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.pickup_hours == 18


@pytest.mark.django_db
def test_a_nonsense_policy_is_refused_with_a_form_error_and_nothing_saved(supervisor_client, store):
    policy = StorePolicy.objects.create(store=store)

    response = supervisor_client.post(
        f"/admin/cases/storepolicy/{policy.pk}/change/",
        {"store": store.pk, "pickup_hours": 18, "stalled_hours": 12, "no_update_hours": 48, "restock_wait_days": 30,
         "refund_push_days": 15, "review_orders_per_address": 3, "batch_threshold": 10, "batch_window_hours": 24,
         "first_contact_hours": 24, "resolution_hours": 72, "high_value_amount": "200", **COMPENSATION, **LATE_PARCELS},
    )  # fmt: skip

    assert response.status_code == 200
    assert "cannot be longer than steering to refund" in response.content.decode()
    policy.refresh_from_db()
    assert (policy.pickup_hours, policy.restock_wait_days) == (24, 7)


@pytest.mark.django_db
def test_a_supervisor_cannot_see_another_stores_policy(supervisor_client, other_store):
    theirs = StorePolicy.objects.create(store=other_store)

    assert supervisor_client.get(f"/admin/cases/storepolicy/{theirs.pk}/change/").status_code in (302, 404)
    listing = supervisor_client.get("/admin/cases/storepolicy/").content.decode()
    assert "store-b" not in listing


@pytest.mark.django_db
def test_an_agent_cannot_edit_policy(client, store, agent):
    agent.is_staff = True
    agent.save(update_fields=["is_staff"])
    client.force_login(agent)

    assert client.get("/admin/cases/storepolicy/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("agent_case_limit", "-1", "Must be zero or more."),
        ("grace_days", '{"lost_in_space": 3}', "Unknown case types: lost_in_space"),
        ("grace_days", '{"no_update": -2}', "whole days"),
    ],
)
def test_nonsense_compensation_settings_are_refused(supervisor_client, store, field, value, message):
    policy = StorePolicy.objects.create(store=store)
    data = {"store": store.pk, "pickup_hours": 24, "stalled_hours": 12, "no_update_hours": 48, "restock_wait_days": 7,
            "refund_push_days": 15, "review_orders_per_address": 3, "batch_threshold": 10, "batch_window_hours": 24,
            "first_contact_hours": 24, "resolution_hours": 72, "high_value_amount": "200", **COMPENSATION, **LATE_PARCELS, field: value}  # fmt: skip
    response = supervisor_client.post(f"/admin/cases/storepolicy/{policy.pk}/change/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    policy.refresh_from_db()
    assert policy.agent_case_limit == 50 and policy.grace_days == {
        "stalled_in_transit": 3,
        "no_update": 3,
        "customs_hold": 7,
    }
