from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.db import append_only
from portal.models import Store
from tracking.choices import DeliveryStatus, ImportStatus, OrderStatus, ProviderName, RegistrationStatus, Tag


class SKU(models.Model):
    """A sellable item. A combo pack is a SKU whose stock is its components' (see SKUComponent)."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="skus")
    code = models.CharField(_("SKU code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2, default=Decimal("0"))
    is_combo = models.BooleanField(_("combo pack"), default=False)
    components = models.ManyToManyField(
        "self", through="SKUComponent", symmetrical=False, related_name="in_combos", blank=True
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "code"], name="sku_code_unique_per_store")]
        ordering = ["code"]
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class SKUComponent(models.Model):
    combo = models.ForeignKey(SKU, on_delete=models.CASCADE, related_name="component_links")
    component = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="combo_links")
    quantity = models.PositiveIntegerField(_("quantity"), default=1, validators=[MinValueValidator(1)])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["combo", "component"], name="sku_component_unique"),
            models.CheckConstraint(condition=~Q(combo=models.F("component")), name="sku_component_not_self"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="sku_component_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.component_id} in {self.combo_id}"


class StockLevel(models.Model):
    sku = models.OneToOneField(SKU, on_delete=models.CASCADE, related_name="stock")
    on_hand = models.IntegerField(_("on hand"), default=0)
    allocated = models.IntegerField(_("allocated"), default=0)
    # Set aside for swaps agents approved (cases.compensation): not free for new orders either.
    reserved = models.IntegerField(_("reserved for swaps"), default=0, db_default=0)
    restock_eta = models.DateField(_("restock ETA"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(allocated__gte=0), name="stock_allocated_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
        ]
        verbose_name = _("stock level")

    def __str__(self) -> str:
        return f"{self.sku.code}: {self.on_hand} on hand, {self.allocated} allocated"

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated - self.reserved


class LiveSession(models.Model):
    """A livestream: the burst of orders that arrives within minutes, with stock set aside for it."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="live_sessions")
    external_id = models.CharField(
        _("storefront id"), max_length=64, blank=True, default="", db_default="",
        help_text=_("The storefront's id of the live session (the API's key for it); empty when made here."),
    )  # fmt: skip
    title = models.CharField(_("title"), max_length=200)
    host = models.CharField(_("host"), max_length=120)
    started_at = models.DateTimeField(_("started"))
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    skus = models.ManyToManyField(SKU, through="LiveSessionAllocation", related_name="live_sessions")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="live_session_ends_after_start",
            ),
            models.UniqueConstraint(
                fields=["store", "external_id"],
                condition=~Q(external_id=""),
                name="live_session_external_id_unique_per_store",
            ),
        ]
        verbose_name = _("live session")

    def __str__(self) -> str:
        return self.title


