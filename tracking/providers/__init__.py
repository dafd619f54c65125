"""Tracking providers: one adapter module per provider, found by name through `REGISTRY`.

Each adapter implements `tracking.providers.base.Provider` (verify a push, parse a push, fetch a batch) and
never touches the database; `tracking.ingest` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracking.providers.aftership import AfterShipProvider
from tracking.providers.base import Provider
from tracking.providers.kdniao import KdniaoProvider
from tracking.providers.kuaidi100 import Kuaidi100Provider
from tracking.providers.seventeentrack import SeventeenTrackProvider
from tracking.providers.simulator import SimulatorProvider

if TYPE_CHECKING:
    from tracking.models import TrackingConnection

REGISTRY: dict[str, type[Provider]] = {
    provider.name: provider
    for provider in (
        AfterShipProvider,
        SeventeenTrackProvider,
        KdniaoProvider,
        Kuaidi100Provider,
        SimulatorProvider,
    )
}


def get_provider(name: str) -> type[Provider]:
    """The adapter class registered as `name`. Raises KeyError naming the known providers."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"Unknown tracking provider {name!r}; known providers: {', '.join(sorted(REGISTRY))}."
        ) from None


def provider_for(connection: TrackingConnection) -> Provider:
    """The adapter for a connection, with its credentials, secret, base URL and webhook URL."""
    return get_provider(connection.provider)(
        credentials=connection.credentials,
        webhook_secret=connection.webhook_secret,
        base_url=connection.base_url or None,
        callback_url=connection.webhook_url,
    )


__all__ = ["REGISTRY", "get_provider", "provider_for"]
