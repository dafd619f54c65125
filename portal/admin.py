from django.contrib import admin
from django.db.models import Q

from portal.choices import Role
from portal.models import Membership, Store
from portal.selectors import store_ids_with_roles


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "platform", "region", "currency", "timezone"]
    list_filter = ["platform", "region"]
    search_fields = ["code", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "store", "role", "created_at"]
    list_filter = ["role", "store"]
    search_fields = ["user__username", "store__code"]
    autocomplete_fields = ["user", "store"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """For facts and audit trails (events, timelines, sent messages): visible, never added, edited or
    deleted by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StoreScopedAdmin(admin.ModelAdmin):
    """Admin for a store's own settings, open to that store's supervisors and admins (not only superusers),
    and showing each of them only their stores' rows."""

    store_field = "store"
    roles = (Role.SUPERVISOR, Role.ADMIN)

    def _store_ids(self, request) -> list[int]:
        return store_ids_with_roles(request.user, self.roles)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.store_field}__in": self._store_ids(request)})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == self.store_field and not request.user.is_superuser:
            kwargs["queryset"] = Store.objects.filter(pk__in=self._store_ids(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _allowed(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if not request.user.is_active or not request.user.is_staff:
            return False
        store_ids = self._store_ids(request)
        if obj is None:
            return bool(store_ids)
        return getattr(obj, f"{self.store_field}_id") in store_ids

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)


class StoreOrGlobalAdmin(StoreScopedAdmin):
    """A store's own rows beside the global defaults (no store) that ship with Afterdesk: supervisors and
    admins see both, change their stores' rows, and see the defaults read-only (superusers change them)."""

    def get_queryset(self, request):
        queryset = super(StoreScopedAdmin, self).get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(
            Q(**{f"{self.store_field}__in": self._store_ids(request)})
            | Q(**{f"{self.store_field}__isnull": True})
        )

    def has_view_permission(self, request, obj=None):
        if obj is not None and getattr(obj, f"{self.store_field}_id") is None:
            return self._allowed(request)
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        if obj is not None and getattr(obj, f"{self.store_field}_id") is None:
            return request.user.is_superuser
        return self._allowed(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and getattr(obj, f"{self.store_field}_id") is None:
            return request.user.is_superuser
        return self._allowed(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not request.user.is_superuser and self.store_field in form.base_fields:
            form.base_fields[self.store_field].required = True
            form.base_fields[self.store_field].empty_label = None
        return form