class LiveSessionAllocation(models.Model):
    live_session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="allocations")
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, related_name="live_allocations")
    quantity = models.PositiveIntegerField(_("allocated quantity"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["live_session", "sku"], name="live_allocation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of SKU {self.sku_id} for live session {self.live_session_id}"


class Order(models.Model):
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="orders")
    platform_order_id = models.CharField(_("platform order id"), max_length=64)
    buyer_name = models.CharField(_("buyer"), max_length=120)
    buyer_platform_id = models.CharField(_("buyer platform id"), max_length=64, blank=True)
    buyer_email = models.EmailField(_("buyer email"), blank=True)
    buyer_phone = models.CharField(_("buyer phone"), max_length=32, blank=True)
    buyer_language = models.CharField(_("buyer language"), max_length=10, blank=True)
    country = models.CharField(_("country"), max_length=2)
    province = models.CharField(_("province / state"), max_length=80, blank=True)
    city = models.CharField(_("city"), max_length=80, blank=True)
    district = models.CharField(_("district"), max_length=80, blank=True)
    street = models.CharField(_("street address"), max_length=255, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    placed_at = models.DateTimeField(_("placed"))
    ship_by = models.DateTimeField(
        _("ship by"), help_text=_("The platform's dispatch deadline for this order.")
    )
    live_session = models.ForeignKey(
        LiveSession, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.AWAITING_SHIPMENT
    )
    payment_flagged = models.BooleanField(_("payment flagged"), default=False)
    # The Seller Center import that brought the order in (None: the API, the admin or the demo): its parcels
    # are backfilled and summarised together, and old ones are never messaged proactively.
    source_import = models.ForeignKey(
        "OrderImport", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders",
        verbose_name=_("imported by"),
    )  # fmt: skip
    # Set when the order is created or changed through the API; the stock and review rules evaluate due
    # orders and clear it (cases.orders). The row is the durable work: a lost wake-up only delays it.
    rules_due_at = models.DateTimeField(_("rules due"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "platform_order_id"], name="order_id_unique_per_store"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["store", "placed_at"], name="order_store_placed_idx"),
            models.Index(fields=["live_session", "placed_at"], name="order_live_placed_idx"),
            # The queue's search by a buyer's phone, within the user's stores. (By name: a trigram index on
            # PostgreSQL, made in 0021 and not declared here, since SQLite cannot build it.)
            models.Index(
                fields=["store", "buyer_phone"], condition=~Q(buyer_phone=""), name="order_store_phone_idx"
            ),
            # The reports' refresh finds the orders changed since it last looked (cases.reporting.rollups).
            models.Index(fields=["store", "updated_at"], name="order_store_updated_idx"),
            models.Index(
                fields=["store", "rules_due_at"],
                condition=Q(rules_due_at__isnull=False),
                name="order_rules_due_idx",
            ),
            # Store health (cases.reporting.health): a store's orders still to ship, by deadline, for the
            # projection and the save list. Partial, so the shipped history never weighs on it.
            models.Index(
                fields=["store", "ship_by"],
                condition=Q(status__in=[OrderStatus.AWAITING_SHIPMENT, OrderStatus.ON_HOLD]),
                name="order_unshipped_ship_by_idx",
            ),
        ]
        ordering = ["-placed_at"]
        verbose_name = _("order")

    def __str__(self) -> str:
        return self.platform_order_id


class OrderLine(models.Model):
    """One line of an order, with a snapshot of the SKU as sold: later catalogue edits do not rewrite it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey(SKU, on_delete=models.PROTECT, null=True, blank=True, related_name="order_lines")
    sku_code = models.CharField(_("SKU code"), max_length=64)
    sku_name = models.CharField(_("SKU name"), max_length=200)
    lot = models.CharField(_("batch / lot"), max_length=64, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive")
        ]
        verbose_name = _("order line")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku_code}"


class Shipment(models.Model):
    """A parcel. Its status fields are derived from its TrackingEvents and can always be rebuilt from them."""

    # No index of its own: the unique (store, tracking_number, carrier) leads with it.
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="shipments", db_index=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="shipments")
    carrier = models.CharField(_("carrier"), max_length=40)
    # Set when a tracking provider said the parcel travels with another carrier (Kuaidi100's comNew).
    carrier_booked = models.CharField(
        _("carrier as booked"), max_length=40, blank=True, default="", db_default="",
        help_text=_("The carrier the parcel was booked with, kept when a tracking provider corrected it."),
    )  # fmt: skip
    carrier_corrected_at = models.DateTimeField(_("carrier corrected"), null=True, blank=True)
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    booked_at = models.DateTimeField(_("pickup booked"), null=True, blank=True)
    label_created_at = models.DateTimeField(_("label created"), null=True, blank=True)
    accepted_at = models.DateTimeField(
        _("first acceptance scan"),
        null=True,
        blank=True,
        help_text=_("The carrier's first scan: appeal evidence."),
    )
    status = models.CharField(_("status"), max_length=20, choices=Tag.choices, default=Tag.PENDING)
    substatus = models.CharField(_("substatus"), max_length=40, default="Pending_001")
    last_event_at = models.DateTimeField(_("last event"), null=True, blank=True)
    last_progress_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    # New shipments are due at once: the rules must see a booked parcel that never gets a single event.
    next_check_at = models.DateTimeField(_("next rule check"), null=True, blank=True, default=timezone.now)
    next_poll_at = models.DateTimeField(
        _("next tracking poll"),
        null=True,
        blank=True,
        default=timezone.now,
        help_text=_("Empty once the parcel needs no more polling."),
    )
    poll_failures = models.PositiveSmallIntegerField(_("consecutive poll failures"), default=0)
    expected_delivery = models.DateField(_("expected delivery"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        constraints = [
            # In this order it also serves matching a push to the store's parcels by tracking number alone,
            # so no index of tracking_number of its own: every summary refresh rewrites each index of the row.
            models.UniqueConstraint(
                fields=["store", "tracking_number", "carrier"], name="shipment_tracking_unique_per_store"
            ),
        ]
        indexes = [
            # The rule sweeper reads only due rows; the partial index keeps that cost proportional to them.
            models.Index(
                fields=["next_check_at"],
                name="shipment_next_check_idx",
                condition=Q(next_check_at__isnull=False),
            ),
            models.Index(
                fields=["store", "next_poll_at"],
                name="shipment_next_poll_idx",
                condition=Q(next_poll_at__isnull=False),
            ),
            # The reports (cases.reporting.rollups): a store-day's parcels by the day they shipped (booked, else
            # first known), the parcels new since the refresh last looked, and a day's first carrier scans.
            models.Index("store", Coalesce("booked_at", "created_at"), name="shipment_ship_day_idx"),
            models.Index(fields=["store", "created_at"], name="shipment_store_created_idx"),
            models.Index(
                fields=["store", "accepted_at"],
                name="shipment_dispatch_day_idx",
                condition=Q(accepted_at__isnull=False),
            ),
        ]
        verbose_name = _("shipment")

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class TrackingEvent(models.Model):
    """A carrier checkpoint, normalized. A fact: appended once (dedupe key), never edited.

    On PostgreSQL a trigger refuses every UPDATE and DELETE of a row, however it is sent: ingestion only
    inserts (ON CONFLICT DO NOTHING) and derives the shipment's summary from the events, so nothing needs to.
    TRUNCATE (the test runner's flush, the benches) is a statement, not a row change, and still works.
    (django-pgtrigger installs it through the migrations; SQLite, the embedded default, has no such trigger.)
    A shipment with events cannot be deleted either (PROTECT): the ORM refuses before the database has to."""

    # No index of its own: the (shipment, dedupe_key) and (shipment, checkpoint_at) indexes lead with it.
    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="events", db_index=False)
    checkpoint_at = models.DateTimeField(_("checkpoint time"))
    tag = models.CharField(_("tag"), max_length=20, choices=Tag.choices)
    subtag = models.CharField(_("subtag"), max_length=40)
    raw_code = models.CharField(_("carrier code"), max_length=64, blank=True)
    raw_text = models.TextField(_("carrier text"), blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=20)
    dedupe_key = models.CharField(_("dedupe key"), max_length=64)
    received_at = models.DateTimeField(_("received"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shipment", "dedupe_key"], name="tracking_event_dedupe"),
        ]
        indexes = [models.Index(fields=["shipment", "checkpoint_at"], name="tracking_event_timeline_idx")]
        ordering = ["checkpoint_at", "id"]
        verbose_name = _("tracking event")
        triggers = [append_only("tracking_event_append_only", what="the tracking history")]

    def __str__(self) -> str:
        return f"{self.checkpoint_at:%Y-%m-%d %H:%M} {self.subtag}"


class TrackingConnection(models.Model):
    """A store's account at one tracking provider: credentials for pulling, a secret for verifying pushes.

    The UUID in the webhook URL identifies the connection; the secret proves the sender. Counters are
    operational metrics, incremented with F() so concurrent requests never lose a count.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="tracking_connections")
    provider = models.CharField(_("provider"), max_length=20, choices=ProviderName.choices)
    uuid = models.UUIDField(_("webhook id"), default=uuid.uuid4, unique=True, editable=False)
    credentials = models.JSONField(_("credentials"), default=dict, blank=True)
    webhook_secret = models.CharField(_("webhook secret"), max_length=200, blank=True)
    base_url = models.URLField(
        _("API base URL"), blank=True, help_text=_("Empty: the provider's public API.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    pull_enabled = models.BooleanField(_("pull tracking"), default=True)
    carriers = models.JSONField(
        _("carriers"),
        default=list,
        blank=True,
        help_text=_(
            "The carrier codes whose parcels this connection tracks (polls and registers). Empty: every "
            "carrier that no other active connection of the store names."
        ),
    )
    register_parcels = models.BooleanField(
        _("register new parcels"),
        default=True,
        help_text=_(
            "Register every new parcel with the provider at once, so it tracks and pushes its updates. "
            "Off: AfterShip and 17TRACK get a parcel at its first poll; Kdniao, whose subscription is "
            "billed and serves pushes only, gets none."
        ),
    )
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    # Set by the worker as it processes pushes, and by the registration step: a connection that registers
    # parcels but hears nothing back has a webhook that does not reach us (tracking.selectors).
    last_push_at = models.DateTimeField(_("last push received"), null=True, blank=True)
    last_registered_at = models.DateTimeField(_("last parcel registered"), null=True, blank=True)
    # The registration step has seen the store's shipments up to this id (tracking.registration).
    registration_cursor = models.PositiveBigIntegerField(_("registered up to shipment"), default=0)
    registration_paused_until = models.DateTimeField(
        _("registration paused until"),
        null=True,
        blank=True,
        help_text=_(
            "Set by a permanent provider error (see Last error); cleared when the credentials change."
        ),
    )
    signatures_rejected = models.PositiveBigIntegerField(_("signatures rejected"), default=0)
    payloads_rejected = models.PositiveBigIntegerField(_("malformed payloads"), default=0)
    events_new = models.PositiveBigIntegerField(_("events new"), default=0)
    events_duplicate = models.PositiveBigIntegerField(_("events duplicate"), default=0)
    # Deliveries deleted by retention (tracking.retention): counted here so the total received stays right.
    deliveries_pruned = models.PositiveBigIntegerField(_("deliveries deleted by retention"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "provider"], name="tracking_connection_one_per_provider"
            ),
        ]
        verbose_name = _("tracking connection")

    def __str__(self) -> str:
        return f"{self.store.code} / {self.get_provider_display()}"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/tracking/{self.provider}/{self.uuid}/"

    @property
    def webhook_url(self) -> str:
        """The address to give the provider: the portal's public URL (settings.PUBLIC_URL) and the path."""
        return f"{settings.PUBLIC_URL}{self.webhook_path}"

    @property
    def masked_secret(self) -> str:
        return _masked(self.webhook_secret)

    @property
    def masked_api_key(self) -> str:
        key = self.credentials.get("api_key") if isinstance(self.credentials, dict) else None
        return _masked(key if isinstance(key, str) else "")


WEBHOOK_SECRET_MIN_LENGTH = 8


def _masked(secret: str) -> str:
    """Enough of a secret to tell which one is set, never enough to use it."""
    return f"{secret[:4]}{'•' * 8}" if len(secret) > 8 else ("•" * 8 if secret else "")


class WebhookDelivery(models.Model):
    """A push as received, stored before it is acknowledged: the durable unit of ingestion work."""

    connection = models.ForeignKey(TrackingConnection, on_delete=models.PROTECT, related_name="deliveries")
    event_id = models.CharField(_("provider delivery id"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=40, blank=True)
    body = models.BinaryField(_("raw body"))
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    # What the push is about, read when it arrived: what the admin finds a parcel's raw pushes by.
    tracking_numbers = models.CharField(
        _("tracking numbers"), max_length=1000, blank=True, default="", db_default="",
        help_text=_("The tracking numbers the push carries, separated by spaces."),
    )  # fmt: skip
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    retry_at = models.DateTimeField(_("retry after"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    events_new = models.PositiveIntegerField(_("events new"), default=0)
    events_duplicate = models.PositiveIntegerField(_("events duplicate"), default=0)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        constraints = [
            # A provider that redelivers the same event id gets the stored delivery, not a second one.
            models.UniqueConstraint(
                fields=["connection", "event_id"],
                condition=~Q(event_id=""),
                name="webhook_delivery_event_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="webhook_delivery_pending_idx",
                condition=Q(status__in=["received", "failed"]),
            ),
        ]
        ordering = ["-received_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"{self.connection} {self.kind} {self.received_at:%Y-%m-%d %H:%M:%S}"


class ScheduledPush(models.Model):
    """A push the simulator holds until `due_at`: how it plays a carrier that keeps scanning parcels as time
    passes (the live demo). `tracking.scheduled.scheduled_pushes_send` signs each one when due with its
    connection's secret, receives it through the webhook's own path (a stored `WebhookDelivery`) and deletes
    it, in one transaction."""

    connection = models.ForeignKey(
        TrackingConnection, on_delete=models.CASCADE, related_name="scheduled_pushes"
    )
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    due_at = models.DateTimeField(_("due"))
    body = models.BinaryField(_("raw body"))

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="scheduled_push_due_idx")]
        ordering = ["due_at"]
        verbose_name = _("scheduled simulator push")
        verbose_name_plural = _("scheduled simulator pushes")

    def __str__(self) -> str:
        return f"{self.tracking_number} at {self.due_at:%Y-%m-%d %H:%M}"


class UnmatchedTracking(models.Model):
    """A tracking number a provider told us about that matches no shipment yet; kept for later matching."""

    connection = models.ForeignKey(TrackingConnection, on_delete=models.CASCADE, related_name="unmatched")
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    carrier = models.CharField(_("carrier"), max_length=40, blank=True)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.SET_NULL, null=True, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    times_seen = models.PositiveIntegerField(_("times seen"), default=1)
    matched_at = models.DateTimeField(_("matched"), null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "tracking_number"], name="unmatched_tracking_once"),
        ]
        indexes = [
            # The matcher reads the waiting ones, oldest first; matched rows stay as history.
            models.Index(
                fields=["first_seen_at"], name="unmatched_waiting_idx", condition=Q(matched_at__isnull=True)
            ),
        ]
        verbose_name = _("unmatched tracking number")

    def __str__(self) -> str:
        return self.tracking_number


class TrackingRegistration(models.Model):
    """A parcel registered with a connection's provider, which tracks and pushes only registered numbers.

    One row per connection and shipment, made when the registration step first sees the shipment. Due
    rows (`next_attempt_at` passed) are claimed with SKIP LOCKED and leased like polls; a refused number
    is asked again with backoff, then given up (`next_attempt_at` empty).
    """

    connection = models.ForeignKey(TrackingConnection, on_delete=models.CASCADE, related_name="registrations")
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="registrations")
    status = models.CharField(
        _("status"), max_length=20, choices=RegistrationStatus.choices, default=RegistrationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("refusals"), default=0)
    next_attempt_at = models.DateTimeField(
        _("next attempt"), null=True, blank=True, default=timezone.now,
        help_text=_("Empty once registered, or once the provider has refused too often."),
    )  # fmt: skip
    registered_at = models.DateTimeField(_("registered"), null=True, blank=True)
    error = models.TextField(_("provider's reason"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "shipment"], name="tracking_registration_once"),
        ]
        indexes = [
            models.Index(
                fields=["connection", "next_attempt_at"],
                name="tracking_registration_due_idx",
                condition=Q(next_attempt_at__isnull=False),
            ),
        ]
        verbose_name = _("provider registration")
        verbose_name_plural = _("provider registrations")

    def __str__(self) -> str:
        return f"{self.connection} {self.shipment}"


