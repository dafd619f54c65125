"""Compensation: what a case gives the buyer (coupon, refund, reship, swap, gift, wait bonus), approved within
limits, executed by the storefront once, and claims against the carrier for what it cost.

The invariants that protect the seller's money are the database's, not the forms':
- every write to an order's compensation holds the order's row lock (SELECT ... FOR UPDATE), so the sums
  checked under it (refunds never exceed what was paid; coupons per case at most the policy's) cannot be
  raced: a second agent waits, then reads the first one's refund and is refused with who and when;
- partial unique indexes make the rest impossible even to code that skips this module: one full refund
  that counts per order, one reship under way per parcel, one automatic small-damage coupon per order, one
  proposal per idempotency key;
- state moves are conditional updates under the row lock: an approved compensation is executed once, a
  result for one already executed is answered with what happened, never applied twice.

Afterdesk holds no platform credentials: an approved compensation becomes a `compensation.approved`
storefront event, and the storefront reports the result (`POST /api/v1/compensations/{id}/result`), or an
agent records it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.choices import (
    LIVE_COMPENSATION,
    OPEN_COMPENSATION,
    REFUND_KINDS,
    CaseEventKind,
    CaseType,
    ClaimStatus,
    CompensationKind,
    CompensationOrigin,
    CompensationStatus,
    FaultParty,
    StorefrontEventType,
)
from cases.models import CarrierPolicy, Case, CaseEvent, Claim, Compensation, StorePolicy
from cases.outbox import event_emit
from cases.texts import Text, event_data
from cases.workflow import MANAGER_ROLES, CaseWorkflowError, actor_role_require
from portal.models import ApiKey
from portal.tasks import wake
from tracking.models import SKU, Order, Shipment, StockLevel

log = logging.getLogger(__name__)

K, S = CompensationKind, CompensationStatus
SPENT = (S.APPROVED, S.EXECUTING, S.EXECUTED)  # what a case cost: approved, whether executed yet or not
MONEY_MAX = Decimal("9999999999.99")
REASON_MAX = 2000
REGISTER_TASK = "tracking.tasks.register_due"
RULES_TASK = "cases.tasks.evaluate_due"


class CompensationError(CaseWorkflowError):
    """A refused compensation action, with a message fit to show (who did what first, when). Nothing was
    written."""


# --- reading ---------------------------------------------------------------------------------------------


def policy_for(store_id: int) -> StorePolicy:
    return StorePolicy.objects.filter(store_id=store_id).first() or StorePolicy(store_id=store_id)


def _who(user: AbstractBaseUser | None) -> str:
    return user.get_username() if user is not None else _("the system")


def _when(moment: datetime | None) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i") if moment else ""


def _live(order_id: int):
    return Compensation.objects.filter(order_id=order_id, status__in=LIVE_COMPENSATION)


def refunded(order_id: int) -> Decimal:
    """What the order's refunds that count add up to."""
    total = _live(order_id).filter(kind__in=REFUND_KINDS).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0")


def case_cost(
    case: Case, *, compensations: list[Compensation] | None = None, claim: Claim | None = None
) -> dict[str, Decimal]:
    """What a case cost: compensation approved (executed or under way; a proposal costs nothing yet), and
    what the carrier paid back. From the rows given (the case page has them), else read."""
    if compensations is None:
        compensations = list(Compensation.objects.filter(case=case, status__in=LIVE_COMPENSATION))
        claim = Claim.objects.filter(case=case).first()
    spent = sum((c.amount for c in compensations if c.status in SPENT), Decimal("0"))
    recovered = claim.amount_recovered if claim is not None else Decimal("0")
    return {"spent": spent, "recovered": recovered, "net": spent - recovered}


# --- proposing -------------------------------------------------------------------------------------------


@dataclass
class Proposal:
    """What an agent, the storefront or a rule asks to give. Amounts are in the order's currency."""

    kind: str
    amount: Decimal | None = None
    percent: Decimal | None = None
    valid_until: date | None = None
    sku: SKU | None = None
    quantity: int = 1
    replaces_shipment: Shipment | None = None
    note: str = ""
    reason: str = ""


