"""The case workflow: which status may follow which, who may act, and the SLA clocks that go with it.

Every service here locks the case row (SELECT ... FOR UPDATE), re-reads it under the lock, refuses what is
not allowed before writing anything, and writes one timeline entry per change. The bulk versions lock all
their rows in id order in one transaction (so two bulk actions cannot deadlock) and report each refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.choices import OPEN_STATUSES, CaseEventKind, CaseStatus, CaseType, Resolution, StorefrontEventType
from cases.models import Case, CaseEvent
from cases.outbox import case_event_emit
from cases.services import order_event_emit
from cases.texts import Text, event_data
from cases.validators import CaseWorkflowError
from portal.choices import Role
from portal.models import Membership
from portal.selectors import store_roles_for_user
from tracking.choices import OrderStatus
from tracking.models import Order

S = CaseStatus
WAITING = frozenset({S.WAITING_BUYER, S.WAITING_CARRIER, S.WAITING_PLATFORM})

# The allowed transitions. Nothing goes back to NEW; CLOSED is final; RESOLVED -> IN_PROGRESS is a reopen.
TRANSITIONS: Mapping[CaseStatus, frozenset[CaseStatus]] = {
    S.NEW: frozenset({S.IN_PROGRESS, *WAITING, S.RESOLVED}),
    S.IN_PROGRESS: frozenset({*WAITING, S.RESOLVED}),
    S.WAITING_BUYER: frozenset({S.IN_PROGRESS, S.RESOLVED, S.WAITING_CARRIER, S.WAITING_PLATFORM}),
    S.WAITING_CARRIER: frozenset({S.IN_PROGRESS, S.RESOLVED, S.WAITING_BUYER, S.WAITING_PLATFORM}),
    S.WAITING_PLATFORM: frozenset({S.IN_PROGRESS, S.RESOLVED, S.WAITING_BUYER, S.WAITING_CARRIER}),
    S.RESOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
}
WORKER_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
MANAGER_ROLES = (Role.SUPERVISOR, Role.ADMIN)
BULK_LIMIT = 500
NOTE_MAX_LENGTH = 5000
NOT_FOUND = "No such case."

_CASE_FIELDS = (
    "status", "assignee_id", "resolution", "resolved_at", "needs_attention", "sla_paused_at",
    "first_contact_due_at", "resolution_due_at", "due_at", "first_contact_at", "updated_at",
)  # fmt: skip


def allowed_transitions(status: str) -> frozenset[CaseStatus]:
    return TRANSITIONS.get(CaseStatus(status), frozenset())


def _label(status: str) -> str:
    return str(dict(CaseStatus.choices).get(status, status))


def actor_role_require(actor: AbstractBaseUser, store_id: int) -> str:
    """The actor's role in the store; PermissionDenied when they have none."""
    role = store_roles_for_user(actor).get(store_id) if actor is not None else None
    if role not in WORKER_ROLES:
        raise PermissionDenied(_("You do not work on this store's cases."))
    return role


def case_lock(case: Case) -> Case:
    return Case.objects.select_for_update(of=("self",)).get(pk=case.pk)


def case_copy_back(case: Case, locked: Case) -> None:
    """Give the caller's instance the state written under the lock."""
    for name in _CASE_FIELDS:
        setattr(case, name, getattr(locked, name))


def _current_due(case: Case) -> datetime:
    """`due_at` is the first-contact deadline until the buyer is contacted, then the resolution deadline."""
    if case.first_contact_at is None and case.first_contact_due_at is not None:
        return case.first_contact_due_at
    return case.resolution_due_at or case.first_contact_due_at or case.due_at


def sla_resume(case: Case, *, now: datetime) -> list[str]:
    """Leave the buyer-wait pause: push every deadline forward by the paused time. Returns changed fields.
    Does not save; the caller holds the lock and saves."""
    if case.sla_paused_at is None:
        return []
    paused = max(now - case.sla_paused_at, timedelta(0))
    if case.first_contact_due_at is not None:
        case.first_contact_due_at += paused
    if case.resolution_due_at is not None:
        case.resolution_due_at += paused
    case.sla_paused_at = None
    case.due_at = _current_due(case)
    return ["first_contact_due_at", "resolution_due_at", "sla_paused_at", "due_at"]


def case_first_contact(case: Case, *, now: datetime) -> list[str]:
    """Record first contact with the buyer, once: the SLA moves on to resolution. Returns changed fields.
    Does not save; the caller holds the lock and saves."""
    if case.first_contact_at is not None:
        return []
    case.first_contact_at = now
    case.due_at = _current_due(case)
    return ["first_contact_at", "due_at"]


