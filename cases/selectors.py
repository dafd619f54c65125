"""Reads of cases, always scoped to the stores of the user asking."""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.postgres.expressions import ArraySubquery
from django.db import connections
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.lookups import IsNull
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
    QueueCount,
    StorefrontEvent,
    WebhookEndpoint,
)
from cases.outbox import priority_name
from cases.policy import PolicyBook
from portal.choices import Role
from portal.models import Store
from portal.selectors import store_ids_for_user, store_roles_for_user
from tracking.choices import OrderStatus, Tag
from tracking.models import SKU, LiveSession, Order, OrderLine, Shipment

PAGE_SIZE = 50
QUEUE_RELATED = ("store", "order", "shipment", "assignee")  # what a queue row shows


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


class CaseQueue(QuerySet):
    """What cases_for_user returns: an ordinary QuerySet of the user's cases (its WHERE holds every filter)
    that also remembers how case_page reads it one index walk at a time: `base` holds every filter but the
    alternatives, and a row matches when it meets one of `branches` (its store, among several; the kinds of
    thing a search term may be; a SKU on the order's lines or on the batch incident). A filtered, sliced or
    otherwise changed copy is a plain query without them (QuerySet clones keep only their own state)."""

    base: QuerySet[Case] | None = None
    branches: tuple[Q, ...] = ()


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
) -> CaseQueue:
    """The user's cases, filtered, in queue order (SLA due first). `status="open"` means any open status;
    `queue` is one of QUEUES (my open cases, open unassigned ones, open ones breaching within 2 h). `search`
    is an order id, a tracking number, a buyer's phone (each exactly), a case id or a part of a buyer's
    name (three characters at least; a shorter term finds a buyer by their whole name).

    Each view reads its page from an index in (due_at, id) order, one walk per store (0015_queue_indexes):
    the open queue, breaching and one open status from case_open_queue_idx, a closed status from
    case_closed_queue_idx, all statuses from case_store_due_idx, a type among the open cases from
    case_open_type_idx, an assignee's open cases (mine) from case_open_assignee_idx, the unassigned from
    case_unassigned_queue_idx, an assignee's history from case_assignee_due_idx. Any other filter (a
    priority, a carrier, an age, a type or an assignee outside those) is tested along the walk: a page then
    reads page/selectivity cases, few for the shares these filters have (an urgent priority, a main carrier,
    an old case, which is among the earliest due), and a filter that matches little reads much of the view.
    One index per combination would cost every case write more than that saves. A live session, the
    proposals waiting, a rare SKU and a search start from their own keys (the session's orders, the
    proposals, the SKU's lines, the order, parcel or case looked up) and sort the few cases they lead to;
    a common SKU, or a part of a name many buyers share, is tested along the walk."""
    now = now or timezone.now()
    store_ids = store_ids_for_user(user)
    if store_id:
        store_ids = [store_id] if store_id in store_ids else []
    cases = Case.objects.filter(store_id__in=store_ids)
    if queue:
        cases = cases.filter(_queue_q(user, queue, now))
    if status == "open":
        if not queue:  # a queue holds open cases only: the condition twice would skew the planner's estimates
            cases = cases.filter(status__in=OPEN_STATUSES)
    elif status and status != "all":
        cases = cases.filter(status=status)
    if type:
        cases = cases.filter(type=type)
    if priority:
        cases = cases.filter(priority=priority)
    if carrier:
        cases = cases.filter(shipment__carrier__iexact=carrier.strip())
    if live_session_id:
        in_session = Order.objects.filter(store_id__in=store_ids, live_session_id=live_session_id)
        cases = cases.filter(_keyed("order_id", in_session.values("pk")))
    if older_than_hours:
        cases = cases.filter(opened_at__lte=now - timedelta(hours=older_than_hours))
    if assignee_id:
        cases = cases.filter(assignee_id=assignee_id)
    if pending_approval:
        waiting = Compensation.objects.filter(store_id__in=store_ids, status="proposed")
        cases = cases.filter(_keyed("pk", waiting.values("case_id")))
    # Several stores: one walk of each store's index, merged (an IN list over a (store, due_at, id) index
    # gives no due_at order across the stores: PostgreSQL would sort every match). Not for what starts from
    # its own keys (a live session, the proposals waiting), nor for an assignee's history
    # (case_assignee_due_idx leads with the assignee: a walk per store would cross all their cases each).
    history = bool(assignee_id) and not queue and status not in ("open", *OPEN_STATUSES)
    per_store = len(store_ids) > 1 and not (live_session_id or pending_approval or history)
    # A row of a SKU or a search meets one of these, each read on its own (a store's, or by its keys).
    either: list[Q] = []
    if sku.strip():
        either = _sku_alternatives(store_ids, sku.strip())
        if not either:  # no such SKU in the user's stores
            cases = cases.none()
    if search.strip():
        found = _search_alternatives(store_ids, search.strip(), per_store=per_store)
        either = [a & b for a in either or [Q()] for b in found]
    branches = either or ([Q(store_id=pk) for pk in store_ids] if per_store else [])
    base = cases.select_related(*QUEUE_RELATED).order_by("due_at", "id")
    full = base.filter(reduce(operator.or_, either)) if either else base
    cases_queue = CaseQueue(model=Case, query=full.query.chain(), using=full.db)
    cases_queue.base, cases_queue.branches = base, tuple(branches)
    return cases_queue


