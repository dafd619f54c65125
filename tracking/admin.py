import re

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, F
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.admin import ReadOnlyAdmin
from portal.tasks import wake
from tracking.choices import ProviderName, RegistrationStatus
from tracking.ingest import connection_check, deliveries_requeue, unmatched_match
from tracking.models import (
    SKU,
    WEBHOOK_SECRET_MIN_LENGTH,
    LiveSession,
    LiveSessionAllocation,
    Order,
    OrderLine,
    ScheduledPush,
    Shipment,
    SKUComponent,
    StockLevel,
    TrackingConnection,
    TrackingEvent,
    TrackingRegistration,
    UnmatchedTracking,
    WebhookDelivery,
)
from tracking.providers.kdniao import SENDER_FIELDS
from tracking.registration import registrations_retry, registrations_rewind
from tracking.selectors import carriers_named_elsewhere, registration_counts, scheduled_pushes_pending
from tracking.services import (
    connection_carriers_clean,
    connection_credentials_apply,
    shipments_summary_refresh,
)
from tracking.tasks import REGISTER_TASK, RULES_TASK, STOCK_RULES_TASK, wake_delivery_processing


class SKUComponentInline(admin.TabularInline):
    model = SKUComponent
    fk_name = "combo"
    extra = 0
    autocomplete_fields = ["component"]


class StockLevelInline(admin.StackedInline):
    model = StockLevel
    extra = 0


class StockChangeWakesRules:
    """Stock, allocations and combos feed the oversold and out-of-stock rules: a change made here asks the
    worker to re-evaluate the store-wide rules after commit (by dotted path: tracking never imports cases)."""

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        wake(STOCK_RULES_TASK)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        wake(STOCK_RULES_TASK)


@admin.register(SKU)
class SKUAdmin(StockChangeWakesRules, admin.ModelAdmin):
    list_display = ["code", "name", "store", "unit_price", "is_combo"]
    list_filter = ["store", "is_combo"]
    search_fields = ["code", "name"]
    inlines = [StockLevelInline, SKUComponentInline]


@admin.register(StockLevel)
class StockLevelAdmin(StockChangeWakesRules, admin.ModelAdmin):
    list_display = ["sku", "on_hand", "allocated", "restock_eta", "updated_at"]
    list_filter = ["sku__store"]
    search_fields = ["sku__code", "sku__name"]
    list_select_related = ["sku"]


class LiveSessionAllocationInline(admin.TabularInline):
    model = LiveSessionAllocation
    extra = 0
    autocomplete_fields = ["sku"]


@admin.register(LiveSession)
class LiveSessionAdmin(StockChangeWakesRules, admin.ModelAdmin):
    list_display = ["title", "store", "host", "started_at", "ended_at"]
    list_filter = ["store"]
    search_fields = ["title", "host"]
    inlines = [LiveSessionAllocationInline]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    raw_id_fields = ["sku"]


class ShipmentInline(admin.TabularInline):
    model = Shipment
    extra = 0
    fields = ["carrier", "tracking_number", "status", "substatus", "last_event_at", "delivered_at"]
    readonly_fields = ["status", "substatus", "last_event_at", "delivered_at"]
    show_change_link = True


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "platform_order_id",
        "store",
        "buyer_name",
        "placed_at",
        "ship_by",
        "amount",
        "currency",
        "status",
    ]
    list_filter = ["store", "status", "payment_flagged", "live_session"]
    search_fields = ["platform_order_id", "buyer_name", "buyer_email", "buyer_phone"]
    date_hierarchy = "placed_at"
    list_select_related = ["store"]
    raw_id_fields = ["live_session"]
    inlines = [OrderLineInline, ShipmentInline]


