"""System checks of this project's own settings (`manage.py check --deploy` runs the deploy ones)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}  # noqa: S104 - names, not a bind address


@register(Tags.security, deploy=True)
def public_url_check(app_configs, **kwargs) -> list[Warning]:
    """Providers are given webhook URLs built on PUBLIC_URL: in production it must be a public https one."""
    parts = urlsplit(settings.PUBLIC_URL)
    if parts.hostname in _LOCAL_HOSTS:
        return [
            Warning(
                f"PUBLIC_URL is {settings.PUBLIC_URL}: the webhook URLs given to tracking providers would point "
                "at this machine's loopback address, which no provider can reach.",
                hint="Set PUBLIC_URL to the portal's public address, e.g. https://desk.example.com.",
                id="afterdesk.W001",
            )
        ]
    if parts.scheme != "https":
        return [
            Warning(
                f"PUBLIC_URL is {settings.PUBLIC_URL}: providers would push tracking, and sign it, over plain "
                "HTTP.",
                hint="Serve the portal over HTTPS and set PUBLIC_URL to its https:// address.",
                id="afterdesk.W002",
            )
        ]
    return []
