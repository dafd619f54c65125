from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cases.choices import MessageLanguage, StorefrontEventType
from portal.choices import Role
from portal.models import Store


class StoreSettingsForm(forms.Form):
    """The settings a store's admin may change. The values are checked again, against the model's
    validators, by portal.services.store_update; its errors come back onto these fields."""

    name = forms.CharField(label=_("Name"), max_length=Store._meta.get_field("name").max_length)
    timezone = forms.CharField(
        label=_("Time zone"),
        max_length=Store._meta.get_field("timezone").max_length,
        help_text=_("An IANA time zone, e.g. Asia/Kuala_Lumpur. Deadlines and dates are shown in it."),
    )
    default_language = forms.ChoiceField(
        label=_("Buyer language"),
        choices=MessageLanguage.choices,
        help_text=_("The language of buyer messages when the order does not say."),
    )
    region = forms.CharField(
        label=_("Region"), max_length=2, help_text=_("Two-letter ISO country code, e.g. MY.")
    )
    currency = forms.CharField(
        label=_("Currency"), max_length=3, help_text=_("Three-letter ISO currency code, e.g. MYR.")
    )
    ship_from = forms.CharField(
        label=_("Ships from"), max_length=80, required=False,
        help_text=_("The province or state the parcels start from: the origin of every route in the reports."),
    )  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        language = self.initial.get("default_language")
        if language and language not in MessageLanguage.values:
            # a language set before the choices existed stays selectable instead of silently changing
            field = self.fields["default_language"]
            field.choices = [*field.choices, (language, language)]


class MemberAddForm(forms.Form):
    username_or_email = forms.CharField(
        label=_("Username or email"),
        max_length=254,
        widget=forms.TextInput(attrs={"placeholder": _("Username or email"), "autocomplete": "off"}),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.AGENT)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        widget=forms.TextInput(
            attrs={"placeholder": _("What will use it, e.g. Shopify sync"), "autocomplete": "off"}
        ),
    )
    read_only = forms.BooleanField(label=_("Read only"), required=False)


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label=_("URL"), max_length=500, assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://shop.example.com/afterdesk/events"}),
    )  # fmt: skip
    description = forms.CharField(label=_("Description"), max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label=_("Event types"),
        choices=StorefrontEventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every event type."),
    )
