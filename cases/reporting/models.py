"""The rollup tables behind /reports/: one row per store x day x dimensions, rebuilt a store-day at a time.

A day is the store's local calendar day. Every table is rebuilt for a (store, day) as a whole from the raw
tables (`cases.reporting.rollups.store_day_rebuild`), so a rollup row is always exactly what a from-scratch
computation gives; which store-days need it is what `RollupDirty` records (see cases.reporting.rollups).
Reading a report sums these rows; it never scans the raw cases or tracking events.

Durations (first contact, resolution) are kept as histograms over DURATION_BOUNDS (minutes), one column per
bucket, so that a median or p90 over any filter is a SUM away: the estimate interpolates inside the bucket.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.models import Store

# Upper bounds of the duration buckets, in minutes; one more bucket holds everything beyond the last.
DURATION_BOUNDS = (15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080)
BUCKETS = len(DURATION_BOUNDS) + 1


def _histogram(prefix: str) -> dict[str, models.Field]:
    return {f"{prefix}_{i}": models.PositiveIntegerField(default=0) for i in range(BUCKETS)}


class RollupState(models.Model):
    """Per store: up to when its changes have been looked for (the watermark), and when it was refreshed."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="rollup_state")
    watermark = models.DateTimeField(_("changes looked for up to"), null=True, blank=True)
    refreshed_at = models.DateTimeField(_("refreshed"), null=True, blank=True)
    days_rebuilt = models.PositiveBigIntegerField(_("store-days rebuilt"), default=0)

    class Meta:
        verbose_name = _("report state")

    def __str__(self) -> str:
        return f"{self.store_id} @ {self.watermark}"


class RollupScope(models.TextChoices):
    """Which tables of a store-day a change touches (cases.reporting.rollups.PARTS builds each)."""

    PARCELS = "parcels", _("parcels")  # ParcelDay, SkuDay: a parcel shipped that day, or a case about one
    CASES = "cases", _("cases")  # CaseDay, AgentDay: a case opened that day, or compensation proposed
    MONEY = "money", _("money")  # MoneyDay: compensation, claims, appeals
    ORDERS = "orders", _("orders")  # OrderDay: an order placed that day changed (most often its status)
    DISPATCH = "dispatch", _("first scans")  # DispatchDay: a first carrier scan that day


class RollupDirty(models.Model):
    """A store-day whose rollup rows must be rebuilt, every table or one (`scope`). Written by whatever
    notices a change (the refresh's watermark scan, the rule sweeper for first scans); deleted in the
    transaction that rebuilds the day."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField(_("day"))
    scope = models.CharField(_("tables"), max_length=10, choices=RollupScope.choices)
    marked_at = models.DateTimeField(_("marked"))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "day", "scope"], name="rollup_dirty_once")]
        verbose_name = _("report day to rebuild")

    def __str__(self) -> str:
        return f"{self.store_id} {self.day} {self.scope}"


class _Rollup(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField(_("day"))

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.store_id} {self.day}"


class ParcelDay(_Rollup):
    """Parcels by the day they shipped (booked, else first known) and the exceptions raised about them.
    The row with case_type "" counts parcels (and those with any exception); a row per case type counts the
    parcels with a case of that type: a cohort, so a rate never mixes parcels of one day with cases of
    another. A route starts where the store ships from (`Store.ship_from`, read with the report: changing it
    needs no rebuild)."""

    carrier = models.CharField(max_length=40)
    destination = models.CharField(max_length=80, blank=True)
    live_session_id = models.BigIntegerField(null=True, blank=True)
    case_type = models.CharField(max_length=30, blank=True)
    parcels = models.PositiveIntegerField(default=0)
    exceptional = models.PositiveIntegerField(default=0)  # parcels with a case of any type ("" rows only)

    class Meta:
        indexes = [
            models.Index(fields=["store", "day"], name="rollup_parcel_day_idx"),
            # Most reads want the parcel rows alone (no case-type filter): a fifth of the table.
            models.Index(
                fields=["store", "day"], name="rollup_parcel_total_idx", condition=models.Q(case_type="")
            ),
        ]


class SkuDay(_Rollup):
    """As ParcelDay, per SKU on the parcel's order (a parcel counts once for each SKU it carries)."""

    sku_code = models.CharField(max_length=64)
    sku_name = models.CharField(max_length=200, blank=True)
    carrier = models.CharField(max_length=40)
    live_session_id = models.BigIntegerField(null=True, blank=True)
    case_type = models.CharField(max_length=30, blank=True)
    parcels = models.PositiveIntegerField(default=0)
    exceptional = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["store", "day"], name="rollup_sku_day_idx"),
            models.Index(
                fields=["store", "day"], name="rollup_sku_total_idx", condition=models.Q(case_type="")
            ),
        ]


class CaseDay(_Rollup):
    """Cases by the day they were opened: how they were served (a cohort: resolved, contacted, in SLA)."""

    carrier = models.CharField(max_length=40, blank=True)
    case_type = models.CharField(max_length=30)
    live_session_id = models.BigIntegerField(null=True, blank=True)
    destination = models.CharField(max_length=80, blank=True)
    opened = models.PositiveIntegerField(default=0)
    still_open = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    reopened = models.PositiveIntegerField(default=0)
    contacted = models.PositiveIntegerField(default=0)
    proactive = models.PositiveIntegerField(default=0)  # contacted before the buyer wrote
    contact_due = models.PositiveIntegerField(default=0)  # with a first-contact deadline
    contact_in_sla = models.PositiveIntegerField(default=0)
    resolution_due = models.PositiveIntegerField(default=0)
    resolved_in_sla = models.PositiveIntegerField(default=0)
    locals().update(_histogram("contact"))
    locals().update(_histogram("resolution"))

    class Meta:
        indexes = [
            models.Index(fields=["store", "day"], name="rollup_case_day_idx"),
            # The backlog: every day that still has open cases, whatever the period (an index-only scan).
            models.Index(
                fields=["store", "day"], include=["still_open"], name="rollup_case_open_idx",
                condition=models.Q(still_open__gt=0),
            ),
        ]  # fmt: skip


