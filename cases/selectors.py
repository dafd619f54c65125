"""Reads of cases, always scoped to the stores of the user asking."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from cases.choices import OPEN_STATUSES, CaseType
from cases.models import (
    OPEN_CASE,
    Appeal,
    BuyerMessage,
    Case,
    CaseEvent,
    Claim,
    Compensation,
    Complaint,
    EventDelivery,
    Evidence,
    MessageTemplate,
    StorefrontEvent,
    WebhookEndpoint,
)
from cases.outbox import priority_name
from cases.policy import PolicyBook
from portal.choices import Role
from portal.models import Store
from portal.selectors import store_ids_for_user, store_roles_for_user
from tracking.choices import OrderStatus, Tag
from tracking.models import LiveSession, Order, OrderLine, Shipment

PAGE_SIZE = 50


QUEUE_MINE = "mine"
QUEUE_UNASSIGNED = "unassigned"
QUEUE_BREACHING = "breaching"
QUEUES = (QUEUE_MINE, QUEUE_UNASSIGNED, QUEUE_BREACHING)
BREACHING_WITHIN = timedelta(hours=2)


def _queue_q(user: AbstractBaseUser | AnonymousUser, queue: str, now: datetime) -> Q:
    """The condition of a named queue; every queue holds open cases only."""
    is_open = Q(status__in=OPEN_STATUSES)
    if queue == QUEUE_MINE:
        return is_open & Q(assignee_id=user.pk)
    if queue == QUEUE_UNASSIGNED:
        return is_open & Q(assignee__isnull=True)
    if queue == QUEUE_BREACHING:
        return is_open & Q(sla_paused_at__isnull=True, due_at__lte=now + BREACHING_WITHIN)
    raise ValueError(f"unknown queue {queue!r}")


def cases_for_user(
    user: AbstractBaseUser | AnonymousUser,
    *,
    status: str | None = None,
    type: str | None = None,
    store_id: int | None = None,
    search: str = "",
    queue: str | None = None,
    priority: int | None = None,
    carrier: str = "",
    live_session_id: int | None = None,
    sku: str = "",
    older_than_hours: int | None = None,
    assignee_id: int | None = None,
    pending_approval: bool = False,
    now: datetime | None = None,
) -> QuerySet[Case]:
    """The user's cases, filtered, in queue order (SLA due first). `status="open"` means any open status;
    `queue` is one of QUEUES (my open cases, open unassigned ones, open ones breaching within 2 h)."""
    now = now or timezone.now()
    cases = Case.objects.filter(store_id__in=store_ids_for_user(user))
    if queue:
        cases = cases.filter(_queue_q(user, queue, now))
    if status == "open":
        cases = cases.filter(status__in=OPEN_STATUSES)
    elif status and status != "all":
        cases = cases.filter(status=status)
    if type:
        cases = cases.filter(type=type)
    if store_id:
        cases = cases.filter(store_id=store_id)
    if priority:
        cases = cases.filter(priority=priority)
    if carrier:
        cases = cases.filter(shipment__carrier__iexact=carrier.strip())
    if live_session_id:
        cases = cases.filter(order__live_session_id=live_session_id)
    if sku:
        code = sku.strip()
        # EXISTS, not a join on the lines: a join would repeat a case once per matching line.
        on_order = OrderLine.objects.filter(order_id=OuterRef("order_id"), sku_code__iexact=code)
        cases = cases.filter(Q(Exists(on_order)) | Q(sku__code__iexact=code))
    if older_than_hours:
        cases = cases.filter(opened_at__lte=now - timedelta(hours=older_than_hours))
    if assignee_id:
        cases = cases.filter(assignee_id=assignee_id)
    if pending_approval:
        waiting = Compensation.objects.filter(case_id=OuterRef("pk"), status="proposed")
        cases = cases.filter(Exists(waiting))
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


def queue_counts_for_user(user: AbstractBaseUser | AnonymousUser, *, now: datetime | None = None) -> dict:
    """Open-case counts for every queue and every case type, in one aggregate query:
    {"mine": n, "unassigned": n, "breaching": n, "open": n, "types": {type: n}}."""
    now = now or timezone.now()
    aggregates = {queue: Count("pk", filter=_queue_q(user, queue, now)) for queue in QUEUES}
    aggregates["open"] = Count("pk")
    aggregates.update({f"type_{value}": Count("pk", filter=Q(type=value)) for value in CaseType.values})
    counts = Case.objects.filter(store_id__in=store_ids_for_user(user), status__in=OPEN_STATUSES).aggregate(
        **aggregates
    )
    return {
        **{key: counts[key] for key in (*QUEUES, "open")},
        "types": {value: counts[f"type_{value}"] for value in CaseType.values},
    }


def case_next_for_user(user: AbstractBaseUser | AnonymousUser, case: Case) -> int | None:
    """The id of the open case after this one in the default queue order (due_at, id), if any."""
    return (
        cases_for_user(user, status="open")
        .filter(Q(due_at__gt=case.due_at) | Q(due_at=case.due_at, pk__gt=case.pk))
        .values_list("pk", flat=True)
        .first()
    )


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


def live_sessions_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[LiveSession]:
    return LiveSession.objects.filter(store_id__in=store_ids_for_user(user)).order_by("-started_at", "-pk")


def assignees_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    """Active members of the user's stores, the people a case may be assigned to."""
    return (
        get_user_model()
        .objects.filter(is_active=True, memberships__store_id__in=store_ids_for_user(user))
        .distinct()
        .order_by("username")
    )