def _keyed(field: str, keys: QuerySet) -> Q:
    """`field` among `keys`. On PostgreSQL as `field = ANY(ARRAY(keys))`: the keys are read first (an
    InitPlan) and the cases looked up by their index, then sorted. A semi-join would leave the planner free
    to walk the queue in order and test each case, which it does when it expects many matches; but these
    keys (a live session's orders, the proposals waiting) are clustered in time, so such a walk reads the
    history before them."""
    if connections[keys.db].vendor == "postgresql":
        return Q(_AnyOf(F(field), ArraySubquery(keys)))
    return Q(**{f"{field}__in": keys})


class _AnyOf(Func):
    """`column = ANY(array)`, a condition."""

    arg_joiner = " = ANY("
    template = "%(expressions)s)"
    output_field = BooleanField()


# A SKU on at most this many order lines is read from its lines (sorting its cases); one on more is found by
# walking the store's queue, where it is common enough to turn up every few hundred cases.
SKU_LINES_SORTED = 10_000


def _sku_alternatives(store_ids: list[int], code: str) -> list[Q]:
    """A SKU's cases, a store's each: those whose order has a line of it (the SKU looked up by its code in
    any case, one per store), and its batch incidents (cases_case_sku_id). Whether a SKU is rare is asked
    of its lines (a count that stops at SKU_LINES_SORTED), not left to the planner: its estimate of how
    many open cases lie past a deep page's keyset is far too low (open cases are the latest due), and with
    it the planner sorts all of a common SKU's open cases."""
    skus = list(SKU.objects.filter(store_id__in=store_ids, code__iexact=code).values_list("store_id", "pk"))
    found: list[Q] = []
    for store_id, sku_id in skus:
        lines = OrderLine.objects.filter(sku_id=sku_id)
        if lines[: SKU_LINES_SORTED + 1].count() <= SKU_LINES_SORTED:
            on_order = _keyed("order_id", lines.values("order_id"))
        else:
            # Tested case by case along the walk: a scalar subquery, which PostgreSQL neither joins nor hashes
            # (an EXISTS it may turn into a hash of all the SKU's lines, read from end to end).
            first_line = lines.filter(order_id=OuterRef("order_id")).values("pk")[:1]
            on_order = Q(IsNull(Subquery(first_line), False))
        found.append(Q(store_id=store_id) & on_order)
    if skus:
        found.append(Q(sku_id__in=[sku_id for _, sku_id in skus]))
    return found