class AgentDay(_Rollup):
    """Per agent (the case's assignee) and day opened: handled, first contact and resolution times; plus the
    compensation they approved, by the day it was proposed."""

    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_constraint=False,
        db_index=False,
    )  # fmt: skip
    case_type = models.CharField(max_length=30, blank=True)
    handled = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    contacted = models.PositiveIntegerField(default=0)
    approved = models.PositiveIntegerField(default=0)
    approved_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    locals().update(_histogram("contact"))
    locals().update(_histogram("resolution"))

    class Meta:
        indexes = [models.Index(fields=["store", "day"], name="rollup_agent_day_idx")]


class MoneyMeasure(models.TextChoices):
    COMPENSATION = "compensation", _("Compensation")  # executed, by kind (`kind`)
    CLAIM_SUBMITTED = "claim_submitted", _("Claims submitted")
    CLAIM_ACCEPTED = "claim_accepted", _("Claims accepted")
    CLAIM_RECOVERED = "claim_recovered", _("Recovered from carriers")
    APPEAL_SUBMITTED = "appeal_submitted", _("Appeals submitted")
    APPEAL_WON = "appeal_won", _("Appeals won")
    APPEAL_PARTIAL = "appeal_partial", _("Appeals partly won")
    APPEAL_LOST = "appeal_lost", _("Appeals lost")
    PENALTY_AVOIDED = "penalty_avoided", _("Penalties avoided")


class MoneyDay(_Rollup):
    """Money by the day it moved: compensation executed (by the day proposed), claims and appeals (by the day
    they were submitted or decided)."""

    measure = models.CharField(max_length=20, choices=MoneyMeasure.choices)
    kind = models.CharField(max_length=20, blank=True)  # compensation kind
    case_type = models.CharField(max_length=30, blank=True)
    carrier = models.CharField(max_length=40, blank=True)
    sku_code = models.CharField(max_length=64, blank=True)
    live_session_id = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    count = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        indexes = [models.Index(fields=["store", "day"], name="rollup_money_day_idx")]


class OrderDay(_Rollup):
    """Orders by the day they were placed."""

    live_session_id = models.BigIntegerField(null=True, blank=True)
    destination = models.CharField(max_length=80, blank=True)
    orders = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))

    class Meta:
        indexes = [models.Index(fields=["store", "day"], name="rollup_order_day_idx")]


class DispatchDay(_Rollup):
    """Parcels by the day of the carrier's first scan (the platforms' "dispatched"), and how many came after
    the order's ship-by time. The platforms' late dispatch / late shipment rates are sums of these rows."""

    carrier = models.CharField(max_length=40)
    dispatched = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0)
    without_ship_by = models.PositiveIntegerField(default=0)
    locals().update(_histogram("dispatch"))  # order placed -> first scan

    class Meta:
        indexes = [models.Index(fields=["store", "day"], name="rollup_dispatch_day_idx")]


ROLLUP_MODELS = (ParcelDay, SkuDay, CaseDay, AgentDay, MoneyDay, OrderDay, DispatchDay)


class HealthMetric(models.TextChoices):
    LATE_DISPATCH = "late_dispatch", _("Late dispatch rate")  # TikTok Shop
    LATE_SHIPMENT = "late_shipment", _("Late shipment rate")  # Shopee
    NON_FULFILMENT = "non_fulfilment", _("Non-fulfilment rate")  # Shopee


class HealthThreshold(models.Model):
    """A platform's threshold for one store-health metric: the level it recommends staying under and the one
    where it penalises. A row without a store is the platform's default; a store's own row overrides it (a
    platform may hold a shop to other levels). Admins edit them; `seed_demo` and a data migration write the
    platforms' published levels."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    platform = models.CharField(_("platform"), max_length=20)
    metric = models.CharField(_("metric"), max_length=20, choices=HealthMetric.choices)
    window_days = models.PositiveSmallIntegerField(_("window (days)"), default=7)
    recommended_percent = models.DecimalField(
        _("recommended at most (%)"), max_digits=5, decimal_places=2, null=True, blank=True
    )
    penalty_percent = models.DecimalField(_("penalised above (%)"), max_digits=5, decimal_places=2)
    source = models.URLField(_("source"), max_length=300, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "platform", "metric"], name="health_threshold_once_per_store",
                condition=models.Q(store__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["platform", "metric"], name="health_threshold_once_per_platform",
                condition=models.Q(store__isnull=True),
            ),
        ]  # fmt: skip
        ordering = ["platform", "metric"]
        verbose_name = _("store health threshold")

    def __str__(self) -> str:
        return f"{self.platform} {self.metric} {self.penalty_percent}%"


class LiveReview(models.Model):
    """The written review of a live session, 48 h after it ended (or on demand): the figures as they stood
    when it was written (`figures`, JSON), the recommendations drawn from them, and who was told."""

    live_session = models.OneToOneField(
        "tracking.LiveSession", on_delete=models.CASCADE, related_name="review"
    )
    figures = models.JSONField(_("figures"), default=dict)
    recommendations = models.JSONField(_("recommendations"), default=list)
    written_at = models.DateTimeField(_("written"))
    written_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )  # empty: the worker's schedule
    notified_at = models.DateTimeField(_("supervisors emailed"), null=True, blank=True)

    class Meta:
        ordering = ["-written_at"]
        verbose_name = _("live session review")

    def __str__(self) -> str:
        return f"review of {self.live_session_id}"
