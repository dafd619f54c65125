from django.contrib import admin
from django.db.models import Q

from cases.models import (
    BuyerMessage,
    CarrierPolicy,
    Case,
    CaseEvent,
    Claim,
    Compensation,
    MessageTemplate,
    StorefrontEvent,
    StorePolicy,
)
from portal.admin import ReadOnlyAdmin, StoreScopedAdmin


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
        ("Parcels", {"fields": ["pickup_hours", "stalled_hours", "no_update_hours"]}),
        ("Stock", {"fields": ["restock_wait_days", "refund_push_days"]}),
        (
            "Orders and batches",
            {"fields": ["review_orders_per_address", "batch_threshold", "batch_window_hours"]},
        ),
        ("SLA and priority", {"fields": ["first_contact_hours", "resolution_hours", "high_value_amount"]}),
        ("Buyer messages", {"fields": ["proactive_types"]}),
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
class MessageTemplateAdmin(StoreScopedAdmin):
    """Supervisors and admins manage their stores' templates; the global defaults (no store) are shown to
    them read-only and changed only by superusers. clean() refuses unknown placeholders."""

    list_display = ["name", "case_type", "language", "channel", "store", "is_active", "updated_at"]
    list_filter = ["case_type", "language", "channel", "is_active", "store"]
    search_fields = ["name", "subject", "body"]
    list_select_related = ["store"]
    fields = ["store", "case_type", "language", "channel", "name", "subject", "body", "is_active"]

    def get_queryset(self, request):
        queryset = super(StoreScopedAdmin, self).get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(Q(store__in=self._store_ids(request)) | Q(store__isnull=True))

    def has_view_permission(self, request, obj=None):
        if obj is not None and obj.store_id is None:
            return self._allowed(request)
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.store_id is None:
            return request.user.is_superuser
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.store_id is None:
            return request.user.is_superuser
        return self._allowed(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser and "store" in form.base_fields:
            form.base_fields["store"].required = True
            form.base_fields["store"].empty_label = None
        return form


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
