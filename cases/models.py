from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.choices import (
    DEFAULT_PROACTIVE_TYPES,
    LIVE_COMPENSATION,
    OPEN_COMPENSATION,
    OPEN_STATUSES,
    AppealDecision,
    AppealStatus,
    BuyerChoice,
    CaptureSource,
    CaseEventKind,
    CaseStatus,
    CaseType,
    ClaimStatus,
    CompensationKind,
    CompensationOrigin,
    CompensationStatus,
    ComplaintCategory,
    ComplaintChannel,
    CustodyAction,
    EventDeliveryStatus,
    EvidenceKind,
    FaultParty,
    MessageChannel,
    MessageLanguage,
    MessageStatus,
    Priority,
    Resolution,
)
from cases.validators import SYSTEM_FACTS, carrier_policy_errors, policy_errors, template_errors
from portal.choices import Platform
from portal.db import Refuse, any_changed, append_only
from portal.models import Store
from tracking.models import SKU, Order, Shipment, TrackingEvent

OPEN_CASE = Q(status__in=OPEN_STATUSES)
_TYPE_LABELS = dict(CaseType.choices)
_STATUS_LABELS = dict(CaseStatus.choices)
_PRIORITY_LABELS = dict(Priority.choices)


def default_proactive_types() -> list[str]:
    return [str(type) for type in DEFAULT_PROACTIVE_TYPES]


def default_grace_days() -> dict[str, int]:
    # seed 001: a parcel a few days late is not yet a refund; customs are slower still
    return {"stalled_in_transit": 3, "no_update": 3, "customs_hold": 7}