def _transition_locked(
    case: Case, *, to_status: str, actor: AbstractBaseUser, resolution: str | None, note: str, now: datetime
) -> CaseEvent:
    actor_role_require(actor, case.store_id)
    try:
        target = CaseStatus(to_status)
    except ValueError:
        raise CaseWorkflowError(_("Unknown status %(status)r.") % {"status": to_status}) from None
    old = CaseStatus(case.status)
    if target == old:
        raise CaseWorkflowError(_("The case is already %(status)s.") % {"status": _label(old)})
    if target not in TRANSITIONS[old]:
        allowed = ", ".join(_label(s) for s in sorted(TRANSITIONS[old])) or _("none: it is final")
        raise CaseWorkflowError(
            _("A case that is %(old)s cannot become %(new)s. Allowed: %(allowed)s.")
            % {"old": _label(old), "new": _label(target), "allowed": allowed}
        )
    if target == S.RESOLVED:
        if not resolution:
            raise CaseWorkflowError(_("Choose a resolution code to resolve the case."))
        if resolution not in Resolution.values:
            raise CaseWorkflowError(_("Unknown resolution %(code)r.") % {"code": resolution})
    elif resolution:
        raise CaseWorkflowError(_("A resolution code is only given when resolving."))

    fields = {"status", "updated_at"}
    if old == S.WAITING_BUYER:
        fields.update(sla_resume(case, now=now))
    if target == S.WAITING_BUYER:
        case.sla_paused_at = now
        fields.add("sla_paused_at")
    data: dict[str, Any] = {"from": old.value, "to": target.value}
    kind = CaseEventKind.STATUS_CHANGED
    if target == S.RESOLVED:
        kind = CaseEventKind.RESOLVED
        case.resolution, case.resolved_at, case.needs_attention = resolution, now, False
        fields.update({"resolution", "resolved_at", "needs_attention"})
        data["resolution"] = resolution
    elif old == S.RESOLVED and target in OPEN_STATUSES:
        kind = CaseEventKind.REOPENED
        data["resolution"] = case.resolution
        case.resolution, case.resolved_at = "", None
        fields.update({"resolution", "resolved_at"})
    case.status = target
    if kind == CaseEventKind.REOPENED:
        try:
            with transaction.atomic():
                case.save(update_fields=sorted(fields))
        except IntegrityError:
            raise CaseWorkflowError(
                _("Another open case already covers this problem; work that one instead.")
            ) from None
    else:
        case.save(update_fields=sorted(fields))
    event = CaseEvent.objects.create(
        case=case, kind=kind, actor=actor, created_at=now, message=note.strip(), data=data
    )
    emitted = (
        StorefrontEventType.CASE_RESOLVED
        if kind == CaseEventKind.RESOLVED
        else StorefrontEventType.CASE_UPDATED
    )
    case_event_emit(case, emitted, key=event.pk, now=now)
    if case.type == CaseType.ORDER_REVIEW and case.order_id:
        _order_review_decided(case, kind=kind, actor=actor, now=now)
    return event


# A review's decision reaches the held order: resolving releases it for shipping, or cancels it when the
# resolution says the order was cancelled; reopening the review holds it again. (from, to, timeline text)
_REVIEW_ORDER_MOVES = {
    (CaseEventKind.RESOLVED, False): (
        OrderStatus.ON_HOLD, OrderStatus.AWAITING_SHIPMENT, Text(gettext_noop("Order released for shipping after review."))
    ),
    (CaseEventKind.RESOLVED, True): (
        OrderStatus.ON_HOLD, OrderStatus.CANCELLED, Text(gettext_noop("Order cancelled after review."))
    ),
    (CaseEventKind.REOPENED, False): (
        OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD, Text(gettext_noop("Order held again: its review was reopened."))
    ),
}  # fmt: skip


def _order_review_decided(case: Case, *, kind: str, actor: AbstractBaseUser, now: datetime) -> None:
    move = _REVIEW_ORDER_MOVES.get((kind, case.resolution == Resolution.CANCELLED))
    if move is None:
        return
    old, new, message = move
    # Conditional: an order shipped or cancelled on the platform meanwhile is left as it is.
    if Order.objects.filter(pk=case.order_id, status=old).update(status=new):
        order = case.order
        order.status = new
        kind = (
            StorefrontEventType.ORDER_HELD
            if new == OrderStatus.ON_HOLD
            else StorefrontEventType.ORDER_RELEASED
        )
        order_event_emit(order, kind, case=case, now=now)
        CaseEvent.objects.create(
            case=case, kind=CaseEventKind.UPDATED, actor=actor, created_at=now, message=str(message),
            data=event_data(message, {"order_status": {"from": old.value, "to": new.value}}),
        )  # fmt: skip


