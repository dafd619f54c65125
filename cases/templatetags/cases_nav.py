from __future__ import annotations

from django import template

from cases.selectors import user_manages_templates

register = template.Library()


@register.simple_tag
def manages_templates(user) -> bool:
    """Whether the top nav shows the template library (supervisors, admins, superusers)."""
    return user_manages_templates(user)