class TrackingEventInline(admin.TabularInline):
    model = TrackingEvent
    extra = 0
    can_delete = False
    fields = ["checkpoint_at", "tag", "subtag", "raw_code", "raw_text", "location", "source"]
    readonly_fields = fields
    ordering = ["checkpoint_at", "id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Shipment)
class ShipmentAdmin(admin.ModelAdmin):
    list_display = [
        "tracking_number",
        "carrier",
        "store",
        "status",
        "substatus",
        "last_event_at",
        "next_check_at",
    ]
    list_filter = ["store", "carrier", "status"]
    search_fields = ["tracking_number", "order__platform_order_id"]
    list_select_related = ["store"]
    raw_id_fields = ["order"]
    readonly_fields = [
        "status",
        "substatus",
        "accepted_at",
        "last_event_at",
        "last_progress_at",
        "delivered_at",
        "carrier_booked",
        "carrier_corrected_at",
        "created_at",
    ]
    inlines = [TrackingEventInline]
    actions = ["rebuild_summaries"]

    @admin.action(description=_("Rebuild the tracking summary from the events"), permissions=["change"])
    def rebuild_summaries(self, request, queryset):
        """Ingestion keeps each summary up to date event by event; this derives it again from all the facts
        (after a repair in the database, say) and has the rules look at the parcels again."""
        with transaction.atomic():
            rebuilt = shipments_summary_refresh(shipment_ids=queryset.values_list("pk", flat=True))
        wake(RULES_TASK)
        self.message_user(
            request,
            ngettext(
                "%(count)d shipment rebuilt from its events.",
                "%(count)d shipments rebuilt from their events.",
                rebuilt,
            )
            % {"count": rebuilt},
            messages.SUCCESS,
        )


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyAdmin):
    """Events are facts: visible, never edited or deleted by hand."""

    list_display = ["shipment", "checkpoint_at", "tag", "subtag", "raw_code", "location", "source"]
    list_filter = ["tag", "source"]
    search_fields = ["shipment__tracking_number", "raw_text"]
    list_select_related = ["shipment"]


