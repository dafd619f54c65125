"""Per-store exception policy, with per-carrier overrides: what every rule's deadline is made of.

What makes a policy sound (`policy_errors`, `carrier_policy_errors`) is in `cases.validators`, which the
models' `clean()` imports; this module builds on the models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from cases.choices import DEFAULT_PROACTIVE_TYPES
from cases.models import CarrierPolicy, StorePolicy


@dataclass(frozen=True)
class Thresholds:
    pickup: timedelta = timedelta(hours=24)
    stalled: timedelta = timedelta(hours=12)
    no_update: timedelta = timedelta(hours=48)
    restock_wait_days: int = 7
    refund_push_days: int = 15
    batch_threshold: int = 10
    batch_window: timedelta = timedelta(hours=24)
    review_orders_per_address: int = 3
    first_contact: timedelta = timedelta(hours=24)
    resolution: timedelta = timedelta(hours=72)
    high_value_amount: Decimal = Decimal("200")
    # A parcel known only after its deadlines passed waits this long for its first tracking event.
    history_grace: timedelta = timedelta(minutes=30)
    # Parcels learnt of when their order was older than this get no proactive message.
    no_contact_after: timedelta = timedelta(days=7)
    proactive_types: frozenset[str] = frozenset(DEFAULT_PROACTIVE_TYPES)
    # Not a threshold: whether the store's storefront hears case events (cases.outbox.storefront_listening),
    # read with the batch's policies so the rules need not ask per case. None: ask.
    storefront_listening: bool | None = None

    @classmethod
    def from_policy(cls, policy: StorePolicy) -> Thresholds:
        return cls(
            proactive_types=frozenset(policy.proactive_types or ()),
            pickup=timedelta(hours=policy.pickup_hours),
            stalled=timedelta(hours=policy.stalled_hours),
            no_update=timedelta(hours=policy.no_update_hours),
            restock_wait_days=policy.restock_wait_days,
            refund_push_days=policy.refund_push_days,
            batch_threshold=policy.batch_threshold,
            batch_window=timedelta(hours=policy.batch_window_hours),
            review_orders_per_address=policy.review_orders_per_address,
            first_contact=timedelta(hours=policy.first_contact_hours),
            resolution=timedelta(hours=policy.resolution_hours),
            high_value_amount=policy.high_value_amount,
            history_grace=timedelta(minutes=policy.history_grace_minutes),
            no_contact_after=timedelta(days=policy.no_contact_after_days),
        )


DEFAULTS = Thresholds()


class PolicyBook:
    """The thresholds of a set of stores and their carrier overrides, and whether their storefronts hear case
    events, loaded in three queries."""

    def __init__(self, store_ids: Iterable[int]) -> None:
        from cases.outbox import storefront_listening

        ids = set(store_ids)
        listening = storefront_listening(ids)
        self._stores = {
            p.store_id: Thresholds.from_policy(p) for p in StorePolicy.objects.filter(store_id__in=ids)
        }
        self._stores = {
            store_id: replace(
                self._stores.get(store_id, DEFAULTS), storefront_listening=store_id in listening
            )
            for store_id in ids
        }
        self._carriers = {(c.store_id, c.carrier): c for c in CarrierPolicy.objects.filter(store_id__in=ids)}
        self._resolved: dict[tuple[int, str], Thresholds] = {}

    def for_store(self, store_id: int) -> Thresholds:
        return self._stores.get(store_id, DEFAULTS)

    def for_carrier(self, store_id: int, carrier: str) -> Thresholds:
        key = (store_id, carrier)
        if key not in self._resolved:
            base = self.for_store(store_id)
            override = self._carriers.get(key)
            if override is not None:
                base = replace(
                    base,
                    pickup=timedelta(hours=override.pickup_hours) if override.pickup_hours else base.pickup,
                    stalled=timedelta(hours=override.stalled_hours)
                    if override.stalled_hours
                    else base.stalled,
                    no_update=(
                        timedelta(hours=override.no_update_hours)
                        if override.no_update_hours
                        else base.no_update
                    ),
                )
            self._resolved[key] = base
        return self._resolved[key]
