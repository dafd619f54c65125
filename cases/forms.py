from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cases.choices import (
    BuyerChoice,
    CaseStatus,
    CaseType,
    ClaimStatus,
    CompensationKind,
    FaultParty,
    MessageChannel,
    MessageLanguage,
    Priority,
    Resolution,
)
from cases.models import MessageTemplate
from cases.selectors import QUEUE_BREACHING, QUEUE_MINE, QUEUE_UNASSIGNED
from cases.workflow import BULK_LIMIT, NOTE_MAX_LENGTH
from portal.models import Store
from tracking.models import LiveSession

OPEN = "open"
ALL = "all"


class CaseFilterForm(forms.Form):
    """The queue's filters; every value lives in the URL so a filtered queue can be bookmarked."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.SearchInput(attrs={"placeholder": _("Order id, tracking number or buyer")}),
    )
    store = forms.ModelChoiceField(
        label=_("Store"), queryset=Store.objects.none(), required=False, empty_label=_("All stores")
    )
    type = forms.ChoiceField(
        label=_("Type"), required=False, choices=[("", _("All types")), *CaseType.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[(OPEN, _("Open")), *CaseStatus.choices, (ALL, _("All statuses"))],
    )
    queue = forms.ChoiceField(
        label=_("Queue"),
        required=False,
        choices=[
            ("", _("All open cases")),
            (QUEUE_MINE, _("My cases")),
            (QUEUE_UNASSIGNED, _("Unassigned")),
            (QUEUE_BREACHING, _("Breaching soon")),
        ],
        widget=forms.HiddenInput,
    )
    priority = forms.TypedChoiceField(
        label=_("Priority"),
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("Any priority")), *Priority.choices],
    )
    carrier = forms.CharField(
        label=_("Carrier"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": _("Carrier")}),
    )
    live = forms.ModelChoiceField(
        label=_("Live session"),
        queryset=LiveSession.objects.none(),
        required=False,
        empty_label=_("Any live session"),
    )
    sku = forms.CharField(
        label=_("SKU"), required=False, max_length=64, widget=forms.TextInput(attrs={"placeholder": _("SKU")})
    )
    older_than = forms.IntegerField(
        label=_("Older than (hours)"),
        required=False,
        min_value=1,
        max_value=24 * 366,
        widget=forms.NumberInput(attrs={"placeholder": _("Older than, hours")}),
    )
    pending_approval = forms.BooleanField(label=_("Waiting for approval"), required=False)
    after = forms.RegexField(
        regex=r"^\d+$",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": _("That page link is malformed.")},
    )

    assignee = forms.ModelChoiceField(
        label=_("Assignee"),
        queryset=None,
        required=False,
        empty_label=_("Anyone"),
        help_text=_("See one person's queue."),
    )

    def __init__(self, *args, stores, live_sessions, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores
        self.fields["live"].queryset = live_sessions
        self.fields["assignee"].queryset = assignees

    def queue_filters(self) -> dict:
        """cases_for_user's keyword arguments for these filters (a valid or an unbound form: the open queue)."""
        data = self.cleaned_data if self.is_bound else {}
        return {
            "status": data.get("status") or OPEN,
            "type": data.get("type") or None,
            "store_id": data["store"].pk if data.get("store") else None,
            "search": data.get("q", ""),
            "queue": data.get("queue") or None,
            "priority": data.get("priority"),
            "carrier": data.get("carrier", ""),
            "live_session_id": data["live"].pk if data.get("live") else None,
            "sku": data.get("sku", ""),
            "older_than_hours": data.get("older_than"),
            "assignee_id": data["assignee"].pk if data.get("assignee") else None,
            "pending_approval": bool(data.get("pending_approval")),
        }