class TrackingConnectionForm(forms.ModelForm):
    """Secrets are write-only here: typed to set or replace one, never rendered back (the page shows them
    masked). An empty field keeps what is stored."""

    new_webhook_secret = forms.CharField(
        label=_("New webhook secret"),
        required=False,
        min_length=WEBHOOK_SECRET_MIN_LENGTH,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "The signing secret from the provider's dashboard (17TRACK: the security key; Kdniao: the AppKey; "
            "Kuaidi100: any long random string, sent as the salt with every subscription). "
            "Leave empty to keep the current one."
        ),
    )
    new_api_key = forms.CharField(
        label=_("New API key"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("The key used to pull tracking. Leave empty to keep the current one."),
    )
    business_id = forms.CharField(
        label=_("Kdniao EBusinessID"), required=False, max_length=50, help_text=_("Kdniao only.")
    )
    customer = forms.CharField(
        label=_("Kuaidi100 customer"),
        required=False,
        max_length=64,
        help_text=_("Kuaidi100 only: the customer id that signs real-time queries, with the key."),
    )
    base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text=_("Empty: the provider's public API."),
    )
    requests_per_second = forms.FloatField(
        label=_("Pull requests per second"),
        required=False,
        min_value=0.1,
        max_value=1000,
        help_text=_(
            "Your plan's quota, if it is above the provider's documented default. Empty: the default."
        ),
    )

    subscribe_request_type = forms.ChoiceField(
        label=_("Kdniao subscription"),
        required=False,
        choices=[
            ("", _("8008: in-transit monitor (goes with the 8001 instant query)")),
            ("1008", _("1008: standard track subscription")),
        ],
        help_text=_("Kdniao only: the subscription your Kdniao plan includes."),
    )
    shipper_codes = forms.CharField(
        label=_("Kdniao ShipperCode per carrier"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kdniao only, one per line: our carrier code = Kdniao's ShipperCode (e.g. jtexpress-cn = JTSD), "
            "for carriers Kdniao names differently."
        ),
    )
    company_codes = forms.CharField(
        label=_("Kuaidi100 company code per carrier"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kuaidi100 only, one per line: our carrier code = Kuaidi100's company code (e.g. ane = annengwuliu), "
            "for carriers Kuaidi100 names differently. Its corrections of a parcel's company map back the same way."
        ),
    )
    customer_names = forms.CharField(
        label=_("Kdniao CustomerName per ShipperCode"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kdniao only, one per line: ShipperCode = CustomerName, where a carrier asks for your account "
            "code (JD: your 青龙 code). SF Express and ZTO use the last four digits of the buyer's phone."
        ),
    )

    sender = forms.CharField(
        label=_("Kdniao sender"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Kdniao only, where your plan asks for the sender in subscriptions: the store's return address, "
            "one field = value per line, in Kdniao's names (Name, Mobile, Tel, ProvinceName, CityName, "
            "ExpAreaName, Address, Company, PostCode)."
        ),
    )
    carriers = forms.CharField(
        label=_("Carriers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Only where the store tracks with more than one provider: the carrier codes of the parcels this "
            "connection polls and registers, separated by commas or lines (e.g. zto, yto, sf). Empty: every "
            "carrier no other connection of the store names."
        ),
    )

    # Non-secret credentials set from the fields of the same names (empty: removed).
    SETTINGS = (
        "business_id",
        "customer",
        "requests_per_second",
        "subscribe_request_type",
        "shipper_codes",
        "company_codes",
        "customer_names",
        "sender",
    )

    class Meta:
        model = TrackingConnection
        fields = [
            "store",
            "provider",
            "is_active",
            "pull_enabled",
            "register_parcels",
            "carriers",
            "base_url",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        credentials = self.instance.credentials if isinstance(self.instance.credentials, dict) else {}
        self.fields["business_id"].initial = credentials.get("business_id", "")
        self.fields["customer"].initial = credentials.get("customer", "")
        self.fields["requests_per_second"].initial = credentials.get("requests_per_second")
        self.fields["subscribe_request_type"].initial = credentials.get("subscribe_request_type", "")
        for name in ("shipper_codes", "company_codes", "customer_names", "sender"):
            pairs = credentials.get(name)
            if isinstance(pairs, dict):
                self.fields[name].initial = "\n".join(f"{key} = {value}" for key, value in pairs.items())
        if isinstance(self.instance.carriers, list):
            self.initial["carriers"] = ", ".join(self.instance.carriers)
        if "pull_enabled" in self.fields:
            self.fields["pull_enabled"].help_text = _(
                "Switched off by a permanent provider error (see Health): fix the credentials, then tick it again."
            )

    def clean_shipper_codes(self):
        return _pairs(self.cleaned_data["shipper_codes"]) or ""

    def clean_company_codes(self):
        codes = _pairs(self.cleaned_data["company_codes"])
        bad = [
            f"{ours} = {theirs}"
            for ours, theirs in codes.items()
            if not re.fullmatch(r"[A-Za-z0-9]+", theirs)
        ]
        if bad:
            raise forms.ValidationError(
                _("A Kuaidi100 company code is letters and digits only (like zhongtong): %(lines)s"),
                params={"lines": "; ".join(bad)},
            )
        return {ours.lower(): theirs.lower() for ours, theirs in codes.items()} or ""

    def clean_customer_names(self):
        return _pairs(self.cleaned_data["customer_names"]) or ""

    def clean_sender(self):
        sender = _pairs(self.cleaned_data["sender"])
        unknown = [key for key in sender if key not in SENDER_FIELDS]
        if unknown:
            raise forms.ValidationError(
                _("Not a field of Kdniao's Sender: %(fields)s (expected %(known)s)."),
                params={"fields": ", ".join(unknown), "known": ", ".join(SENDER_FIELDS)},
            )
        return sender or ""

    def clean(self):
        cleaned = super().clean()
        if (
            self.instance.pk is None
            and not cleaned.get("new_webhook_secret")
            and "new_webhook_secret" not in self.errors
        ):
            self.add_error(
                "new_webhook_secret",
                _("A new connection needs the provider's signing secret: without it every push is refused."),
            )
        store = cleaned.get("store") or getattr(self.instance, "store", None)
        if "carriers" in cleaned and store is not None:
            try:
                cleaned["carriers"] = connection_carriers_clean(
                    cleaned["carriers"], store_id=store.pk, exclude=self.instance.pk,
                    active=bool(cleaned.get("is_active")),
                )  # fmt: skip
            except forms.ValidationError as exc:
                self.add_error("carriers", exc)
        return cleaned

    def save(self, commit=True):
        connection = super().save(commit=False)
        data = self.cleaned_data
        connection_credentials_apply(
            connection,
            webhook_secret=data["new_webhook_secret"],
            api_key=data["new_api_key"],
            settings={name: data[name] for name in self.SETTINGS},
        )
        if commit:
            connection.save()
        return connection


def _pairs(text: str) -> dict[str, str]:
    """`key = value` lines into a dict; a line that is not one is a form error naming it."""
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise forms.ValidationError(
                _("Line %(number)d is not “code = value”: %(line)s"),
                params={"number": number, "line": line.strip()},
            )
        pairs[key.strip()] = value.strip()
    return pairs


def _body_text(body: bytes | memoryview) -> str:
    """A stored raw body as text for reading in the admin (the first 20,000 characters)."""
    return bytes(body).decode("utf-8", errors="replace")[:20_000]


@admin.register(TrackingConnection)
class TrackingConnectionAdmin(admin.ModelAdmin):
    """Ingestion health at a glance: counters, the last provider error, and whether polling is on. Secrets
    are set and replaced here but only ever shown masked."""

    form = TrackingConnectionForm
    list_display = [
        "__str__", "is_active", "pull_enabled", "deliveries", "events_new", "events_duplicate",
        "signatures_rejected", "payloads_rejected", "last_push_at", "last_sync_at", "last_error_at",
    ]  # fmt: skip
    list_filter = ["provider", "is_active", "pull_enabled"]
    search_fields = ["store__code", "uuid"]
    readonly_fields = [
        "uuid", "webhook_url", "secret", "api_key", "events_new", "events_duplicate", "signatures_rejected",
        "payloads_rejected", "last_error", "last_error_at", "last_sync_at", "created_at", "registrations",
        "registration_paused_until", "tracks", "last_push_at", "last_registered_at", "scheduled",
    ]  # fmt: skip
    _credentials = [
        "webhook_url", "secret", "new_webhook_secret", "api_key", "new_api_key", "business_id", "customer",
        "requests_per_second",
        "subscribe_request_type", "shipper_codes", "company_codes", "customer_names", "sender",
    ]  # fmt: skip
    _health = [
        "events_new", "events_duplicate", "signatures_rejected", "payloads_rejected", "registrations", "last_error",
        "last_error_at", "registration_paused_until", "last_sync_at", "last_push_at", "last_registered_at",
        "scheduled", "created_at",
    ]  # fmt: skip
    _connection = [
        "store", "provider", "is_active", "pull_enabled", "register_parcels", "carriers", "tracks", "base_url",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": _connection}),
        (_("Credentials"), {"fields": _credentials}),
        (_("Health"), {"fields": _health}),
    ]

    actions = ["check_credentials"]
    CHECK_AT_ONCE = 10

    @admin.action(description=_("Check the credentials with the provider"), permissions=["change"])
    def check_credentials(self, request, queryset):
        """One cheap request per selected connection (at most CHECK_AT_ONCE), each answer a message."""
        connections = list(queryset.select_related("store").order_by("pk")[: self.CHECK_AT_ONCE + 1])
        if len(connections) > self.CHECK_AT_ONCE:
            self.message_user(
                request, _("Select at most %(count)d connections to check at once.") % {"count": self.CHECK_AT_ONCE},
                messages.WARNING,
            )  # fmt: skip
            return
        for connection in connections:
            result = connection_check(connection)
            self.message_user(
                request, f"{connection}: {result.message}", messages.SUCCESS if result.ok else messages.ERROR
            )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("store")
            # Deliveries retention deleted are counted on the connection (tracking.retention).
            .annotate(delivery_count=Count("deliveries") + F("deliveries_pruned"))
        )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if {"carriers", "is_active"} & set(form.changed_data):
            registrations_rewind(store_id=obj.store_id)  # the store's parcels are shared out anew

    def get_readonly_fields(self, request, obj=None):
        # The store and provider name what the webhook URL and the stored deliveries belong to: fixed once made.
        return [*self.readonly_fields, "store", "provider"] if obj is not None else self.readonly_fields

    @admin.display(description=_("deliveries received"), ordering="delivery_count")
    def deliveries(self, obj: TrackingConnection) -> int:
        return obj.delivery_count

    @admin.display(description=_("tracks the parcels of"))
    def tracks(self, obj: TrackingConnection) -> str:
        if obj.pk is None:
            return "—"
        if obj.carriers:
            return ", ".join(obj.carriers)
        named = sorted(carriers_named_elsewhere(obj))
        if not named:
            return _("every carrier")
        return _("every carrier but %(list)s (tracked by the store's other connections)") % {
            "list": ", ".join(named)
        }

    @admin.display(description=_("parcels registered with the provider"))
    def registrations(self, obj: TrackingConnection) -> str:
        if obj.pk is None:
            return "—"
        counts = registration_counts([obj.pk])[obj.pk]
        line = _("%(registered)d registered, %(pending)d waiting, %(refused)d refused") % counts
        if counts[RegistrationStatus.STOPPED]:
            line += _("; %(stopped)d stopped by the provider, to be started again") % counts
        return line

    @admin.display(description=_("scheduled simulator pushes"))
    def scheduled(self, obj: TrackingConnection) -> str:
        """The simulator's checkpoints still to come (the live demo), with a link to them."""
        if obj.pk is None or obj.provider != ProviderName.SIMULATOR:
            return "—"
        count, next_due = scheduled_pushes_pending(obj.pk)
        if not count:
            return _("None waiting")
        url = reverse("admin:tracking_scheduledpush_changelist") + f"?connection__id__exact={obj.pk}"
        line = _("%(count)d waiting, the next due %(when)s") % {
            "count": count,
            "when": date_format(localtime(next_due), "DATETIME_FORMAT"),
        }
        return format_html('<a href="{}">{}</a>', url, line)

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, obj: TrackingConnection) -> str:
        return obj.webhook_url if obj.pk else "—"

    @admin.display(description=_("webhook secret"))
    def secret(self, obj: TrackingConnection) -> str:
        return obj.masked_secret or "—"

    @admin.display(description=_("API key"))
    def api_key(self, obj: TrackingConnection) -> str:
        return obj.masked_api_key or "—"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "connection",
        "kind",
        "numbers",
        "status",
        "attempts",
        "events_new",
        "events_duplicate",
        "received_at",
    ]
    list_filter = ["status", "kind", "connection"]
    search_fields = ["tracking_numbers", "event_id"]
    search_help_text = _(
        "A tracking number finds the raw pushes about that parcel; a provider delivery id, that one."
    )
    list_select_related = ["connection__store"]
    exclude = ["body"]
    readonly_fields = [
        "connection", "event_id", "kind", "tracking_numbers", "content_type", "received_at", "status", "attempts",
        "processed_at", "events_new", "events_duplicate", "error", "body_text",
    ]  # fmt: skip

    @admin.display(description=_("tracking numbers"), ordering="tracking_numbers")
    def numbers(self, obj: WebhookDelivery) -> str:
        numbers = obj.tracking_numbers.split()
        if len(numbers) <= 2:
            return " ".join(numbers) or "—"
        return _("%(first)s and %(count)d more") % {"first": " ".join(numbers[:2]), "count": len(numbers) - 2}

    actions = ["process_again"]

    @admin.action(description=_("Process the failed ones again"), permissions=["change"])
    def process_again(self, request, queryset):
        """After the cause of a failure is fixed: the selected failed deliveries go back to the worker, also
        those that used up their automatic retries."""
        requeued = deliveries_requeue(ids=list(queryset.values_list("pk", flat=True)))
        if not requeued:
            self.message_user(request, _("None of the selected deliveries has failed."), messages.WARNING)
            return
        wake_delivery_processing()
        self.message_user(
            request,
            ngettext(
                "%(count)d delivery queued to be processed again.",
                "%(count)d deliveries queued to be processed again.",
                requeued,
            )
            % {"count": requeued},
            messages.SUCCESS,
        )

    @admin.display(description=_("raw body"))
    def body_text(self, obj: WebhookDelivery) -> str:
        return _body_text(obj.body)

    def has_add_permission(self, request):
        return False


