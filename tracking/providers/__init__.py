"""Tracking providers: one adapter module per provider, found by name through `REGISTRY`.

Each adapter implements `tracking.providers.base.Provider` (verify a push, parse a push, fetch a batch) and
never touches the database; `tracking.ingest` does.
"""

from __future__ import annotations

from tracking.providers.aftership import AfterShipProvider
from tracking.providers.base import Provider
from tracking.providers.kdniao import KdniaoProvider
from tracking.providers.kuaidi100 import Kuaidi100Provider
from tracking.providers.seventeentrack import SeventeenTrackProvider
from tracking.providers.simulator import SimulatorProvider

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


__all__ = ["REGISTRY", "get_provider"]
