from django.contrib import admin

from cases.models import CarrierPolicy, Case, CaseEvent, StorePolicy
from portal.admin import StoreScopedAdmin


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
class CaseEventAdmin(admin.ModelAdmin):
    list_display = ["case", "kind", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["case", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
    ]


@admin.register(CarrierPolicy)
class CarrierPolicyAdmin(StoreScopedAdmin):
    list_display = ["store", "carrier", "pickup_hours", "stalled_hours", "no_update_hours"]
    list_filter = ["store"]
    list_select_related = ["store"]
