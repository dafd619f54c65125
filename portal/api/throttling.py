"""Per-key rate limits (settings.API_RATE_LIMIT, e.g. "1200/min"): 429 with Retry-After past it. Counted in
the cache (shared by every process when REDIS_URL is set; per process otherwise)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from portal.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT or None

    def get_cache_key(self, request, view) -> str | None:
        key = request.auth
        if not isinstance(key, ApiKey):
            return None  # authentication refuses it first
        return f"throttle:api:{key.key_hash[:24]}"
