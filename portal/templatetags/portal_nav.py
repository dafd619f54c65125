from __future__ import annotations

from urllib.parse import urlsplit

from django import template

from portal.selectors import user_manages_stores

register = template.Library()


@register.simple_tag
def manages_stores(user) -> bool:
    """Whether the top nav shows the store administration (store admins and superusers)."""
    return user_manages_stores(user)


@register.filter
def web_url(value) -> str:
    """`value` when it is an http(s) URL, else "": for an href made from stored data. A URLField's form
    refuses `javascript:`, but a row written another way (a data fix, the shell, an import) is not checked,
    and escaping does not stop a `javascript:` href from running when clicked."""
    text = str(value or "").strip()
    return text if urlsplit(text).scheme.lower() in ("http", "https") else ""
