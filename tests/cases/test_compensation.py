"""Compensation through its services: each kind from proposal to the platform's result, the invariants that
protect the seller's money (held by the database, not by a form), approval limits, playbooks, the automatic
small-damage coupon, reships and carrier claims."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from cases.compensation import (
    CompensationError,
    Proposal,
    Result,
    claim_move,
    claim_open,
    compensation_approve,
    compensation_cancel,
    compensation_propose,
    compensation_reject,
    compensation_result,
    offer_propose,
    playbook_offers,
    small_damage_coupon_for,
)
from cases.integration import event_ack
from cases.models import Case, Compensation, StorefrontEvent, StorePolicy
from cases.services import case_raise
from tests.concurrency import at_once
from tests.factories import make_membership, make_order, make_shipment, make_sku, make_user
from tracking.models import Order, Shipment, StockLevel


@pytest.fixture
def people(store):
    users = {}
    for name, role in (("ann", "agent"), ("bob", "agent"), ("sue", "supervisor")):
        users[name] = make_user(name)
        make_membership(user=users[name], store=store, role=role)
    return users


def _case(store, type="lost", amount="120.00", **order_fields):
    order = make_order(store=store, amount=amount, **order_fields)
    shipment = make_shipment(order=order) if type not in ("oversold", "out_of_stock") else None
    case, _ = case_raise(type=type, order=order, shipment=shipment, summary="x")
    return case


def _propose(case, kind, actor, key="k1", **fields):
    return compensation_propose(
        case=case, proposal=Proposal(kind=kind, **fields), actor=actor, idempotency_key=key
    )


def _event(compensation):
    return StorefrontEvent.objects.get(
        kind="compensation.approved", payload__compensation__id=compensation.pk
    )


# --- each kind end to end --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("coupon", {"amount": Decimal("5.00"), "valid_until": date(2026, 12, 31)}),
        ("coupon", {"amount": Decimal("8.00"), "percent": Decimal("10")}),
        ("partial_refund", {"amount": Decimal("20.00")}),
        ("full_refund", {}),
        ("gift", {"note": "a hand cream sample"}),
        ("wait_bonus", {"note": "socks"}),
    ],
)
def test_each_kind_goes_from_proposal_to_the_platforms_result(store, people, kind, fields):
    case = _case(store)
    compensation, created = _propose(case, kind, people["sue"], **fields)
    assert created and compensation.status == "approved"  # a supervisor's proposal is approved at once
    assert compensation.currency == case.order.currency
    event = _event(compensation)
    assert event.payload["compensation"]["kind"] == kind
    event_ack(event=event, key=None, delivered=True)  # the storefront took it
    compensation.refresh_from_db()
    assert compensation.status == "executing"
    done, applied = compensation_result(
        compensation=compensation, result=Result(executed=True, reference="TT-R-1")
    )
    assert applied and (done.status, done.platform_reference) == ("executed", "TT-R-1")
    _, applied = compensation_result(
        compensation=compensation, result=Result(executed=True, reference="TT-R-1")
    )
    assert not applied  # a resent result changes nothing
    kinds = list(case.events.filter(kind="compensation").values_list("data__status", flat=True))
    assert kinds == ["proposed", "approved", "executed"]


@pytest.mark.django_db
def test_a_full_refund_is_what_was_paid_less_partial_refunds(store, people):
    case = _case(store, amount="100.00")
    _propose(case, "partial_refund", people["ann"], key="p", amount=Decimal("30.00"))
    full, _ = _propose(case, "full_refund", people["sue"], key="f")
    assert full.amount == Decimal("70.00")


@pytest.mark.django_db
def test_a_swap_reserves_its_stock_and_releases_it_when_refused(store, people):
    sku = make_sku(store=store, on_hand=3)
    case = _case(store, type="oversold")
    swap, _ = _propose(case, "swap", people["ann"], key="s", sku=sku, quantity=2)
    assert StockLevel.objects.get(sku=sku).reserved == 2
    with pytest.raises(CompensationError, match="1 free in stock"):
        _propose(_case(store, type="oversold"), "swap", people["ann"], key="s2", sku=sku, quantity=2)
    compensation_result(compensation=swap, result=Result(executed=False, reason="Platform: SKU delisted"))
    level = StockLevel.objects.get(sku=sku)
    assert (level.reserved, level.on_hand) == (0, 3)
    refused = case.events.filter(kind="compensation").last()
    assert refused.data["status"] == "failed" and "Platform: SKU delisted" in refused.message  # for the agent


@pytest.mark.django_db
def test_an_executed_swap_takes_its_units_out_of_stock(store, people):
    sku = make_sku(store=store, on_hand=3)
    swap, _ = _propose(_case(store, type="oversold"), "swap", people["ann"], sku=sku)
    compensation_result(compensation=swap, result=Result(executed=True))
    level = StockLevel.objects.get(sku=sku)
    assert (level.reserved, level.on_hand) == (0, 2)


@pytest.mark.django_db
def test_a_reship_creates_a_tracked_parcel_and_a_carrier_claim(store, people):
    case = _case(store, type="lost")
    reship, _ = _propose(case, "reship", people["ann"], amount=Decimal("12.00"))
    assert reship.replaces_shipment_id == case.shipment_id
    with pytest.raises(CompensationError, match="new parcel"):
        compensation_result(compensation=reship, result=Result(executed=True))
    done, _ = compensation_result(
        compensation=reship,
        result=Result(executed=True, carrier="NinjaVan-MY", tracking_number="NVMY0000001"),
    )
    parcel = Shipment.objects.get(pk=done.shipment_id)
    assert (parcel.order_id, parcel.carrier, parcel.next_check_at is not None) == (
        case.order_id,
        "ninjavan-my",
        True,
    )
    case.fault_party = "carrier"
    case.save()
    claim = claim_open(case, actor=people["sue"])
    assert (claim.carrier, claim.amount_claimed, claim.status) == (
        case.shipment.carrier,
        Decimal("12.00"),
        "draft",
    )
    assert claim.deadline == (timezone.localtime(case.opened_at) + timedelta(days=30)).date()
    assert claim_open(case, actor=people["sue"]).pk == claim.pk  # once
    for status in ("submitted", "accepted"):
        claim = claim_move(claim=claim, to_status=status, actor=people["sue"])
    with pytest.raises(CompensationError):
        claim_move(claim=claim, to_status="paid", actor=people["sue"], recovered="13.00")
    claim = claim_move(claim=claim, to_status="paid", actor=people["sue"], recovered="12.00")
    assert (claim.status, claim.amount_recovered) == ("paid", Decimal("12.00"))
    with pytest.raises(PermissionDenied):
        claim_move(claim=claim, to_status="submitted", actor=people["ann"])


# --- the invariants ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_refunds_never_exceed_what_was_paid(store, people):
    case = _case(store, amount="50.00")
    _propose(case, "partial_refund", people["sue"], key="a", amount=Decimal("30.00"))
    with pytest.raises(CompensationError, match=r"more than the 50\.00 MYR paid"):
        _propose(case, "partial_refund", people["sue"], key="b", amount=Decimal("25.00"))
    with pytest.raises(CompensationError, match="more than the"):
        _propose(case, "partial_refund", people["sue"], key="c", amount=Decimal("60.00"))
    assert Compensation.objects.count() == 1


@pytest.mark.django_db
def test_a_second_full_refund_is_refused_naming_the_first(store, people):
    case = _case(store)
    _propose(case, "full_refund", people["ann"], key="a")
    with pytest.raises(CompensationError, match="Already refunded in full by ann"):
        _propose(case, "full_refund", people["bob"], key="b")
    with pytest.raises(CompensationError, match="Already refunded in full"):
        _propose(case, "partial_refund", people["bob"], key="c", amount=Decimal("1.00"))


@pytest.mark.django_db
def test_the_database_itself_refuses_a_second_full_refund_and_a_second_open_reship(store, people):
    """Bypassing the service: the partial unique indexes hold."""
    case = _case(store)
    base = {
        "store": store,
        "case": case,
        "order": case.order,
        "currency": "MYR",
        "proposed_at": timezone.now(),
    }
    Compensation.objects.create(**base, kind="full_refund", amount=Decimal("1"), idempotency_key="x1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Compensation.objects.create(**base, kind="full_refund", amount=Decimal("1"), idempotency_key="x2")
    Compensation.objects.create(**base, kind="reship", replaces_shipment=case.shipment, idempotency_key="x3")
    with pytest.raises(IntegrityError), transaction.atomic():
        Compensation.objects.create(
            **base, kind="reship", replaces_shipment=case.shipment, idempotency_key="x4"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Compensation.objects.create(**base, kind="partial_refund", amount=Decimal("0"), idempotency_key="x5")
    with pytest.raises(IntegrityError), transaction.atomic():
        Compensation.objects.create(**base, kind="coupon", amount=Decimal("-1"), idempotency_key="x6")
    Compensation.objects.create(**base, kind="coupon", origin="auto_small_damage", idempotency_key="x7")
    with pytest.raises(IntegrityError), transaction.atomic():
        Compensation.objects.create(**base, kind="coupon", origin="auto_small_damage", idempotency_key="x8")


@pytest.mark.django_db
def test_a_failed_full_refund_does_not_block_the_next(store, people):
    case = _case(store)
    first, _ = _propose(case, "full_refund", people["sue"], key="a")
    compensation_result(compensation=first, result=Result(executed=False, reason="Payment gateway down"))
    second, created = _propose(case, "full_refund", people["sue"], key="b")
    assert created and second.amount == case.order.amount


@pytest.mark.django_db
def test_coupons_per_case_follow_the_policy(store, people):
    StorePolicy.objects.create(store=store, coupons_per_case=2)
    case = _case(store)
    _propose(case, "coupon", people["ann"], key="a", amount=Decimal("1.00"))
    _propose(case, "coupon", people["ann"], key="b", amount=Decimal("1.00"))
    with pytest.raises(CompensationError, match="allows 2 per case"):
        _propose(case, "coupon", people["bob"], key="c", amount=Decimal("1.00"))


@pytest.mark.django_db
def test_the_same_key_proposes_once(store, people):
    case = _case(store)
    first, created = _propose(case, "coupon", people["ann"], key="form-token-1", amount=Decimal("3.00"))
    again, created_again = _propose(case, "coupon", people["ann"], key="form-token-1", amount=Decimal("3.00"))
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(CompensationError, match="another proposal"):
        _propose(case, "full_refund", people["ann"], key="form-token-1")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("coupon", {"amount": Decimal("-5")}, "more than zero"),
        ("coupon", {"amount": Decimal("0")}, "more than zero"),
        ("coupon", {}, "needs its amount"),
        ("partial_refund", {"amount": Decimal("1.234")}, "two decimals"),
        ("partial_refund", {}, "needs its amount"),
        ("full_refund", {"amount": Decimal("5")}, "give no amount"),
        ("swap", {}, "needs the SKU"),
        ("gift", {}, "SKU or a note"),
        ("coupon", {"amount": Decimal("5"), "percent": Decimal("150")}, "0.01 to 100"),
        ("refund_everything", {}, "Unknown kind"),
    ],
)
def test_bad_proposals_are_refused_and_write_nothing(store, people, kind, fields, message):
    with pytest.raises(CompensationError, match=message):
        _propose(_case(store), kind, people["ann"], **fields)
    assert not Compensation.objects.exists()


@pytest.mark.django_db
def test_a_swap_to_a_sku_without_stock_is_refused(store, people):
    sku = make_sku(store=store, on_hand=0)
    with pytest.raises(CompensationError, match="0 free in stock"):
        _propose(_case(store, type="oversold"), "swap", people["ann"], sku=sku)


# --- approval limits ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_agent_approves_up_to_the_limit_and_a_supervisor_above_it(store, people):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("50"), agent_daily_limit=Decimal("80"))
    case = _case(store, amount="200.00")
    small, _ = _propose(case, "partial_refund", people["ann"], key="a", amount=Decimal("40.00"))
    assert small.status == "approved"
    big, _ = _propose(case, "partial_refund", people["ann"], key="b", amount=Decimal("30.00"))
    assert big.status == "proposed"  # 70 on the case: over an agent's 50
    with pytest.raises(PermissionDenied, match="per case"):
        compensation_approve(compensation=big, actor=people["ann"])  # not her own over-limit one
    with pytest.raises(PermissionDenied, match="per case"):
        compensation_approve(compensation=big, actor=people["bob"])
    approved = compensation_approve(compensation=big, actor=people["sue"])
    assert (approved.status, approved.approved_by) == ("approved", people["sue"])
    with pytest.raises(CompensationError, match="already approved \\(sue"):
        compensation_approve(compensation=big, actor=people["sue"])


@pytest.mark.django_db
def test_an_agents_daily_limit_counts_every_case(store, people):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("50"), agent_daily_limit=Decimal("60"))
    first, _ = _propose(_case(store), "partial_refund", people["ann"], key="a", amount=Decimal("40.00"))
    second, _ = _propose(_case(store), "partial_refund", people["ann"], key="b", amount=Decimal("40.00"))
    assert (first.status, second.status) == ("approved", "proposed")
    with pytest.raises(PermissionDenied, match="a day"):
        compensation_approve(compensation=second, actor=people["ann"])
    assert compensation_approve(compensation=second, actor=people["bob"]).status == "approved"


@pytest.mark.django_db
def test_rejecting_needs_a_manager_and_a_reason_and_executing_a_rejected_one_is_refused(store, people):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("10"))
    proposal, _ = _propose(_case(store), "partial_refund", people["ann"], amount=Decimal("40.00"))
    with pytest.raises(PermissionDenied):
        compensation_reject(compensation=proposal, actor=people["bob"], reason="no")
    with pytest.raises(CompensationError, match="Say why"):
        compensation_reject(compensation=proposal, actor=people["sue"], reason=" ")
    compensation_reject(compensation=proposal, actor=people["sue"], reason="The buyer already got a coupon.")
    with pytest.raises(CompensationError, match="already rejected \\(sue"):
        compensation_result(compensation=proposal, result=Result(executed=True))
    with pytest.raises(CompensationError, match="already rejected"):
        compensation_approve(compensation=proposal, actor=people["sue"])
    with pytest.raises(CompensationError):
        compensation_cancel(compensation=proposal, actor=people["ann"])


@pytest.mark.django_db
def test_a_result_before_approval_is_refused(store, people):
    StorePolicy.objects.create(store=store, agent_case_limit=Decimal("10"))
    proposal, _ = _propose(_case(store), "partial_refund", people["ann"], amount=Decimal("40.00"))
    with pytest.raises(CompensationError, match="not approved yet"):
        compensation_result(compensation=proposal, result=Result(executed=True))


# --- playbooks and rules ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_oversold_playbook_offers_wait_swap_and_refund_plus_coupon(store, people):
    other = make_sku(store=store, code="SWAP-1", on_hand=5)
    case = _case(store, type="oversold")
    case.facts = {
        "suggested_path": "swap",
        "options": [
            {"key": "A", "path": "wait", "available": True, "until": "2026-12-10"},
            {"key": "B", "path": "swap", "available": True, "swap_for": {"X": [{"sku_code": "SWAP-1"}]}},
            {"key": "C", "path": "refund_coupon", "available": True},
        ],
    }
    offers = playbook_offers(case)
    assert [(o.key, o.kind, o.choice) for o in offers] == [
        ("A", "wait_bonus", "wait"), ("B", "swap", "swap"), ("C", "full_refund", "refund"),
    ]  # fmt: skip
    assert offers[1].sku == other and offers[1].suggested
    assert offers[2].with_coupon == Decimal("5")
    made = offer_propose(case=case, offer=offers[2], actor=people["ann"], idempotency_key="form-9")
    assert [c.kind for c in made] == ["full_refund", "coupon"]
    again = offer_propose(case=case, offer=offers[2], actor=people["ann"], idempotency_key="form-9")
    assert [c.pk for c in again] == [c.pk for c in made]


@pytest.mark.django_db
def test_the_out_of_stock_playbook_follows_the_restock_date(store):
    case = _case(store, type="out_of_stock")
    case.facts = {"suggested_path": "refund", "options": [{"key": "A", "path": "wait", "available": False}]}
    offers = {o.key: o for o in playbook_offers(case)}
    assert not offers["A"].available and offers["C"].suggested and offers["C"].with_coupon is None


@pytest.mark.django_db
def test_a_refund_for_a_late_parcel_waits_for_the_grace_period(store):
    case = _case(store, type="stalled_in_transit")
    refund = next(o for o in playbook_offers(case) if o.kind == "full_refund")
    assert not refund.available and "3 days late" in refund.why_not.render("en")
    later = next(
        o for o in playbook_offers(case, now=timezone.now() + timedelta(days=4)) if o.kind == "full_refund"
    )
    assert later.available


@pytest.mark.django_db
def test_lost_and_damaged_playbooks(store):
    assert [o.kind for o in playbook_offers(_case(store, type="lost"))] == ["reship", "full_refund"]
    small = playbook_offers(_case(store, type="damaged", amount="30.00"))
    assert small[0].kind == "coupon" and small[0].suggested
    large = playbook_offers(_case(store, type="damaged", amount="300.00"))
    assert not large[0].suggested and large[1].suggested


@pytest.mark.django_db
def test_the_small_damage_coupon_is_sent_once_whatever_fires_it(store):
    first = _case(store, type="damaged", amount="30.00")
    coupon = small_damage_coupon_for(first)
    assert (coupon.kind, coupon.amount, coupon.status) == ("coupon", Decimal("10"), "approved")
    # a buyer's complaint about the same order fires again: nothing more
    assert small_damage_coupon_for(first) is None
    assert Compensation.objects.filter(order=first.order).count() == 1
    assert (
        small_damage_coupon_for(_case(store, type="damaged", amount="300.00")) is None
    )  # over the threshold


@pytest.mark.django_db
def test_the_damage_rule_sends_the_coupon_when_it_raises_the_case(store):
    from cases.engine import exceptions_sweep
    from tracking.services import EventData, events_ingest

    order = make_order(store=store, amount="25.00")
    parcel = make_shipment(order=order)
    events_ingest(shipment=parcel, events=[EventData(checkpoint_at=timezone.now() - timedelta(hours=1),
                  tag="Exception", subtag="Exception_012", source="test")])  # fmt: skip
    exceptions_sweep()
    assert Compensation.objects.get(order=order).origin == "auto_small_damage"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_small_damage_coupon_is_made_once_under_racing_workers(store):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    case = _case(store, type="damaged", amount="30.00")

    def fire() -> None:
        small_damage_coupon_for(Case.objects.get(pk=case.pk))

    at_once(*[fire] * 6)
    assert Compensation.objects.filter(order=case.order).count() == 1


# --- the race: 0 double compensations ------------------------------------------------------------------------


def _race(store, kind: str, attempts: int, **fields) -> tuple[int, int, list[str]]:
    """8 threads, each a different agent, submit `kind` for one order `attempts` times in all."""
    agents = [make_user(f"racer{n}") for n in range(8)]
    for agent in agents:
        make_membership(user=agent, store=store, role="supervisor")
    case = _case(store, amount="100.00")
    made, refused, errors = [0], [0], []
    lock = threading.Lock()

    def agent_loop(agent, n: int) -> None:
        try:
            for attempt in range(attempts // len(agents)):
                try:
                    _, created = compensation_propose(
                        case=Case.objects.get(pk=case.pk), proposal=Proposal(kind=kind, **fields), actor=agent,
                        idempotency_key=f"{agent.pk}-{attempt}",
                    )  # fmt: skip
                    with lock:
                        made[0] += int(created)
                except CompensationError as exc:
                    with lock:
                        refused[0] += 1
                        errors.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=agent_loop, args=(agent, n)) for n, agent in enumerate(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made[0], refused[0], errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "fields", "allowed", "refusal"),
    [
        ("full_refund", {}, 1, "Already refunded in full by racer"),
        ("reship", {}, 1, "Already being reshipped: proposed by racer"),
        ("coupon", {"amount": Decimal("2.00")}, 1, "the store allows 1 per case"),
    ],
)
def test_racing_agents_make_no_double_compensation(store, kind, fields, allowed, refusal, capsys):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    attempts = 200
    made, refused, errors = _race(store, kind, attempts, **fields)
    stored = Compensation.objects.filter(kind=kind).count()
    assert (made, stored, made + refused) == (allowed, allowed, attempts)
    assert all(refusal in error for error in errors), errors[:3]
    with capsys.disabled():
        print(f"\n{kind}: 0 double compensations in {attempts} attempts by 8 agents ({refused} refused)")
    assert Order.objects.count() == 1