@admin.register(ScheduledPush)
class ScheduledPushAdmin(ReadOnlyAdmin):
    """The simulator's checkpoints still to come (the live demo's carriers). Switch its connection off to
    hold them; they are sent once it is on again."""

    list_display = ["tracking_number", "connection", "due_at"]
    list_filter = ["connection"]
    search_fields = ["tracking_number"]
    list_select_related = ["connection__store"]
    exclude = ["body"]
    readonly_fields = ["connection", "tracking_number", "due_at", "body_text"]

    @admin.display(description=_("raw body"))
    def body_text(self, obj: ScheduledPush) -> str:
        return _body_text(obj.body)


@admin.register(UnmatchedTracking)
class UnmatchedTrackingAdmin(admin.ModelAdmin):
    list_display = [
        "tracking_number",
        "carrier",
        "connection",
        "times_seen",
        "first_seen_at",
        "last_seen_at",
        "matched_at",
    ]
    list_filter = ["connection", "matched_at"]
    search_fields = ["tracking_number"]
    raw_id_fields = ["delivery"]
    actions = ["match_now"]

    # A record of what a provider pushed: made by ingestion, matched by the schedule or the action, never
    # typed in or edited (the kept push holds the number; an edited number would match nothing in it).
    def has_add_permission(self, request):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in UnmatchedTracking._meta.fields]

    @admin.action(description=_("Match against the store's shipments now"), permissions=["change"])
    def match_now(self, request, queryset):
        """What the schedule does every two minutes, for the selected numbers, now."""
        ids = list(queryset.values_list("pk", flat=True))
        result = unmatched_match(ids=ids, limit=len(ids))
        if result.ingest.new:
            wake(RULES_TASK)
        if not result.matched:
            self.message_user(
                request, _("None of them matches a shipment of its store yet."), messages.WARNING
            )
            return
        self.message_user(
            request,
            ngettext(
                "%(count)d tracking number matched, %(new)d new events.",
                "%(count)d tracking numbers matched, %(new)d new events.",
                result.matched,
            )
            % {"count": result.matched, "new": result.ingest.new},
            messages.SUCCESS,
        )


