"""Appeals to the platform: the scenarios (data, per platform and reason), the checklist of what an appeal
has and lacks, and the packet the platform's reviewer reads.

A checklist item is an evidence kind (met by a live file of that kind on any of the appeal's cases) or a
system fact Afterdesk knows without anyone typing it:
- `booking_time`: every parcel has its pickup booking time;
- `acceptance_gap`: every parcel's first acceptance scan came after its pickup deadline, or never (the
  carrier's delay, in the carrier's own scans);
- `tracking_timeline`: every parcel has carrier checkpoints;
- `buyer_contacted`: every case has a message sent to its buyer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.choices import AppealDecision, AppealStatus, CaseEventKind, EvidenceKind, MessageStatus
from cases.models import Appeal, AppealScenario, BuyerMessage, Case, CaseEvent, Evidence
from cases.policy import PolicyBook
from cases.texts import Text, event_data
from cases.validators import SYSTEM_FACTS
from cases.workflow import MANAGER_ROLES, CaseWorkflowError, actor_role_require
from portal.models import Store
from tracking.models import Shipment, TrackingEvent

APPEAL_CASES_MAX = 1000

# The scenarios every store starts with. (code, platform, name, description, required, optional, days, from)
SCENARIOS: Sequence[tuple[str, str, str, str, list[str], list[str], int, str]] = (
    ("tts-late-dispatch-a", "tiktok_shop", "TikTok Shop late dispatch A: the carrier came early",
     "The carrier collected before the booked slot and scanned the parcels late.",
     ["booking_confirmation", "handover_photo", "booking_time"], ["cctv_still", "pickup_manifest"], 7, "ship_by"),
    ("tts-late-dispatch-b", "tiktok_shop", "TikTok Shop late dispatch B: the carrier did not come",
     "The pickup was booked in time and the carrier never came (a no-show).",
     ["booking_confirmation", "carrier_chat", "booking_time", "acceptance_gap"],
     ["cctv_still", "call_record", "buyer_contacted"], 7, "ship_by"),
    ("tts-late-dispatch-c", "tiktok_shop", "TikTok Shop late dispatch C: the carrier had no capacity",
     "The carrier refused or postponed the pickup for lack of capacity.",
     ["booking_confirmation", "carrier_chat", "booking_time"], ["notice", "call_record"], 7, "ship_by"),
    ("tts-late-dispatch-d", "tiktok_shop", "TikTok Shop late dispatch D: the carrier scanned late",
     "The carrier took the parcels in time and scanned them only later.",
     ["handover_photo", "pickup_manifest", "booking_time", "tracking_timeline"], ["cctv_still"], 7, "ship_by"),
    ("tts-late-dispatch-e", "tiktok_shop", "TikTok Shop late dispatch E: force majeure",
     "Weather, a disaster or a government order stopped the pickup.",
     ["notice", "booking_time"], ["carrier_chat"], 7, "ship_by"),
    ("tts-seller-fault-cancellation", "tiktok_shop", "TikTok Shop seller-fault cancellation",
     "An order was cancelled as the seller's fault although the buyer agreed or the carrier caused it.",
     ["buyer_chat", "buyer_contacted"], ["carrier_chat", "tracking_timeline"], 7, "penalty"),
    ("shopee-late-shipment", "shopee", "Shopee late shipment",
     "Shipped after the days to ship because the carrier collected late.",
     ["booking_confirmation", "booking_time", "acceptance_gap"], ["carrier_chat", "cctv_still"], 5, "penalty"),
    ("shopee-non-fulfilment", "shopee", "Shopee non-fulfilment",
     "Counted as not fulfilled although the parcel was handed over.",
     ["dispatch_manifest", "tracking_timeline", "buyer_contacted"], ["handover_photo"], 5, "penalty"),
    ("shopee-failed-pickup", "shopee", "Shopee failed pickup on the scheduled day",
     "The carrier did not come on the scheduled pickup day.",
     ["booking_confirmation", "carrier_chat", "cctv_still"], ["call_record", "booking_time"], 5, "penalty"),
    ("carrier-claim", "any", "Claim against the carrier",
     "A lost or damaged parcel: the carrier pays what it cost.",
     ["dispatch_manifest", "tracking_timeline"], ["damage_photo", "handover_photo"], 30, "penalty"),
)  # fmt: skip


class AppealError(CaseWorkflowError):
    """A refused appeal action, with the reason to show. Nothing was written."""


def appeal_scenarios_ensure() -> int:
    """The global scenarios exist (idempotent; run after every migrate by cases.apps; a store's own are its
    admins')."""
    rows = [
        AppealScenario(code=code, platform=platform, name=name, description=description, required=required,
                       optional=optional, window_days=days, window_from=start)
        for code, platform, name, description, required, optional, days, start in SCENARIOS
    ]  # fmt: skip
    existing = set(AppealScenario.objects.filter(store__isnull=True).values_list("code", flat=True))
    missing = [row for row in rows if row.code not in existing]
    AppealScenario.objects.bulk_create(missing, ignore_conflicts=True)
    return len(missing)


def scenarios_for_store(store: Store):
    """The store's scenarios and the global ones for its platform (or any), active only."""
    return AppealScenario.objects.filter(
        Q(store=store) | Q(store__isnull=True), Q(platform=store.platform) | Q(platform="any"), is_active=True
    ).order_by("platform", "code")


def item_label(item: str) -> str:
    if item in SYSTEM_FACTS:
        return str(SYSTEM_FACTS[item])
    return str(dict(EvidenceKind.choices).get(item, item))


# --- the checklist ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    code: str
    label: str
    required: bool
    met: bool
    system: bool
    detail: str = ""


@dataclass(frozen=True)
class Checklist:
    items: list[Item]

    @property
    def required(self) -> list[Item]:
        return [item for item in self.items if item.required]

    @property
    def missing(self) -> list[Item]:
        return [item for item in self.required if not item.met]

    @property
    def percent(self) -> int:
        required = self.required
        return round(100 * sum(item.met for item in required) / len(required)) if required else 100

    @property
    def complete(self) -> bool:
        return not self.missing


def appeal_checklist(appeal: Appeal) -> Checklist:
    """Each required and optional item of the appeal's scenario, met or not, from its cases' live files
    and facts. A fixed number of queries however many cases."""
    cases = list(appeal.cases.all())
    case_ids = [case.pk for case in cases]
    kinds = set(
        Evidence.objects.filter(case_id__in=case_ids, tombstoned_at__isnull=True).values_list(
            "kind", flat=True
        )
    )
    facts = _facts(cases)
    items = []
    scenario = appeal.scenario
    for code, required in [(c, True) for c in scenario.required] + [(c, False) for c in scenario.optional]:
        system = code in SYSTEM_FACTS
        met = facts.get(code, (False, ""))[0] if system else code in kinds
        items.append(Item(code=code, label=item_label(code), required=required, met=met, system=system,
                          detail=facts.get(code, (False, ""))[1] if system else ""))  # fmt: skip
    return Checklist(items=items)


def _facts(cases: list[Case]) -> dict[str, tuple[bool, str]]:
    parcel_ids = [case.shipment_id for case in cases if case.shipment_id]
    parcels = list(Shipment.objects.filter(pk__in=parcel_ids))
    with_events = set(
        TrackingEvent.objects.filter(shipment_id__in=parcel_ids)
        .values_list("shipment_id", flat=True)
        .distinct()
    )
    contacted = set(
        BuyerMessage.objects.filter(case__in=cases, status=MessageStatus.SENT)
        .values_list("case_id", flat=True)
        .distinct()
    )
    book = PolicyBook({case.store_id for case in cases})
    booked = [p for p in parcels if p.booked_at]
    late = [
        p for p in booked
        if p.accepted_at is None or p.accepted_at > p.booked_at + book.for_carrier(p.store_id, p.carrier).pickup
    ]  # fmt: skip
    have = bool(parcels)
    return {
        "booking_time": (have and len(booked) == len(parcels), _("%(n)d of %(total)d parcels") % {"n": len(booked), "total": len(parcels)}),
        "acceptance_gap": (have and len(late) == len(parcels), _("%(n)d of %(total)d parcels") % {"n": len(late), "total": len(parcels)}),
        "tracking_timeline": (have and len(with_events) == len(parcels),
                              _("%(n)d of %(total)d parcels") % {"n": len(with_events), "total": len(parcels)}),
        "buyer_contacted": (bool(cases) and len(contacted) == len(cases),
                            _("%(n)d of %(total)d cases") % {"n": len(contacted), "total": len(cases)}),
    }  # fmt: skip


def appeal_deadline(scenario: AppealScenario, cases: Iterable[Case], penalty_date=None) -> datetime | None:
    """When the platform stops taking the appeal: the scenario's window after the earliest ship-by of its
    orders, or after the penalty's date."""
    cases = list(cases)
    if scenario.window_from == "penalty":
        if penalty_date is None:
            return None
        zone = cases[0].store.tzinfo if cases else timezone.get_current_timezone()
        start = datetime.combine(
            penalty_date, datetime.min.time(), tzinfo=zone
        )  # midnight where the store is
    else:
        ship_by = [case.order.ship_by for case in cases if case.order_id]
        if not ship_by:
            return None
        start = min(ship_by)
    return start + timedelta(days=scenario.window_days)


# --- writing ---------------------------------------------------------------------------------------------


def appeal_create(
    *,
    store: Store,
    scenario: AppealScenario,
    cases: Sequence[Case],
    actor: AbstractBaseUser,
    penalty_date=None,
    now: datetime | None = None,
) -> Appeal:
    """An appeal covering `cases` (of `store`, already scoped to the actor) under `scenario`."""
    now = now or timezone.now()
    actor_role_require(actor, store.pk)
    if not cases:
        raise AppealError(_("Pick the cases the appeal covers."))
    if len(cases) > APPEAL_CASES_MAX:
        raise AppealError(_("An appeal covers at most %(max)d cases.") % {"max": APPEAL_CASES_MAX})
    if any(case.store_id != store.pk for case in cases):
        raise AppealError(_("An appeal covers the cases of one store."))
    if scenario.store_id not in (None, store.pk) or scenario.platform not in (store.platform, "any"):
        raise AppealError(_("That scenario is not for this store's platform."))
    with transaction.atomic():
        appeal = Appeal.objects.create(
            store=store, scenario=scenario, created_by=actor, created_at=now, penalty_date=penalty_date,
            deadline=appeal_deadline(scenario, cases, penalty_date),
        )  # fmt: skip
        appeal.cases.set(cases)
        text = Text(APPEAL_STARTED, scenario=scenario.name)
        CaseEvent.objects.bulk_create(
            CaseEvent(case=case, kind=CaseEventKind.UPDATED, actor=actor, created_at=now, message=str(text),
                      data=event_data(text, {"appeal_id": appeal.pk}))
            for case in cases
        )  # fmt: skip
    return appeal


APPEAL_STARTED = gettext_noop("Appeal started: %(scenario)s.")
APPEAL_JOINED = gettext_noop("Added to the appeal: %(scenario)s.")


def _references(case: Case) -> tuple[str, ...]:
    """What a penalty notice names a case by: its order id and its parcel's tracking number."""
    return tuple(ref for ref in (case.order.platform_order_id if case.order_id else "",
                                 case.shipment.tracking_number if case.shipment_id else "") if ref)  # fmt: skip


_REFERENCE_SPLIT = re.compile(r"[\s,;]+")


def appeal_cases_add(
    *, appeal: Appeal, references: str, actor: AbstractBaseUser, now: datetime | None = None
) -> tuple[list[Case], list[str]]:
    """Add to the appeal the store's cases of the orders or parcels named in `references` (order ids or
    tracking numbers, as pasted from the platform's penalty notice: separated by spaces, commas or lines).
    Where an order has several cases, those of the types the appeal already covers are taken. Returns the
    cases added and the references that matched nothing. The deadline is recomputed."""
    now = now or timezone.now()
    actor_role_require(actor, appeal.store_id)
    wanted = list(dict.fromkeys(ref for ref in _REFERENCE_SPLIT.split(references or "") if ref))
    if not wanted:
        raise AppealError(_("Paste the order ids or tracking numbers of the cases to add."))
    if len(wanted) > APPEAL_CASES_MAX:
        raise AppealError(_("An appeal covers at most %(max)d cases.") % {"max": APPEAL_CASES_MAX})
    with transaction.atomic():
        locked = Appeal.objects.select_for_update().select_related("scenario").get(pk=appeal.pk)
        if locked.submitted_at is not None:
            raise AppealError(_("This appeal was submitted to the platform: build a new one for more cases."))
        current = list(locked.cases.select_related("order", "shipment"))
        types = {case.type for case in current}
        found = list(
            Case.objects.filter(store_id=locked.store_id)
            .filter(Q(order__platform_order_id__in=wanted) | Q(shipment__tracking_number__in=wanted))
            .exclude(pk__in=[case.pk for case in current])
            .select_related("order", "shipment", "store")
            .order_by("pk")
        )
        by_ref: dict[str, list[Case]] = {}
        wanted_set = set(wanted)
        for case in found:
            for ref in _references(case):
                if ref in wanted_set:
                    by_ref.setdefault(ref, []).append(case)
        added: dict[int, Case] = {}
        for cases in by_ref.values():
            same_type = [case for case in cases if case.type in types]
            for case in same_type or cases:
                added[case.pk] = case
        covered = {ref for case in current for ref in _references(case)}
        missing = [ref for ref in wanted if ref not in by_ref and ref not in covered]
        new = list(added.values())
        if len(current) + len(new) > APPEAL_CASES_MAX:
            raise AppealError(_("An appeal covers at most %(max)d cases.") % {"max": APPEAL_CASES_MAX})
        if new:
            locked.cases.add(*new)
            locked.deadline = appeal_deadline(locked.scenario, current + new, locked.penalty_date)
            locked.save(update_fields=["deadline", "updated_at"])
            text = Text(APPEAL_JOINED, scenario=locked.scenario.name)
            CaseEvent.objects.bulk_create(
                CaseEvent(case=case, kind=CaseEventKind.UPDATED, actor=actor, created_at=now, message=str(text),
                          data=event_data(text, {"appeal_id": locked.pk}))
                for case in new
            )  # fmt: skip
    return new, missing


def appeal_export_allowed(appeal: Appeal, actor: AbstractBaseUser, *, override_reason: str = "") -> Checklist:
    """The checklist, when the packet may be exported: every required item met, or a supervisor's override
    with a reason (recorded). AppealError or PermissionDenied otherwise."""
    role = actor_role_require(actor, appeal.store_id)
    checklist = appeal_checklist(appeal)
    if checklist.complete:
        return checklist
    if not override_reason.strip():
        missing = ", ".join(item.label for item in checklist.missing)
        raise AppealError(
            _(
                "Missing for this scenario: %(missing)s. Add them, or a supervisor exports it anyway with a reason."
            )
            % {"missing": missing}
        )
    if role not in MANAGER_ROLES:
        raise PermissionDenied(_("Only a supervisor or an admin exports an incomplete appeal."))
    Appeal.objects.filter(pk=appeal.pk).update(
        override_reason=override_reason.strip()[:2000], override_by=actor
    )
    return checklist


def appeal_outcome(
    *,
    appeal: Appeal,
    actor: AbstractBaseUser,
    submitted: bool = False,
    decision: str = "",
    penalty_avoided=None,
    now: datetime | None = None,
) -> Appeal:
    """Record that the appeal was submitted, and later the platform's decision (won, partly, lost) with the
    penalty it avoided: what the reports count."""
    now = now or timezone.now()
    actor_role_require(actor, appeal.store_id)
    if penalty_avoided not in (None, ""):
        try:
            penalty_avoided = Decimal(str(penalty_avoided))
        except InvalidOperation:
            raise AppealError(_("The penalty avoided is not an amount.")) from None
        if not penalty_avoided.is_finite() or penalty_avoided < 0 or penalty_avoided >= Decimal("1e10"):
            raise AppealError(_("The penalty avoided is an amount of zero or more."))
        penalty_avoided = penalty_avoided.quantize(Decimal("0.01"))
    else:
        penalty_avoided = None
    if decision and decision not in AppealDecision.values:
        raise AppealError(_("Unknown decision: %(decision)s.") % {"decision": decision})
    with transaction.atomic():
        locked = Appeal.objects.select_for_update().get(pk=appeal.pk)
        if submitted and locked.submitted_at is None:
            locked.submitted_at, locked.status = now, AppealStatus.SUBMITTED
        if decision:
            if locked.submitted_at is None:
                locked.submitted_at = now
            locked.decision, locked.decided_at, locked.status = decision, now, AppealStatus.DECIDED
            locked.penalty_avoided = penalty_avoided
        locked.save()
    return locked