def case_transition(
    *,
    case: Case,
    to_status: CaseStatus | str,
    actor: AbstractBaseUser,
    resolution: Resolution | str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> CaseEvent:
    """Move the case to `to_status` if TRANSITIONS allows it, under a row lock.

    Resolving needs a resolution code and clears `needs_attention`; RESOLVED -> IN_PROGRESS reopens
    (clears the resolution). Entering WAITING_BUYER pauses the SLA clocks; leaving it pushes every deadline
    forward by the paused time. Writes one STATUS_CHANGED / RESOLVED / REOPENED event and returns it.
    Raises PermissionDenied (actor has no role in the store) or CaseWorkflowError (refused; nothing written).
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = case_lock(case)
        event = _transition_locked(
            locked, to_status=to_status, actor=actor, resolution=resolution, note=note, now=now
        )
    case_copy_back(case, locked)
    if case.type == CaseType.ORDER_REVIEW and Case.order.is_cached(case) and case.order is not None:
        case.order.refresh_from_db(fields=["status"])  # the decision may have moved it
    return event


def _claim_locked(case: Case, *, actor: AbstractBaseUser, now: datetime) -> bool:
    role = actor_role_require(actor, case.store_id)
    if case.status not in OPEN_STATUSES:
        raise CaseWorkflowError(
            _("The case is %(status)s; reopen it before claiming it.") % {"status": _label(case.status)}
        )
    if case.assignee_id == actor.pk:
        return False
    if case.assignee_id is not None and role not in MANAGER_ROLES:
        raise CaseWorkflowError(
            _("The case is already assigned to %(name)s.") % {"name": case.assignee.get_username()}
        )
    old_assignee_id = case.assignee_id
    case.assignee_id = actor.pk
    fields = ["assignee", "updated_at"]
    if case.status == S.NEW:
        case.status = S.IN_PROGRESS
        fields.append("status")
    case.save(update_fields=fields)
    CaseEvent.objects.create(
        case=case, kind=CaseEventKind.ASSIGNED, actor=actor, created_at=now,
        data={"from": old_assignee_id, "to": actor.pk, "to_name": actor.get_username(), "claimed": True},
    )  # fmt: skip
    if "status" in fields:
        CaseEvent.objects.create(
            case=case, kind=CaseEventKind.STATUS_CHANGED, actor=actor, created_at=now,
            data={"from": S.NEW.value, "to": S.IN_PROGRESS.value},
        )  # fmt: skip
    return True


def case_claim(*, case: Case, actor: AbstractBaseUser, now: datetime | None = None) -> bool:
    """Assign the case to the actor. An agent may claim an unassigned case (or their own again: a no-op);
    supervisors and admins may also take over an assigned one. Claiming a NEW case starts it
    (IN_PROGRESS). Locks the row, so of two racing claims one wins and the other is refused.
    Returns whether anything changed."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = case_lock(case)
        changed = _claim_locked(locked, actor=actor, now=now)
    case_copy_back(case, locked)
    return changed


def _is_member(user: AbstractBaseUser, store_id: int, cache: dict[tuple[int, int], bool]) -> bool:
    key = (user.pk, store_id)
    if key not in cache:
        cache[key] = Membership.objects.filter(
            user_id=user.pk, store_id=store_id, user__is_active=True
        ).exists()
    return cache[key]


def _assign_locked(
    case: Case,
    *,
    assignee: AbstractBaseUser | None,
    actor: AbstractBaseUser,
    now: datetime,
    members: dict[tuple[int, int], bool],
) -> bool:
    if actor_role_require(actor, case.store_id) not in MANAGER_ROLES:
        raise PermissionDenied(_("Only supervisors and admins assign cases."))
    if case.status not in OPEN_STATUSES:
        raise CaseWorkflowError(_("Only open cases are assigned; this one is %(status)s.") % {
            "status": _label(case.status)})  # fmt: skip
    if assignee is not None and not _is_member(assignee, case.store_id, members):
        raise CaseWorkflowError(
            _("%(name)s is not a member of this case's store.") % {"name": assignee.get_username()}
        )
    new_id = assignee.pk if assignee is not None else None
    if case.assignee_id == new_id:
        return False
    old_id = case.assignee_id
    case.assignee_id = new_id
    case.save(update_fields=["assignee", "updated_at"])
    CaseEvent.objects.create(
        case=case, kind=CaseEventKind.ASSIGNED, actor=actor, created_at=now,
        data={"from": old_id, "to": new_id, "to_name": assignee.get_username() if assignee else ""},
    )  # fmt: skip
    return True


def case_assign(
    *, case: Case, assignee: AbstractBaseUser | None, actor: AbstractBaseUser, now: datetime | None = None
) -> bool:
    """Assign the case to `assignee` (None unassigns). Supervisors and admins of the case's store only; the
    assignee must be an active member of that store. Writes ASSIGNED; returns whether anything changed."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = case_lock(case)
        changed = _assign_locked(locked, assignee=assignee, actor=actor, now=now, members={})
    case_copy_back(case, locked)
    return changed


def cases_release_from_member(
    *, store_id: int, user_id: int, actor: AbstractBaseUser, now: datetime | None = None
) -> int:
    """Put a departing member's open cases in the store back to Unassigned, one ASSIGNED entry each; their
    closed cases keep the name of who worked them. Returns how many were released.

    Called by `portal.services.member_remove` in its transaction, by dotted path (portal never imports cases),
    so a removed member's cases do not sit in a queue nobody sees."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Case.objects.select_for_update()
            .filter(store_id=store_id, assignee_id=user_id, status__in=OPEN_STATUSES)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        Case.objects.filter(pk__in=ids).update(assignee=None, updated_at=now)
        message = Text(gettext_noop("Unassigned: no longer a member of the store."))
        data = event_data(message, {"from": user_id, "to": None, "to_name": "", "member_removed": True})
        CaseEvent.objects.bulk_create(
            CaseEvent(
                case_id=pk,
                kind=CaseEventKind.ASSIGNED,
                actor=actor,
                created_at=now,
                message=str(message),
                data=data,
            )
            for pk in ids
        )
    return len(ids)


def case_note_add(
    *, case: Case, actor: AbstractBaseUser, text: str, now: datetime | None = None
) -> CaseEvent:
    """Add an internal note to the timeline (never shown to the buyer). Refuses an empty note."""
    actor_role_require(actor, case.store_id)
    text = (text or "").strip()
    if not text:
        raise CaseWorkflowError(_("Write something in the note."))
    if len(text) > NOTE_MAX_LENGTH:
        raise CaseWorkflowError(_("A note is at most %(max)d characters.") % {"max": NOTE_MAX_LENGTH})
    return CaseEvent.objects.create(
        case=case, kind=CaseEventKind.NOTE, actor=actor, created_at=now or timezone.now(), message=text
    )


@dataclass
class BulkResult:
    changed: int = 0
    unchanged: int = 0
    refused: dict[int, str] = field(default_factory=dict)  # case id -> why


def cases_bulk_apply(case_ids: Iterable[int], *, actor: AbstractBaseUser, apply) -> BulkResult:
    """Lock the actor's cases among `case_ids` in id order, apply `apply` to each, report. Ids of other
    stores (or that do not exist) are reported as not found and never touched."""
    ids = sorted({int(pk) for pk in case_ids})
    if len(ids) > BULK_LIMIT:
        raise CaseWorkflowError(_("Select at most %(max)d cases at a time.") % {"max": BULK_LIMIT})
    result = BulkResult()
    store_ids = list(store_roles_for_user(actor)) if actor is not None else []
    with transaction.atomic():
        cases = list(
            Case.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, store_id__in=store_ids)
            .select_related("assignee")
            .order_by("pk")
        )
        found = {case.pk for case in cases}
        for pk in ids:
            if pk not in found:
                result.refused[pk] = NOT_FOUND
        for case in cases:
            try:
                changed = apply(case)
            except (CaseWorkflowError, PermissionDenied) as exc:
                result.refused[case.pk] = str(exc)
                continue
            if changed is False:
                result.unchanged += 1
            else:
                result.changed += 1
    return result