def message_templates_for_user(user: AbstractBaseUser | AnonymousUser, *, case_type: str):
    """Active templates of one case type the user may send in bulk: their stores' own and the globals."""
    return (
        MessageTemplate.objects.filter(
            Q(store_id__in=store_ids_for_user(user)) | Q(store__isnull=True), case_type=case_type
        )
        .filter(is_active=True)
        .select_related("store")
        .order_by(F("store_id").asc(nulls_last=True), "language", "channel", "name", "pk")
    )


# --- the template library -------------------------------------------------------------------------


def template_store_ids_for_user(user: AbstractBaseUser | AnonymousUser) -> list[int]:
    """The stores whose templates the user manages: those where they are a supervisor or an admin."""
    return [pk for pk, role in store_roles_for_user(user).items() if role in (Role.SUPERVISOR, Role.ADMIN)]


def user_manages_templates(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(template_store_ids_for_user(user)))


def templates_for_user(
    user: AbstractBaseUser | AnonymousUser, *, filters: Mapping[str, str] | None = None
) -> QuerySet[MessageTemplate]:
    """The templates in the user's library: their managed stores' own plus the global defaults (every
    template for a superuser), narrowed by `case_type`, `language` and `channel`; grouped by case type,
    then language and channel, the store's own before the global default."""
    templates = MessageTemplate.objects.select_related("store")
    if not user.is_superuser:
        templates = templates.filter(
            Q(store_id__in=template_store_ids_for_user(user)) | Q(store__isnull=True)
        )
    for name in ("case_type", "language", "channel"):
        if (filters or {}).get(name):
            templates = templates.filter(**{name: filters[name]})
    return templates.order_by(
        "case_type", "language", "channel", F("store_id").asc(nulls_last=True), "name", "pk"
    )


def template_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> MessageTemplate:
    """One template of the user's library; Http404 when it belongs to a store they do not manage."""
    try:
        return templates_for_user(user).get(pk=pk)
    except MessageTemplate.DoesNotExist:
        raise Http404("No such template.") from None


def template_sample_case_for_user(
    user: AbstractBaseUser | AnonymousUser, *, case_type: str, store_id: int | None = None
) -> Case | None:
    """The newest case of the type in the user's managed stores (the picked store first), to preview a
    template against; None when there is none."""
    store_ids = template_store_ids_for_user(user)
    if store_id is not None and (user.is_superuser or store_id in store_ids):
        store_ids = [store_id]
    cases = Case.objects.filter(type=case_type, order__isnull=False)
    if not (user.is_superuser and store_id is None):
        cases = cases.filter(store_id__in=store_ids)
    return cases.select_related("store", "order", "shipment").order_by("-opened_at", "-pk").first()


def template_stores_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Store]:
    """The stores the user may put a template in: every store for a superuser, else those they manage."""
    stores = Store.objects.order_by("name")
    return stores if user.is_superuser else stores.filter(pk__in=template_store_ids_for_user(user))


# --- the storefront API's reads: one store, the API key's ---------------------------------------------


def cases_for_store(
    store: Store,
    *,
    type: str = "",
    status: str = "",
    priority: int | None = None,
    platform_order_id: str = "",
    tracking_number: str = "",
    updated_after: datetime | None = None,
) -> QuerySet[Case]:
    """The store's cases, filtered: `status` "open" means any open status. Unordered: the caller pages."""
    cases = Case.objects.filter(store=store)
    if type:
        cases = cases.filter(type=type)
    if status == "open":
        cases = cases.filter(status__in=OPEN_STATUSES)
    elif status:
        cases = cases.filter(status=status)
    if priority is not None:
        cases = cases.filter(priority=priority)
    if platform_order_id:
        cases = cases.filter(order__platform_order_id=platform_order_id)
    if tracking_number:
        cases = cases.filter(shipment__tracking_number=tracking_number)
    if updated_after is not None:
        cases = cases.filter(updated_at__gt=updated_after)
    return cases.select_related("order", "shipment")


def case_get_for_store(store: Store, pk: int) -> Case:
    case = (
        Case.objects.filter(store=store, pk=pk)
        .select_related("store", "order", "order__live_session", "shipment", "assignee")
        .first()
    )
    if case is None:
        raise Http404("No such case in this store.")
    return case


def open_cases_for_orders(order_ids: list[int]) -> dict[int, list[dict]]:
    """{order id: [its open cases, oldest first, as {id, type, status, priority, opened_at}]}; for the API's
    order (tracking.api reads it by dotted path)."""
    out: dict[int, list[dict]] = {}
    rows = (
        Case.objects.filter(order_id__in=order_ids, status__in=OPEN_STATUSES)
        .order_by("opened_at", "pk")
        .values_list("order_id", "pk", "type", "status", "priority", "opened_at")
    )
    for order_id, pk, type_, status, priority, opened_at in rows:
        out.setdefault(order_id, []).append(
            {
                "id": pk,
                "type": type_,
                "status": status,
                "priority": priority_name(priority),
                "opened_at": opened_at,
            }
        )
    return out


def events_pending_for_store(store: Store, *, kinds: list[str] | None = None) -> QuerySet[StorefrontEvent]:
    """The store's events not yet acknowledged (nor delivered to a webhook endpoint). Unordered."""
    events = StorefrontEvent.objects.filter(store=store, delivered_at__isnull=True, failed_at__isnull=True)
    if kinds:
        events = events.filter(kind__in=kinds)
    return events


def event_get_for_store(store: Store, pk: int) -> StorefrontEvent:
    event = StorefrontEvent.objects.filter(store=store, pk=pk).first()
    if event is None:
        raise Http404("No such event in this store.")
    return event


def endpoints_for_store(store: Store) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(store=store).order_by("created_at", "pk")


