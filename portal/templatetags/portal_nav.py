from __future__ import annotations

from django import template

from portal.selectors import user_manages_stores

register = template.Library()


@register.simple_tag
def manages_stores(user) -> bool:
    """Whether the top nav shows the store administration (store admins and superusers)."""
    return user_manages_stores(user)