class CaseIdsField(forms.Field):
    """The ticked case ids of the bulk bar (repeated `ids` values)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": _("Tick at least one case."),
        "invalid": _("That selection is malformed."),
        "too_many": _("Select at most %(max)d cases at a time."),
    }

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if not all(str(pk).isdigit() for pk in values):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        ids = sorted({int(pk) for pk in values})
        if len(ids) > BULK_LIMIT:
            raise forms.ValidationError(
                self.error_messages["too_many"], code="too_many", params={"max": BULK_LIMIT}
            )
        return ids


CLAIM, ASSIGN, SET_STATUS, SEND = "claim", "assign", "status", "send"


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[(CLAIM, _("Claim")), (ASSIGN, _("Assign")), (SET_STATUS, _("Set status")), (SEND, _("Send"))]
    )
    ids = CaseIdsField()
    assignee = forms.ModelChoiceField(
        label=_("Assign to"), queryset=None, required=False, empty_label=_("Nobody (unassign)")
    )
    to_status = forms.ChoiceField(
        label=_("New status"), required=False, choices=[("", _("Set status…")), *CaseStatus.choices]
    )
    resolution = forms.ChoiceField(
        label=_("Resolution"), required=False, choices=[("", _("Resolution…")), *Resolution.choices]
    )
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=MessageTemplate.objects.none(),
        required=False,
        empty_label=_("Template…"),
    )

    def __init__(self, *args, assignees, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignees
        self.fields["template"].queryset = templates

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == SET_STATUS and not data.get("to_status"):
            self.add_error("to_status", _("Pick the status to set."))
        if action == SEND and not data.get("template"):
            self.add_error("template", _("Pick a template to send."))
        return data


class StatusForm(forms.Form):
    to_status = forms.ChoiceField(label=_("New status"), choices=CaseStatus.choices)
    note = forms.CharField(label=_("Note"), required=False, max_length=NOTE_MAX_LENGTH)


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(label=_("Resolution"), choices=Resolution.choices)
    fault_party = forms.ChoiceField(label=_("Fault"), choices=FaultParty.choices, required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=NOTE_MAX_LENGTH)


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Internal note"), max_length=NOTE_MAX_LENGTH, widget=forms.Textarea)


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Assign to"), queryset=None, required=False, empty_label=_("Nobody (unassign)")
    )

    def __init__(self, *args, assignees, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignees


class MessageForm(forms.Form):
    template = forms.ModelChoiceField(label=_("Template"), queryset=None, empty_label=_("Pick a template…"))

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates


class TemplateFilterForm(forms.Form):
    """The template library's filters, in the URL."""

    case_type = forms.ChoiceField(
        label=_("Case type"), required=False, choices=[("", _("All case types")), *CaseType.choices]
    )
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("All languages")), *MessageLanguage.choices]
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("All channels")), *MessageChannel.choices]
    )


class TemplateForm(forms.Form):
    """A store's message template. Validation of the text (placeholders) is the service's: template_save."""

    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)
    case_type = forms.ChoiceField(label=_("Case type"), choices=CaseType.choices)
    language = forms.ChoiceField(label=_("Language"), choices=MessageLanguage.choices)
    channel = forms.ChoiceField(label=_("Channel"), choices=MessageChannel.choices)
    name = forms.CharField(label=_("Name"), max_length=120)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False, help_text=_("Email only."))
    body = forms.CharField(label=_("Body"), widget=forms.Textarea(attrs={"rows": 12}))
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)

    def __init__(self, *args, stores, allow_global: bool, **kwargs):
        super().__init__(*args, **kwargs)
        store = self.fields["store"]
        store.queryset = stores
        store.required = not allow_global
        store.empty_label = _("Global default (every store)") if allow_global else None


class TemplatePreviewForm(TemplateForm):
    """The same fields, as loose as a half-written template: the preview shows whatever is there."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("store", "name", "subject", "body", "is_active"):
            self.fields[name].required = False


class TemplateDuplicateForm(forms.Form):
    store = forms.ModelChoiceField(label=_("Into store"), queryset=Store.objects.none(), empty_label=None)

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores


# --- compensation -------------------------------------------------------------------------------------


class _Token(forms.Form):
    """A form's token, made when the form is shown: a resubmitted form (a double click, a retry after a
    timeout) proposes nothing twice (cases.compensation's idempotency key)."""

    token = forms.CharField(max_length=64, widget=forms.HiddenInput)


class OfferForm(_Token):
    offer = forms.CharField(max_length=4)


class CompensationForm(_Token):
    kind = forms.ChoiceField(label=_("Kind"), choices=CompensationKind.choices)
    amount = forms.DecimalField(
        label=_("Amount"), required=False, max_digits=12, decimal_places=2, min_value=0
    )
    percent = forms.DecimalField(
        label=_("Percent off"), required=False, max_digits=5, decimal_places=2, min_value=0
    )
    valid_until = forms.DateField(
        label=_("Valid until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    sku = forms.CharField(label=_("SKU code"), required=False, max_length=64)
    quantity = forms.IntegerField(label=_("Quantity"), min_value=1, max_value=1000, initial=1, required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)
    reason = forms.CharField(label=_("Reason"), required=False, max_length=2000)


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Why"), max_length=2000)


class ResultForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Result"),
        choices=[("executed", _("Done on the platform")), ("failed", _("The platform refused it"))],
    )
    reference = forms.CharField(label=_("Platform reference"), required=False, max_length=100)
    reason = forms.CharField(label=_("Why it failed"), required=False, max_length=2000)
    carrier = forms.CharField(label=_("New parcel's carrier"), required=False, max_length=40)
    tracking_number = forms.CharField(label=_("New parcel's tracking number"), required=False, max_length=64)


class BuyerChoiceForm(forms.Form):
    option = forms.ChoiceField(label=_("The buyer chose"), choices=BuyerChoice.choices)
    text = forms.CharField(label=_("What the buyer said"), required=False, max_length=NOTE_MAX_LENGTH)


class ClaimMoveForm(forms.Form):
    to_status = forms.ChoiceField(label=_("Move to"), choices=ClaimStatus.choices)
    reference = forms.CharField(label=_("Carrier's reference"), required=False, max_length=100)
    recovered = forms.DecimalField(
        label=_("Amount recovered"), required=False, max_digits=12, decimal_places=2
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


class LedgerForm(forms.Form):
    """The ledger export's period (in the URL): a store, from and to (dates, inclusive)."""

    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.none(), required=False)
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data