PHONE = re.compile(r"\+?[\d\s().-]{6,32}")


def _search_alternatives(store_ids: list[int], term: str, *, per_store: bool) -> list[Q]:
    """What a search term may be, each looked up through an index of the user's stores: the order by its
    platform id, the parcel by its tracking number (their unique indexes), the orders by the buyer's phone
    (order_store_phone_idx) or a part of their name (a trigram index on PostgreSQL, tracking 0021), the
    case by its id. A part of a name may match many orders: the planner then walks the store's queue and
    tests the order's name rather than sort them all (the index's statistics tell it how many); with
    several stores, a store at a time (`per_store`), each store's orders on their own."""
    orders = Order.objects.filter(store_id__in=store_ids)
    parcels = Shipment.objects.filter(store_id__in=store_ids, tracking_number__in={term, term.upper()})
    found = [
        Q(order_id__in=orders.filter(platform_order_id=term).values("pk")),
        Q(shipment_id__in=parcels.values("pk")),
    ]
    if PHONE.fullmatch(term):
        phones = {term, re.sub(r"[\s().-]", "", term)}
        found.append(Q(order_id__in=orders.filter(buyer_phone__in=phones).values("pk")))
    # A trigram index finds a part of a name from three characters; a shorter term is a whole name.
    name = Q(buyer_name__icontains=term) if len(term) >= 3 else Q(buyer_name__iexact=term)
    if per_store:
        by_name = Order.objects.filter(name)
        found += [Q(store_id=pk) & _named(by_name.filter(store_id=pk)) for pk in store_ids]
    else:
        found.append(_named(orders.filter(name)))
    if term.isdigit():
        found.append(Q(pk=int(term)))
    return found


# A part of a name on at most this many orders is read from those orders (sorting their cases); one on more is
# found by walking the queue, where it turns up often enough.
NAME_ORDERS_SORTED = 2_000


def _named(orders: QuerySet[Order]) -> Q:
    """The cases of the orders a name search found. Whether they are few is asked of the trigram index (a
    count that stops at NAME_ORDERS_SORTED), not left to the planner: its estimate for a LIKE over a trigram
    index is a guess, and for a term that matches few names (a string of digits: someone typing a case or
    order number) it guessed many at ten million cases and walked the queue through 300,000 cases."""
    if orders[: NAME_ORDERS_SORTED + 1].count() <= NAME_ORDERS_SORTED:
        return _keyed("order_id", orders.values("pk"))
    return Q(order_id__in=orders.values("pk"))


# "Breaching soon" is counted from the cases up to this many (then shown as "999+"): beyond it, the number no
# longer changes what an agent does, and counting a whole overdue backlog would cost what the backlog costs.
BREACHING_SHOWN = 999


