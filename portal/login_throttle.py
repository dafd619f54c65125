"""Login throttling on top of django-axes: one limit per account, a higher one per address, a clear page.

Axes compares one failure count against one limit (AXES_FAILURE_LIMIT), the largest count over its lockout
parameters (the username's attempts, the address's attempts). A support floor signs in from one NAT address,
so the address needs a higher limit than the account, or a few agents' typos would lock the whole floor out;
LoginThrottleHandler gives it LOGIN_FAILURE_LIMIT_PER_IP. Everything else (the AccessAttempt rows, the
AccessFailureLog audit rows, the cool-off, the reset on success) is axes' own.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_parameters, get_client_username
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


class LoginThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler, with the per-address limit counted against its own, higher threshold."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # Answered in the account limit's units, since axes compares the answer with AXES_FAILURE_LIMIT:
        # the account's own count, or the account limit itself once the address has reached its limit.
        parameters = get_client_parameters(
            get_client_username(request, credentials),
            request.axes_ip_address,
            request.axes_user_agent,
            request,
            credentials,
        )
        worst = 0
        for filters, attempts in zip(parameters, self.get_user_attempts(request, credentials), strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            if set(filters) == {"ip_address"}:
                failures = (
                    settings.AXES_FAILURE_LIMIT if failures >= settings.LOGIN_FAILURE_LIMIT_PER_IP else 0
                )
            worst = max(worst, failures)
        return worst


def client_ip(request: HttpRequest) -> str | None:
    """The address a login comes from: behind our TLS proxy (BEHIND_TLS_PROXY), the one it appended last to
    X-Forwarded-For (the entries before it are whatever the client sent, and a client could name any address
    there to dodge the per-address limit); otherwise the socket's peer."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.SECURE_PROXY_SSL_HEADER and forwarded:
        return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The login page again, saying why the login is refused and for how long (429, as axes answers)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    username = get_client_username(request, credentials) or ""
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next", request.GET.get("next", "")),
        "locked_out": ngettext(
            "Too many failed logins for this account or from this address. Logging in is blocked for "
            "%(minutes)d minute; try again then, or ask an administrator to unblock it.",
            "Too many failed logins for this account or from this address. Logging in is blocked for "
            "%(minutes)d minutes; try again then, or ask an administrator to unblock it.",
            minutes,
        )
        % {"minutes": minutes},
        "title": _("Log in"),
    }
    return render(request, "registration/login.html", context, status=429)
