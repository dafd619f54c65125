"""Middleware of our own."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

View = Callable[..., HttpResponse]
log = logging.getLogger(__name__)

# Seconds a machine caller is asked to wait when the database is unreachable: a restart or failover takes a
# few seconds, and every provider retries a 503 later with the same payload.
DATABASE_RETRY_AFTER = 5


def machine_endpoint(view: View) -> View:
    """Mark a view as called by machines only (a provider's webhook): no cookies, no session, no user.

    Under MachineEndpointMiddleware such a view skips the browser middleware listed after it (sessions,
    locale, CSRF, authentication, messages, clickjacking, htmx), which would each do work per request for
    a caller that has none of what they serve. The view must therefore not use request.session,
    request.user, messages or request.htmx, and is CSRF-exempt (its callers authenticate by signature).

    While the database is unreachable (restarting, failing over: OperationalError or InterfaceError), the
    view answers 503 with Retry-After instead of a 500: the caller (a provider) retries later with the same
    payload, and nothing was stored, since a 2xx is only sent once the write is committed. Django replaces
    the broken connection on the next request (CONN_HEALTH_CHECKS), so the endpoint recovers by itself.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            log.warning("database unavailable, %s answered 503: %s", request.path, exc)
            response = JsonResponse(
                {"error": "Temporarily unavailable: the database cannot be reached. Retry later."}, status=503
            )
            response["Retry-After"] = str(DATABASE_RETRY_AFTER)
            return response

    wrapped.csrf_exempt = True  # type: ignore[attr-defined]  # the same view through the full stack
    wrapped.machine_endpoint = True  # type: ignore[attr-defined]
    return wrapped


class MachineEndpointMiddleware:
    """Call a @machine_endpoint view directly, skipping the middleware after this one.

    Only paths under settings.MACHINE_ENDPOINT_PREFIXES are resolved here (every other request pays one
    string comparison). A path that does not resolve, or resolves to an ordinary view, goes down the normal
    stack, so 404s and APPEND_SLASH behave as before. Exceptions from the view are turned into responses by
    Django's handler around this middleware, as for any view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.prefixes = tuple(getattr(settings, "MACHINE_ENDPOINT_PREFIXES", ()))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.prefixes and request.path_info.startswith(self.prefixes):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                return self.get_response(request)
            if getattr(match.func, "machine_endpoint", False):
                request.resolver_match = match
                return match.func(request, *match.args, **match.kwargs)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Send the Permissions-Policy header built from settings.PERMISSIONS_POLICY ({feature: [origins]}).

    An empty origin list refuses the feature to the page and to every frame in it (`camera=()`), so an
    injected script or a framed page cannot ask for the camera, the microphone, the location or a payment.
    Django's SecurityMiddleware sends the other security headers but not this one; the header is built once.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.header = ", ".join(
            f"{feature}=({' '.join(origins)})" for feature, origins in settings.PERMISSIONS_POLICY.items()
        )

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.header:
            response.headers.setdefault("Permissions-Policy", self.header)
        return response


SESSION_ACTIVE_KEY = "_afterdesk_active_at"
SESSION_REFRESH_SECONDS = 60


def session_mark_active(sender, request: HttpRequest | None = None, **kwargs) -> None:
    """On login: the session starts its idle count now (saved with the login's own session write)."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_ACTIVE_KEY] = int(time.time())


class IdleSessionMiddleware:
    """Restart a signed-in session's idle count (SESSION_COOKIE_AGE) on activity, at most once a minute.

    A session is saved, and its expiry pushed SESSION_COOKIE_AGE ahead (in the store and on the cookie), only
    when it is modified. Touching it once SESSION_REFRESH_SECONDS have passed since the last touch keeps an
    active session alive with one write a minute, where SESSION_SAVE_EVERY_REQUEST would write on every
    request (three queries each); the session ends between SESSION_COOKIE_AGE minus a minute and
    SESSION_COOKIE_AGE after the last request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.session_key is not None:
            active_at = session.get(SESSION_ACTIVE_KEY)
            now = int(time.time())
            # A signed-in session from before this middleware has no mark: it gets one on its first request.
            signed_in = active_at is not None or "_auth_user_id" in session
            if signed_in and now - (active_at or 0) >= SESSION_REFRESH_SECONDS:
                session[SESSION_ACTIVE_KEY] = now
        return self.get_response(request)
