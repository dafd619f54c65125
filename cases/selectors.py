"""Reads of cases, always scoped to the stores of the user asking."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, Q, QuerySet
from django.http import Http404

from cases.choices import OPEN_STATUSES
from cases.models import BuyerMessage, Case, CaseEvent, MessageTemplate
from portal.selectors import store_ids_for_user

PAGE_SIZE = 50


def cases_for_user(
    user: AbstractBaseUser | AnonymousUser,
    *,
    status: str | None = None,
    type: str | None = None,
    store_id: int | None = None,
    search: str = "",
) -> QuerySet[Case]:
    """The user's cases, filtered, in queue order (SLA due first). `status="open"` means any open status."""
    cases = Case.objects.filter(store_id__in=store_ids_for_user(user))
    if status == "open":
        cases = cases.filter(status__in=OPEN_STATUSES)
    elif status and status != "all":
        cases = cases.filter(status=status)
    if type:
        cases = cases.filter(type=type)
    if store_id:
        cases = cases.filter(store_id=store_id)
    if search:
        term = search.strip()
        match = (
            Q(order__platform_order_id=term)
            | Q(shipment__tracking_number=term)
            | Q(order__buyer_name__icontains=term)
        )
        if term.isdigit():
            match |= Q(pk=int(term))
        cases = cases.filter(match)
    return cases.select_related("store", "order", "shipment", "assignee").order_by("due_at", "id")


@dataclass(frozen=True)
class CasePage:
    rows: list[Case]
    next_after: int | None


def case_page(cases: QuerySet[Case], *, after: int | None = None, size: int | None = None) -> CasePage:
    """Keyset pagination on (due_at, id): page N costs what page 1 costs, however deep."""
    size = size or PAGE_SIZE
    if after is not None:
        anchor = cases.filter(pk=after).values_list("due_at", flat=True).first()
        if anchor is not None:
            cases = cases.filter(Q(due_at__gt=anchor) | Q(due_at=anchor, pk__gt=after))
    rows = list(cases[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return CasePage(rows=rows, next_after=rows[-1].pk if has_more else None)


def case_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Case:
    """The case, if it belongs to one of the user's stores; otherwise 404 (never 403: no existence leak)."""
    case = (
        Case.objects.filter(pk=pk, store_id__in=store_ids_for_user(user))
        .select_related("store", "order", "order__live_session", "shipment", "assignee", "parent")
        .first()
    )
    if case is None:
        raise Http404("No such case.")
    return case


def case_children(case: Case) -> QuerySet[Case]:
    """The complaints linked to a batch incident (same store by construction)."""
    return (
        case.children.filter(store_id=case.store_id).select_related("order", "shipment").order_by("opened_at")
    )


def case_timeline(case: Case) -> QuerySet[CaseEvent]:
    return case.events.select_related("actor").order_by("created_at", "id")


def message_templates_for_case(case: Case) -> QuerySet[MessageTemplate]:
    """The active templates an agent may send on this case: the store's own and the global defaults for the
    case's type, in every language and channel; the store's own first."""
    return (
        MessageTemplate.objects.filter(Q(store_id=case.store_id) | Q(store__isnull=True), case_type=case.type)
        .filter(is_active=True)
        .order_by(F("store_id").asc(nulls_last=True), "language", "channel", "name", "pk")
    )


def case_messages(case: Case) -> QuerySet[BuyerMessage]:
    """The buyer messages of a case, oldest first, with their delivery state."""
    return case.messages.select_related("created_by", "template").order_by("created_at", "id")
