from __future__ import annotations

from django import template

from cases import texts
from cases.selectors import user_manages_templates

register = template.Library()


@register.simple_tag
def manages_templates(user) -> bool:
    """Whether the top nav shows the template library (supervisors, admins, superusers)."""
    return user_manages_templates(user)


@register.filter
def case_summary(case) -> str:
    """The case's summary in the reader's language."""
    return texts.case_summary(case)


@register.filter
def event_message(event) -> str:
    """A timeline entry's message in the reader's language."""
    return texts.event_message(event)


@register.filter
def complaint_category(code: str) -> str:
    """A complaint category's label in the active language ("damaged" -> "Damaged" / "破损")."""
    from cases.choices import ComplaintCategory

    try:
        return str(ComplaintCategory(code).label)
    except ValueError:
        return code


@register.simple_tag
def complaint_channels() -> list[tuple[str, str]]:
    """The channels a complaint can come by, for the "Log a complaint" form on any page."""
    from cases.choices import ComplaintChannel

    return ComplaintChannel.choices