def cases_bulk_claim(
    *, case_ids: Iterable[int], actor: AbstractBaseUser, now: datetime | None = None
) -> BulkResult:
    """case_claim over many cases in one transaction, scoped to the actor's stores."""
    now = now or timezone.now()
    return cases_bulk_apply(
        case_ids, actor=actor, apply=lambda case: _claim_locked(case, actor=actor, now=now)
    )


def cases_bulk_assign(
    *,
    case_ids: Iterable[int],
    assignee: AbstractBaseUser | None,
    actor: AbstractBaseUser,
    now: datetime | None = None,
) -> BulkResult:
    """case_assign over many cases in one transaction; a case whose store the assignee is not a member of
    is refused, the others are assigned."""
    now = now or timezone.now()
    members: dict[tuple[int, int], bool] = {}
    return cases_bulk_apply(
        case_ids, actor=actor,
        apply=lambda case: _assign_locked(case, assignee=assignee, actor=actor, now=now, members=members),
    )  # fmt: skip


def cases_bulk_transition(
    *,
    case_ids: Iterable[int],
    to_status: CaseStatus | str,
    actor: AbstractBaseUser,
    resolution: Resolution | str | None = None,
    note: str = "",
    now: datetime | None = None,
) -> BulkResult:
    """case_transition over many cases in one transaction; disallowed ones are refused with the reason."""
    now = now or timezone.now()
    return cases_bulk_apply(
        case_ids, actor=actor,
        apply=lambda case: _transition_locked(
            case, to_status=to_status, actor=actor, resolution=resolution, note=note, now=now
        ),
    )  # fmt: skip
