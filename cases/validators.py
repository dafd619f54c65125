"""The checks the models' `clean()` runs, kept where the models can import them: this module imports no models.

`cases.models` validates a store's policy, a carrier override, a message template and an appeal scenario
with these; `cases.policy`, `cases.messages` and `cases.appeals` (which build on the models) use the same
functions and vocabularies. Keeping them here, below the models, is what lets `cases.models` import them at
module level instead of reaching up into the services inside `clean()`, an import cycle
(tests/portal/test_layout.py pins that it stays broken). The models are named for type checkers only.

`CaseWorkflowError` lives here too because a template that cannot be rendered (`MessageTemplateError`) is one:
the workspace shows every refused action the same way. `cases.workflow` raises it for the workflow's refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cases.choices import CaseType

if TYPE_CHECKING:
    from cases.models import CarrierPolicy, StorePolicy


class CaseWorkflowError(Exception):
    """A refused action, with a message fit to show the user. Nothing was written."""


# --- exception policies ---------------------------------------------------------------------------


POSITIVE_FIELDS = (
    "pickup_hours", "stalled_hours", "no_update_hours", "restock_wait_days", "refund_push_days",
    "batch_window_hours", "first_contact_hours", "resolution_hours",
)  # fmt: skip


MONEY_FIELDS = (
    "agent_case_limit", "agent_daily_limit", "refund_coupon_amount", "small_damage_coupon", "small_damage_order_max",
)  # fmt: skip


def policy_errors(policy: StorePolicy) -> dict[str, str]:
    """Why a policy makes no sense, by field; empty when it is sound."""
    errors: dict[str, str] = {}
    for name in POSITIVE_FIELDS:
        value = getattr(policy, name)
        if value is None or value <= 0:
            errors[name] = _("Must be more than zero.")
    for name in ("batch_threshold", "review_orders_per_address"):
        value = getattr(policy, name)
        if value is None or value < 2:
            errors[name] = _("Must be at least 2: one is not a pattern.")
    if policy.high_value_amount is None or policy.high_value_amount <= 0:
        errors["high_value_amount"] = _("Must be more than zero.")
    for name in MONEY_FIELDS:
        value = getattr(policy, name)
        if value is None or value < 0:
            errors[name] = _("Must be zero or more.")
    if policy.history_grace_minutes is None or policy.history_grace_minutes < 0:
        errors["history_grace_minutes"] = _("Must be zero or more.")
    if policy.no_contact_after_days is None or policy.no_contact_after_days <= 0:
        errors["no_contact_after_days"] = _("Must be more than zero.")
    if policy.claim_days is None or policy.claim_days <= 0:
        errors["claim_days"] = _("Must be more than zero.")
    grace = policy.grace_days
    if not isinstance(grace, dict) or not all(
        isinstance(days, int) and not isinstance(days, bool) and days >= 0 for days in grace.values()
    ):
        errors["grace_days"] = _('Give case types and whole days, e.g. {"stalled_in_transit": 3}.')
    else:
        unknown = sorted(set(grace) - set(CaseType.values))
        if unknown:
            errors["grace_days"] = _("Unknown case types: %(unknown)s. Known: %(known)s.") % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(CaseType.values),
            }
    proactive = policy.proactive_types
    if not isinstance(proactive, list) or not all(isinstance(t, str) for t in proactive):
        errors["proactive_types"] = _("Give a list of case types.")
    else:
        unknown = sorted(set(proactive) - set(CaseType.values))
        if unknown:
            errors["proactive_types"] = _("Unknown case types: %(unknown)s. Known: %(known)s.") % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(CaseType.values),
            }
    sound = not errors.keys() & {
        "restock_wait_days",
        "refund_push_days",
        "first_contact_hours",
        "resolution_hours",
    }
    if sound and policy.restock_wait_days > policy.refund_push_days:
        errors["restock_wait_days"] = _(
            "Offering to wait %(wait)s days cannot be longer than steering to refund after %(refund)s days."
        ) % {"wait": policy.restock_wait_days, "refund": policy.refund_push_days}
    if sound and policy.first_contact_hours > policy.resolution_hours:
        errors["first_contact_hours"] = _("First contact cannot be due after the case must be resolved.")
    return errors


def carrier_policy_errors(policy: CarrierPolicy) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in ("pickup_hours", "stalled_hours", "no_update_hours"):
        value = getattr(policy, name)
        if value is not None and value <= 0:
            errors[name] = _("Must be more than zero, or empty to use the store policy.")
    if not (policy.carrier or "").strip():
        errors["carrier"] = _("Name the carrier this override is for.")
    return errors


# --- message templates ----------------------------------------------------------------------------

# {name: what it stands for}, shown beside the body in the template editor.
PLACEHOLDERS: Mapping[str, str] = {
    "buyer_name": gettext_lazy("The buyer's name on the order"),
    "order_id": gettext_lazy("The platform order id"),
    "tracking_number": gettext_lazy("The parcel's tracking number"),
    "carrier": gettext_lazy("The carrier"),
    "latest_checkpoint": gettext_lazy(
        "The carrier's latest checkpoint: time (store time zone), text and place"
    ),
    "new_eta": gettext_lazy(
        "The carrier's expected delivery date; while the carrier has given none, a sentence saying it is not "
        "confirmed yet and that the buyer will be told"
    ),
    "restock_date": gettext_lazy("When the missing item is expected back in stock"),
    "option_a": gettext_lazy("Oversold option A: wait for the restock until a date"),
    "option_b": gettext_lazy("Oversold option B: swap for another item"),
    "option_c": gettext_lazy("Oversold option C: refund (plus a coupon when oversold)"),
    "store_name": gettext_lazy("The store's name"),
}


class MessageTemplateError(CaseWorkflowError):
    """A template that cannot be rendered (unknown placeholder, unbalanced braces). Fit to show the user."""


def template_placeholders(text: str) -> list[str]:
    """The placeholder names `text` uses, in order. Raises MessageTemplateError for malformed text (a lone
    brace, `{}`, `{name.attr}`, `{name!r}`, `{name:>10}`) or an unknown name, listing the known ones."""
    try:
        parsed = list(Formatter().parse(text or ""))
    except ValueError as exc:
        raise MessageTemplateError(
            _("The text has unbalanced braces (%(error)s); write {{ or }} for a literal brace.")
            % {"error": exc}
        ) from None
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise MessageTemplateError(
                _("{%(field)s} is not a placeholder: write a bare name such as {buyer_name}.")
                % {"field": name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")}
            )
        names.append(name)
    unknown = [name for name in dict.fromkeys(names) if name not in PLACEHOLDERS]
    if unknown:
        raise MessageTemplateError(
            _("Unknown placeholder(s): %(unknown)s. Known placeholders: %(known)s.")
            % {
                "unknown": ", ".join(f"{{{name}}}" for name in unknown),
                "known": ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
            }
        )
    return names


def template_errors(*, subject: str, body: str) -> dict[str, str]:
    """Why a template's subject or body cannot be rendered, by field; empty when both are sound."""
    errors: dict[str, str] = {}
    for name, text in (("subject", subject), ("body", body)):
        try:
            template_placeholders(text)
        except MessageTemplateError as exc:
            errors[name] = str(exc)
    if not (body or "").strip():
        errors.setdefault("body", _("Write the message."))
    return errors


def template_validate(*, subject: str = "", body: str) -> None:
    """Raise ValidationError (by field) when the template names an unknown placeholder or is malformed."""
    errors = template_errors(subject=subject, body=body)
    if errors:
        raise ValidationError(errors)


# --- appeal scenarios -----------------------------------------------------------------------------

# The facts Afterdesk proves itself from what it stores; a scenario may require them beside evidence kinds.
SYSTEM_FACTS = {
    "booking_time": gettext_lazy("Pickup booking time of every parcel"),
    "acceptance_gap": gettext_lazy("The carrier's first scan came after the pickup deadline, or never"),
    "tracking_timeline": gettext_lazy("The carrier's checkpoints of every parcel"),
    "buyer_contacted": gettext_lazy("A message sent to every buyer"),
}
