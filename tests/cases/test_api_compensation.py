"""Compensation through the API: the storefront proposes, hears of approvals as events, and reports the
platform's result."""

from __future__ import annotations

import pytest

from cases.compensation import Proposal, compensation_approve, compensation_propose
from cases.models import Compensation, StorePolicy
from tests.api import Api, fields
from tests.factories import make_case, make_membership, make_user
from tracking.models import Shipment


@pytest.fixture
def api(store):
    return Api(store)


@pytest.fixture
def supervisor(store):
    user = make_user("sue")
    make_membership(user=user, store=store, role="supervisor")
    return user


@pytest.mark.django_db
def test_the_storefront_proposes_and_a_supervisor_approves(api, store, supervisor):
    case = make_case(store=store, type="lost")
    body = {"kind": "partial_refund", "amount": "20.00", "reason": "Buyer kept the dented box"}
    assert "Idempotency-Key" in fields(api.post(f"cases/{case.pk}/compensations", body))
    response = api.post(f"cases/{case.pk}/compensations", body, headers={"Idempotency-Key": "plat-rf-1"})
    assert response.status_code == 201
    proposed = response.json()
    assert (proposed["status"], proposed["amount"], proposed["currency"]) == ("proposed", "20.00", "MYR")
    again = api.post(f"cases/{case.pk}/compensations", body, headers={"Idempotency-Key": "plat-rf-1"})
    assert again.json()["id"] == proposed["id"] and Compensation.objects.count() == 1

    compensation_approve(compensation=Compensation.objects.get(), actor=supervisor)
    (event,) = api.get("events", type="compensation.approved").json()["results"]
    assert event["data"]["compensation"]["id"] == proposed["id"]
    assert api.post(f"events/{event['id']}/ack", {"status": "delivered"}).status_code == 200
    assert api.get(f"compensations/{proposed['id']}").json()["status"] == "executing"

    result = api.post(
        f"compensations/{proposed['id']}/result", {"status": "executed", "reference": "TTS-RF-42"}
    )
    assert (result.json()["status"], result.json()["platform_reference"]) == ("executed", "TTS-RF-42")
    again = api.post(
        f"compensations/{proposed['id']}/result", {"status": "executed", "reference": "TTS-RF-42"}
    )
    assert again.status_code == 200
    refused = api.post(f"compensations/{proposed['id']}/result", {"status": "failed", "reason": "x"})
    assert "already executed" in fields(refused)[""]
    detail = api.get(f"cases/{case.pk}").json()
    assert [c["status"] for c in detail["compensations"]] == ["executed"]


@pytest.mark.django_db
def test_a_reship_result_names_its_new_parcel_which_is_then_tracked(api, store, supervisor):
    case = make_case(store=store, type="lost")
    reship, _ = compensation_propose(
        case=case, proposal=Proposal(kind="reship"), actor=supervisor, idempotency_key="r"
    )
    missing = api.post(f"compensations/{reship.pk}/result", {"status": "executed"})
    assert "new parcel" in fields(missing)[""]
    body = {
        "status": "executed",
        "reference": "RS-1",
        "shipment": {"carrier": "jtexpress-my", "tracking_number": "JT9900000001"},
    }
    done = api.post(f"compensations/{reship.pk}/result", body).json()
    assert done["new_tracking_number"] == "JT9900000001"
    assert Shipment.objects.filter(order=case.order).count() == 2
    assert [
        s["tracking_number"] for s in api.get(f"orders/{case.order.platform_order_id}").json()["shipments"]
    ][-1] == "JT9900000001"


@pytest.mark.django_db
def test_refusals_say_why_and_write_nothing(api, store, supervisor):
    StorePolicy.objects.create(store=store, coupons_per_case=1)
    case = make_case(store=store, type="lost")
    compensation_propose(
        case=case, proposal=Proposal(kind="full_refund"), actor=supervisor, idempotency_key="f"
    )

    def propose(body, key):
        return api.post(f"cases/{case.pk}/compensations", body, headers={"Idempotency-Key": key})

    assert (
        "Already refunded in full by sue"
        in fields(propose({"kind": "partial_refund", "amount": "5.00"}, "a"))[""]
    )
    assert "amount" in fields(propose({"kind": "coupon", "amount": "-5"}, "b"))
    assert "kind" in fields(propose({"kind": "cash"}, "c"))
    assert propose({"kind": "swap", "sku": "NO-SUCH-SKU"}, "d").status_code == 404
    assert propose({"kind": "reship", "replaces_tracking_number": "NOPE"}, "e").status_code == 404
    assert api.post("compensations/999999/result", {"status": "executed"}).status_code == 404
    assert Compensation.objects.count() == 1
