from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


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
    # Raised by a buyer's complaint (cases.complaints.intake), about the order:
    NOT_RECEIVED = "not_received", _("Not received")  # the buyer says the parcel never came
    WRONG_ITEM = "wrong_item", _("Wrong item")  # another product, size, colour or volume came
    MISSING_ITEM = "missing_item", _("Missing item")  # the parcel came without something in it
    QUALITY = "quality", _("Quality problem")  # the product itself is bad: expired, fake, broken by use
    ENQUIRY = "enquiry", _("Buyer enquiry")  # anything else the buyer asks after the sale


# Case types raised about an order as a whole; every other type is about one shipment.
ORDER_LEVEL_TYPES = frozenset({
    CaseType.OVERSOLD, CaseType.OUT_OF_STOCK, CaseType.ORDER_REVIEW, CaseType.NOT_RECEIVED, CaseType.WRONG_ITEM,
    CaseType.MISSING_ITEM, CaseType.QUALITY, CaseType.ENQUIRY,
})  # fmt: skip


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
    BUYER_REPLIED = (
        "buyer_replied",
        _("Buyer replied"),
    )  # the buyer's answer (through the storefront or an agent)
    COMPENSATION = "compensation", _("Compensation")  # proposed, approved, rejected, executed ...
    EVIDENCE = "evidence", _("Evidence")  # a file added or withdrawn
    STOREFRONT_FAILED = "storefront_failed", _("Storefront could not deliver")  # an event acked as failed
    COMPLAINT = "complaint", _("Buyer complained")  # a complaint joined the case (cases.complaints.intake)


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
    COMPENSATION_APPROVED = "compensation.approved", "compensation.approved"  # execute it on the platform


class EventDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")  # to be sent, or sent again after a failure
    DELIVERED = "delivered", _("Delivered")  # the endpoint answered 2xx
    FAILED = "failed", _("Failed")  # no 2xx within the retry window; redeliver by hand


class CompensationKind(models.TextChoices):
    COUPON = "coupon", _("Coupon")  # an amount, or a percent with a cap; valid until a date
    PARTIAL_REFUND = "partial_refund", _("Partial refund")
    FULL_REFUND = "full_refund", _("Full refund")  # what was paid, less partial refunds before it
    RESHIP = "reship", _("Reship")  # a new parcel replacing one; its cost is what it costs the seller
    SWAP = "swap", _("Swap")  # another SKU instead, from stock reserved for it
    GIFT = "gift", _("Gift")  # a SKU or a note
    WAIT_BONUS = "wait_bonus", _("Wait bonus")  # a small thing for a buyer who agrees to wait


REFUND_KINDS = (CompensationKind.PARTIAL_REFUND, CompensationKind.FULL_REFUND)


class CompensationStatus(models.TextChoices):
    PROPOSED = "proposed", _("Proposed")  # waits for an approval within someone's limit
    APPROVED = "approved", _("Approved")  # the storefront is asked to execute it (compensation.approved)
    EXECUTING = "executing", _("Executing")  # the storefront has taken it
    EXECUTED = "executed", _("Executed")  # done on the platform; its reference is kept
    FAILED = "failed", _("Failed")  # the platform refused it; back to the agent with the reason
    REJECTED = "rejected", _("Rejected")  # an approver said no, with a reason
    CANCELLED = "cancelled", _("Cancelled")  # withdrawn before it was executed


# Compensation that counts: towards what was paid, the caps and the limits. Failed, rejected and cancelled
# ones paid nothing.
LIVE_COMPENSATION = (
    CompensationStatus.PROPOSED,
    CompensationStatus.APPROVED,
    CompensationStatus.EXECUTING,
    CompensationStatus.EXECUTED,
)
OPEN_COMPENSATION = (CompensationStatus.PROPOSED, CompensationStatus.APPROVED, CompensationStatus.EXECUTING)


class CompensationOrigin(models.TextChoices):
    AGENT = "agent", _("Agent")  # proposed by a person, free or from the playbook
    STOREFRONT = "storefront", _("Storefront")  # proposed through the API
    AUTO_SMALL_DAMAGE = "auto_small_damage", _("Automatic small-damage coupon")  # once per order


class ClaimStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")  # being put together
    SUBMITTED = "submitted", _("Submitted")  # sent to the carrier
    ACCEPTED = "accepted", _("Accepted")  # the carrier agreed to pay
    REJECTED = "rejected", _("Rejected")  # the carrier refused
    PAID = "paid", _("Paid")  # the money arrived: amount recovered


class EvidenceKind(models.TextChoices):
    BOOKING_CONFIRMATION = (
        "booking_confirmation",
        _("Booking confirmation"),
    )  # the carrier took the pickup booking
    HANDOVER_PHOTO = "handover_photo", _("Handover photo")
    HANDOVER_VIDEO = "handover_video", _("Handover video")
    CCTV_STILL = "cctv_still", _("CCTV still")  # the warehouse door: the carrier did (not) come
    CARRIER_CHAT = "carrier_chat", _("Carrier chat log")
    CALL_RECORD = "call_record", _("Call record")
    PICKUP_MANIFEST = "pickup_manifest", _("Pickup manifest")
    DISPATCH_MANIFEST = "dispatch_manifest", _("Dispatch manifest")
    BUYER_CHAT = "buyer_chat", _("Buyer chat")
    NOTICE = "notice", _("Weather or government notice")  # force majeure
    DAMAGE_PHOTO = "damage_photo", _("Damage photo")
    OTHER = "other", _("Other")


class CaptureSource(models.TextChoices):
    EXIF = "exif", _("the photo's EXIF data")
    ENTERED = "entered", _("entered by the uploader")
    UPLOAD = "upload", _("the upload time")


class CustodyAction(models.TextChoices):
    UPLOAD = "upload", _("Uploaded")
    VIEW = "view", _("Viewed")
    DOWNLOAD = "download", _("Downloaded")
    EXPORT = "export", _("Exported in a packet")
    TOMBSTONE = "tombstone", _("Withdrawn")
    PURGE = "purge", _("Bytes deleted after the retention period")


class AppealStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")  # evidence being gathered
    EXPORTED = "exported", _("Exported")  # the packet was downloaded
    SUBMITTED = "submitted", _("Submitted")  # sent to the platform
    DECIDED = "decided", _("Decided")  # the platform answered


class AppealDecision(models.TextChoices):
    WON = "won", _("Won")
    PARTIAL = "partial", _("Partly won")
    LOST = "lost", pgettext_lazy("appeal decision", "Lost")  # not the case type "Lost" (a lost parcel)


class ComplaintChannel(models.TextChoices):
    CHAT = "chat", _("Platform chat")
    AFTER_SALES = "after_sales", _("Platform after-sales request")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    REVIEW = "review", _("Review")
    OTHER = "other", _("Other")


class ComplaintCategory(models.TextChoices):
    NOT_RECEIVED = "not_received", _("Not received")
    DAMAGED = "damaged", _("Damaged")
    WRONG_ITEM = "wrong_item", _("Wrong item")
    MISSING_ITEM = "missing_item", _("Missing item")
    QUALITY = "quality", _("Quality problem")
    OTHER = "other", _("Other")
