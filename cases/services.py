"""Writes to cases. Each service owns its transaction, locks what it changes and writes the timeline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from cases.choices import (
    OPEN_STATUSES,
    ORDER_LEVEL_TYPES,
    CaseEventKind,
    CaseStatus,
    CaseType,
    Priority,
    Resolution,
    StorefrontEventType,
)
from cases.models import OPEN_CASE, Case, CaseEvent
from cases.outbox import case_event_emit, event_emit
from cases.policy import DEFAULTS, Thresholds
from cases.texts import SUMMARY_KEY, Text, event_data
from tracking.choices import OrderStatus
from tracking.models import Order, Shipment

# Platform practice: an oversold buyer must hear from the seller within 24 h, whatever the store policy.
OVERSOLD_FIRST_CONTACT = timedelta(hours=24)


def _open_case_for(
    *, type: str, order: Order | None, shipment: Shipment | None, sku_id=None, lot=""
) -> Case | None:
    cases = Case.objects.filter(OPEN_CASE, type=type)
    if type == CaseType.QUALITY_BATCH:
        cases = cases.filter(sku_id=sku_id, lot=lot)
    elif shipment is not None:
        cases = cases.filter(shipment=shipment)
    else:
        cases = cases.filter(order=order, shipment__isnull=True)
    return cases.select_for_update(of=("self",)).first()


def _with_summary(facts: dict[str, Any] | None, summary: str | Text) -> dict[str, Any]:
    facts = dict(facts or {})
    if isinstance(summary, Text):
        facts[SUMMARY_KEY] = summary.as_data()
    return facts


def _without_summary(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in facts.items() if key != SUMMARY_KEY}


def case_sla(
    *, type: str, opened_at: datetime, thresholds: Thresholds = DEFAULTS
) -> tuple[datetime, datetime]:
    """(first contact due, resolution due) for a case opened at `opened_at`."""
    first_contact = OVERSOLD_FIRST_CONTACT if type == CaseType.OVERSOLD else thresholds.first_contact
    return opened_at + first_contact, opened_at + max(thresholds.resolution, first_contact)


def case_raise(
    *,
    type: CaseType | str,
    order: Order | None,
    shipment: Shipment | None = None,
    priority: Priority | int = Priority.NORMAL,
    summary: str | Text = "",
    facts: dict[str, Any] | None = None,
    now: datetime | None = None,
    thresholds: Thresholds = DEFAULTS,
    trigger_event_ids: Sequence[int] = (),
    store_id: int | None = None,
    sku_id: int | None = None,
    lot: str = "",
) -> tuple[Case, bool]:
    """Open a case for a problem, or return the one already open for it.

    Idempotent: one open case per (shipment, type), per (order, type) for order-level types, or per
    (store, SKU, lot) for a batch incident, backed by database constraints, so racing callers get the same
    case. `now` is when the problem began (the deadline that passed); the SLA clocks start there.
    Returns (case, created).
    """
    now = now or timezone.now()
    type = CaseType(type)
    if type in ORDER_LEVEL_TYPES or type == CaseType.QUALITY_BATCH:
        shipment = None
    elif shipment is None:
        raise ValueError(f"A {type.value} case is about a shipment; none was given.")
    if type != CaseType.QUALITY_BATCH and order is None:
        raise ValueError(f"A {type.value} case is about an order; none was given.")
    if shipment is not None and shipment.order_id != order.pk:
        raise ValueError("The shipment does not belong to the order.")
    # A case, its order and its parcel are one store's: the schema can't say so across tables, this does.
    if order is not None:
        if store_id is not None and store_id != order.store_id:
            raise ValueError("The order belongs to another store.")
        store_id = order.store_id
    if shipment is not None and shipment.store_id != store_id:
        raise ValueError("The shipment belongs to another store than its order.")
    if store_id is None:
        raise ValueError(f"A {type.value} case belongs to a store; none was given.")

    # No savepoint of its own: inside a caller's transaction (the sweeper's) the caller's atomicity covers the
    # case and its timeline entry, and a savepoint per raised case was two round trips. The inner block keeps
    # its savepoint: it is what lets a lost race (IntegrityError) be caught and the transaction go on.
    with transaction.atomic(savepoint=False):
        existing = _open_case_for(type=type, order=order, shipment=shipment, sku_id=sku_id, lot=lot)
        if existing is not None:
            return existing, False
        first_contact_due_at, resolution_due_at = case_sla(type=type, opened_at=now, thresholds=thresholds)
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    store_id=store_id,
                    order=order,
                    shipment=shipment,
                    type=type,
                    priority=priority,
                    summary=str(summary)[:255],
                    facts=_with_summary(facts, summary),
                    opened_at=now,
                    first_contact_due_at=first_contact_due_at,
                    resolution_due_at=resolution_due_at,
                    due_at=first_contact_due_at,
                    sku_id=sku_id,
                    lot=lot,
                )
        except IntegrityError:
            # Another worker opened it between our read and our insert: theirs is the case.
            existing = _open_case_for(type=type, order=order, shipment=shipment, sku_id=sku_id, lot=lot)
            if existing is None:
                raise
            return existing, False
        if trigger_event_ids:
            case.trigger_events.set(trigger_event_ids)
        CaseEvent.objects.create(
            case=case,
            kind=CaseEventKind.RAISED,
            created_at=now,
            message=str(summary),
            data=event_data(summary, {"facts": facts or {}, "trigger_event_ids": list(trigger_event_ids)}),
        )
        case_event_emit(
            case,
            StorefrontEventType.CASE_CREATED,
            key=case.pk,
            now=now,
            listening=thresholds.storefront_listening,
        )
    return case, True


def case_refresh(
    *,
    case: Case,
    priority: Priority | int,
    facts: dict[str, Any],
    summary: str | Text = "",
    now: datetime | None = None,
    trigger_event_ids: Sequence[int] = (),
    listening: bool | None = None,
) -> bool:
    """A rule fired again on an open case: update its priority and facts. Writes a timeline entry only when
    something changed; returns whether it did. Never duplicates the case."""
    now = now or timezone.now()
    changes: dict[str, Any] = {}
    if int(priority) != case.priority:
        changes["priority"] = {"from": case.priority, "to": int(priority)}
    # The summary's Text is not a fact of its own: a case raised before summaries had one gains it with the
    # next real change, not with a timeline entry of its own.
    if _without_summary(facts) != _without_summary(case.facts):
        changes["facts"] = {"from": _without_summary(case.facts), "to": _without_summary(facts)}
    if not changes:
        return False
    with transaction.atomic():
        case.priority, case.facts = int(priority), _with_summary(facts, summary)
        if summary:
            case.summary = str(summary)[:255]
        case.save(update_fields=["priority", "facts", "summary", "updated_at"])
        if trigger_event_ids:
            case.trigger_events.add(*trigger_event_ids)
        entry = CaseEvent.objects.create(
            case=case, kind=CaseEventKind.UPDATED, created_at=now, message=str(summary),
            data=event_data(summary, changes),
        )  # fmt: skip
        case_event_emit(case, StorefrontEventType.CASE_UPDATED, key=entry.pk, now=now, listening=listening)
    return True


def case_condition_cleared(
    *, case: Case, reason: str | Text, now: datetime | None = None, listening: bool | None = None
) -> bool:
    """The problem went away (delivered, restocked ...). An untouched case resolves itself; a case an agent
    has taken over is flagged for the agent instead, who decides. Returns True when it resolved."""
    now = now or timezone.now()
    with transaction.atomic():
        # Re-read under a lock: two callers clearing at once must not both write the clear.
        current = (
            Case.objects.select_for_update(of=("self",)).filter(pk=case.pk, status__in=OPEN_STATUSES).first()
        )
        if current is None:
            return False
        case.refresh_from_db()
        taken_over = case.assignee_id is not None or case.status != CaseStatus.NEW
        CaseEvent.objects.create(
            case=case, kind=CaseEventKind.CONDITION_CLEARED, created_at=now, message=str(reason),
            data=event_data(reason, {"auto_resolved": not taken_over}),
        )  # fmt: skip
        if taken_over:
            if not case.needs_attention:
                case.needs_attention = True
                case.save(update_fields=["needs_attention", "updated_at"])
            return False
        old_status = case.status
        case.status = CaseStatus.RESOLVED
        case.resolution = Resolution.CONDITION_CLEARED
        case.resolved_at = now
        case.save(update_fields=["status", "resolution", "resolved_at", "updated_at"])
        entry = CaseEvent.objects.create(
            case=case, kind=CaseEventKind.RESOLVED, created_at=now, message=str(reason),
            data=event_data(
                reason, {"from": old_status, "to": CaseStatus.RESOLVED, "resolution": Resolution.CONDITION_CLEARED}
            ),
        )  # fmt: skip
        case_event_emit(case, StorefrontEventType.CASE_RESOLVED, key=entry.pk, now=now, listening=listening)
    return True


HELD = Text(gettext_noop("Order held from shipping until reviewed."))


def order_review_raise(
    *,
    order: Order,
    priority: Priority | int,
    summary: str | Text,
    facts: dict[str, Any],
    now: datetime | None = None,
    thresholds: Thresholds = DEFAULTS,
) -> tuple[Case, bool]:
    """Open the order's review case (or find the open one) and hold the order from shipping, in one
    transaction: the case and the hold exist together or not at all.

    Only an order awaiting shipment is held (a conditional update, so a shipment booked meanwhile wins);
    the hold writes a timeline entry. Idempotent. Releasing a held order (a reviewer's decision) puts it
    back to awaiting shipment and resolves the case.
    """
    now = now or timezone.now()
    with transaction.atomic():
        case, created = case_raise(
            type=CaseType.ORDER_REVIEW, order=order, priority=priority, summary=summary, facts=facts,
            now=now, thresholds=thresholds,
        )  # fmt: skip
        held = Order.objects.filter(pk=order.pk, status=OrderStatus.AWAITING_SHIPMENT).update(
            status=OrderStatus.ON_HOLD
        )
        if held:
            order.status = OrderStatus.ON_HOLD
            order_event_emit(order, StorefrontEventType.ORDER_HELD, case=case, now=now)
            CaseEvent.objects.create(
                case=case, kind=CaseEventKind.UPDATED, created_at=now,
                message=str(HELD),
                data=event_data(
                    HELD, {"order_status": {"from": OrderStatus.AWAITING_SHIPMENT, "to": OrderStatus.ON_HOLD}}
                ),
            )  # fmt: skip
    return case, created


def order_event_emit(order: Order, kind: StorefrontEventType, *, case: Case, now: datetime) -> None:
    """order.held / order.released: the storefront holds or releases the order on the platform."""
    event_emit(
        store_id=order.store_id, kind=kind, case_id=case.pk, now=now,
        dedupe_key=f"{kind}:{order.pk}:{now.isoformat()}",
        data={"order": {"platform_order_id": order.platform_order_id, "status": order.status}, "case_id": case.pk},
    )  # fmt: skip
