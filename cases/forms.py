from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cases.choices import CaseStatus, CaseType
from portal.models import Store

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
    after = forms.RegexField(
        regex=r"^\d+$",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": _("That page link is malformed.")},
    )

    def __init__(self, *args, stores, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores
