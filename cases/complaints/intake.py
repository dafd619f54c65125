"""Buyer complaints in: recorded, classified, routed to the right case.

From wherever a complaint arrives (the storefront's `POST /api/v1/complaints`, an agent's "Log a complaint"
form for a phone call) it goes through `complaint_receive`:

1. recorded once: a complaint resent with the same `external_id` (the platform's message id) is the first
   one again;
2. classified (cases.complaints.classifier): category, confidence, language, deciding words. Below the
   confidence threshold it waits in the triage queue until an agent names the category (`complaint_label`),
   which is then routed the same way and kept as a labelled example;
3. routed: the same buyer writing about the same order within a day joins the case their first message
   opened; a "where is my parcel" joins the parcel's open case (marked buyer chased: priority up, the SLA
   clock noted on the timeline); otherwise it joins the order's open case of the matching type or opens
   one, the buyer's text its first entry and the first-contact SLA from the store's policy;
4. a `damaged` complaint on a small order gets the store's automatic coupon (once per order), and
   `damaged` and `quality` complaints count towards their batch's quality incident (cases.batch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.batch import batch_evaluate
from cases.choices import (
    OPEN_STATUSES,
    CaseEventKind,
    CaseType,
    CompensationOrigin,
    ComplaintCategory,
    ComplaintChannel,
    Priority,
)
from cases.compensation import small_damage_coupon_for
from cases.complaints import classifier
from cases.models import OPEN_CASE, Case, CaseEvent, Compensation, Complaint
from cases.outbox import StorefrontEventType, case_event_emit
from cases.policy import PolicyBook
from cases.rules import PARCEL_TYPES, priority_for
from cases.services import case_raise
from cases.texts import Text, event_data
from cases.workflow import case_lock
from tracking.models import Order, Shipment
from tracking.storefront import times_errors, utc

TEXT_MAX = 5_000
ATTACHMENTS_MAX = 10
SAME_BUYER_WINDOW = timedelta(hours=24)
CASE_TYPE_FOR: dict[str, CaseType] = {
    ComplaintCategory.NOT_RECEIVED: CaseType.NOT_RECEIVED,
    ComplaintCategory.DAMAGED: CaseType.DAMAGED,
    ComplaintCategory.WRONG_ITEM: CaseType.WRONG_ITEM,
    ComplaintCategory.MISSING_ITEM: CaseType.MISSING_ITEM,
    ComplaintCategory.QUALITY: CaseType.QUALITY,
    ComplaintCategory.OTHER: CaseType.ENQUIRY,
}
# A "where is my parcel" joins any open case about the parcel not arriving.
NOT_ARRIVING = (*[t for t in PARCEL_TYPES if t != CaseType.DAMAGED], CaseType.NOT_RECEIVED)
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def confidence_threshold() -> float:
    return float(getattr(settings, "COMPLAINT_CONFIDENCE_MIN", 0.5))


class ComplaintError(Exception):
    """Refused input, by field. Nothing was written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Intake:
    complaint: Complaint
    created: bool  # False: the same external_id was recorded before; this is that complaint


def complaint_classify(text: str) -> classifier.Classification | None:
    """The classifier's reading of a text, or None when no model is installed (everything goes to triage)."""
    try:
        return classifier.classify(text)
    except classifier.ClassifierUnavailable:
        return None


def _check(*, text: str, channel: str, attachments, received_at) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not text:
        errors["text"] = _("The buyer's text is empty.")
    elif len(text) > TEXT_MAX:
        errors["text"] = _("At most %(max)s characters: keep the buyer's message, not the whole chat.") % {
            "max": f"{TEXT_MAX:,}"
        }
    if channel not in ComplaintChannel.values:
        errors["channel"] = _("One of: %(values)s.") % {"values": ", ".join(ComplaintChannel.values)}
    if len(attachments) > ATTACHMENTS_MAX:
        errors["attachments"] = _("At most %(max)s attachments.") % {"max": ATTACHMENTS_MAX}
    elif any(not isinstance(url, str) or len(url) > 1000 or not _URL.match(url) for url in attachments):
        errors["attachments"] = _("Each attachment is an http(s) URL of the file on the platform.")
    errors.update(times_errors({"received_at": received_at}))
    return errors


def complaint_receive(
    *,
    order: Order,
    text: str,
    channel: str = ComplaintChannel.CHAT,
    external_id: str = "",
    attachments: list[str] | tuple[str, ...] = (),
    received_at: datetime | None = None,
    actor=None,
    now: datetime | None = None,
) -> Intake:
    """Record, classify and route a buyer's complaint about `order` (already scoped to the caller's store).
    Idempotent on `external_id`. Raises ComplaintError for bad input, writing nothing."""
    now = now or timezone.now()
    text = (text or "").strip()
    external_id = (external_id or "").strip()[:100]
    errors = _check(text=text, channel=channel, attachments=list(attachments), received_at=received_at)
    if errors:
        raise ComplaintError(errors)
    received_at = utc(received_at) or now
    if external_id:
        earlier = Complaint.objects.filter(store_id=order.store_id, external_id=external_id).first()
        if earlier is not None:
            return _replayed(earlier, order)
    reading = complaint_classify(text)
    needs_triage = reading is None or reading.confidence < confidence_threshold()
    try:
        with transaction.atomic():
            complaint = Complaint.objects.create(
                store_id=order.store_id, order=order, external_id=external_id, channel=channel, text=text,
                attachments=list(attachments), received_at=received_at,
                language=reading.language if reading else "", category=reading.category if reading else "",
                confidence=reading.confidence if reading else 0.0, words=list(reading.words) if reading else [],
                model_version=classifier.manifest().get("sha256", "")[:16], needs_triage=needs_triage,
                created_by=actor, created_at=now,
            )  # fmt: skip
            if not needs_triage:
                complaint_route(complaint, category=reading.category, now=now, actor=actor)
    except IntegrityError:
        earlier = Complaint.objects.filter(store_id=order.store_id, external_id=external_id).first()
        if earlier is None:
            raise
        return _replayed(earlier, order)
    return Intake(complaint=complaint, created=True)


def _replayed(earlier: Complaint, order: Order) -> Intake:
    if earlier.order_id != order.pk:
        raise ComplaintError(
            {"external_id": _("This message id was already recorded for order %(order)s.")
             % {"order": earlier.order.platform_order_id}}
        )  # fmt: skip
    return Intake(complaint=earlier, created=False)


def complaint_label(complaint: Complaint, *, category: str, actor, now: datetime | None = None) -> Complaint:
    """An agent names a triaged complaint's category: it is routed now, and kept as a labelled example."""
    now = now or timezone.now()
    if category not in ComplaintCategory.values:
        raise ComplaintError(
            {"category": _("One of: %(values)s.") % {"values": ", ".join(ComplaintCategory.values)}}
        )
    with transaction.atomic():
        locked = Complaint.objects.select_for_update().get(pk=complaint.pk)
        locked.labelled_by, locked.labelled_at, locked.needs_triage = actor, now, False
        if locked.case_id is None:
            complaint_route(locked, category=category, now=now, actor=actor)
        else:
            locked.label = category
            locked.save(update_fields=["label", "labelled_by", "labelled_at", "needs_triage"])
    return locked


# --- routing ---------------------------------------------------------------------------------------------

CHASED = gettext_noop("The buyer chased: “%(text)s”")
COMPLAINED = gettext_noop("The buyer complained: “%(text)s”")


def complaint_route(complaint: Complaint, *, category: str, now: datetime, actor=None) -> Case:
    """Join the complaint to the case it belongs to, or open that case; then the coupon and the batch."""
    order = complaint.order
    target = _case_to_join(complaint, category)
    if target is not None:
        case = _join(target, complaint, category=category, now=now, actor=actor)
        complaint.routed = "joined"
    else:
        case = _open(complaint, category=category, now=now, actor=actor)
        complaint.routed = "opened"
    complaint.case, complaint.label = case, category
    complaint.save(update_fields=["case", "label", "routed", "needs_triage", "labelled_by", "labelled_at"])
    if case.type == CaseType.DAMAGED and case.order_id == order.pk:
        small_damage_coupon_for(case, now=now)
    if complaint.routed == "opened":
        batch_evaluate(case=case, now=now)
    return case


def _case_to_join(complaint: Complaint, category: str) -> Case | None:
    order = complaint.order
    recent = (
        Complaint.objects.filter(
            order=order, case__status__in=OPEN_STATUSES,
            received_at__gte=complaint.received_at - SAME_BUYER_WINDOW, received_at__lte=complaint.received_at + SAME_BUYER_WINDOW,
        )
        .exclude(pk=complaint.pk)
        .select_related("case")
        .order_by("-received_at", "-pk")
        .first()
    )  # fmt: skip
    if recent is not None:
        return recent.case
    open_cases = Case.objects.filter(OPEN_CASE, order=order).order_by("-priority", "opened_at", "pk")
    if category == ComplaintCategory.NOT_RECEIVED:
        return open_cases.filter(type__in=NOT_ARRIVING).first()
    return open_cases.filter(type=CASE_TYPE_FOR[category]).first()


def _join(case: Case, complaint: Complaint, *, category: str, now: datetime, actor) -> Case:
    with transaction.atomic():
        locked = case_lock(case)
        chased = category == ComplaintCategory.NOT_RECEIVED and locked.type in NOT_ARRIVING
        facts = dict(locked.facts)
        facts["complaints"] = int(facts.get("complaints", 0)) + 1
        changed = ["facts", "updated_at"]
        if chased:
            facts["buyer_chased_at"] = now.isoformat()
            if locked.priority < Priority.URGENT:
                locked.priority = Priority(min(locked.priority + 10, Priority.URGENT))
                changed.append("priority")
        locked.facts = facts
        locked.save(update_fields=changed)
        text = Text(CHASED if chased else COMPLAINED, text=complaint.text[:500])
        CaseEvent.objects.create(
            case=locked, kind=CaseEventKind.COMPLAINT, actor=actor, created_at=now, message=str(text),
            data=event_data(text, _complaint_data(complaint, chased=chased, case=locked, now=now)),
        )  # fmt: skip
        case_event_emit(locked, StorefrontEventType.CASE_UPDATED, key=f"complaint:{complaint.pk}", now=now)
    return locked


def _complaint_data(complaint: Complaint, *, chased: bool, case: Case, now: datetime) -> dict:
    data = {
        "complaint_id": complaint.pk, "channel": complaint.channel, "language": complaint.language,
        "category": complaint.category, "confidence": complaint.confidence, "words": complaint.words,
        "external_id": complaint.external_id, "attachments": complaint.attachments,
    }  # fmt: skip
    if chased and case.first_contact_due_at is not None:
        # The SLA clock, as it stood when the buyer chased: minutes left (negative: overdue).
        data["first_contact_minutes_left"] = int((case.first_contact_due_at - now).total_seconds() // 60)
        data["first_contact_done"] = case.first_contact_at is not None
    return data


def _open(complaint: Complaint, *, category: str, now: datetime, actor) -> Case:
    order = complaint.order
    case_type = CASE_TYPE_FOR[category]
    shipment = None
    if case_type == CaseType.DAMAGED:  # a parcel case: the order's latest parcel, if it has one
        shipment = Shipment.objects.filter(order=order).order_by("-booked_at", "-pk").first()
    thresholds = PolicyBook([order.store_id]).for_store(order.store_id)
    text = Text(COMPLAINED, text=complaint.text[:500])
    case, created = case_raise(
        type=case_type, order=order, shipment=shipment,
        priority=priority_for(type=case_type, order=order, thresholds=thresholds, now=now),
        summary=complaint.text[:255], facts={"complaint_id": complaint.pk, "complaints": 1, "category": category},
        now=complaint.received_at, thresholds=thresholds,
    )  # fmt: skip
    if not created:  # opened meanwhile (a racing worker, or a rule): join it
        return _join(case, complaint, category=category, now=now, actor=actor)
    CaseEvent.objects.create(
        case=case, kind=CaseEventKind.COMPLAINT, actor=actor, created_at=now, message=str(text),
        data=event_data(text, _complaint_data(complaint, chased=False, case=case, now=now)),
    )  # fmt: skip
    return case


def coupon_for(case: Case) -> Compensation | None:
    """The automatic small-damage coupon of the case's order, if one was made (shown to the agent)."""
    if case.order_id is None:
        return None
    return Compensation.objects.filter(
        order_id=case.order_id, origin=CompensationOrigin.AUTO_SMALL_DAMAGE
    ).first()