class Case(models.Model):
    """One problem with one order or shipment, worked to a resolution. Its history is its CaseEvents."""

    # No index of its own: every queue index leads with it (0015_queue_indexes).
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="cases", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    type = models.CharField(_("type"), max_length=30, choices=CaseType.choices)
    status = models.CharField(_("status"), max_length=20, choices=CaseStatus.choices, default=CaseStatus.NEW)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    # No index of its own: case_assignee_due_idx leads with it.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_cases",
        db_index=False,
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        help_text=_("The batch incident this case belongs to."),
    )
    sku = models.ForeignKey(
        SKU,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="batch_cases",
        help_text=_("For a batch incident: the SKU whose batch is affected."),
    )
    lot = models.CharField(_("batch / lot"), max_length=64, blank=True)
    trigger_events = models.ManyToManyField(
        TrackingEvent, blank=True, related_name="triggered_cases", verbose_name=_("triggering events")
    )
    needs_attention = models.BooleanField(
        _("needs attention"),
        default=False,
        help_text=_("The condition cleared while an agent was working the case: the agent decides."),
    )
    summary = models.CharField(_("summary"), max_length=255, blank=True)
    facts = models.JSONField(
        _("facts"), default=dict, blank=True, help_text=_("What the rule saw when it fired.")
    )
    opened_at = models.DateTimeField(_("opened"))
    first_contact_due_at = models.DateTimeField(_("first contact due"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    due_at = models.DateTimeField(
        _("SLA due"),
        help_text=_("The next SLA deadline: first contact until the buyer is contacted, then resolution."),
    )
    sla_paused_at = models.DateTimeField(_("SLA paused since"), null=True, blank=True)
    first_contact_at = models.DateTimeField(_("first contact"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolution = models.CharField(_("resolution"), max_length=30, choices=Resolution.choices, blank=True)
    fault_party = models.CharField(
        _("fault party"), max_length=20, choices=FaultParty.choices, default=FaultParty.UNKNOWN
    )
    buyer_choice = models.CharField(
        _("buyer's choice"), max_length=10, choices=BuyerChoice.choices, blank=True, default="", db_default="",
        help_text=_("For a stock problem: what the buyer chose when offered wait, swap or refund."),
    )  # fmt: skip
    buyer_choice_at = models.DateTimeField(_("buyer chose"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            # One open case per problem: the service's idempotency rests on these.
            models.UniqueConstraint(
                fields=["shipment", "type"],
                condition=OPEN_CASE & Q(shipment__isnull=False),
                name="case_one_open_per_shipment_type",
            ),
            models.UniqueConstraint(
                fields=["order", "type"],
                condition=OPEN_CASE & Q(shipment__isnull=True) & Q(order__isnull=False),
                name="case_one_open_per_order_type",
            ),
            models.CheckConstraint(
                condition=Q(order__isnull=False) | Q(type=CaseType.QUALITY_BATCH),
                name="case_has_order_unless_batch",
            ),
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | ~OPEN_CASE, name="case_open_is_not_resolved"
            ),
            models.UniqueConstraint(
                fields=["store", "sku", "lot"],
                condition=OPEN_CASE & Q(type=CaseType.QUALITY_BATCH),
                name="case_one_open_batch_per_sku_lot",
            ),
        ]
        indexes = [
            # A closed status (resolved, closed) in (due_at, id) order. Partial, so that an open view has only
            # ordered indexes to choose from: given (store, status, ...) over the open statuses too, the
            # planner (which takes the open cases past a deep page for a handful: they are the latest due)
            # read them by status and sorted them all. One open status walks case_open_queue_idx.
            models.Index(
                fields=["store", "status", "due_at", "id"], condition=~OPEN_CASE, name="case_closed_queue_idx"
            ),
            # The open queue at scale: pages read it in (due_at, id) order and stop; the queue counts run
            # as an index-only scan over the open cases alone (0004_case_open_queue_idx).
            models.Index(
                fields=["store", "due_at", "id"],
                condition=OPEN_CASE,
                include=["assignee", "type", "sla_paused_at", "status"],
                name="case_open_queue_idx",
            ),
            # The other views of the queue, each read in its (due_at, id) order so that a page reads its
            # rows (cases.selectors.cases_for_user says which view reads which): all statuses; a type, an
            # assignee and the unassigned among the open cases (partial: only open cases weigh on them);
            # an assignee's history (and a user's cases for the PROTECT check on deleting one).
            models.Index(fields=["store", "due_at", "id"], name="case_store_due_idx"),
            models.Index(
                fields=["store", "type", "due_at", "id"], condition=OPEN_CASE, name="case_open_type_idx"
            ),
            models.Index(
                fields=["store", "assignee", "due_at", "id"],
                condition=OPEN_CASE,
                name="case_open_assignee_idx",
            ),
            # Not served by case_open_assignee_idx: PostgreSQL keeps an index's order after `=` on the
            # columns before, not after `IS NULL`.
            models.Index(
                fields=["store", "due_at", "id"],
                condition=OPEN_CASE & Q(assignee__isnull=True),
                name="case_unassigned_queue_idx",
            ),
            models.Index(fields=["assignee", "due_at", "id"], name="case_assignee_due_idx"),
            # The API's changes feed (updated_after), in change order. (Its list in creation order reads the
            # primary key: one more index on (store, id) cost every case insert, measured in the sweeper.)
            models.Index(fields=["store", "updated_at", "id"], name="case_store_updated_idx"),
            # A store-day's cases for the reports' rollups (cases.reporting.rollups).
            models.Index(fields=["store", "opened_at"], name="case_store_opened_idx"),
        ]
        ordering = ["due_at", "id"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_type_display()}"

    # Django's generated get_FOO_display rebuilds a dict of the field's choices on every call; a queue
    # page calls them 150 times. These read module-level maps of the same lazy labels.
    def get_type_display(self) -> str:
        return _TYPE_LABELS.get(self.type, self.type)

    def get_status_display(self) -> str:
        return _STATUS_LABELS.get(self.status, self.status)

    def get_priority_display(self) -> str:
        return _PRIORITY_LABELS.get(self.priority, self.priority)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_overdue_at(timezone.now())

    def is_overdue_at(self, now: datetime) -> bool:
        """Past its SLA at `now`: open, clocks running (not paused on the buyer), due before `now`."""
        return self.is_open and self.sla_paused_at is None and self.due_at < now


class QueueCount(models.Model):
    """A share of the open cases a store has in one status, of one type, with one assignee: the queue
    counts are the sums of these rows (cases.selectors.queue_counts_for_user), so reading them costs the
    rows of the user's stores, not the cases. Written only by database triggers on the cases table
    (0014_queue_counters), in the transaction that changes a case: +1 for a case's new values, -1 for its
    old ones, whatever wrote the case (services, bulk_create, QuerySet.update, raw SQL). Appending rows
    instead of updating one counter keeps concurrent writers of the same type from queueing on a hot row;
    `cases.queue_counts.queue_counts_compact` folds each group's rows into one every minute, and
    `manage.py rebuild_queue_counts` recounts them from the cases. `n` is negative in a delta row."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(_("status"), max_length=20, choices=CaseStatus.choices)
    type = models.CharField(_("type"), max_length=30, choices=CaseType.choices)
    # No foreign key constraint: a trigger writes the row, and a departed user's zero rows fold away.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    n = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["store", "status", "type", "assignee"], name="queue_count_group_idx")]

    def __str__(self) -> str:
        return f"{self.store_id} {self.status} {self.type} {self.assignee_id}: {self.n}"


class CaseEvent(models.Model):
    """The case's timeline and audit trail: who did what, when, with what data. Append-only: on PostgreSQL a
    trigger refuses every UPDATE and DELETE of a row, whatever wrote it (the ORM, raw SQL, psql), so a
    timeline cannot be rewritten after the fact; a correction is a new entry. (django-pgtrigger installs it
    through the migrations; SQLite, the embedded default, has no such trigger.) TRUNCATE is a statement, not
    a row change, so flushing a test or bench database still works. A case with a timeline cannot be deleted
    either (PROTECT): the ORM refuses before the database has to."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("kind"), max_length=30, choices=CaseEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="case_events",
        help_text=_("Empty when the system acted (a rule, a schedule)."),
    )
    created_at = models.DateTimeField(_("at"), db_index=True)
    message = models.TextField(_("message"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"], name="case_event_timeline_idx")]
        verbose_name = _("case event")
        triggers = [append_only("case_event_append_only", what="the case timeline")]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def resolution_label(self) -> str:
        """The resolution code of a RESOLVED or REOPENED entry, as its display label."""
        code = self.data.get("resolution", "") if self.kind in (CaseEventKind.RESOLVED,) else ""
        return str(dict(Resolution.choices).get(code, code)) if code else ""

    @property
    def buyer_choice_label(self) -> str:
        """The option a buyer's reply chose (wait, swap, refund), as its display label."""
        code = self.data.get("option", "") if self.kind == CaseEventKind.BUYER_REPLIED else ""
        return str(dict(BuyerChoice.choices).get(code, code)) if code else ""

    @property
    def status_change(self) -> tuple[str, str] | None:
        """(from, to) as display labels, for a status change entry."""
        if self.kind != CaseEventKind.STATUS_CHANGED:
            return None
        labels = dict(CaseStatus.choices)
        old, new = self.data.get("from", ""), self.data.get("to", "")
        return str(labels.get(old, old)), str(labels.get(new, new))


class StorePolicy(models.Model):
    """A store's exception policy: the thresholds every rule reads. Defaults are DESIGN.md's."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="policy")
    pickup_hours = models.PositiveIntegerField(_("pickup deadline (hours after booking)"), default=24)
    stalled_hours = models.PositiveIntegerField(_("stalled after (hours without progress)"), default=12)
    no_update_hours = models.PositiveIntegerField(_("no update after (hours without an event)"), default=48)
    restock_wait_days = models.PositiveIntegerField(_("offer to wait for restock up to (days)"), default=7)
    refund_push_days = models.PositiveIntegerField(_("steer to refund beyond (days)"), default=15)
    batch_threshold = models.PositiveIntegerField(_("batch incident after (complaints)"), default=10)
    batch_window_hours = models.PositiveIntegerField(_("batch window (hours)"), default=24)
    review_orders_per_address = models.PositiveIntegerField(
        _("review when one address orders this often in a live session"), default=3
    )
    first_contact_hours = models.PositiveIntegerField(_("first contact SLA (hours)"), default=24)
    resolution_hours = models.PositiveIntegerField(_("resolution SLA (hours)"), default=72)
    high_value_amount = models.DecimalField(
        _("high-value order from"),
        max_digits=12,
        decimal_places=2,
        default=200,
        help_text=_("Orders at or above this amount (store currency) get a higher priority."),
    )
    agent_case_limit = models.DecimalField(
        _("an agent approves per case up to"), max_digits=12, decimal_places=2, default=Decimal("50"),
        help_text=_("Store currency. Above it, or above the daily limit, a supervisor approves."),
    )  # fmt: skip
    agent_daily_limit = models.DecimalField(
        _("an agent approves per day up to"), max_digits=12, decimal_places=2, default=Decimal("500")
    )
    coupons_per_case = models.PositiveSmallIntegerField(_("coupons per case at most"), default=1)
    refund_coupon_amount = models.DecimalField(
        _("coupon offered with a refund"), max_digits=12, decimal_places=2, default=Decimal("5"),
        help_text=_("Oversold playbook, option C: a full refund plus a coupon of this amount."),
    )  # fmt: skip
    small_damage_coupon = models.DecimalField(
        _("small-damage coupon"), max_digits=12, decimal_places=2, default=Decimal("10"),
        help_text=_("Sent automatically, without asking for a return, once per order."),
    )  # fmt: skip
    small_damage_order_max = models.DecimalField(
        _("small damage: orders below"), max_digits=12, decimal_places=2, default=Decimal("100"),
        help_text=_("A damaged order under this amount gets the coupon automatically; above it an agent decides."),
    )  # fmt: skip
    claim_days = models.PositiveIntegerField(
        _("carrier claim deadline (days after the case opened)"), default=30
    )
    grace_days = models.JSONField(
        _("grace period before a refund is offered (days, per case type)"),
        default=default_grace_days,
        blank=True,
        help_text=_("Logistics delays: the refund offer waits until the parcel is this many days late."),
    )
    history_grace_minutes = models.PositiveIntegerField(
        _("wait for a late parcel's history (minutes)"),
        default=30,
        help_text=_(
            "A parcel that reaches us with its deadlines already past (an import, a late API call) is not "
            "judged until its first tracking event arrives or this long has passed. 0: judge at once."
        ),
    )
    no_contact_after_days = models.PositiveIntegerField(
        _("no proactive message for orders older than (days)"),
        default=7,
        help_text=_(
            "A parcel we learn of when its order is already older than this (an imported history) gets "
            "cases, but its buyer is not messaged automatically."
        ),
    )
    proactive_types = models.JSONField(
        _("proactive message case types"),
        default=default_proactive_types,
        blank=True,
        help_text=_(
            "Case types whose buyer gets the matching template automatically when a rule raises one."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    pickup_hours__gt=0,
                    stalled_hours__gt=0,
                    no_update_hours__gt=0,
                    restock_wait_days__gt=0,
                    refund_push_days__gt=0,
                    batch_threshold__gt=1,
                    batch_window_hours__gt=0,
                    review_orders_per_address__gt=1,
                    first_contact_hours__gt=0,
                    resolution_hours__gt=0,
                    high_value_amount__gt=0,
                ),
                name="policy_thresholds_positive",
            ),
            models.CheckConstraint(
                condition=Q(restock_wait_days__lte=models.F("refund_push_days")),
                name="policy_wait_before_refund",
            ),
            models.CheckConstraint(
                condition=Q(
                    agent_case_limit__gte=0,
                    agent_daily_limit__gte=0,
                    refund_coupon_amount__gte=0,
                    small_damage_coupon__gte=0,
                    small_damage_order_max__gte=0,
                    claim_days__gt=0,
                ),
                name="policy_money_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(first_contact_hours__lte=models.F("resolution_hours")),
                name="policy_contact_before_resolution",
            ),
        ]
        verbose_name = _("exception policy")
        verbose_name_plural = _("exception policies")

    def __str__(self) -> str:
        return f"{self.store.code} policy"

    def clean(self) -> None:
        errors = policy_errors(self)
        if errors:
            raise ValidationError(errors)


class CarrierPolicy(models.Model):
    """Per-carrier overrides of the parcel deadlines; empty fields use the store policy."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="carrier_policies")
    carrier = models.CharField(_("carrier"), max_length=40)
    pickup_hours = models.PositiveIntegerField(_("pickup deadline (hours)"), null=True, blank=True)
    stalled_hours = models.PositiveIntegerField(_("stalled after (hours)"), null=True, blank=True)
    no_update_hours = models.PositiveIntegerField(_("no update after (hours)"), null=True, blank=True)
    claim_days = models.PositiveIntegerField(
        _("claim deadline (days)"), null=True, blank=True, help_text=_("Empty: the store's.")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "carrier"], name="carrier_policy_once"),
            models.CheckConstraint(
                condition=(Q(pickup_hours__isnull=True) | Q(pickup_hours__gt=0))
                & (Q(stalled_hours__isnull=True) | Q(stalled_hours__gt=0))
                & (Q(no_update_hours__isnull=True) | Q(no_update_hours__gt=0)),
                name="carrier_policy_positive",
            ),
        ]
        verbose_name = _("carrier override")

    def __str__(self) -> str:
        return f"{self.store.code} / {self.carrier}"

    def clean(self) -> None:
        errors = carrier_policy_errors(self)
        if errors:
            raise ValidationError(errors)


class MessageTemplate(models.Model):
    """A buyer message for one case type, language and channel. A store's own templates come before the
    global defaults (store empty), which only superusers edit. The body names `{placeholders}` from
    cases.validators.PLACEHOLDERS; an unknown one is refused when the template is saved and when rendered."""

    store = models.ForeignKey(
        Store,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="message_templates",
        help_text=_("Empty for a global default every store can use."),
    )
    case_type = models.CharField(_("case type"), max_length=30, choices=CaseType.choices)
    language = models.CharField(_("language"), max_length=10, choices=MessageLanguage.choices)
    channel = models.CharField(
        _("channel"), max_length=20, choices=MessageChannel.choices, default=MessageChannel.STOREFRONT
    )
    name = models.CharField(_("name"), max_length=120)
    subject = models.CharField(_("subject"), max_length=200, blank=True, help_text=_("Email only."))
    body = models.TextField(_("body"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "case_type", "language", "channel", "name"],
                condition=Q(store__isnull=False),
                name="message_template_name_once_per_store",
            ),
            models.UniqueConstraint(
                fields=["case_type", "language", "channel", "name"],
                condition=Q(store__isnull=True),
                name="message_template_name_once_global",
            ),
        ]
        indexes = [
            models.Index(fields=["case_type", "language", "channel"], name="message_template_pick_idx"),
        ]
        ordering = ["case_type", "language", "channel", "name"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_case_type_display()}, {self.language}, {self.channel})"

    def clean(self) -> None:
        errors = template_errors(subject=self.subject, body=self.body or "")
        if errors:
            raise ValidationError(errors)


class BuyerMessage(models.Model):
    """One message to a buyer, as sent: the rendered text is a snapshot, so editing the template later
    changes nothing here. Queued rows are the outbox; `idempotency_key` makes a send happen once."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="messages")
    template = models.ForeignKey(
        MessageTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    channel = models.CharField(_("channel"), max_length=20, choices=MessageChannel.choices)
    language = models.CharField(_("language"), max_length=10)
    recipient = models.CharField(
        _("recipient"), max_length=254, blank=True, help_text=_("Email address or platform buyer id.")
    )
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="buyer_messages",
        help_text=_("Empty when the system sent it (a proactive message)."),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, unique=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=MessageStatus.SENT) | Q(sent_at__isnull=False),
                name="message_sent_has_time",
            ),
        ]
        indexes = [
            # The outbox claim reads only queued rows, in due order.
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status=MessageStatus.QUEUED),
                name="buyer_message_outbox_idx",
            ),
        ]
        ordering = ["created_at", "id"]
        verbose_name = _("buyer message")
        verbose_name_plural = _("buyer messages")

    def __str__(self) -> str:
        return f"case {self.case_id} {self.channel} {self.status}"


class StorefrontEvent(models.Model):
    """An event for the store's storefront: a case created, updated or resolved, a buyer message to post on
    the platform, an order held or released. The storefront pulls the pending ones (GET /api/v1/events) and
    acknowledges each, or the store's webhook endpoints receive them (cases.outbox); either marks it
    delivered. `payload` is the event's data as sent."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="storefront_events")
    kind = models.CharField(_("type"), max_length=40)
    case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="storefront_events"
    )
    payload = models.JSONField(_("payload"), default=dict)
    dedupe_key = models.CharField(_("dedupe key"), max_length=100, unique=True)
    created_at = models.DateTimeField(_("created"))
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed"), null=True, blank=True)
    failure_reason = models.TextField(_("why it failed"), blank=True)
    # Empty until the worker has handed the event to the store's webhook endpoints (EventDelivery rows).
    dispatched_at = models.DateTimeField(_("handed to webhooks"), null=True, blank=True)

    class Meta:
        indexes = [
            # The pull API's list: a store's pending events in id order.
            models.Index(
                fields=["store", "id"],
                condition=Q(delivered_at__isnull=True, failed_at__isnull=True),
                name="storefront_event_pending_idx",
            ),
            models.Index(
                fields=["id"], condition=Q(dispatched_at__isnull=True), name="storefront_event_undisp_idx"
            ),
            models.Index(fields=["created_at"], name="storefront_event_created_idx"),
        ]
        ordering = ["created_at", "id"]
        verbose_name = _("storefront event")
        verbose_name_plural = _("storefront events")

    def __str__(self) -> str:
        return f"{self.store_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class WebhookEndpoint(models.Model):
    """A URL of the store's that receives its storefront events as signed POSTs (`Afterdesk-Signature`)."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(_("URL"), max_length=500)
    description = models.CharField(_("description"), max_length=200, blank=True)
    secret = models.CharField(_("signing secret"), max_length=100)
    event_types = models.JSONField(
        _("event types"), default=list, blank=True, help_text=_("Empty: every event type.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.url

    def wants(self, kind: str) -> bool:
        return not self.event_types or kind in self.event_types

    @property
    def masked_secret(self) -> str:
        return f"{self.secret[:10]}{'•' * 8}"


class EventDelivery(models.Model):
    """One event for one endpoint: sent until it answers 2xx, with backoff, for 24 h; then failed."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(StorefrontEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        _("status"), max_length=10, choices=EventDeliveryStatus.choices, default=EventDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    retry_until = models.DateTimeField(_("retried until"))
    created_at = models.DateTimeField(_("created"))
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last response status"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="event_delivery_once_per_endpoint"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(status=EventDeliveryStatus.PENDING),
                name="event_delivery_due_idx",
            ),
            models.Index(fields=["endpoint", "-id"], name="event_delivery_log_idx"),
        ]
        verbose_name = _("event delivery")
        verbose_name_plural = _("event deliveries")

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} {self.status}"


