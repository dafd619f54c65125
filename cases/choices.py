from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CaseType(models.TextChoices):
    OVERSOLD = "oversold", _("Oversold")  # orders beyond the stock allocated to the SKU or live session
    OUT_OF_STOCK = "out_of_stock", _("Out of stock")  # no stock, restock ETA known
    PICKUP_OVERDUE = "pickup_overdue", _("Pickup overdue")  # booked, no acceptance scan in time
    STALLED_IN_TRANSIT = "stalled_in_transit", _("Stalled in transit")  # no progress while in transit
    NO_UPDATE = "no_update", _("No update")  # no event at all for too long
    DELIVERY_FAILED = "delivery_failed", _("Delivery failed")  # AttemptFail
    ADDRESS_ISSUE = "address_issue", _("Address issue")  # Exception_007
    CUSTOMS_HOLD = "customs_hold", _("Customs hold")  # Exception_004 / Exception_018
    LOST = "lost", _("Lost")  # Exception_013 or Expired
    DAMAGED = "damaged", _("Damaged")  # Exception_012 or a buyer complaint
    RETURNED_TO_SENDER = "returned_to_sender", _("Returned to sender")  # Exception_010 / Exception_011
    ORDER_REVIEW = "order_review", _("Order review")  # suspicious order held from shipping
    QUALITY_BATCH = "quality_batch", _("Quality batch")  # parent incident over many complaints on one lot


# Case types raised about an order as a whole; every other type is about one shipment.
ORDER_LEVEL_TYPES = frozenset({CaseType.OVERSOLD, CaseType.OUT_OF_STOCK, CaseType.ORDER_REVIEW})


class CaseStatus(models.TextChoices):
    NEW = "new", _("New")  # raised, nobody has touched it
    IN_PROGRESS = "in_progress", _("In progress")  # an agent is working it
    WAITING_BUYER = "waiting_buyer", _("Waiting on buyer")  # SLA clocks pause
    WAITING_CARRIER = "waiting_carrier", _("Waiting on carrier")  # chased the carrier
    WAITING_PLATFORM = "waiting_platform", _("Waiting on platform")  # appeal or platform ticket open
    RESOLVED = "resolved", _("Resolved")  # problem solved; may be reopened
    CLOSED = "closed", _("Closed")  # final


OPEN_STATUSES = (
    CaseStatus.NEW,
    CaseStatus.IN_PROGRESS,
    CaseStatus.WAITING_BUYER,
    CaseStatus.WAITING_CARRIER,
    CaseStatus.WAITING_PLATFORM,
)


class Priority(models.IntegerChoices):
    LOW = 10, _("Low")
    NORMAL = 20, _("Normal")
    HIGH = 30, _("High")
    URGENT = 40, _("Urgent")


class FaultParty(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")  # not yet established
    CARRIER = "carrier", _("Carrier")  # grounds for a penalty appeal and a carrier claim
    SELLER = "seller", _("Seller")  # our warehouse or stock planning
    BUYER = "buyer", _("Buyer")  # wrong address, refused, unreachable
    PLATFORM = "platform", _("Platform")
    CUSTOMS = "customs", _("Customs")
    FORCE_MAJEURE = "force_majeure", _("Force majeure")  # weather, disasters


class Resolution(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    RESHIPPED = "reshipped", _("Reshipped")
    REFUNDED = "refunded", _("Refunded")
    PARTIAL_REFUND = "partial_refund", _("Partially refunded")
    SWAPPED = "swapped", _("Swapped for another item")
    BUYER_WAITED = "buyer_waited", _("Buyer agreed to wait")
    CANCELLED = "cancelled", _("Order cancelled")
    NO_ACTION = "no_action", _("No action needed")
    CONDITION_CLEARED = "condition_cleared", _("Condition cleared by itself")


class CaseEventKind(models.TextChoices):
    RAISED = "raised", _("Raised")  # a rule (or a person) opened the case
    UPDATED = "updated", _("Updated")  # a rule re-fired with new facts or priority
    ASSIGNED = "assigned", _("Assigned")
    STATUS_CHANGED = "status_changed", _("Status changed")
    NOTE = "note", _("Note")
    MESSAGE_QUEUED = "message_queued", _("Message queued")  # written to the outbox; first contact
    MESSAGE_SENT = "message_sent", _("Message sent")
    MESSAGE_FAILED = "message_failed", _("Message failed")
    CONDITION_CLEARED = "condition_cleared", _("Condition cleared")
    RESOLVED = "resolved", _("Resolved")
    REOPENED = "reopened", _("Reopened")
    BUYER_REPLIED = "buyer_replied", _("Buyer replied")  # the storefront passed on the buyer's answer
    STOREFRONT_FAILED = "storefront_failed", _("Storefront could not deliver")  # an event acked as failed


# Case types whose buyer hears from the store the moment the rule fires, unless the store's policy says
# otherwise (StorePolicy.proactive_types).
DEFAULT_PROACTIVE_TYPES = (
    CaseType.STALLED_IN_TRANSIT,
    CaseType.DELIVERY_FAILED,
    CaseType.OVERSOLD,
    CaseType.CUSTOMS_HOLD,
    CaseType.LOST,
)


class MessageChannel(models.TextChoices):
    STOREFRONT = "storefront", _("Storefront")  # an outbound event the storefront delivers on the platform
    EMAIL = "email", _("Email")  # Django's email backend, to the order's buyer email


class MessageLanguage(models.TextChoices):
    EN = "en", _("English")
    ZH_HANS = "zh-hans", _("Simplified Chinese")
    MS = "ms", _("Malay")
    TH = "th", _("Thai")
    VI = "vi", _("Vietnamese")
    ID = "id", _("Indonesian")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")  # in the outbox, waiting for (another) delivery attempt
    SENT = "sent", _("Sent")  # handed to the mail backend or recorded for the storefront
    FAILED = "failed", _("Failed")  # gave up after the maximum attempts


class BuyerChoice(models.TextChoices):
    """What a buyer chose when offered options for a stock problem (oversold, out of stock)."""

    WAIT = "wait", _("Wait for restock")
    SWAP = "swap", _("Swap for another item")
    REFUND = "refund", _("Refund")


class StorefrontEventType(models.TextChoices):
    CASE_CREATED = "case.created", "case.created"  # a rule (or an agent) opened a case
    CASE_UPDATED = "case.updated", "case.updated"  # status, priority or facts changed; the buyer replied
    CASE_RESOLVED = "case.resolved", "case.resolved"  # resolved by an agent or by the condition clearing
    MESSAGE_REQUESTED = "message.requested", "message.requested"  # a buyer message to post on the platform
    ORDER_HELD = "order.held", "order.held"  # held from shipping until reviewed
    ORDER_RELEASED = "order.released", "order.released"  # review decided: ship it, or it was cancelled


class EventDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # to be sent, or sent again after a failure
    DELIVERED = "delivered", _("Delivered")  # the endpoint answered 2xx
    FAILED = "failed", _("Failed")  # no 2xx within the retry window; redeliver by hand
