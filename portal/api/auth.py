"""Who is calling: a store's API key, as `Authorization: Bearer <key>`; and what it may do: its scopes."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from portal.models import ApiKey
from portal.selectors import api_key_for_secret

# last_used_at is written at most this often per key: a bulk import of 100 requests is one write, not 100.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`. A missing, unknown or revoked key is a 401 (the same answer for
    each, so nothing about other keys can be learned); request.user and request.auth are the ApiKey."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[ApiKey, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != self.keyword or not secret.strip():
            raise exceptions.AuthenticationFailed(
                "Send the store's API key as `Authorization: Bearer <key>`."
            )
        key = api_key_for_secret(secret.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key, key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class KeyScopePermission(permissions.BasePermission):
    """A key reads with `read`; anything but GET, HEAD and OPTIONS needs `write` (403 otherwise)."""

    message = "This API key is read-only; writing needs a key with the write scope."

    def has_permission(self, request: Request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("Send the store's API key as `Authorization: Bearer <key>`.")
        if request.method in permissions.SAFE_METHODS:
            return "read" in key.scopes or key.can_write
        return key.can_write