class EventDeliveryAttempt(models.Model):
    """One POST of an event to an endpoint, as it went: the delivery log."""

    delivery = models.ForeignKey(EventDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(_("at"))
    status_code = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"))
    response_excerpt = models.CharField(_("response"), max_length=500, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["delivery", "-at"], name="event_attempt_delivery_idx")]
        verbose_name = _("delivery attempt")

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


# What a compensation promised and who decided it: fixed once it has left `proposed` (see Compensation).
COMPENSATION_TERMS = (
    "store", "case", "order", "kind", "origin", "amount", "currency", "percent", "valid_until", "sku",
    "quantity", "replaces_shipment", "note", "reason", "idempotency_key", "proposed_by", "proposed_at",
    "approved_by", "approved_at",
)  # fmt: skip
# The moves cases.compensation makes (the DESIGN's proposed -> approved -> executing -> executed | failed, or
# rejected / cancelled); the settled states, executed, failed, rejected and cancelled, have none out.
COMPENSATION_MOVES = [
    (CompensationStatus.PROPOSED, CompensationStatus.APPROVED),
    (CompensationStatus.PROPOSED, CompensationStatus.REJECTED),
    (CompensationStatus.PROPOSED, CompensationStatus.CANCELLED),
    (CompensationStatus.APPROVED, CompensationStatus.EXECUTING),
    (CompensationStatus.APPROVED, CompensationStatus.EXECUTED),
    (CompensationStatus.APPROVED, CompensationStatus.FAILED),
    (CompensationStatus.APPROVED, CompensationStatus.CANCELLED),
    (CompensationStatus.EXECUTING, CompensationStatus.EXECUTED),
    (CompensationStatus.EXECUTING, CompensationStatus.FAILED),
]
SETTLED_COMPENSATION = tuple(s for s in CompensationStatus.values if s not in OPEN_COMPENSATION)