def endpoint_get_for_store(store: Store, pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(store=store, pk=pk).first()
    if endpoint is None:
        raise Http404("No such webhook endpoint in this store.")
    return endpoint


def endpoint_deliveries(endpoint: WebhookEndpoint) -> QuerySet[EventDelivery]:
    """The endpoint's delivery log, newest first, each with its event and its attempts."""
    return (
        EventDelivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related("attempt_log")
        .order_by("-pk")
    )


def delivery_get_for_endpoint(endpoint: WebhookEndpoint, pk: int) -> EventDelivery:
    delivery = EventDelivery.objects.filter(endpoint=endpoint, pk=pk).select_related("event").first()
    if delivery is None:
        raise Http404("No such delivery of this endpoint.")
    return delivery


# --- compensation and claims ---------------------------------------------------------------------------------

_COMPENSATION_RELATED = (
    "order",
    "sku",
    "replaces_shipment",
    "shipment",
    "proposed_by",
    "approved_by",
    "decided_by",
)


def case_compensations(case: Case) -> QuerySet[Compensation]:
    return (
        Compensation.objects.filter(case=case)
        .select_related(*_COMPENSATION_RELATED)
        .order_by("proposed_at", "pk")
    )


def compensation_get_for_store(store: Store, pk: int) -> Compensation:
    compensation = (
        Compensation.objects.filter(store=store, pk=pk).select_related(*_COMPENSATION_RELATED).first()
    )
    if compensation is None:
        raise Http404("No such compensation in this store.")
    return compensation


def compensation_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Compensation:
    compensation = (
        Compensation.objects.filter(store_id__in=store_ids_for_user(user), pk=pk)
        .select_related(*_COMPENSATION_RELATED, "case")
        .first()
    )
    if compensation is None:
        raise Http404("No such compensation.")
    return compensation


def case_parcel_get(case: Case, tracking_number: str):
    """One of the case's order's parcels by its tracking number, or a 404."""
    from tracking.models import Shipment

    parcel = Shipment.objects.filter(order_id=case.order_id, tracking_number=tracking_number).first()
    if parcel is None:
        raise Http404("No parcel with that tracking number on this case's order.")
    return parcel


def approvals_count_for_user(user: AbstractBaseUser | AnonymousUser) -> int:
    return approvals_for_user(user).count()


def approvals_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Compensation]:
    """Proposals waiting for approval in the stores the user supervises or administers, oldest first."""
    stores = [pk for pk, role in store_roles_for_user(user).items() if role in (Role.SUPERVISOR, Role.ADMIN)]
    return (
        Compensation.objects.filter(store_id__in=stores, status="proposed")
        .select_related(*_COMPENSATION_RELATED, "case", "store")
        .order_by("proposed_at", "pk")
    )


def claims_for_user(user: AbstractBaseUser | AnonymousUser, *, status: str = "") -> QuerySet[Claim]:
    """Carrier claims of the stores the user supervises or administers, nearest deadline first."""
    stores = [pk for pk, role in store_roles_for_user(user).items() if role in (Role.SUPERVISOR, Role.ADMIN)]
    claims = Claim.objects.filter(store_id__in=stores).select_related("store", "case", "order", "shipment")
    if status:
        claims = claims.filter(status=status)
    return claims.order_by("deadline", "pk")


def claim_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int) -> Claim:
    claim = claims_for_user(user).filter(pk=pk).first()
    if claim is None:
        raise Http404("No such claim.")
    return claim


# --- evidence and appeals --------------------------------------------------------------------------------


def case_evidence(case: Case, *, with_withdrawn: bool = True) -> QuerySet:
    evidence = Evidence.objects.filter(case=case).select_related("uploaded_by", "tombstoned_by")
    if not with_withdrawn:
        evidence = evidence.filter(tombstoned_at__isnull=True)
    return evidence.order_by("uploaded_at", "pk")


def evidence_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int):
    evidence = (
        Evidence.objects.filter(store_id__in=store_ids_for_user(user), pk=pk)
        .select_related("case", "store")
        .first()
    )
    if evidence is None:
        raise Http404("No such file.")
    return evidence


def evidence_get_for_store(store: Store, pk: int):
    evidence = Evidence.objects.filter(store=store, pk=pk).select_related("case").first()
    if evidence is None:
        raise Http404("No such file in this store.")
    return evidence


def appeals_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    return (
        Appeal.objects.filter(store_id__in=store_ids_for_user(user))
        .select_related("scenario", "store")
        .order_by("-created_at", "-pk")
    )


