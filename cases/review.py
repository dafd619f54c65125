"""Order review: orders that look wrong are held from shipping until a person has looked at them.

Three signals, and one `order_review` case per order listing every reason found:
- `same_address`: the store's `review_orders_per_address` or more orders of one live session (cancelled ones
  aside, shipped ones counted) go to one address. Addresses are compared on street, district, city and
  postal code, Unicode-normalized (NFKC), case-insensitive and with whitespace collapsed. An address without
  a street is never matched with another: there is nothing to compare.
- `vague_address`: neither a district nor a street: too vague to deliver.
- `payment_flagged`: the platform or the storefront flagged the payment.

Raising the case puts the order on hold (only from awaiting shipment), in the same transaction
(`cases.services.order_review_raise`). The rule never releases an order by itself, even if the signal goes
away (a sibling order cancelled): a reviewer does, which puts the order back to awaiting shipment and
resolves the case. An order whose review was resolved by a person is not held again for the same reasons; a
new reason holds it again.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from cases.choices import CaseType, Priority, Resolution
from cases.engine import SweepResult
from cases.models import OPEN_CASE, Case
from cases.policy import PolicyBook
from cases.rules import priority_for
from cases.services import case_refresh, order_review_raise
from cases.stock import store_lock
from cases.texts import Text
from portal.models import Store
from tracking.choices import OrderStatus
from tracking.models import Order

UNSHIPPED = (OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD)
SIBLINGS_LISTED = 50  # a reseller's hundred orders to one address do not all need listing on each case

SAME_ADDRESS, VAGUE_ADDRESS, PAYMENT_FLAGGED = "same_address", "vague_address", "payment_flagged"


def address_key(*, street: str, district: str, city: str, postal_code: str) -> str | None:
    """The address as compared for `same_address`; None when there is no street to compare."""
    if not (street or "").strip():
        return None
    parts = (street, district, city, postal_code)
    return "|".join(" ".join(unicodedata.normalize("NFKC", part or "").casefold().split()) for part in parts)


def is_vague(order: Order) -> bool:
    return not order.street.strip() and not order.district.strip()


def order_review_evaluate(
    *, store: Store, order_ids: Collection[int] | None = None, now: datetime | None = None
) -> SweepResult:
    """Hold the store's suspicious unshipped orders for review: the given ones, plus every unshipped order
    sharing an address with them in their live session (a third order to an address holds the first two as
    well); every unshipped order of the store when `order_ids` is None.

    Idempotent: an order gets one open review case; a re-run refreshes its facts (new sibling orders) and
    holds it again only if it was released while the case is still open. Runs in one transaction holding
    the store's row lock, like `stock_evaluate`. Reads take a fixed number of queries however many orders are
    evaluated.
    """
    now = now or timezone.now()
    with transaction.atomic():
        store_lock(store)
        return _evaluate(store, order_ids=order_ids, now=now)


def _evaluate(store: Store, *, order_ids: Collection[int] | None, now: datetime) -> SweepResult:
    thresholds = PolicyBook([store.pk]).for_store(store.pk)
    targets = Order.objects.filter(store=store, status__in=UNSHIPPED)
    if order_ids is not None:
        targets = targets.filter(pk__in=order_ids)

    session_orders = (
        Order.objects.filter(store=store, live_session_id__in=targets.values("live_session_id"))
        .exclude(status=OrderStatus.CANCELLED)
        .order_by("pk")
        .values_list("pk", "live_session_id", "platform_order_id", "status", "street", "district", "city",
                     "postal_code")
    )  # fmt: skip
    groups: dict[tuple[int, str], list[tuple[int, str, str]]] = defaultdict(list)
    for pk, session, platform_id, status, street, district, city, postal_code in session_orders:
        key = address_key(street=street, district=district, city=city, postal_code=postal_code)
        if key is not None:
            groups[(session, key)].append((pk, platform_id, status))
    clusters: dict[int, tuple[int, list[tuple[int, str, str]]]] = {}  # order id -> (session, its cluster)
    for (session, _), members in groups.items():
        if len(members) >= thresholds.review_orders_per_address:
            for pk, _, status in members:
                if status in UNSHIPPED:
                    clusters[pk] = (session, members)

    if order_ids is not None:
        target_ids = set(order_ids)
        clusters = {
            pk: cluster
            for pk, cluster in clusters.items()
            if any(member in target_ids for member, _, _ in cluster[1])
        }
        candidates: QuerySet[Order] = Order.objects.filter(store=store, status__in=UNSHIPPED).filter(
            Q(pk__in=order_ids) | Q(pk__in=list(clusters))
        )
    else:
        candidates = targets
    orders = list(candidates.order_by("pk"))
    result = SweepResult(evaluated=len(orders))
    if not orders:
        return result

    open_cases = {
        case.order_id: case
        for case in Case.objects.filter(
            OPEN_CASE, type=CaseType.ORDER_REVIEW, order__in=candidates.values("pk")
        )
    }
    reviewed: dict[int, set[str]] = defaultdict(set)
    closed = (
        Case.objects.filter(type=CaseType.ORDER_REVIEW, order__in=candidates.values("pk"))
        .exclude(OPEN_CASE)
        .exclude(resolution=Resolution.CONDITION_CLEARED)
        .values_list("order_id", "facts")
    )
    for order_id, facts in closed:
        reviewed[order_id].update(facts.get("reasons", ()))

    for order in orders:
        facts = _facts(order, clusters.get(order.pk))
        if not facts["reasons"]:
            continue  # a held order stays held until a reviewer releases it
        case = open_cases.get(order.pk)
        if case is None and set(facts["reasons"]) <= reviewed.get(order.pk, set()):
            continue  # a reviewer already cleared this order for these reasons
        priority = priority_for(type=CaseType.ORDER_REVIEW, order=order, thresholds=thresholds, now=now)
        if PAYMENT_FLAGGED in facts["reasons"]:
            priority = max(priority, Priority.HIGH)
        summary = _summary(facts)
        if case is not None and case_refresh(
            case=case, priority=priority, facts=facts, summary=summary, now=now,
            listening=thresholds.storefront_listening,
        ):  # fmt: skip
            result.updated += 1
        if case is None or order.status == OrderStatus.AWAITING_SHIPMENT:
            _, created = order_review_raise(
                order=order, priority=priority, summary=summary, facts=facts, now=now, thresholds=thresholds
            )
            if created:
                result.raised += 1
                result.raised_by_type[CaseType.ORDER_REVIEW] = (
                    result.raised_by_type.get(CaseType.ORDER_REVIEW, 0) + 1
                )
    return result


def _facts(order: Order, cluster: tuple[int, list[tuple[int, str, str]]] | None) -> dict[str, Any]:
    reasons: list[str] = []
    facts: dict[str, Any] = {"reasons": reasons}
    if cluster is not None:
        session, members = cluster
        siblings = [(pk, platform_id) for pk, platform_id, _ in members if pk != order.pk]
        reasons.append(SAME_ADDRESS)
        facts.update(
            live_session_id=session,
            orders_to_address=len(members),
            sibling_order_ids=[pk for pk, _ in siblings[:SIBLINGS_LISTED]],
            sibling_platform_order_ids=[platform_id for _, platform_id in siblings[:SIBLINGS_LISTED]],
        )
    if is_vague(order):
        reasons.append(VAGUE_ADDRESS)
    if cluster is not None or is_vague(order):
        facts["address"] = {
            "street": order.street,
            "district": order.district,
            "city": order.city,
            "province": order.province,
            "postal_code": order.postal_code,
        }
    if order.payment_flagged:
        reasons.append(PAYMENT_FLAGGED)
    return facts


def _summary(facts: dict[str, Any]) -> Text:
    labels = {
        SAME_ADDRESS: Text(
            gettext_noop("%(count)s orders to one address in one live session"),
            count=facts.get("orders_to_address"),
        ),
        VAGUE_ADDRESS: Text(gettext_noop("address too vague to deliver (no street, no district)")),
        PAYMENT_FLAGGED: Text(gettext_noop("payment flagged")),
    }
    return Text(
        gettext_noop("Held for review: %(reasons)s."), reasons=[labels[reason] for reason in facts["reasons"]]
    )