class Compensation(models.Model):
    """One thing given to a buyer for a case: a coupon, a refund, a reship, a swap, a gift, a wait bonus.
    The ledger: rows are never deleted, and amounts never change once approved. Every state change writes a
    timeline entry on the case (cases.compensation). The invariants that protect the seller's money hold
    in the database: the constraints below, and the sums checked under the order's row lock.

    On PostgreSQL the ledger's rules are triggers too, so no code path, raw SQL included, can bend them:
    a row is never deleted; once it has left `proposed` its terms (COMPENSATION_TERMS: what, how much, for
    which case, proposed and approved by whom, when) never change; its status moves only as
    COMPENSATION_MOVES allows; and a settled row (executed, failed, rejected, cancelled) never changes at
    all. What does change is the status with its bookkeeping (approved_by/at on approval, decided_by and
    the reason on a rejection or cancellation, executed_at, platform_reference and the reship's shipment,
    or the failure reason, on the result). django-pgtrigger installs the triggers through the migrations;
    SQLite, the embedded default, has none, and there cases.compensation is the only guard."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="compensations")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="compensations")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="compensations")
    kind = models.CharField(_("kind"), max_length=20, choices=CompensationKind.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=CompensationStatus.choices, default=CompensationStatus.PROPOSED
    )
    origin = models.CharField(
        _("origin"), max_length=20, choices=CompensationOrigin.choices, default=CompensationOrigin.AGENT
    )
    amount = models.DecimalField(
        _("amount"), max_digits=12, decimal_places=2, default=Decimal("0"),
        help_text=_("What it costs the seller, in the order's currency (a refund's amount, a coupon's value)."),
    )  # fmt: skip
    currency = models.CharField(_("currency"), max_length=3)
    percent = models.DecimalField(
        _("percent off"), max_digits=5, decimal_places=2, null=True, blank=True,
        help_text=_("A percent coupon; its amount is then the cap."),
    )  # fmt: skip
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    sku = models.ForeignKey(
        SKU, on_delete=models.PROTECT, null=True, blank=True, related_name="compensations",
        help_text=_("Swap to, gift or bonus item."),
    )  # fmt: skip
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    replaces_shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="replacements"
    )
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="reship_of",
        help_text=_("The reship's new parcel, once sent."),
    )  # fmt: skip
    note = models.TextField(_("note"), blank=True)
    reason = models.TextField(_("reason"), blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    proposed_at = models.DateTimeField(_("proposed"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("Who rejected or cancelled it."),
    )  # fmt: skip
    decision_reason = models.TextField(_("why rejected or cancelled"), blank=True)
    executed_at = models.DateTimeField(_("executed"), null=True, blank=True)
    platform_reference = models.CharField(_("platform reference"), max_length=100, blank=True)
    failure_reason = models.TextField(_("why it failed"), blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "idempotency_key"], name="compensation_idempotent"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="compensation_amount_not_negative"),
            models.CheckConstraint(
                condition=~Q(kind__in=["partial_refund", "full_refund"]) | Q(amount__gt=0),
                name="compensation_refund_has_amount",
            ),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | Q(percent__gt=0, percent__lte=100),
                name="compensation_percent_range",
            ),
            # At most one full refund of an order that counts (a failed or rejected one paid nothing).
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind="full_refund", status__in=LIVE_COMPENSATION),
                name="compensation_one_full_refund_per_order",
            ),
            # At most one reship under way per replaced parcel.
            models.UniqueConstraint(
                fields=["replaces_shipment"],
                condition=Q(kind="reship", status__in=OPEN_COMPENSATION),
                name="compensation_one_open_reship_per_parcel",
            ),
            # The automatic small-damage coupon: once per order, whoever fires it.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(origin="auto_small_damage"),
                name="compensation_one_auto_coupon_per_order",
            ),
            models.CheckConstraint(
                condition=~Q(status="executed") | Q(executed_at__isnull=False),
                name="compensation_executed_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "executing", "executed"]) | Q(approved_at__isnull=False),
                name="compensation_approved_has_time",
            ),
        ]
        indexes = [
            # The approval queue: proposals waiting, oldest first.
            models.Index(
                fields=["store", "proposed_at"],
                condition=Q(status="proposed"),
                name="compensation_pending_idx",
            ),
            models.Index(fields=["store", "proposed_at"], name="compensation_ledger_idx"),
            models.Index(fields=["store", "updated_at"], name="compensation_changed_idx"),  # the reports
        ]
        ordering = ["proposed_at", "id"]
        verbose_name = _("compensation")
        verbose_name_plural = _("compensations")
        triggers = [
            Refuse(
                name="compensation_never_deleted",
                operation=pgtrigger.Delete,
                why="the compensation ledger is never deleted from",
            ),
            Refuse(
                name="compensation_terms_fixed",
                operation=pgtrigger.Update,
                condition=~pgtrigger.Q(old__status=CompensationStatus.PROPOSED)
                & any_changed(*COMPENSATION_TERMS),
                why="a compensation past proposed keeps its terms",
            ),
            pgtrigger.FSM(name="compensation_status_moves", field="status", transitions=COMPENSATION_MOVES),
            Refuse(
                name="compensation_settled_final",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__status__in=SETTLED_COMPENSATION),
                why="a settled compensation never changes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_COMPENSATION


class Claim(models.Model):
    """A claim against the carrier for a carrier-fault case: what it cost (compensation and reship), what
    the carrier paid back, and the carrier's deadline."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="claims")
    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="claim")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="claims")
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="claims"
    )
    carrier = models.CharField(_("carrier"), max_length=40)
    status = models.CharField(
        _("status"), max_length=12, choices=ClaimStatus.choices, default=ClaimStatus.DRAFT
    )
    amount_claimed = models.DecimalField(_("amount claimed"), max_digits=12, decimal_places=2)
    amount_recovered = models.DecimalField(
        _("amount recovered"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    currency = models.CharField(_("currency"), max_length=3)
    deadline = models.DateField(_("carrier's deadline"))
    reference = models.CharField(_("carrier's reference"), max_length=100, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"))
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_claimed__gt=0), name="claim_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_recovered__gte=0) & Q(amount_recovered__lte=models.F("amount_claimed")),
                name="claim_recovered_within_claimed",
            ),
        ]
        indexes = [
            models.Index(fields=["store", "status", "deadline"], name="claim_queue_idx"),
            models.Index(fields=["store", "updated_at"], name="claim_changed_idx"),  # the reports
        ]
        ordering = ["deadline", "id"]
        verbose_name = _("carrier claim")
        verbose_name_plural = _("carrier claims")

    def __str__(self) -> str:
        return f"{self.carrier} {self.amount_claimed} {self.currency} ({self.get_status_display()})"


