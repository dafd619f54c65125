"""The parcel exception rules: each is a deadline or an event condition over a shipment's summary.

Pure functions: given a shipment, its thresholds and the time, they say which problems exist now, since
when, and when the next deadline falls. `cases.engine` turns that into cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_noop

from cases.choices import CaseType, Priority
from cases.policy import Thresholds
from cases.texts import Text
from tracking.choices import OrderStatus, Tag
from tracking.models import Order, Shipment

PARCEL_TYPES = (
    CaseType.PICKUP_OVERDUE,
    CaseType.STALLED_IN_TRANSIT,
    CaseType.NO_UPDATE,
    CaseType.DELIVERY_FAILED,
    CaseType.ADDRESS_ISSUE,
    CaseType.CUSTOMS_HOLD,
    CaseType.LOST,
    CaseType.DAMAGED,
    CaseType.RETURNED_TO_SENDER,
)
# Event conditions: the latest checkpoint's subtag (or tag) names the problem.
SUBTAG_RULES: dict[str, CaseType] = {
    "Exception_007": CaseType.ADDRESS_ISSUE,
    "Exception_004": CaseType.CUSTOMS_HOLD,
    "Exception_018": CaseType.CUSTOMS_HOLD,
    "Exception_013": CaseType.LOST,
    "Exception_012": CaseType.DAMAGED,
    "Exception_010": CaseType.RETURNED_TO_SENDER,
    "Exception_011": CaseType.RETURNED_TO_SENDER,
}
TAG_RULES: dict[str, CaseType] = {Tag.ATTEMPT_FAIL: CaseType.DELIVERY_FAILED, Tag.EXPIRED: CaseType.LOST}
# Statuses in which the carrier should be moving the parcel; silence there is "no update".
MOVING = frozenset({Tag.PENDING, Tag.INFO_RECEIVED, Tag.IN_TRANSIT, Tag.OUT_FOR_DELIVERY, Tag.ATTEMPT_FAIL})
BASE_PRIORITY: dict[str, Priority] = {
    CaseType.LOST: Priority.URGENT,
    CaseType.PICKUP_OVERDUE: Priority.HIGH,
    CaseType.DELIVERY_FAILED: Priority.HIGH,
    CaseType.OVERSOLD: Priority.HIGH,
    CaseType.ADDRESS_ISSUE: Priority.HIGH,
    CaseType.RETURNED_TO_SENDER: Priority.HIGH,
    CaseType.QUALITY_BATCH: Priority.URGENT,
}


# (a place given, a carrier text given) -> the summary of an event rule's case.
_CARRIER_REPORTS = {
    (True, True): gettext_noop("%(carrier)s reports %(subtag)s on parcel %(number)s at %(place)s: %(text)s"),
    (True, False): gettext_noop("%(carrier)s reports %(subtag)s on parcel %(number)s at %(place)s."),
    (False, True): gettext_noop("%(carrier)s reports %(subtag)s on parcel %(number)s: %(text)s"),
    (False, False): gettext_noop("%(carrier)s reports %(subtag)s on parcel %(number)s."),
}


@dataclass(frozen=True)
class Finding:
    """A problem that exists now: the case a rule wants open."""

    type: CaseType
    since: datetime  # when the deadline passed or the event happened: the case opens then
    summary: str | Text
    facts: dict[str, Any] = field(default_factory=dict)
    trigger_event_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Verdict:
    findings: dict[CaseType, Finding]
    next_check_at: datetime | None  # the earliest deadline still ahead, or None when nothing is pending


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parcel_evaluate(
    shipment: Shipment, *, thresholds: Thresholds, now: datetime, latest_event_id: int | None = None
) -> Verdict:
    """Which parcel problems exist for this shipment at `now`, and when to look again."""
    findings: dict[CaseType, Finding] = {}
    pending: list[datetime] = []
    status = shipment.status
    number = shipment.tracking_number
    triggers = (latest_event_id,) if latest_event_id else ()
    if status == Tag.DELIVERED:
        return Verdict(findings={}, next_check_at=None)
    order = shipment.order if Shipment.order.is_cached(shipment) else None
    if order is not None and order.status == OrderStatus.CANCELLED:
        # Nothing of a cancelled order is the carrier's to move.
        return Verdict(findings={}, next_check_at=None)
    # A parcel we heard of late (an import, a late API call) has its history still on the way: its deadlines
    # wait for the first tracking event, or for the grace period after we first knew of it.
    known_since = shipment.created_at
    held_until = None
    if known_since is not None and shipment.last_event_at is None:
        held_until = known_since + thresholds.history_grace

    def deadline(rule: CaseType, due: datetime, summary: Text, facts: dict[str, Any]) -> None:
        effective = max(due, held_until) if held_until is not None else due
        if now >= effective:
            # The case opens when the deadline passed, or, for a parcel we knew of only later, when we could
            # first judge it (its history arrived, or the grace period ended).
            since = effective if held_until is not None else max(due, known_since or due)
            findings[rule] = Finding(rule, since, summary, {**facts, "deadline": due.isoformat()}, triggers)
        else:
            pending.append(effective)

    if shipment.booked_at and shipment.accepted_at is None:
        deadline(
            CaseType.PICKUP_OVERDUE,
            shipment.booked_at + thresholds.pickup,
            Text(
                gettext_noop(
                    "%(carrier)s has not scanned parcel %(number)s %(hours)s h after pickup was booked."
                ),
                carrier=shipment.carrier,
                number=number,
                hours=_hours(thresholds.pickup),
            ),
            {"booked_at": _iso(shipment.booked_at), "threshold_hours": _hours(thresholds.pickup)},
        )
    if status == Tag.IN_TRANSIT and shipment.last_progress_at:
        deadline(
            CaseType.STALLED_IN_TRANSIT,
            shipment.last_progress_at + thresholds.stalled,
            Text(
                gettext_noop("Parcel %(number)s has made no progress for %(hours)s h."),
                number=number,
                hours=_hours(thresholds.stalled),
            ),
            {
                "last_progress_at": _iso(shipment.last_progress_at),
                "threshold_hours": _hours(thresholds.stalled),
            },
        )
    if status in MOVING and shipment.last_event_at and shipment.accepted_at is not None:
        deadline(
            CaseType.NO_UPDATE,
            shipment.last_event_at + thresholds.no_update,
            Text(
                gettext_noop("No carrier update on parcel %(number)s for %(hours)s h."),
                number=number,
                hours=_hours(thresholds.no_update),
            ),
            {"last_event_at": _iso(shipment.last_event_at), "threshold_hours": _hours(thresholds.no_update)},
        )
    rule = SUBTAG_RULES.get(shipment.substatus) or TAG_RULES.get(status)
    if rule is not None and shipment.last_event_at:
        text = getattr(shipment, "latest_text", "") or ""
        where = getattr(shipment, "latest_location", "") or ""
        summary = Text(
            _CARRIER_REPORTS[bool(where), bool(text)],
            carrier=shipment.carrier, subtag=shipment.substatus, number=number, place=where, text=text,
        )  # fmt: skip
        findings[rule] = Finding(
            rule,
            max(shipment.last_event_at, known_since) if known_since is not None else shipment.last_event_at,
            summary,
            {
                "status": status,
                "substatus": shipment.substatus,
                "last_event_at": _iso(shipment.last_event_at),
            },
            triggers,
        )
    return Verdict(findings=findings, next_check_at=min(pending) if pending else None)


def _hours(delta) -> int:
    return int(delta.total_seconds() // 3600)


def priority_for(*, type: str, order: Order | None, thresholds: Thresholds, now: datetime) -> Priority:
    """Base priority by problem, one step up for a high-value order or a platform deadline already missed."""
    priority = BASE_PRIORITY.get(type, Priority.NORMAL)
    if order is not None:
        bump = order.amount >= Decimal(thresholds.high_value_amount)
        bump |= type in (CaseType.PICKUP_OVERDUE, CaseType.OVERSOLD) and order.ship_by <= now
        if bump:
            priority = Priority(min(priority + 10, Priority.URGENT))
    return priority
