from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cases.choices import OPEN_STATUSES, CaseEventKind, CaseStatus, CaseType, FaultParty, Priority, Resolution
from portal.models import Store
from tracking.models import Order, Shipment

OPEN_CASE = Q(status__in=OPEN_STATUSES)


class Case(models.Model):
    """One problem with one order or shipment, worked to a resolution. Its history is its CaseEvents."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="cases")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    type = models.CharField(_("type"), max_length=30, choices=CaseType.choices)
    status = models.CharField(_("status"), max_length=20, choices=CaseStatus.choices, default=CaseStatus.NEW)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        help_text=_("The batch incident this case belongs to."),
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
        ]
        indexes = [
            models.Index(fields=["store", "status", "due_at", "id"], name="case_queue_idx"),
            models.Index(fields=["assignee", "status"], name="case_assignee_idx"),
        ]
        ordering = ["due_at", "id"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_type_display()}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.sla_paused_at is None and self.due_at < timezone.now()


class CaseEvent(models.Model):
    """The case's timeline and audit trail: who did what, when, with what data. Append-only."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
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

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def status_change(self) -> tuple[str, str] | None:
        """(from, to) as display labels, for a status change entry."""
        if self.kind != CaseEventKind.STATUS_CHANGED:
            return None
        labels = dict(CaseStatus.choices)
        old, new = self.data.get("from", ""), self.data.get("to", "")
        return str(labels.get(old, old)), str(labels.get(new, new))