def _evidence_path(instance, filename: str) -> str:  # never called: files are saved by cases.evidence
    return filename


class Evidence(models.Model):
    """A file that proves something about a case, as uploaded: immutable, hashed, its capture time and where
    that time came from. Withdrawn only by a tombstone; the bytes stay for the retention period."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="evidence")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(_("kind"), max_length=30, choices=EvidenceKind.choices)
    file = models.FileField(_("file"), max_length=300, upload_to=_evidence_path)
    thumbnail = models.FileField(_("thumbnail"), max_length=300, blank=True, upload_to=_evidence_path)
    original_name = models.CharField(_("file name"), max_length=200)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("type"), max_length=100)
    captured_at = models.DateTimeField(_("captured"))
    capture_source = models.CharField(_("capture time from"), max_length=10, choices=CaptureSource.choices)
    description = models.TextField(_("description"), blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    uploaded_via = models.CharField(_("uploaded with API key"), max_length=100, blank=True)
    uploaded_at = models.DateTimeField(_("uploaded"))
    tombstoned_at = models.DateTimeField(_("withdrawn"), null=True, blank=True)
    tombstoned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    tombstone_reason = models.TextField(_("why withdrawn"), blank=True)
    # A withdrawn file's bytes are deleted once EVIDENCE_WITHDRAWN_RETENTION_DAYS have passed; the row, its
    # hash and its custody log stay.
    bytes_deleted_at = models.DateTimeField(_("bytes deleted"), null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="evidence_not_empty"),
            models.CheckConstraint(
                condition=Q(tombstoned_at__isnull=True) | ~Q(tombstone_reason=""),
                name="evidence_tombstone_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["case", "uploaded_at"], name="evidence_case_idx")]
        ordering = ["uploaded_at", "id"]
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"

    TOMBSTONE_FIELDS = frozenset({"tombstoned_at", "tombstoned_by", "tombstone_reason", "bytes_deleted_at"})

    def save(self, *args, **kwargs):
        """Written once. Afterwards only the tombstone may be set: the bytes, their hash and their capture
        time are what was uploaded, for good."""
        if not self._state.adding:
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self.TOMBSTONE_FIELDS:
                raise ValueError("Evidence is immutable: only a tombstone can be added to it.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Evidence is never deleted: withdraw it with a tombstone and a reason.")

    @property
    def is_live(self) -> bool:
        return self.tombstoned_at is None

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class AppealScenario(models.Model):
    """A platform's appeal for one reason, as data: the evidence it needs and its window. The global ones
    (no store) ship with Afterdesk; a store adds its own in the admin."""

    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, null=True, blank=True, related_name="appeal_scenarios"
    )
    platform = models.CharField(
        _("platform"), max_length=20, choices=[*Platform.choices, ("any", _("Any platform"))]
    )
    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("what the platform asks"), blank=True)
    required = models.JSONField(
        _("required evidence"), default=list, help_text=_("Evidence kinds and system facts.")
    )
    optional = models.JSONField(_("optional evidence"), default=list, blank=True)
    window_days = models.PositiveIntegerField(_("appeal window (days)"), default=7)
    window_from = models.CharField(
        _("window counts from"), max_length=20, choices=[("ship_by", _("the order's ship-by time")),
                                                          ("penalty", _("the penalty's date"))], default="ship_by",
    )  # fmt: skip
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "code"], condition=Q(store__isnull=False), name="appeal_scenario_store_code"
            ),
            models.UniqueConstraint(
                fields=["code"], condition=Q(store__isnull=True), name="appeal_scenario_global_code"
            ),
        ]
        ordering = ["platform", "code"]
        verbose_name = _("appeal scenario")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Required and optional are lists of evidence kinds and system facts this version knows, and a
        store's scenario is for the store's platform (or any)."""
        known = set(EvidenceKind.values) | set(SYSTEM_FACTS)
        errors = {}
        for field in ("required", "optional"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                errors[field] = _('A list of codes, such as ["booking_confirmation", "booking_time"].')
            elif unknown := [item for item in value if item not in known]:
                errors[field] = _("Unknown: %(codes)s. Known: %(known)s.") % {
                    "codes": ", ".join(unknown), "known": ", ".join(sorted(known))}  # fmt: skip
        if isinstance(self.required, list) and not self.required and "required" not in errors:
            errors["required"] = _("Name at least one required item: an appeal needs proof.")
        if self.store_id and self.platform not in (self.store.platform, "any"):
            errors["platform"] = _("The store sells on %(platform)s.") % {
                "platform": self.store.get_platform_display()
            }
        if errors:
            raise ValidationError(errors)


class Appeal(models.Model):
    """An appeal to the platform covering one case or many (one carrier no-show, 300 late orders)."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="appeals")
    scenario = models.ForeignKey(AppealScenario, on_delete=models.PROTECT, related_name="appeals")
    cases = models.ManyToManyField(Case, related_name="appeals")
    status = models.CharField(
        _("status"), max_length=12, choices=AppealStatus.choices, default=AppealStatus.DRAFT
    )
    penalty_date = models.DateField(_("penalty date"), null=True, blank=True)
    deadline = models.DateTimeField(_("platform's deadline"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"))
    exported_at = models.DateTimeField(_("last exported"), null=True, blank=True)
    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override_reason = models.TextField(_("exported incomplete because"), blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    decision = models.CharField(_("decision"), max_length=10, choices=AppealDecision.choices, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    penalty_avoided = models.DecimalField(
        _("penalty avoided"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["store", "status", "deadline"], name="appeal_queue_idx"),
            models.Index(fields=["store", "updated_at"], name="appeal_changed_idx"),  # the reports
        ]
        ordering = ["-created_at", "-id"]
        verbose_name = _("appeal")

    def __str__(self) -> str:
        return f"{self.scenario} ({self.get_status_display()})"


class CustodyEntry(models.Model):
    """Who did what with a piece of evidence or an appeal's packet, when: uploads, views, downloads,
    exports, withdrawals. Append-only: on PostgreSQL a trigger refuses every UPDATE and DELETE of a row,
    however it is sent, so the chain of custody an appeal relies on cannot be edited afterwards
    (django-pgtrigger, installed through the migrations; SQLite, the embedded default, has no such trigger).
    Evidence and appeals are never deleted (PROTECT), so nothing cascades here."""

    evidence = models.ForeignKey(
        Evidence, on_delete=models.PROTECT, null=True, blank=True, related_name="custody"
    )
    appeal = models.ForeignKey(
        Appeal, on_delete=models.PROTECT, null=True, blank=True, related_name="custody"
    )
    action = models.CharField(_("action"), max_length=12, choices=CustodyAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    api_key = models.CharField(_("API key"), max_length=100, blank=True)
    at = models.DateTimeField(_("at"))
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["evidence", "at"], name="custody_evidence_idx"),
            models.Index(fields=["appeal", "at"], name="custody_appeal_idx"),
        ]
        ordering = ["at", "id"]
        verbose_name = _("custody log entry")
        verbose_name_plural = _("custody log")
        triggers = [append_only("custody_entry_append_only", what="the custody log")]

    def __str__(self) -> str:
        return f"{self.action} {self.at:%Y-%m-%d %H:%M}"


class Complaint(models.Model):
    """A buyer's complaint about an order, from wherever it arrived (the storefront's API, an agent's form),
    as the classifier read it and as it was routed: joined to an open case or opening one. Below the
    confidence threshold it waits in triage (`needs_triage`) until an agent names the category; that choice
    (`label`, `labelled_by`) is a new labelled example for the corpus."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="complaints")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="complaints")
    case = models.ForeignKey(
        Case,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="complaints",
        verbose_name=_("case"),
    )
    external_id = models.CharField(
        _("platform message id"), max_length=100, blank=True,
        help_text=_("The platform's message or after-sales request id: a complaint sent again counts once."),
    )  # fmt: skip
    channel = models.CharField(_("channel"), max_length=20, choices=ComplaintChannel.choices)
    text = models.TextField(_("buyer's text"))
    attachments = models.JSONField(_("attachments"), default=list, blank=True)  # the platform's file URLs
    received_at = models.DateTimeField(_("received"))
    language = models.CharField(_("language"), max_length=10, blank=True)
    category = models.CharField(
        _("category (classifier)"), max_length=20, choices=ComplaintCategory.choices, blank=True
    )
    confidence = models.FloatField(_("confidence"), default=0)
    words = models.JSONField(_("deciding words"), default=list, blank=True)
    model_version = models.CharField(_("model"), max_length=16, blank=True)
    label = models.CharField(_("category"), max_length=20, choices=ComplaintCategory.choices, blank=True)
    needs_triage = models.BooleanField(_("needs triage"), default=False)
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    labelled_at = models.DateTimeField(_("labelled"), null=True, blank=True)
    routed = models.CharField(_("routing"), max_length=10, blank=True)  # joined / opened
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("recorded"), default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "external_id"],
                condition=~Q(external_id=""),
                name="complaint_once_per_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["order", "received_at"], name="complaint_order_idx"),
            models.Index(
                fields=["store", "received_at"], name="complaint_triage_idx", condition=Q(needs_triage=True)
            ),
        ]
        verbose_name = _("complaint")
        verbose_name_plural = _("complaints")

    def __str__(self) -> str:
        return f"{self.order_id}: {self.text[:40]}"


# The reporting rollups live with their code (cases/reporting/models.py); imported here so that Django
# registers them with this app.
import cases.reporting.models  # noqa: E402, F401