class ProviderQuota(models.Model):
    """The balance of one provider quota (an account's endpoint), shared by every process: see
    tracking.quota. Made on first use; nothing else refers to it."""

    name = models.CharField(_("quota"), max_length=200, primary_key=True)
    tokens = models.FloatField(_("tokens"))
    stamp = models.FloatField(_("updated (Unix time)"))

    class Meta:
        verbose_name = _("provider quota")

    def __str__(self) -> str:
        return self.name


class OrderImport(models.Model):
    """One uploaded Seller Center export and what became of it: checked (preview), confirmed, imported in
    the worker chunk by chunk (`orders_done` is the resume point; each chunk commits with it), summarised.

    The file is kept as uploaded: the preview and the import read the same bytes, and a crashed import reads
    them again from its resume point."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="order_imports")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/", max_length=300)
    # The check's reading of the file (orders planned, rows refused), so the import does not read it again.
    plan = models.FileField(_("checked plan"), upload_to="imports/plans/", max_length=300, blank=True)
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    status = models.CharField(
        _("status"), max_length=20, choices=ImportStatus.choices, default=ImportStatus.CHECKING
    )
    format = models.CharField(_("format"), max_length=20, blank=True)
    mapping = models.JSONField(_("columns"), default=dict, blank=True)  # field -> column index
    headers = models.JSONField(_("header row"), default=list, blank=True)
    error = models.TextField(_("why refused"), blank=True)
    preview = models.JSONField(_("preview"), default=dict, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    orders_total = models.PositiveIntegerField(_("orders"), default=0)
    orders_done = models.PositiveIntegerField(_("orders done"), default=0)
    created = models.PositiveIntegerField(_("orders created"), default=0)
    updated = models.PositiveIntegerField(_("orders updated"), default=0)
    unchanged = models.PositiveIntegerField(_("orders unchanged"), default=0)
    rows_refused = models.PositiveIntegerField(_("rows refused"), default=0)
    skus_created = models.PositiveIntegerField(_("SKUs created"), default=0)
    parcels_created = models.PositiveIntegerField(_("parcels created"), default=0)
    leased_until = models.DateTimeField(_("worker lease"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("runs"), default=0)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["status", "leased_until"],
                name="order_import_work_idx",
                condition=Q(status__in=["checking", "queued", "running"]),
            ),
        ]
        verbose_name = _("order import")
        verbose_name_plural = _("order imports")

    def __str__(self) -> str:
        return f"{self.store.code}: {self.file_name}"

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        return int(100 * self.orders_done / self.orders_total) if self.orders_total else 0


class ImportRefusal(models.Model):
    """A row of an import that was not imported, and why: found by the check (`stage` preview) or refused
    by the write (`stage` import). Its cells are kept so the refused-rows CSV gives them back to fix."""

    order_import = models.ForeignKey(OrderImport, on_delete=models.CASCADE, related_name="refusals")
    stage = models.CharField(_("stage"), max_length=10)
    row = models.PositiveIntegerField(_("row"))
    order_id = models.CharField(_("order id"), max_length=200, blank=True)
    reason = models.TextField(_("reason"))
    cells = models.JSONField(_("cells"), default=list)

    class Meta:
        ordering = ["row", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order_import", "stage", "row"], name="import_refusal_once"),
        ]
        verbose_name = _("refused import row")

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


class ImportMapping(models.Model):
    """A store's answer to the mapping step for one file layout (its header row's signature): which column
    is which field. The next export with the same columns is read without asking."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="import_mappings")
    signature = models.CharField(_("header signature"), max_length=64)
    headers = models.JSONField(_("header row"), default=list)
    mapping = models.JSONField(_("columns"), default=dict)  # field -> column index
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "signature"], name="import_mapping_once_per_layout"),
        ]
        verbose_name = _("import column mapping")

    def __str__(self) -> str:
        return f"{self.store.code}: {len(self.mapping)} columns"