def appeal_get_for_user(user: AbstractBaseUser | AnonymousUser, pk: int):
    appeal = appeals_for_user(user).filter(pk=pk).first()
    if appeal is None:
        raise Http404("No such appeal.")
    return appeal


def cases_get_for_user(user: AbstractBaseUser | AnonymousUser, ids: list[int]) -> list[Case]:
    """The user's cases among `ids` (others silently absent), with orders and parcels."""
    return list(
        Case.objects.filter(pk__in=ids, store_id__in=store_ids_for_user(user))
        .select_related("order", "shipment", "store")
        .order_by("pk")
    )


def custody_for_evidence(evidence) -> QuerySet:
    return evidence.custody.select_related("actor").order_by("at", "pk")


# --- a Seller Center import's first look --------------------------------------------------------------


@dataclass(frozen=True)
class FirstLook:
    """What an imported shop looks like once its history arrived: parcels in flight, those still waiting
    for their first tracking event, the cases the rules raised by type, and parcels due to hit a deadline in
    the next 24 hours."""

    parcels: int
    in_flight: int
    awaiting_history: int
    delivered: int
    cases_by_type: list[tuple[str, str, int]]  # (type, label, open cases)
    at_risk_24h: int
    settled: bool  # every in-flight parcel has its history, or its grace period is over


def import_first_look(order_import, *, now: datetime | None = None) -> FirstLook:
    now = now or timezone.now()
    grace = PolicyBook([order_import.store_id]).for_store(order_import.store_id).history_grace
    parcels = Shipment.objects.filter(store_id=order_import.store_id, order__source_import=order_import)
    moving = parcels.exclude(status=Tag.DELIVERED).exclude(order__status=OrderStatus.CANCELLED)
    counts = parcels.aggregate(
        total=Count("pk"),
        delivered=Count("pk", filter=Q(status=Tag.DELIVERED)),
    )
    in_flight = moving.count()
    awaiting = moving.filter(last_event_at__isnull=True, created_at__gt=now - grace).count()
    at_risk = moving.filter(next_check_at__gt=now, next_check_at__lte=now + timedelta(hours=24)).count()
    by_type = (
        Case.objects.filter(OPEN_CASE, store_id=order_import.store_id, order__source_import=order_import)
        .values_list("type")
        .annotate(n=Count("pk"))
        .order_by("-n", "type")
    )
    return FirstLook(
        parcels=counts["total"], in_flight=in_flight, awaiting_history=awaiting, delivered=counts["delivered"],
        cases_by_type=[(t, CaseType(t).label, n) for t, n in by_type], at_risk_24h=at_risk,
        settled=awaiting == 0,
    )  # fmt: skip


# --- complaints ------------------------------------------------------------------------------------------


def complaints_triage_for_user(user) -> QuerySet:
    """Complaints waiting for an agent to name their category, in the user's stores, oldest first."""
    return (
        Complaint.objects.filter(store_id__in=store_ids_for_user(user), needs_triage=True)
        .select_related("order", "store")
        .order_by("received_at", "pk")
    )


def complaint_get_for_user(user, pk: int) -> Complaint:
    complaint = (
        Complaint.objects.filter(store_id__in=store_ids_for_user(user), pk=pk)
        .select_related("order", "store")
        .first()
    )
    if complaint is None:
        raise Http404("No such complaint.")
    return complaint


def complaints_labelled_for_user(user) -> QuerySet:
    """Complaints an agent labelled (the triage queue's answers), for the corpus: in the user's stores."""
    return Complaint.objects.filter(
        store_id__in=store_ids_for_user(user), labelled_by__isnull=False
    ).order_by("labelled_at", "pk")


def order_get_for_user(user, pk: int) -> Order:
    order = Order.objects.filter(store_id__in=store_ids_for_user(user), pk=pk).select_related("store").first()
    if order is None:
        raise Http404("No such order.")
    return order
