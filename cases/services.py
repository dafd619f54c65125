"""Writes to cases. Each service owns its transaction, locks what it changes and writes the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from cases.choices import ORDER_LEVEL_TYPES, CaseEventKind, CaseType, Priority
from cases.models import OPEN_CASE, Case, CaseEvent
from tracking.models import Order, Shipment

# Until per-store policy exists (exception engine), every case gets these SLA clocks.
FIRST_CONTACT_SLA = timedelta(hours=24)
RESOLUTION_SLA = timedelta(hours=72)


def _open_case_for(*, type: str, order: Order, shipment: Shipment | None) -> Case | None:
    cases = Case.objects.filter(OPEN_CASE, type=type)
    if shipment is not None:
        cases = cases.filter(shipment=shipment)
    else:
        cases = cases.filter(order=order, shipment__isnull=True)
    return cases.select_for_update().first()


def case_raise(
    *,
    type: CaseType | str,
    order: Order,
    shipment: Shipment | None = None,
    priority: Priority | int = Priority.NORMAL,
    summary: str = "",
    facts: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[Case, bool]:
    """Open a case for a problem, or return the one already open for it.

    Idempotent: one open case per (shipment, type), or per (order, type) for order-level types, backed by
    the database constraint, so racing callers get the same case. Returns (case, created).
    """
    now = now or timezone.now()
    type = CaseType(type)
    if type in ORDER_LEVEL_TYPES:
        shipment = None
    elif shipment is None:
        raise ValueError(f"A {type.value} case is about a shipment; none was given.")
    if shipment is not None and shipment.order_id != order.pk:
        raise ValueError("The shipment does not belong to the order.")

    with transaction.atomic():
        existing = _open_case_for(type=type, order=order, shipment=shipment)
        if existing is not None:
            return existing, False
        first_contact_due_at = now + FIRST_CONTACT_SLA
        try:
            with transaction.atomic():
                case = Case.objects.create(
                    store_id=order.store_id,
                    order=order,
                    shipment=shipment,
                    type=type,
                    priority=priority,
                    summary=summary[:255],
                    facts=facts or {},
                    opened_at=now,
                    first_contact_due_at=first_contact_due_at,
                    resolution_due_at=now + RESOLUTION_SLA,
                    due_at=first_contact_due_at,
                )
        except IntegrityError:
            # Another worker opened it between our read and our insert: theirs is the case.
            existing = _open_case_for(type=type, order=order, shipment=shipment)
            if existing is None:
                raise
            return existing, False
        CaseEvent.objects.create(
            case=case, kind=CaseEventKind.RAISED, created_at=now, message=summary, data={"facts": facts or {}}
        )
    return case, True
