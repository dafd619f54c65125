"""The normalized tracking taxonomy: AfterShip's nine delivery tags and their subtag codes, verbatim."""

from __future__ import annotations

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Tag(models.TextChoices):
    PENDING = "Pending", _("Pending")  # added, no tracking information yet
    INFO_RECEIVED = "InfoReceived", _("Info received")  # carrier has the order, not the parcel
    IN_TRANSIT = "InTransit", _("In transit")  # accepted by the carrier and moving
    OUT_FOR_DELIVERY = "OutForDelivery", _("Out for delivery")  # on the courier's van
    AVAILABLE_FOR_PICKUP = "AvailableForPickup", _("Available for pickup")  # waiting at a pickup point
    ATTEMPT_FAIL = "AttemptFail", _("Failed attempt")  # courier tried and failed; usually retries
    DELIVERED = "Delivered", _("Delivered")  # terminal: with the buyer
    EXCEPTION = "Exception", _("Exception")  # customs, refused, returned, lost, damaged ...
    EXPIRED = "Expired", _("Expired")  # no information for a long time


# Tags after which the parcel is no longer the carrier's to move.
TERMINAL_TAGS = frozenset({Tag.DELIVERED})

# Subtag codes and their English messages (AfterShip "Delivery Sub-statuses"). Unknown codes are accepted:
# `normalize_subtag` falls back to "<Tag>_001" and the provider's raw code and text are always kept.
SUBTAGS: dict[str, Promise] = {
    "Pending_001": _("No information yet"),
    "Pending_002": _("Pending: carrier not yet scanned"),
    "Pending_003": _("Pending: awaiting carrier update"),
    "Pending_004": _("Pending: tracking number not found"),
    "Pending_005": _("Pending: no recent update"),
    "Pending_006": _("Pending: replaced by a new tracking number"),
    "InfoReceived_001": _("Info received"),
    "InTransit_001": _("In transit"),
    "InTransit_002": _("Acceptance scan"),
    "InTransit_003": _("Arrival scan"),
    "InTransit_004": _("Arrived at the destination country"),
    "InTransit_005": _("Customs clearance completed"),
    "InTransit_006": _("Customs clearance started"),
    "InTransit_007": _("Departure scan"),
    "InTransit_008": _("Problem resolved"),
    "InTransit_009": _("Forwarded to a different delivery address"),
    "OutForDelivery_001": _("Out for delivery"),
    "OutForDelivery_003": _("Customer contacted"),
    "OutForDelivery_004": _("Delivery appointment scheduled"),
    "AvailableForPickup_001": _("Available for pickup"),
    "AttemptFail_001": _("Failed attempt"),
    "AttemptFail_002": _("Addressee not available"),
    "AttemptFail_003": _("Business closed"),
    "Delivered_001": _("Delivered"),
    "Delivered_002": _("Picked up by the customer"),
    "Delivered_003": _("Signed by customer"),
    "Delivered_004": _("Delivered and cash collected on delivery"),
    "Delivered_005": _("Delivered to neighbour"),
    "Exception_001": _("Exception"),
    "Exception_002": _("Customer moved"),
    "Exception_003": _("Customer refused delivery"),
    "Exception_004": _("Delayed (customs clearance)"),
    "Exception_005": _("Delayed (external factors)"),
    "Exception_006": _("Held for payment"),
    "Exception_007": _("Incorrect address"),
    "Exception_008": _("Pick up missed"),
    "Exception_009": _("Rejected by carrier"),
    "Exception_010": _("Returning to sender"),
    "Exception_011": _("Returned to sender"),
    "Exception_012": _("Shipment damaged"),
    "Exception_013": _("Shipment lost"),
    "Exception_016": _("Delayed (processing issue)"),
    "Exception_017": _("Delayed (extreme weather)"),
    "Exception_018": _("Incorrect or missing documents"),
    "Expired_001": _("Expired"),
}


def normalize_tag(value: str | None) -> Tag:
    """The tag named by a provider, or Pending when it names none we know."""
    try:
        return Tag(value)
    except ValueError:
        return Tag.PENDING


def normalize_subtag(tag: Tag, subtag: str | None) -> str:
    """A subtag code that belongs to `tag`: known codes pass, unknown ones fall back to `<Tag>_001`."""
    if subtag in SUBTAGS and subtag.startswith(f"{tag.value}_"):
        return subtag
    return f"{tag.value}_001"


def subtag_label(code: str) -> str:
    """The subtag's label in the active language (the code itself when unknown)."""
    return str(SUBTAGS.get(code) or SUBTAGS.get(f"{code.split('_', 1)[0]}_001", code))


class OrderStatus(models.TextChoices):
    AWAITING_SHIPMENT = "awaiting_shipment", _("Awaiting shipment")  # paid, not yet handed to a carrier
    ON_HOLD = "on_hold", _("On hold")  # held from shipping until reviewed
    SHIPPED = "shipped", _("Shipped")  # at least one shipment is with a carrier
    DELIVERED = "delivered", _("Delivered")  # every shipment delivered
    CANCELLED = "cancelled", _("Cancelled")  # cancelled or fully refunded


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", _("Received")  # stored and acknowledged; waiting to be processed
    PROCESSED = "processed", _("Processed")  # events ingested (or nothing new)
    FAILED = "failed", _("Failed")  # processing raised; retried by the next round until max attempts


class RegistrationStatus(models.TextChoices):
    PENDING = "pending", _("Waiting")  # to be registered (or again: the provider lost it)
    REGISTERED = "registered", _("Registered")  # the provider tracks the parcel and pushes its updates
    REFUSED = "refused", _("Refused")  # the provider refused the number; asked again later, then given up
    NOT_NEEDED = "not_needed", _("Not needed")  # delivered before its registration came round
    # the provider stopped tracking the parcel before delivery (ParsedPush.stopped); started again later
    STOPPED = "stopped", _("Stopped by the provider")


class ProviderName(models.TextChoices):
    AFTERSHIP = "aftership", "AfterShip"
    SEVENTEEN_TRACK = "17track", "17TRACK"
    KDNIAO = "kdniao", _("Kdniao")
    KUAIDI100 = "kuaidi100", _("Kuaidi100")
    SIMULATOR = "simulator", _("Simulator")  # the demo's and load tests' fake carrier network


class ImportStatus(models.TextChoices):
    CHECKING = "checking", _("Checking the file")
    NEEDS_MAPPING = "needs_mapping", _("Needs its columns named")
    READY = "ready", _("Ready to import")
    REFUSED = "refused", _("Refused")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Importing")
    DONE = "done", _("Imported")
    CANCELLED = "cancelled", _("Cancelled")
