"""Batch incidents: many complaints about one batch of one product become one parent `quality_batch` case.

A batch is a SKU and a lot, as the order lines recorded them (an empty lot is its own batch: "lot unknown").
When the store's `batch_threshold` complaints of one complaint type, on orders with a line of that batch, are
opened within `batch_window_hours`, one incident opens: it links those cases as its children, lists every
buyer of the batch so they can be warned, and emails the store's supervisors and admins. Later complaints
on the batch join the open incident instead of opening another. Only complaints not yet linked to an
incident count towards a new one, so a resolved incident is not reopened by its own stragglers.

A complaint on an order with lines of several batches counts towards each of them, and joins the first
incident it reaches (a case has one parent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from cases.choices import CaseEventKind, CaseType, Priority
from cases.models import OPEN_CASE, Case, CaseEvent
from cases.policy import PolicyBook, Thresholds
from cases.services import case_raise
from cases.texts import Text, event_data
from portal.choices import Role
from portal.models import Membership, Store
from tracking.choices import OrderStatus
from tracking.models import SKU, Order, OrderLine

# The case types that are a buyer's complaint about the product itself: damaged (in transit or as the buyer
# says) and quality problems. Add a type here and its cases count towards batch incidents too.
COMPLAINT_TYPES: tuple[CaseType, ...] = (CaseType.DAMAGED, CaseType.QUALITY)
BUYERS_LISTED = 500  # the incident lists this many buyers; `buyers_count` has them all
NOTIFIED_ROLES = (Role.SUPERVISOR, Role.ADMIN)


@dataclass
class BatchResult:
    # Not the engine's SweepResult: the engine calls into this module, so this module does not import it.
    evaluated: int = 0  # batches looked at
    raised: int = 0  # incidents opened
    updated: int = 0  # incidents that gained complaints or buyers


def batch_evaluate(*, case: Case, now: datetime | None = None) -> Case | None:
    """Call after a complaint case is raised: the case joins the open incident of its batch, or opens one
    when its batch has reached the threshold. Returns the incident the case now belongs to, or None.

    Idempotent, and safe against a racing worker: the incident is raised through `case_raise` (one open
    incident per store, SKU and lot, backed by a constraint) and cases are linked only while unlinked.
    """
    if case.type not in COMPLAINT_TYPES or case.order_id is None:
        return None
    now = now or timezone.now()
    thresholds = PolicyBook([case.store_id]).for_store(case.store_id)
    batches = (
        OrderLine.objects.filter(order_id=case.order_id, sku__isnull=False)
        .order_by("sku_id", "lot")
        .values_list("sku_id", "lot")
        .distinct()
    )
    for sku_id, lot in batches:
        _batch_apply(
            store_id=case.store_id, sku_id=sku_id, lot=lot, thresholds=thresholds, now=now,
            result=BatchResult(), case_id=case.pk,
        )  # fmt: skip
    case.refresh_from_db(fields=["parent"])
    return case.parent


def batches_sweep(*, store: Store, now: datetime | None = None) -> BatchResult:
    """Recompute the store's batch incidents: open the ones whose complaints reached the threshold in the
    window, link complaints the incidents missed, refresh their buyer lists. Idempotent.

    `evaluated` counts the batches looked at, `raised` the incidents opened, `updated` the incidents that
    gained complaints or buyers.
    """
    now = now or timezone.now()
    thresholds = PolicyBook([store.pk]).for_store(store.pk)
    recent = _complaints(store_id=store.pk, since=now - thresholds.batch_window, now=now)
    batches = set(
        OrderLine.objects.filter(order_id__in=recent.values("order_id"), sku__isnull=False).values_list(
            "sku_id", "lot"
        )
    )
    batches |= set(
        Case.objects.filter(OPEN_CASE, store=store, type=CaseType.QUALITY_BATCH).values_list("sku_id", "lot")
    )
    result = BatchResult(evaluated=len(batches))
    for sku_id, lot in sorted(batches):
        _batch_apply(store_id=store.pk, sku_id=sku_id, lot=lot, thresholds=thresholds, now=now, result=result)
    return result


def _complaints(*, store_id: int, since: datetime, now: datetime, sku_id: int | None = None, lot: str = ""):
    """Complaint cases of the store opened in [since, now] and not yet part of an incident."""
    cases = Case.objects.filter(
        store_id=store_id,
        type__in=COMPLAINT_TYPES,
        parent__isnull=True,
        opened_at__gte=since,
        opened_at__lte=now,
    )
    if sku_id is not None:
        # One filter() call: the SKU and the lot must be on the same line.
        cases = cases.filter(order__lines__sku_id=sku_id, order__lines__lot=lot)
    return cases


def _batch_apply(
    *,
    store_id: int,
    sku_id: int,
    lot: str,
    thresholds: Thresholds,
    now: datetime,
    result: BatchResult,
    case_id: int | None = None,
) -> None:
    with transaction.atomic():
        incident = (
            Case.objects.filter(
                OPEN_CASE, store_id=store_id, type=CaseType.QUALITY_BATCH, sku_id=sku_id, lot=lot
            )
            .select_for_update(of=("self",))
            .first()
        )
        if incident is None:
            in_window = _complaints(
                store_id=store_id, since=now - thresholds.batch_window, now=now, sku_id=sku_id, lot=lot
            )
            joining = dict(in_window.order_by().values_list("pk", "type").distinct())
            by_type: dict[str, int] = {}
            for kind in joining.values():
                by_type[kind] = by_type.get(kind, 0) + 1
            if max(by_type.values(), default=0) < thresholds.batch_threshold:
                return
            incident = _incident_open(
                store_id=store_id, sku_id=sku_id, lot=lot, complaints=joining, thresholds=thresholds, now=now,
                result=result,
            )  # fmt: skip
        else:
            # Stragglers the incident missed (raised while no one evaluated them), and the case at hand.
            stragglers = _complaints(
                store_id=store_id, since=incident.opened_at - thresholds.batch_window, now=now, sku_id=sku_id,
                lot=lot,
            )  # fmt: skip
            joining = set(stragglers.values_list("pk", flat=True))
            if case_id is not None:
                joining.add(case_id)
        _children_link(incident=incident, case_ids=joining, now=now, result=result)


def _incident_open(
    *,
    store_id: int,
    sku_id: int,
    lot: str,
    complaints: dict[int, str],
    thresholds: Thresholds,
    now: datetime,
    result: BatchResult,
) -> Case:
    """Raise the batch's incident over `complaints` (case id -> type) and queue the email to the store's
    supervisors and admins, sent only once the transaction commits."""
    sku = SKU.objects.get(pk=sku_id)
    batch = f"{sku.code} lot {lot}" if lot else f"{sku.code} (lot unknown)"
    by_type: dict[str, int] = {}
    for kind in complaints.values():
        by_type[kind] = by_type.get(kind, 0) + 1
    facts = {
        "sku_id": sku.pk,
        "sku_code": sku.code,
        "sku_name": sku.name,
        "lot": lot,
        "threshold": thresholds.batch_threshold,
        "window_hours": int(thresholds.batch_window.total_seconds() // 3600),
        "complaints": len(complaints),
        "complaints_by_type": dict(sorted(by_type.items())),
        "child_case_ids": sorted(complaints),
        **_buyers(store_id=store_id, sku_id=sku_id, lot=lot),
    }
    incident, created = case_raise(
        type=CaseType.QUALITY_BATCH, order=None, store_id=store_id, sku_id=sku_id, lot=lot,
        priority=Priority.URGENT,
        summary=Text(gettext_noop("Quality incident: repeated complaints on %(sku)s, %(batch)s."), sku=sku.name, batch=batch),
        facts=facts, now=now, thresholds=thresholds,
    )  # fmt: skip
    if not created:
        return incident  # a racing worker opened it: the cases join it
    result.raised += 1
    recipients = sorted(
        set(
            Membership.objects.filter(store_id=store_id, role__in=NOTIFIED_ROLES, user__is_active=True)
            .exclude(user__email="")
            .values_list("user__email", flat=True)
        )
    )
    if recipients:
        transaction.on_commit(
            partial(_notify, incident_id=incident.pk, recipients=recipients, batch=batch), robust=True
        )
    notified = Text(
        gettext_noop("Supervisors and admins notified by email (%(count)s)."), count=len(recipients)
    )
    CaseEvent.objects.create(
        case=incident, kind=CaseEventKind.NOTE, created_at=now,
        message=str(notified),
        data=event_data(notified, {"notified": recipients}),
    )  # fmt: skip
    return incident


def _notify(*, incident_id: int, recipients: list[str], batch: str) -> None:
    incident = Case.objects.select_related("store").get(pk=incident_id)
    facts = incident.facts
    by_type = ", ".join(f"{n} {kind}" for kind, n in sorted(facts.get("complaints_by_type", {}).items()))
    send_mail(
        subject=f"[Afterdesk] Quality incident on {batch}: {facts.get('complaints')} complaints",
        message=(
            f"Store: {incident.store.name}\n"
            f"Product: {facts.get('sku_name')} ({batch})\n"
            f"Complaints within {facts.get('window_hours')} h: {facts.get('complaints')} ({by_type})\n"
            f"Buyers of this batch: {facts.get('buyers_count')}\n\n"
            f"Incident case: /cases/{incident.pk}/\n"
        ),
        from_email=None,
        recipient_list=recipients,
    )


def _buyers(*, store_id: int, sku_id: int, lot: str) -> dict[str, Any]:
    """Every order (shipped or not; cancelled ones aside) with a line of the batch: the buyers to warn."""
    orders = Order.objects.filter(
        store_id=store_id, pk__in=OrderLine.objects.filter(sku_id=sku_id, lot=lot).values("order_id")
    ).exclude(status=OrderStatus.CANCELLED)
    listed = list(
        orders.order_by("placed_at", "pk").values("pk", "platform_order_id", "buyer_name")[:BUYERS_LISTED]
    )
    count = len(listed) if len(listed) < BUYERS_LISTED else orders.count()
    return {
        "buyers_count": count,
        "buyers": [
            {"order_id": o["pk"], "platform_order_id": o["platform_order_id"], "buyer_name": o["buyer_name"]}
            for o in listed
        ],
    }


def _children_link(*, incident: Case, case_ids: Iterable[int], now: datetime, result: BatchResult) -> None:
    """Link the still-unlinked cases to the incident, and bring its counts and buyer list up to date; one
    timeline entry on the incident and one on each child, only when something changed."""
    linked = list(
        Case.objects.filter(pk__in=list(case_ids), parent__isnull=True, type__in=COMPLAINT_TYPES)
        .exclude(pk=incident.pk)
        .select_for_update(of=("self",))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if linked:
        Case.objects.filter(pk__in=linked).update(parent=incident, updated_at=timezone.now())
        message = Text(gettext_noop("Part of quality incident #%(id)s."), id=incident.pk)
        CaseEvent.objects.bulk_create(
            CaseEvent(case_id=pk, kind=CaseEventKind.UPDATED, created_at=now, message=str(message),
                      data=event_data(message, {"parent_id": incident.pk}))
            for pk in linked
        )  # fmt: skip
    children = list(incident.children.order_by("pk").values_list("pk", "type"))
    by_type: dict[str, int] = {}
    for _, kind in children:
        by_type[kind] = by_type.get(kind, 0) + 1
    facts = {
        **incident.facts,
        "complaints": len(children),
        "complaints_by_type": dict(sorted(by_type.items())),
        "child_case_ids": [pk for pk, _ in children],
        **_buyers(store_id=incident.store_id, sku_id=incident.sku_id, lot=incident.lot),
    }
    if facts == incident.facts:
        return
    before = incident.facts
    incident.facts = facts
    incident.save(update_fields=["facts", "updated_at"])
    changes = {
        name: {"from": before.get(name), "to": facts[name]}
        for name in ("complaints", "complaints_by_type", "buyers_count")
        if before.get(name) != facts[name]
    }
    if linked:
        changes["linked_case_ids"] = linked
    result.updated += 1
    if linked:
        message = Text(gettext_noop("%(count)s complaints on this batch."), count=len(children))
    else:
        message = Text(gettext_noop("Buyer list refreshed."))
    CaseEvent.objects.create(
        case=incident, kind=CaseEventKind.UPDATED, created_at=now,
        message=str(message),
        data=event_data(message, changes),
    )  # fmt: skip
