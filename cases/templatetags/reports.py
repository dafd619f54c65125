"""Formatting the report tables' cells (cases.reporting.selectors.Column kinds) for the page and the CSV."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


def duration_text(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    if minutes < 60:
        return _("%(n)d min") % {"n": round(minutes)}
    if minutes < 48 * 60:
        return _("%(n)s h") % {"n": number_format(round(minutes / 60, 1), 1)}
    return _("%(n)s d") % {"n": number_format(round(minutes / 1440, 1), 1)}


@register.filter
def cell_text(value, kind: str = "text") -> str:
    if value is None or value == "":
        return "—"
    if kind == "percent":
        return f"{number_format(value, 2)} %"
    if kind == "points":
        return _("%(sign)s%(n)s pt") % {"sign": "+" if value > 0 else "", "n": number_format(value, 2)}
    if kind == "minutes":
        return duration_text(value)
    if kind == "money":
        return number_format(Decimal(value).quantize(Decimal("0.01")), 2, force_grouping=True)
    if kind == "int":
        return number_format(value, force_grouping=True)
    if kind == "date" and isinstance(value, date):
        return value.isoformat()  # one format on every page and in the CSV: 2026-11-08
    return str(value)


@register.filter
def cell_value(value) -> str:
    """The number a chart reads (data-value): plain, no grouping, no unit."""
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@register.filter
def index(sequence, i: int):
    try:
        return sequence[i]
    except (IndexError, TypeError, KeyError):
        return None