def _money(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise CompensationError(_("%(field)s is not an amount.") % {"field": name}) from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise CompensationError(_("%(field)s takes at most two decimals.") % {"field": name})
    if amount <= 0:
        raise CompensationError(_("%(field)s must be more than zero.") % {"field": name})
    if amount > MONEY_MAX:
        raise CompensationError(_("%(field)s is too large.") % {"field": name})
    return amount


def _proposal_check(case: Case, order: Order, proposal: Proposal, policy: StorePolicy) -> Proposal:
    """The proposal made whole and sound, or CompensationError. Reads nothing that needs a lock."""
    if proposal.kind not in K.values:
        raise CompensationError(_("Unknown kind of compensation: %(kind)s.") % {"kind": proposal.kind})
    if len(proposal.reason) > REASON_MAX or len(proposal.note) > REASON_MAX:
        raise CompensationError(_("A reason or a note is at most %(max)d characters.") % {"max": REASON_MAX})
    amount = _money(proposal.amount, _("The amount"))
    percent = None
    if proposal.percent not in (None, ""):
        percent = _money(proposal.percent, _("The percent"))
        if proposal.kind != K.COUPON or percent > 100:
            raise CompensationError(_("A percent is for a coupon, from 0.01 to 100."))
    if proposal.quantity < 1 or proposal.quantity > 1000:
        raise CompensationError(_("The quantity is from 1 to 1,000."))
    if proposal.sku is not None and proposal.sku.store_id != case.store_id:
        raise CompensationError(_("No such SKU in this store."))
    kind = proposal.kind
    if kind == K.PARTIAL_REFUND and amount is None:
        raise CompensationError(_("A partial refund needs its amount."))
    if kind == K.COUPON and amount is None:
        raise CompensationError(_("A coupon needs its amount (with a percent: its cap)."))
    if kind == K.SWAP and proposal.sku is None:
        raise CompensationError(_("A swap needs the SKU the buyer gets instead."))
    if kind in (K.GIFT, K.WAIT_BONUS) and proposal.sku is None and not proposal.note.strip():
        raise CompensationError(_("A gift or a wait bonus needs a SKU or a note saying what it is."))
    if kind == K.FULL_REFUND and amount is not None:
        raise CompensationError(_("A full refund is what was paid, less partial refunds: give no amount."))
    replaces = proposal.replaces_shipment
    if kind == K.RESHIP:
        replaces = replaces or (case.shipment if case.shipment_id else None)
        if replaces is None:
            raise CompensationError(_("A reship replaces a parcel: this case has none. Name the parcel."))
        if replaces.order_id != order.pk:
            raise CompensationError(_("That parcel is not this order's."))
    if amount is not None and amount > order.amount and kind in REFUND_KINDS:
        raise CompensationError(
            _("%(amount)s is more than the %(paid)s %(currency)s paid.")
            % {"amount": amount, "paid": order.amount, "currency": order.currency}
        )
    return Proposal(
        kind=kind, amount=amount, percent=percent, valid_until=proposal.valid_until, sku=proposal.sku,
        quantity=proposal.quantity, replaces_shipment=replaces, note=proposal.note.strip(),
        reason=proposal.reason.strip(),
    )  # fmt: skip


def _limits_under_lock(case: Case, order: Order, proposal: Proposal, policy: StorePolicy) -> Decimal:
    """Check what the order's compensation so far allows (the order's row is locked), and return the
    amount the new compensation costs. CompensationError names who did what first, and when."""
    live = _live(order.pk).select_related("proposed_by")
    kind = proposal.kind
    full = next((c for c in live if c.kind == K.FULL_REFUND), None)
    if kind in REFUND_KINDS and full is not None:
        raise CompensationError(
            _("Already refunded in full by %(who)s at %(when)s (%(amount)s %(currency)s).")
            % {"who": _who(full.proposed_by), "when": _when(full.proposed_at), "amount": full.amount,
               "currency": full.currency}
        )  # fmt: skip
    paid_back = sum((c.amount for c in live if c.kind in REFUND_KINDS), Decimal("0"))
    if kind == K.FULL_REFUND:
        amount = order.amount - paid_back
        if amount <= 0:
            raise CompensationError(_("Partial refunds already returned all %(paid)s %(currency)s paid.") % {
                "paid": order.amount, "currency": order.currency})  # fmt: skip
        return amount
    if kind == K.PARTIAL_REFUND and paid_back + proposal.amount > order.amount:
        raise CompensationError(
            _("Refunds would come to %(total)s, more than the %(paid)s %(currency)s paid (%(back)s refunded already).")
            % {"total": paid_back + proposal.amount, "paid": order.amount, "currency": order.currency,
               "back": paid_back}
        )  # fmt: skip
    if kind == K.COUPON:
        coupons = [c for c in live if c.kind == K.COUPON and c.case_id == case.pk]
        if len(coupons) >= policy.coupons_per_case:
            first = coupons[0]
            raise CompensationError(
                _("This case already has %(count)d coupon(s) (the first by %(who)s at %(when)s); the store allows %(max)d per case.")
                % {"count": len(coupons), "who": _who(first.proposed_by), "when": _when(first.proposed_at),
                   "max": policy.coupons_per_case}
            )  # fmt: skip
    if kind == K.RESHIP:
        open_reship = next(
            (c for c in live if c.kind == K.RESHIP and c.status in OPEN_COMPENSATION
             and c.replaces_shipment_id == proposal.replaces_shipment.pk), None,
        )  # fmt: skip
        if open_reship is not None:
            raise CompensationError(
                _("Already being reshipped: proposed by %(who)s at %(when)s.")
                % {"who": _who(open_reship.proposed_by), "when": _when(open_reship.proposed_at)}
            )
    if kind == K.SWAP:
        _reserve(proposal.sku, proposal.quantity)
    return proposal.amount or Decimal("0")


def _reserve(sku: SKU, quantity: int) -> None:
    """Set the swap's units aside (the stock row locked), or refuse when they are not free."""
    level = StockLevel.objects.select_for_update().filter(sku=sku).first()
    if sku.is_combo:
        raise CompensationError(_("%(sku)s is a combo pack; swap to one of its items.") % {"sku": sku.code})
    if level is None or level.available < quantity:
        free = level.available if level is not None else 0
        raise CompensationError(
            _("%(sku)s has %(free)d free in stock, not the %(quantity)d the swap needs.")
            % {"sku": sku.code, "free": max(free, 0), "quantity": quantity}
        )
    StockLevel.objects.filter(pk=level.pk).update(reserved=F("reserved") + quantity)


def _release(compensation: Compensation) -> None:
    if compensation.kind == K.SWAP and compensation.sku_id:
        StockLevel.objects.filter(sku_id=compensation.sku_id).update(
            reserved=F("reserved") - compensation.quantity
        )


def _label(choices, value: str) -> Text:
    """A choice's label as a Text parameter: kept in English, shown in the reader's language."""
    with translation.override("en"):
        return Text(str(dict(choices.choices).get(value, value)))


def _timeline(compensation: Compensation, text: Text, *, actor: AbstractBaseUser | None, now: datetime,
              key: ApiKey | None = None, **data: Any) -> CaseEvent:  # fmt: skip
    payload = {
        "compensation_id": compensation.pk, "kind": compensation.kind, "status": compensation.status,
        "amount": str(compensation.amount), "currency": compensation.currency, **data,
    }  # fmt: skip
    if key is not None:
        payload.update({"source": "api", "api_key": key.name})
    return CaseEvent.objects.create(
        case_id=compensation.case_id, kind=CaseEventKind.COMPENSATION, actor=actor, created_at=now,
        message=str(text), data=event_data(text, payload),
    )  # fmt: skip


def compensation_propose(
    *,
    case: Case,
    proposal: Proposal,
    actor: AbstractBaseUser | None,
    idempotency_key: str,
    key: ApiKey | None = None,
    origin: str = CompensationOrigin.AGENT,
    now: datetime | None = None,
) -> tuple[Compensation, bool]:
    """Propose a compensation on a case; approve it at once when the proposer may (a supervisor, an agent
    within their limits, the system for the automatic small-damage coupon). Returns (compensation, created).

    Idempotent on `idempotency_key` (per store): the same key again returns the first proposal. Holds the
    order's row lock while it checks what the order's compensation so far allows and writes, so two agents
    refunding one order at the same moment get one refund and one refusal naming the first."""
    now = now or timezone.now()
    if actor is not None:
        actor_role_require(actor, case.store_id)
    if not idempotency_key or len(idempotency_key) > 100:
        raise CompensationError(_("A proposal needs an idempotency key of at most 100 characters."))
    earlier = Compensation.objects.filter(store_id=case.store_id, idempotency_key=idempotency_key).first()
    if earlier is not None:
        return _same_proposal(earlier, case, proposal), False
    if case.order_id is None:
        raise CompensationError(_("This case has no order to compensate."))
    policy = policy_for(case.store_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=case.order_id)
        proposal = _proposal_check(case, order, proposal, policy)
        earlier = Compensation.objects.filter(store_id=case.store_id, idempotency_key=idempotency_key).first()
        if earlier is not None:  # the same request, a moment ago, while we waited for the lock
            return _same_proposal(earlier, case, proposal), False
        amount = _limits_under_lock(case, order, proposal, policy)
        try:
            with transaction.atomic():
                compensation = Compensation.objects.create(
                    store_id=case.store_id, case=case, order=order, kind=proposal.kind, origin=origin,
                    amount=amount, currency=order.currency, percent=proposal.percent,
                    valid_until=proposal.valid_until, sku=proposal.sku, quantity=proposal.quantity,
                    replaces_shipment=proposal.replaces_shipment, note=proposal.note, reason=proposal.reason,
                    idempotency_key=idempotency_key, proposed_by=actor, proposed_at=now,
                )  # fmt: skip
        except IntegrityError:
            raise CompensationError(
                _("Another compensation of this kind already covers this order; reload to see it.")
            ) from None
        _timeline(compensation, Text(gettext_noop("Proposed %(kind)s: %(amount)s %(currency)s."),
                  kind=_label(K, compensation.kind), amount=str(compensation.amount), currency=compensation.currency),
                  actor=actor, now=now, key=key, reason=compensation.reason)  # fmt: skip
        if origin == CompensationOrigin.AUTO_SMALL_DAMAGE or _may_approve(compensation, actor, policy, now):
            _approve_locked(compensation, actor=actor, now=now, key=key)
    return compensation, True


def _same_proposal(earlier: Compensation, case: Case, proposal: Proposal) -> Compensation:
    if earlier.case_id != case.pk or earlier.kind != proposal.kind:
        raise CompensationError(_("This idempotency key was used for another proposal."))
    return earlier


# --- approving -------------------------------------------------------------------------------------------


def _approved_today(actor: AbstractBaseUser, store_id: int, now: datetime) -> Decimal:
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    total = Compensation.objects.filter(
        store_id=store_id, approved_by=actor, approved_at__gte=start, status__in=LIVE_COMPENSATION
    ).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0")


def _approved_on_case(case_id: int, *, excluding: int) -> Decimal:
    total = (
        Compensation.objects.filter(case_id=case_id, status__in=LIVE_COMPENSATION)
        .exclude(status=S.PROPOSED)
        .exclude(pk=excluding)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total or Decimal("0")


def limit_refusal(
    compensation: Compensation, actor: AbstractBaseUser, policy: StorePolicy, now: datetime
) -> str:
    """Why `actor` may not approve `compensation` ("" when they may). Supervisors and admins may approve
    anything; an agent up to the store's limits per case and per day."""
    role = actor_role_require(actor, compensation.store_id)
    if role in MANAGER_ROLES:
        return ""
    on_case = _approved_on_case(compensation.case_id, excluding=compensation.pk) + compensation.amount
    if on_case > policy.agent_case_limit:
        return _("%(total)s %(currency)s on this case is over an agent's %(limit)s per case: a supervisor approves it.") % {
            "total": on_case, "currency": compensation.currency, "limit": policy.agent_case_limit}  # fmt: skip
    today = _approved_today(actor, compensation.store_id, now) + compensation.amount
    if today > policy.agent_daily_limit:
        return _("%(total)s %(currency)s approved by you today is over an agent's %(limit)s a day: a supervisor approves it.") % {
            "total": today, "currency": compensation.currency, "limit": policy.agent_daily_limit}  # fmt: skip
    return ""


def _may_approve(
    compensation: Compensation, actor: AbstractBaseUser | None, policy: StorePolicy, now: datetime
) -> bool:
    return actor is not None and not limit_refusal(compensation, actor, policy, now)


def _approve_locked(compensation: Compensation, *, actor: AbstractBaseUser | None, now: datetime,
                    key: ApiKey | None = None) -> None:  # fmt: skip
    compensation.status, compensation.approved_by, compensation.approved_at = S.APPROVED, actor, now
    compensation.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
    _timeline(compensation, Text(gettext_noop("Approved %(kind)s: %(amount)s %(currency)s."),
              kind=_label(K, compensation.kind), amount=str(compensation.amount), currency=compensation.currency),
              actor=actor, now=now, key=key)  # fmt: skip
    event_emit(
        store_id=compensation.store_id, kind=StorefrontEventType.COMPENSATION_APPROVED, case_id=compensation.case_id,
        dedupe_key=f"compensation.approved:{compensation.pk}", now=now,
        data={"compensation": compensation_snapshot(compensation)},
    )  # fmt: skip


def _locked(compensation: Compensation) -> Compensation:
    # The order first, always: every compensation write takes the order's lock before its rows'.
    Order.objects.select_for_update().filter(pk=compensation.order_id).values_list("pk", flat=True).first()
    return (
        Compensation.objects.select_for_update(of=("self",))
        .select_related("proposed_by", "approved_by", "decided_by", "case", "order")
        .get(pk=compensation.pk)
    )


def _state_refusal(locked: Compensation, action: str) -> CompensationError:
    who = {
        S.APPROVED: (locked.approved_by, locked.approved_at), S.EXECUTING: (locked.approved_by, locked.approved_at),
        S.EXECUTED: (None, locked.executed_at), S.REJECTED: (locked.decided_by, locked.updated_at),
        S.CANCELLED: (locked.decided_by, locked.updated_at), S.FAILED: (None, locked.updated_at),
    }.get(CompensationStatus(locked.status), (None, None))  # fmt: skip
    return CompensationError(
        _("Cannot %(action)s: it is already %(status)s (%(who)s, %(when)s).")
        % {
            "action": action,
            "status": locked.get_status_display().lower(),
            "who": _who(who[0]),
            "when": _when(who[1]),
        }
    )


def compensation_approve(
    *, compensation: Compensation, actor: AbstractBaseUser, now: datetime | None = None
) -> Compensation:
    """Approve a proposal within the actor's limits; the storefront is then asked to execute it. Refuses
    one already approved, rejected or cancelled, saying by whom and when."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(compensation)
        if locked.status != S.PROPOSED:
            raise _state_refusal(locked, _("approve it"))
        refusal = limit_refusal(locked, actor, policy_for(locked.store_id), now)
        if refusal:
            raise PermissionDenied(refusal)
        _approve_locked(locked, actor=actor, now=now)
    return locked


def compensation_reject(
    *, compensation: Compensation, actor: AbstractBaseUser, reason: str, now: datetime | None = None
) -> Compensation:
    """A supervisor or admin says no, with a reason the proposer reads on the case. Releases a swap's stock."""
    now = now or timezone.now()
    if actor_role_require(actor, compensation.store_id) not in MANAGER_ROLES:
        raise PermissionDenied(_("Only supervisors and admins reject proposals."))
    reason = (reason or "").strip()
    if not reason:
        raise CompensationError(_("Say why: the agent who proposed it reads it on the case."))
    return _close(compensation, S.REJECTED, actor=actor, reason=reason, now=now,
                  text=Text(gettext_noop("Rejected %(kind)s: %(reason)s")))  # fmt: skip


def compensation_cancel(
    *, compensation: Compensation, actor: AbstractBaseUser, reason: str = "", now: datetime | None = None
) -> Compensation:
    """Withdraw a proposal or an approved compensation the storefront has not taken yet: its proposer, or a
    supervisor or admin. Releases a swap's stock."""
    now = now or timezone.now()
    role = actor_role_require(actor, compensation.store_id)
    if role not in MANAGER_ROLES and compensation.proposed_by_id != actor.pk:
        raise PermissionDenied(_("Only its proposer, a supervisor or an admin cancels a compensation."))
    return _close(compensation, S.CANCELLED, actor=actor, reason=(reason or "").strip(), now=now,
                  text=Text(gettext_noop("Cancelled %(kind)s. %(reason)s")))  # fmt: skip


def _close(compensation: Compensation, status: str, *, actor: AbstractBaseUser, reason: str, now: datetime,
           text: Text) -> Compensation:  # fmt: skip
    with transaction.atomic():
        locked = _locked(compensation)
        allowed = (S.PROPOSED,) if status == S.REJECTED else (S.PROPOSED, S.APPROVED)
        if locked.status not in allowed:
            raise _state_refusal(locked, _("reject it") if status == S.REJECTED else _("cancel it"))
        locked.status, locked.decided_by, locked.decision_reason = status, actor, reason[:REASON_MAX]
        locked.save(update_fields=["status", "decided_by", "decision_reason", "updated_at"])
        _release(locked)
        _timeline(locked, Text(text.msgid, kind=_label(K, locked.kind), reason=reason), actor=actor, now=now)
    return locked


# --- the result ------------------------------------------------------------------------------------------


def compensation_taken(*, compensation_id: int, store_id: int, now: datetime | None = None) -> bool:
    """The storefront has taken the approved compensation (it acknowledged its event): executing."""
    return bool(
        Compensation.objects.filter(pk=compensation_id, store_id=store_id, status=S.APPROVED).update(
            status=S.EXECUTING, updated_at=now or timezone.now()
        )
    )


@dataclass
class Result:
    executed: bool
    reference: str = ""
    reason: str = ""
    carrier: str = ""  # a reship's new parcel
    tracking_number: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def compensation_result(
    *,
    compensation: Compensation,
    result: Result,
    actor: AbstractBaseUser | None = None,
    key: ApiKey | None = None,
    now: datetime | None = None,
) -> tuple[Compensation, bool]:
    """The platform's result, reported by the storefront (`key`) or recorded by an agent (`actor`):
    executed with the platform's reference (a reship with its new parcel, which is then tracked like any
    other), or failed with the reason (on the case's timeline and page for its agent; a swap's stock
    released; nothing retried).
    Applied once: the same result again returns (compensation, False); another result for one already
    settled is refused."""
    now = now or timezone.now()
    if actor is not None:
        actor_role_require(actor, compensation.store_id)
    reference, reason = result.reference.strip()[:100], result.reason.strip()[:REASON_MAX]
    if not result.executed and not reason:
        raise CompensationError(_("Say why it failed: the agent reads it on the case."))
    with transaction.atomic():
        locked = _locked(compensation)
        settled = {S.EXECUTED: True, S.FAILED: False}.get(CompensationStatus(locked.status))
        if settled is not None:
            if settled == result.executed:
                return locked, False
            raise _state_refusal(locked, _("record this result"))
        if locked.status == S.PROPOSED:
            raise CompensationError(_("It is not approved yet: a result comes after the approval."))
        if locked.status not in (S.APPROVED, S.EXECUTING):
            raise _state_refusal(locked, _("record this result"))
        if result.executed:
            if locked.kind == K.RESHIP:
                locked.shipment = _reship_parcel(locked, result, now)
            if locked.kind == K.SWAP and locked.sku_id:
                StockLevel.objects.filter(sku_id=locked.sku_id).update(
                    reserved=F("reserved") - locked.quantity, on_hand=F("on_hand") - locked.quantity
                )
            locked.status, locked.executed_at, locked.platform_reference = S.EXECUTED, now, reference
            locked.save(
                update_fields=["status", "executed_at", "platform_reference", "shipment", "updated_at"]
            )
            _timeline(locked, Text(gettext_noop("Executed %(kind)s on the platform. %(reference)s"), kind=_label(K, locked.kind),
                      reference=reference), actor=actor, now=now, key=key, reference=reference)  # fmt: skip
        else:
            locked.status, locked.failure_reason = S.FAILED, reason
            locked.save(update_fields=["status", "failure_reason", "updated_at"])
            _release(locked)
            _timeline(locked, Text(gettext_noop("The platform refused %(kind)s: %(reason)s"), kind=_label(K, locked.kind),
                      reason=reason), actor=actor, now=now, key=key)  # fmt: skip
    return locked, True


def _reship_parcel(compensation: Compensation, result: Result, now: datetime) -> Shipment:
    carrier, number = result.carrier.strip().lower(), result.tracking_number.strip()
    if not carrier or not number or len(carrier) > 40 or len(number) > 64:
        raise CompensationError(_("A reship's result names its new parcel: carrier and tracking number."))
    existing = Shipment.objects.filter(
        store_id=compensation.store_id, carrier=carrier, tracking_number=number
    ).first()
    if existing is not None:
        if existing.order_id != compensation.order_id:
            raise CompensationError(_("%(number)s is a parcel of another order.") % {"number": number})
        return existing
    parcel = Shipment.objects.create(
        store_id=compensation.store_id, order_id=compensation.order_id, carrier=carrier, tracking_number=number,
        booked_at=now,
    )  # fmt: skip
    wake(REGISTER_TASK)  # registered with the store's tracking providers, like any new parcel
    wake(RULES_TASK)
    return parcel


def compensation_snapshot(compensation: Compensation) -> dict[str, Any]:
    """A compensation as the storefront sees it (the compensation.approved event, the API)."""
    return {
        "id": compensation.pk,
        "case_id": compensation.case_id,
        "order_id": compensation.order.platform_order_id,
        "kind": compensation.kind,
        "status": compensation.status,
        "amount": str(compensation.amount),
        "currency": compensation.currency,
        "percent": str(compensation.percent) if compensation.percent is not None else None,
        "valid_until": compensation.valid_until.isoformat() if compensation.valid_until else None,
        "sku": compensation.sku.code if compensation.sku_id else None,
        "quantity": compensation.quantity,
        "replaces_tracking_number": (
            compensation.replaces_shipment.tracking_number if compensation.replaces_shipment_id else None
        ),
        "note": compensation.note,
        "buyer_platform_id": compensation.order.buyer_platform_id,
    }


# --- rules that compensate by themselves ----------------------------------------------------------------


def small_damage_coupon_for(case: Case, *, now: datetime | None = None) -> Compensation | None:
    """seed 002: a slightly damaged order under the store's threshold gets its small coupon at once, no
    return asked; once per order, whether the carrier's damage scan or a buyer's complaint fires it (a
    unique index makes the second a no-op). Returns the coupon when this call made it."""
    if case.type != CaseType.DAMAGED or case.order_id is None:
        return None
    policy = policy_for(case.store_id)
    order = case.order
    if order.amount >= policy.small_damage_order_max or policy.small_damage_coupon <= 0:
        return None
    if Compensation.objects.filter(order_id=order.pk, origin=CompensationOrigin.AUTO_SMALL_DAMAGE).exists():
        return None
    try:
        with transaction.atomic():
            compensation, created = compensation_propose(
                case=case, proposal=Proposal(kind=K.COUPON, amount=policy.small_damage_coupon,
                                             reason=str(SMALL_DAMAGE_REASON)),
                actor=None, idempotency_key=f"auto-small-damage:{order.pk}",
                origin=CompensationOrigin.AUTO_SMALL_DAMAGE, now=now,
            )  # fmt: skip
    except (IntegrityError, CompensationError) as exc:
        log.info("no automatic small-damage coupon for case %s: %s", case.pk, exc)
        return None
    return compensation if created else None


SMALL_DAMAGE_REASON = Text(gettext_noop("Small damage: an automatic coupon, no return asked."))


# --- fault and claims -----------------------------------------------------------------------------------

# The fault a case's type suggests before anyone looks closer.
SUGGESTED_FAULT: Mapping[str, str] = {
    CaseType.PICKUP_OVERDUE: FaultParty.CARRIER, CaseType.STALLED_IN_TRANSIT: FaultParty.CARRIER,
    CaseType.NO_UPDATE: FaultParty.CARRIER, CaseType.LOST: FaultParty.CARRIER, CaseType.DAMAGED: FaultParty.CARRIER,
    CaseType.DELIVERY_FAILED: FaultParty.BUYER, CaseType.ADDRESS_ISSUE: FaultParty.BUYER,
    CaseType.RETURNED_TO_SENDER: FaultParty.BUYER, CaseType.CUSTOMS_HOLD: FaultParty.CUSTOMS,
    CaseType.OVERSOLD: FaultParty.SELLER, CaseType.OUT_OF_STOCK: FaultParty.SELLER,
    CaseType.ORDER_REVIEW: FaultParty.BUYER, CaseType.QUALITY_BATCH: FaultParty.SELLER,
}  # fmt: skip


def fault_suggested(case: Case) -> str:
    return SUGGESTED_FAULT.get(case.type, FaultParty.UNKNOWN)


def claim_deadline(case: Case, carrier: str) -> date:
    days = (
        CarrierPolicy.objects.filter(store_id=case.store_id, carrier=carrier)
        .values_list("claim_days", flat=True)
        .first()
        or policy_for(case.store_id).claim_days
    )
    return (timezone.localtime(case.opened_at) + timedelta(days=days)).date()


def claim_open(case: Case, *, actor: AbstractBaseUser | None, now: datetime | None = None) -> Claim | None:
    """A draft claim against the carrier for a carrier-fault case that cost something (its compensation:
    refunds, coupons, the reship). Once per case; None when there is nothing to claim."""
    now = now or timezone.now()
    if case.shipment_id is None or case.fault_party != FaultParty.CARRIER:
        return None
    existing = Claim.objects.filter(case=case).first()
    if existing is not None:
        return existing
    cost = case_cost(case)["spent"]
    if cost <= 0:
        return None
    try:
        with transaction.atomic():
            claim = Claim.objects.create(
                store_id=case.store_id, case=case, order_id=case.order_id, shipment_id=case.shipment_id,
                carrier=case.shipment.carrier, amount_claimed=cost, currency=case.order.currency,
                deadline=claim_deadline(case, case.shipment.carrier), created_by=actor, created_at=now,
            )  # fmt: skip
    except IntegrityError:
        return Claim.objects.get(case=case)
    CaseEvent.objects.create(
        case=case, kind=CaseEventKind.UPDATED, actor=actor, created_at=now,
        message=str(CLAIM_OPENED),
        data=event_data(CLAIM_OPENED, {"claim_id": claim.pk, "amount": str(cost), "carrier": claim.carrier}),
    )  # fmt: skip
    return claim


CLAIM_OPENED = Text(gettext_noop("A claim against the carrier was drafted for what this case cost."))

# Claim status moves: (from, to) allowed.
CLAIM_MOVES = {
    ClaimStatus.DRAFT: {ClaimStatus.SUBMITTED},
    ClaimStatus.SUBMITTED: {ClaimStatus.ACCEPTED, ClaimStatus.REJECTED},
    ClaimStatus.ACCEPTED: {ClaimStatus.PAID},
    ClaimStatus.REJECTED: set(),
    ClaimStatus.PAID: set(),
}


def claim_move(
    *,
    claim: Claim,
    to_status: str,
    actor: AbstractBaseUser,
    reference: str = "",
    recovered: Any = None,
    note: str = "",
    now: datetime | None = None,
) -> Claim:
    """Move a claim along draft -> submitted -> accepted | rejected -> paid (with the amount recovered, at
    most what was claimed). Supervisors and admins. Locks the claim."""
    now = now or timezone.now()
    if actor_role_require(actor, claim.store_id) not in MANAGER_ROLES:
        raise PermissionDenied(_("Only supervisors and admins move claims."))
    with transaction.atomic():
        locked = Claim.objects.select_for_update().get(pk=claim.pk)
        if to_status not in CLAIM_MOVES.get(ClaimStatus(locked.status), set()):
            raise CompensationError(_("A %(from)s claim cannot become %(to)s.") % {
                "from": locked.get_status_display().lower(), "to": to_status})  # fmt: skip
        fields = ["status", "updated_at"]
        if to_status == ClaimStatus.SUBMITTED:
            locked.submitted_at = now
            fields.append("submitted_at")
        elif to_status in (ClaimStatus.ACCEPTED, ClaimStatus.REJECTED):
            locked.decided_at = now
            fields.append("decided_at")
        elif to_status == ClaimStatus.PAID:
            amount = _money(recovered, _("The amount recovered"))
            if amount is None or amount > locked.amount_claimed:
                raise CompensationError(_("The amount recovered is more than zero and at most the %(claimed)s claimed.") % {
                    "claimed": locked.amount_claimed})  # fmt: skip
            locked.amount_recovered, locked.paid_at = amount, now
            fields += ["amount_recovered", "paid_at"]
        if reference:
            locked.reference = reference.strip()[:100]
            fields.append("reference")
        if note:
            locked.note = note.strip()[:REASON_MAX]
            fields.append("note")
        locked.status = to_status
        locked.save(update_fields=fields)
        text = Text(CLAIM_MOVED, status=_label(ClaimStatus, locked.status))
        CaseEvent.objects.create(
            case_id=locked.case_id, kind=CaseEventKind.UPDATED, actor=actor, created_at=now, message=str(text),
            data=event_data(text, {"claim_id": locked.pk, "status": locked.status,
                                   "recovered": str(locked.amount_recovered)}),
        )  # fmt: skip
    return locked


CLAIM_MOVED = gettext_noop("Carrier claim: %(status)s.")


def case_fault_set(*, case: Case, fault: str, actor: AbstractBaseUser) -> bool:
    """Record who was at fault; returns whether it changed. A pickup that was overdue is the carrier's
    fault only with the booking proof on the case (seed 000: evidence is king; without it the appeal is
    lost anyway)."""
    actor_role_require(actor, case.store_id)
    if fault not in FaultParty.values:
        raise CompensationError(_("Unknown fault party: %(fault)s.") % {"fault": fault})
    if (
        fault == FaultParty.CARRIER
        and case.type == CaseType.PICKUP_OVERDUE
        and not case.evidence.filter(kind="booking_confirmation", tombstoned_at__isnull=True).exists()
    ):
        raise CompensationError(
            _(
                "Upload the booking confirmation first: a late pickup is the carrier's fault only with the booking proof."
            )
        )
    changed = Case.objects.filter(pk=case.pk).exclude(fault_party=fault).update(fault_party=fault)
    case.fault_party = fault
    return bool(changed)


# --- playbooks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A compensation the store's playbook suggests for a case, pre-filled for the agent. `choice` is the
    buyer's option it answers (wait, swap, refund) on a stock case; `with_coupon` a coupon that goes with it
    (oversold option C: a full refund plus a coupon)."""

    key: str
    kind: str
    label: Text
    amount: Decimal | None = None
    sku: SKU | None = None
    note: str = ""
    choice: str = ""
    with_coupon: Decimal | None = None
    suggested: bool = False
    available: bool = True
    why_not: Text | None = None


GRACE_WAIT = gettext_noop(
    "The refund offer waits until the parcel is %(days)s days late (grace period): %(left)s to go."
)


def playbook_offers(
    case: Case, *, now: datetime | None = None, policy: StorePolicy | None = None
) -> list[Offer]:
    """What the store's playbook suggests for this case, in the order to offer them."""
    now = now or timezone.now()
    if case.order_id is None:
        return []
    policy = policy or policy_for(case.store_id)
    order = case.order
    facts = case.facts if isinstance(case.facts, dict) else {}
    kind = case.type
    if kind in (CaseType.OVERSOLD, CaseType.OUT_OF_STOCK):
        return _stock_offers(case, facts, policy)
    if kind == CaseType.DAMAGED:
        small = order.amount < policy.small_damage_order_max
        return [
            Offer("A", K.COUPON, Text(gettext_noop("Small-damage coupon, no return")), amount=policy.small_damage_coupon,
                  suggested=small, available=policy.small_damage_coupon > 0),
            Offer("B", K.RESHIP, Text(gettext_noop("Send a new one")), suggested=not small),
            Offer("C", K.FULL_REFUND, Text(gettext_noop("Full refund"))),
        ]  # fmt: skip
    if kind in (CaseType.LOST, CaseType.RETURNED_TO_SENDER, CaseType.DELIVERY_FAILED, CaseType.ADDRESS_ISSUE):
        return [
            Offer("A", K.RESHIP, Text(gettext_noop("Reship the order")), suggested=True),
            Offer("B", K.FULL_REFUND, Text(gettext_noop("Full refund"))),
        ]
    if kind in (
        CaseType.STALLED_IN_TRANSIT,
        CaseType.NO_UPDATE,
        CaseType.CUSTOMS_HOLD,
        CaseType.PICKUP_OVERDUE,
    ):
        offers = [
            Offer("A", K.COUPON, Text(gettext_noop("Apology coupon")), amount=policy.refund_coupon_amount,
                  suggested=True, available=policy.refund_coupon_amount > 0),
        ]  # fmt: skip
        grace = policy.grace_days.get(kind, 0) if isinstance(policy.grace_days, dict) else 0
        late = _days_late(case, now)
        refund = Offer("B", K.FULL_REFUND, Text(gettext_noop("Full refund")))
        if late < grace:
            left = max(1, grace - late)
            refund = Offer("B", K.FULL_REFUND, refund.label, available=False,
                           why_not=Text(GRACE_WAIT, days=grace, left=Text(gettext_noop("%(n)s days"), n=left)))  # fmt: skip
        return [*offers, refund]
    return []


def _days_late(case: Case, now: datetime) -> int:
    """How late the parcel is: past its expected delivery, else since the case opened."""
    shipment = case.shipment if case.shipment_id else None
    if shipment is not None and shipment.expected_delivery:
        return max(0, (timezone.localtime(now).date() - shipment.expected_delivery).days)
    return max(0, (now - case.opened_at).days)


def _stock_offers(case: Case, facts: Mapping[str, Any], policy: StorePolicy) -> list[Offer]:
    options = {option.get("key"): option for option in facts.get("options", []) if isinstance(option, dict)}
    suggested = facts.get("suggested_path", "")
    until = (options.get("A") or {}).get("until")
    swap_code = next(
        (
            choice[0]["sku_code"]
            for choice in ((options.get("B") or {}).get("swap_for") or {}).values()
            if choice
        ),
        None,
    )
    swap_sku = SKU.objects.filter(store_id=case.store_id, code=swap_code).first() if swap_code else None
    wait = Offer(
        "A", K.WAIT_BONUS, Text(gettext_noop("Wait for the restock (%(date)s), with a small bonus"), date=until or "—"),
        note=str(Text(gettext_noop("A small gift for waiting"))), choice="wait", suggested=suggested == "wait",
        available=bool((options.get("A") or {}).get("available")),
        why_not=None if (options.get("A") or {}).get("available") else Text(gettext_noop("No restock date is known.")),
    )  # fmt: skip
    swap = Offer(
        "B", K.SWAP, Text(gettext_noop("Swap for %(sku)s"), sku=swap_sku.name if swap_sku else "—"), sku=swap_sku,
        choice="swap", suggested=suggested == "swap", available=swap_sku is not None,
        why_not=None if swap_sku else Text(gettext_noop("Nothing in stock to swap to.")),
    )  # fmt: skip
    coupon = (
        policy.refund_coupon_amount
        if case.type == CaseType.OVERSOLD and policy.refund_coupon_amount > 0
        else None
    )
    refund = Offer(
        "C", K.FULL_REFUND,
        Text(gettext_noop("Full refund plus a %(amount)s coupon"), amount=str(coupon)) if coupon
        else Text(gettext_noop("Full refund")),
        choice="refund", with_coupon=coupon, suggested=suggested in ("refund", "refund_coupon"),
    )  # fmt: skip
    return [wait, swap, refund]


def offer_propose(
    *, case: Case, offer: Offer, actor: AbstractBaseUser, idempotency_key: str, now: datetime | None = None
) -> list[Compensation]:
    """Propose what an offer stands for (with its companion coupon): one proposal per part, each with its
    own key derived from `idempotency_key`, so a resubmitted form proposes nothing twice."""
    if not offer.available:
        raise CompensationError(
            offer.why_not.render() if offer.why_not else _("This offer is not available.")
        )
    made = []
    parts = [(offer.kind, offer.amount, ":main")]
    if offer.with_coupon:
        parts.append((K.COUPON, offer.with_coupon, ":coupon"))
    with transaction.atomic():
        for kind, amount, suffix in parts:
            proposal = Proposal(kind=kind, amount=amount, sku=offer.sku if kind == offer.kind else None,
                                note=offer.note if kind == offer.kind else "", reason=offer.label.render("en"))  # fmt: skip
            compensation, _created = compensation_propose(
                case=case,
                proposal=proposal,
                actor=actor,
                idempotency_key=f"{idempotency_key}{suffix}"[:100],
                now=now,
            )
            made.append(compensation)
    return made
