"""Middleware of our own."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

View = Callable[..., HttpResponse]


def machine_endpoint(view: View) -> View:
    """Mark a view as called by machines only (a provider's webhook): no cookies, no session, no user.

    Under MachineEndpointMiddleware such a view skips the browser middleware listed after it (sessions,
    locale, CSRF, authentication, messages, clickjacking, htmx), which would each do work per request for
    a caller that has none of what they serve. The view must therefore not use request.session,
    request.user, messages or request.htmx, and is CSRF-exempt (its callers authenticate by signature).
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return view(request, *args, **kwargs)

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
