"""Compensation on the case page, the approval queue, the claims queue and the exports: through the pages,
scoped to the user's stores."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from cases.compensation import Proposal, compensation_propose
from cases.models import Case, Claim, Compensation, StorePolicy
from cases.services import case_raise
from tests.factories import make_membership, make_order, make_shipment, make_sku, make_store, make_user

HTMX = {"HX-Request": "true"}


@pytest.fixture
def people(store):
    users = {}
    for name, role in (("ann", "agent"), ("sue", "supervisor")):
        users[name] = make_user(name)
        make_membership(user=users[name], store=store, role=role)
    return users


@pytest.fixture
def as_ann(client, people):
    client.force_login(people["ann"])
    return client


def _case(store, type="lost", amount="120.00"):
    order = make_order(store=store, amount=amount)
    shipment = None if type in ("oversold", "out_of_stock") else make_shipment(order=order)
    return case_raise(type=type, order=order, shipment=shipment, summary="x")[0]


@pytest.mark.django_db
def test_the_case_page_shows_the_playbook_and_proposes_an_offer_once(as_ann, store):
    case = _case(store, type="lost")
    page = as_ann.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert 'data-offer="A"' in page and "Reship the order" in page
    token = page.split('name="token" value="')[1].split('"')[0]
    for _ in range(2):  # a double click
        response = as_ann.post(
            reverse("cases:offer", args=[case.pk]), {"offer": "A", "token": token}, headers=HTMX
        )
        assert response.status_code == 200
    assert Compensation.objects.filter(case=case, kind="reship").count() == 1


@pytest.mark.django_db
def test_an_agent_proposes_over_the_limit_and_the_supervisor_approves_from_the_queue(
    client, as_ann, store, people
):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("50"))
    case = _case(store)
    response = as_ann.post(
        reverse("cases:compensate", args=[case.pk]),
        {"kind": "partial_refund", "amount": "80.00", "reason": "Box arrived crushed", "token": "t1"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "a supervisor approves it" in response.content.decode()
    proposal = Compensation.objects.get()
    assert proposal.status == "proposed"
    assert as_ann.get(reverse("cases:approvals")).status_code == 403  # agents have no approval queue

    client.force_login(people["sue"])
    queue = client.get(reverse("cases:approvals")).content.decode()
    assert f'data-compensation="{proposal.pk}"' in queue and "Box arrived crushed" in queue
    counts = client.get(reverse("cases:counts")).content.decode()
    assert "Approvals" in counts
    client.post(reverse("cases:approvals_decide"), {"action": "approve", "ids": [proposal.pk]})
    proposal.refresh_from_db()
    assert (proposal.status, proposal.approved_by) == ("approved", people["sue"])
    filtered = client.get(reverse("cases:list"), {"pending_approval": "on", "status": "all"}).content.decode()
    assert f"/cases/{case.pk}/" not in filtered


@pytest.mark.django_db
def test_a_double_refund_from_the_page_is_refused_naming_the_first(as_ann, store, people):
    case = _case(store, amount="40.00")
    compensation_propose(
        case=case, proposal=Proposal(kind="full_refund"), actor=people["sue"], idempotency_key="x"
    )
    response = as_ann.post(
        reverse("cases:compensate", args=[case.pk]), {"kind": "full_refund", "token": "t2"}, headers=HTMX
    )
    assert response.status_code == 400
    assert "Already refunded in full by sue" in response.content.decode()


@pytest.mark.django_db
def test_rejecting_from_the_queue_needs_a_reason(client, store, people):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("1"))
    proposal, _ = compensation_propose(
        case=_case(store),
        proposal=Proposal(kind="coupon", amount="5.00"),
        actor=people["ann"],
        idempotency_key="c",
    )
    client.force_login(people["sue"])
    client.post(reverse("cases:approvals_decide"), {"action": "reject", "ids": [proposal.pk]})
    assert Compensation.objects.get().status == "proposed"
    client.post(
        reverse("cases:approvals_decide"),
        {"action": "reject", "ids": [proposal.pk], "reason": "One coupon is enough"},
    )
    assert (Compensation.objects.get().status, Compensation.objects.get().decision_reason) == (
        "rejected",
        "One coupon is enough",
    )


@pytest.mark.django_db
def test_the_agent_records_the_buyers_choice_and_the_platforms_result(as_ann, store, people):
    case = _case(store, type="oversold")
    as_ann.post(reverse("cases:buyer_choice", args=[case.pk]), {"option": "wait"}, headers=HTMX)
    assert Case.objects.get(pk=case.pk).buyer_choice == "wait"
    coupon, _ = compensation_propose(
        case=case, proposal=Proposal(kind="coupon", amount="5.00"), actor=people["ann"], idempotency_key="c"
    )
    url = reverse("cases:compensation_result", args=[coupon.pk])
    as_ann.post(url, {"outcome": "executed", "reference": "TTS-CP-9"}, headers=HTMX)
    coupon.refresh_from_db()
    assert (coupon.status, coupon.platform_reference) == ("executed", "TTS-CP-9")


@pytest.mark.django_db
def test_resolving_a_carrier_fault_case_that_cost_something_drafts_a_claim(client, store, people):
    case = _case(store, type="lost")
    compensation_propose(
        case=case, proposal=Proposal(kind="reship", amount="15.00"), actor=people["sue"], idempotency_key="r"
    )
    client.force_login(people["sue"])
    page = client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert '<option value="carrier" selected>' in page  # lost parcel: the carrier's fault, suggested
    client.post(
        reverse("cases:resolve", args=[case.pk]), {"resolution": "reshipped", "fault_party": "carrier"}
    )
    claim = Claim.objects.get(case=case)
    assert (claim.amount_claimed, claim.status) == (Decimal("15.00"), "draft")
    claims = client.get(reverse("cases:claims")).content.decode()
    assert f'data-claim="{claim.pk}"' in claims
    client.post(
        reverse("cases:claim_move", args=[claim.pk]), {"to_status": "submitted", "reference": "JT-CLM-7"}
    )
    claim.refresh_from_db()
    assert (claim.status, claim.reference) == ("submitted", "JT-CLM-7")
    export = client.get(reverse("cases:claims_export"))
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["carrier", "order_id", "tracking_number"]
    assert rows[1][1:3] == [case.order.platform_order_id, case.shipment.tracking_number]


@pytest.mark.django_db
def test_the_ledger_export_lists_the_period(client, store, people):
    case = _case(store)
    compensation_propose(
        case=case, proposal=Proposal(kind="coupon", amount="5.00"), actor=people["sue"], idempotency_key="a"
    )
    client.force_login(people["sue"])
    rows = list(
        csv.reader(io.StringIO(client.get(reverse("cases:ledger_export")).content.decode("utf-8-sig")))
    )
    assert rows[1][5:9] == ["coupon", "approved", "5.00", "MYR"]
    assert (
        client.get(reverse("cases:ledger_export"), {"start": "2026-12-05", "end": "2026-12-01"}).status_code
        == 400
    )


@pytest.mark.django_db
def test_another_stores_compensation_and_claim_are_404(client, store, people):
    other = make_store(code="other")
    outsider = make_user("oz")
    make_membership(user=outsider, store=other, role="supervisor")
    case = _case(store, type="lost")
    sku = make_sku(store=store, on_hand=5)
    coupon, _ = compensation_propose(
        case=case, proposal=Proposal(kind="coupon", amount="5.00"), actor=people["ann"], idempotency_key="a"
    )
    case.fault_party = "carrier"
    case.save()
    claim = Claim.objects.create(store=store, case=case, order=case.order, carrier="jt", amount_claimed=Decimal("5"),
                                 currency="MYR", deadline="2026-12-30", created_at=case.opened_at)  # fmt: skip
    client.force_login(outsider)
    posts = [
        (reverse("cases:offer", args=[case.pk]), {"offer": "A", "token": "t"}),
        (reverse("cases:compensate", args=[case.pk]), {"kind": "swap", "sku": sku.code, "token": "t"}),
        (reverse("cases:buyer_choice", args=[case.pk]), {"option": "wait"}),
        (reverse("cases:carrier_claim", args=[case.pk]), {}),
        (reverse("cases:compensation_approve", args=[coupon.pk]), {}),
        (reverse("cases:compensation_reject", args=[coupon.pk]), {"reason": "x"}),
        (reverse("cases:compensation_cancel", args=[coupon.pk]), {}),
        (reverse("cases:compensation_result", args=[coupon.pk]), {"outcome": "executed"}),
        (reverse("cases:claim_move", args=[claim.pk]), {"to_status": "submitted"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    assert f'data-claim="{claim.pk}"' not in client.get(reverse("cases:claims")).content.decode()
    assert case.order.platform_order_id not in client.get(reverse("cases:ledger_export")).content.decode()
    assert (
        client.post(reverse("cases:approvals_decide"), {"action": "approve", "ids": [coupon.pk]}).status_code
        == 404
    )
    assert Compensation.objects.get().status == "approved" and Claim.objects.get().status == "draft"


@pytest.mark.django_db
def test_a_compensation_the_platform_refused_is_on_the_case_page_until_something_else_is_proposed(
    as_ann, store, people
):
    from cases.compensation import Result, compensation_result

    case = _case(store)
    refund, _ = compensation_propose(
        case=case, proposal=Proposal(kind="full_refund"), actor=people["sue"], idempotency_key="r"
    )
    compensation_result(
        compensation=refund, result=Result(executed=False, reason="Order already closed on TikTok Shop.")
    )
    page = as_ann.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "data-compensation-failed" in page and "Order already closed on TikTok Shop." in page
    compensation_propose(
        case=case, proposal=Proposal(kind="coupon", amount="5.00"), actor=people["ann"], idempotency_key="c"
    )
    assert (
        "data-compensation-failed" not in as_ann.get(reverse("cases:detail", args=[case.pk])).content.decode()
    )
