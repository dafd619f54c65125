from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from cases.models import (
    Appeal,
    AppealScenario,
    BuyerMessage,
    CarrierPolicy,
    Case,
    CaseEvent,
    Claim,
    Compensation,
    CustodyEntry,
    Evidence,
    MessageTemplate,
    StorefrontEvent,
    StorePolicy,
)
from portal.admin import ReadOnlyAdmin, StoreOrGlobalAdmin, StoreScopedAdmin


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "kind", "actor", "message", "data"]
    readonly_fields = fields
    ordering = ["created_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Read-mostly: cases change through the workspace's services so the timeline stays complete."""

    list_display = ["id", "type", "status", "priority", "store", "order", "assignee", "due_at", "opened_at"]
    list_filter = ["store", "type", "status", "priority", "fault_party"]
    search_fields = ["id", "order__platform_order_id", "shipment__tracking_number", "order__buyer_name"]
    list_select_related = ["store", "order", "assignee"]
    raw_id_fields = ["order", "shipment", "parent", "assignee"]
    readonly_fields = [f.name for f in Case._meta.fields]
    inlines = [CaseEventInline]

    def has_add_permission(self, request):
        return False


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdmin):
    list_display = ["case", "kind", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["case", "actor"]


@admin.register(StorePolicy)
class StorePolicyAdmin(StoreScopedAdmin):
    """Supervisors and admins tune their stores' thresholds here; nonsense values are refused by clean()."""

    list_display = ["store", "pickup_hours", "stalled_hours", "no_update_hours", "restock_wait_days",
                    "refund_push_days", "batch_threshold", "updated_at"]  # fmt: skip
    list_select_related = ["store"]
    fieldsets = [
        (None, {"fields": ["store"]}),
        (
            "Parcels",
            {"fields": ["pickup_hours", "stalled_hours", "no_update_hours", "history_grace_minutes"]},
        ),
        ("Stock", {"fields": ["restock_wait_days", "refund_push_days"]}),
        (
            "Orders and batches",
            {"fields": ["review_orders_per_address", "batch_threshold", "batch_window_hours"]},
        ),
        ("SLA and priority", {"fields": ["first_contact_hours", "resolution_hours", "high_value_amount"]}),
        ("Buyer messages", {"fields": ["proactive_types", "no_contact_after_days"]}),
        (
            "Compensation",
            {
                "fields": [
                    "agent_case_limit",
                    "agent_daily_limit",
                    "coupons_per_case",
                    "refund_coupon_amount",
                    "small_damage_coupon",
                    "small_damage_order_max",
                    "grace_days",
                    "claim_days",
                ]
            },
        ),
    ]


@admin.register(CarrierPolicy)
class CarrierPolicyAdmin(StoreScopedAdmin):
    list_display = ["store", "carrier", "pickup_hours", "stalled_hours", "no_update_hours", "claim_days"]
    list_filter = ["store"]
    list_select_related = ["store"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(StoreOrGlobalAdmin):
    """Supervisors and admins manage their stores' templates; the global defaults (no store) are shown to
    them read-only and changed only by superusers. clean() refuses unknown placeholders."""

    list_display = ["name", "case_type", "language", "channel", "store", "is_active", "updated_at"]
    list_filter = ["case_type", "language", "channel", "is_active", "store"]
    search_fields = ["name", "subject", "body"]
    list_select_related = ["store"]
    fields = ["store", "case_type", "language", "channel", "name", "subject", "body", "is_active"]


@admin.register(AppealScenario)
class AppealScenarioAdmin(StoreOrGlobalAdmin):
    """A store's own appeal scenarios (a platform's new appeal reason, a carrier's claim form) beside the ones
    Afterdesk ships. clean() refuses evidence kinds and system facts it does not know."""

    list_display = ["name", "platform", "code", "store", "window_days", "window_from", "is_active"]
    list_filter = ["platform", "is_active", "store"]
    search_fields = ["name", "code", "description"]
    list_select_related = ["store"]
    fields = ["store", "platform", "code", "name", "description", "required", "optional", "window_days",
              "window_from", "is_active"]  # fmt: skip


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    """The files as uploaded, never changed here; opened through the portal's own view (which logs it)."""

    list_display = ["original_name", "kind", "store", "case", "size", "content_type", "capture_source",
                    "uploaded_at", "tombstoned_at"]  # fmt: skip
    list_filter = ["store", "kind", "content_type", "capture_source"]
    search_fields = ["original_name", "sha256"]
    list_select_related = ["store", "case"]
    exclude = ["file", "thumbnail"]  # no public media URL: the portal serves them
    readonly_fields = ["open"]

    @admin.display(description=_("file"))
    def open(self, obj):
        return format_html(
            '<a href="{}">{}</a>', reverse("cases:evidence_file", args=[obj.pk]), obj.original_name
        )


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ["scenario", "store", "status", "deadline", "decision", "penalty_avoided", "created_at"]
    list_filter = ["store", "status", "decision"]
    list_select_related = ["store", "scenario"]
    exclude = ["cases"]


@admin.register(CustodyEntry)
class CustodyEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "evidence", "appeal", "actor", "api_key", "detail"]
    list_filter = ["action"]
    list_select_related = ["evidence", "appeal__scenario", "actor"]


@admin.register(BuyerMessage)
class BuyerMessageAdmin(ReadOnlyAdmin):
    """Read-only: a sent message is proof of contact."""

    list_display = ["id", "case", "channel", "language", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "channel", "language"]
    search_fields = ["case__id", "recipient", "idempotency_key"]
    raw_id_fields = ["case", "template", "created_by"]


@admin.register(StorefrontEvent)
class StorefrontEventAdmin(admin.ModelAdmin):
    list_display = ["id", "store", "kind", "created_at", "delivered_at"]
    list_filter = ["kind", "store"]
    list_select_related = ["store"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Compensation)
class CompensationAdmin(ReadOnlyAdmin):
    """The ledger: read here, written only through the case page, the approval queue and the API."""

    list_display = [
        "id",
        "store",
        "case",
        "kind",
        "status",
        "amount",
        "currency",
        "proposed_by",
        "proposed_at",
    ]
    list_filter = ["store", "kind", "status", "origin"]
    search_fields = ["order__platform_order_id", "platform_reference", "idempotency_key"]
    list_select_related = ["store", "case", "proposed_by"]


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["id", "store", "carrier", "status", "amount_claimed", "amount_recovered", "deadline"]
    list_filter = ["store", "carrier", "status"]
    list_select_related = ["store"]


# --- store health thresholds (cases.reporting.health) ----------------------------------------------------

from django import forms  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402

from cases.reporting.health import Levels  # noqa: E402
from cases.reporting.models import HealthThreshold  # noqa: E402
from portal.choices import Role  # noqa: E402


class HealthThresholdForm(forms.ModelForm):
    source = forms.URLField(label=_("source"), max_length=300, required=False, assume_scheme="https")

    class Meta:
        model = HealthThreshold
        fields = [
            "store",
            "platform",
            "metric",
            "window_days",
            "recommended_percent",
            "penalty_percent",
            "source",
        ]

    def clean(self):
        data = super().clean()
        window, penalty = data.get("window_days"), data.get("penalty_percent")
        if window is not None and penalty is not None:
            try:
                Levels(window, data.get("recommended_percent"), penalty).check()
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
        return data


@admin.register(HealthThreshold)
class HealthThresholdAdmin(StoreOrGlobalAdmin):
    """The platforms' health thresholds (no store: the published default, changed by superusers) and a store's
    own levels, set by its admins (supervisors read them on /reports/health/<store>/thresholds/)."""

    form = HealthThresholdForm
    roles = (Role.ADMIN,)
    list_display = ["platform", "metric", "store", "window_days", "recommended_percent", "penalty_percent",
                    "updated_at"]  # fmt: skip
    list_filter = ["platform", "metric", "store"]
    list_select_related = ["store"]
    fields = [
        "store",
        "platform",
        "metric",
        "window_days",
        "recommended_percent",
        "penalty_percent",
        "source",
    ]

    def save_model(self, request, obj, form, change):
        if obj.store_id is not None:
            obj.platform = obj.store.platform  # a store's level is for its own platform's metric
        super().save_model(request, obj, form, change)