def queue_counts_for_user(user: AbstractBaseUser | AnonymousUser, *, now: datetime | None = None) -> dict:
    """Open-case counts for every queue and every case type, in one query whose cost does not follow the
    case history: {"mine": n, "unassigned": n, "breaching": n, "open": n, "types": {type: n}}.

    Mine, unassigned, open and the types are sums of the counters (QueueCount, kept by triggers in the
    transaction of every case change): a few rows per store, open status, type and assignee. Breaching
    depends on the clock, so no counter can hold it: those cases are counted from the open queue index
    bounded by due_at (the few due within 2 h or overdue), in the same query (UNION ALL, type NULL), up to
    BREACHING_SHOWN + 1 of them ("breaching_more" says there are more)."""
    now = now or timezone.now()
    store_ids = store_ids_for_user(user)
    counted = (
        QueueCount.objects.filter(store_id__in=store_ids, status__in=OPEN_STATUSES)
        .values_list("type", "assignee_id")
        .annotate(n=Sum("n"))
        .order_by()
    )
    # Counted up to BREACHING_SHOWN + 1 (shown as "999+"): an index range bounded by the count, not the backlog.
    due = Case.objects.filter(_queue_q(user, QUEUE_BREACHING, now), store_id__in=store_ids).values("pk")
    breaching = (
        Case.objects.filter(pk__in=Subquery(due[: BREACHING_SHOWN + 1]))
        .values_list(Value(None, output_field=CharField()), Value(None, output_field=IntegerField()))
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {QUEUE_MINE: 0, QUEUE_UNASSIGNED: 0, QUEUE_BREACHING: 0, "breaching_more": False, "open": 0}
    types = dict.fromkeys(CaseType.values, 0)
    for type, assignee_id, n in counted.union(breaching, all=True):
        n = int(n or 0)
        if type is None:
            counts[QUEUE_BREACHING] = min(n, BREACHING_SHOWN)
            counts["breaching_more"] = n > BREACHING_SHOWN
            continue
        counts["open"] += n
        if type in types:
            types[type] += n
        if assignee_id is None:
            counts[QUEUE_UNASSIGNED] += n
        elif assignee_id == user.pk:
            counts[QUEUE_MINE] += n
    return {**counts, "types": types}


def case_next_for_user(user: AbstractBaseUser | AnonymousUser, case: Case) -> int | None:
    """The id of the open case after this one in the default queue order (due_at, id), if any."""
    queue = _in_queue_order(cases_for_user(user, status="open"), after=_after(case.due_at, case.pk), limit=1)
    return queue.values_list("pk", flat=True).first()


@dataclass(frozen=True)
class CasePage:
    rows: list[Case]
    next_after: int | None


def case_page(cases: QuerySet[Case], *, after: int | None = None, size: int | None = None) -> CasePage:
    """Keyset pagination on (due_at, id): page N costs what page 1 costs, however deep. A CaseQueue with
    several branches is read a branch at a time (_in_queue_order)."""
    size = size or PAGE_SIZE
    keyset = None
    if after is not None:
        base = cases if getattr(cases, "base", None) is None else cases.base
        anchor = base.filter(pk=after).values_list("due_at", flat=True).first()
        if anchor is not None:
            keyset = _after(anchor, after)
    rows = list(_in_queue_order(cases, after=keyset, limit=size + 1)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return CasePage(rows=rows, next_after=rows[-1].pk if has_more else None)


def _after(due_at: datetime, pk: int) -> Q:
    """The rows after (due_at, pk) in queue order. `due_at >= anchor` first: an index walk starts there
    (an OR alone is no index bound, so the walk would start at the top and skip every page before)."""
    return Q(due_at__gte=due_at) & (Q(due_at__gt=due_at) | Q(pk__gt=pk))


def _in_queue_order(cases: QuerySet[Case], *, after: Q | None, limit: int) -> QuerySet[Case]:
    """`cases` past the keyset `after`, in (due_at, id) order, of which the first `limit` are wanted.

    A CaseQueue on PostgreSQL is read in two steps of one query: the ids first, by a walk of the view's index
    for each of its branches (each store of several, each kind of thing a search term may be), `limit` at
    most each; then those cases by their ids, with what a row shows, sorted. The walks read the cases table
    alone: with the row's joins beside them, the planner, whose estimate of the open cases past a deep page's
    keyset is far too low (open cases are the latest due), joined by hashing and sorted all it had found. One
    plan for the OR of the branches would read every match."""
    database = connections[cases.db]
    if getattr(cases, "base", None) is None or not database.features.supports_slicing_ordering_in_compound:
        return cases.filter(after) if after is not None else cases
    base = cases.base.filter(after) if after is not None else cases.base
    walks = [base.filter(branch).values("pk")[:limit] for branch in cases.branches or [Q()]]
    ids = walks[0].union(*walks[1:], all=True) if len(walks) > 1 else walks[0]
    return Case.objects.filter(_keyed("pk", ids)).select_related(*QUEUE_RELATED).order_by("due_at", "id")


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