@admin.register(TrackingRegistration)
class TrackingRegistrationAdmin(admin.ModelAdmin):
    """Which parcels each provider tracks and pushes, and the provider's reason for those it refused."""

    list_display = [
        "shipment",
        "connection",
        "status",
        "attempts",
        "next_attempt_at",
        "registered_at",
        "error",
    ]
    list_filter = ["status", "connection"]
    search_fields = ["shipment__tracking_number"]
    list_select_related = ["shipment", "connection__store"]
    actions = ["register_again"]

    @admin.action(description=_("Register again now"), permissions=["change"])
    def register_again(self, request, queryset):
        """After the cause of a refusal is fixed (a carrier code, the account's plan): asked again at the next
        registration round, which is woken, with the refusals forgotten."""
        retried = registrations_retry(ids=list(queryset.values_list("pk", flat=True)))
        if not retried:
            self.message_user(request, _("All of the selected parcels are registered."), messages.WARNING)
            return
        wake(REGISTER_TASK)
        self.message_user(
            request,
            ngettext(
                "%(count)d parcel will be registered again.",
                "%(count)d parcels will be registered again.",
                retried,
            )
            % {"count": retried},
            messages.SUCCESS,
        )

    # Made by the registration step, changed by it and by the action only: the form is read-only, and a row
    # deleted would never be made again (the step seeds each shipment once).
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in TrackingRegistration._meta.fields]
