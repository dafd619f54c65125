from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from cases.integration import IntegrationError, endpoint_create, endpoint_delete, endpoint_update
from cases.outbox import delivery_redeliver
from cases.selectors import (
    delivery_get_for_endpoint,
    endpoint_deliveries,
    endpoint_get_for_store,
    endpoints_for_store,
)
from portal.choices import Role
from portal.forms import ApiKeyForm, MemberAddForm, MemberRoleForm, StoreSettingsForm, WebhookEndpointForm
from portal.models import Store
from portal.selectors import (
    api_key_get_for_store,
    api_keys_for_store,
    store_get_for_admin,
    store_members,
    store_membership_get,
    store_rows_for_user,
    user_is_store_admin,
)
from portal.services import (
    STORE_EDITABLE_FIELDS,
    MembershipError,
    api_key_create,
    api_key_revoke,
    member_add,
    member_remove,
    member_set_role,
    store_update,
)
from tracking.selectors import connections_for_store, pushes_waiting


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `make run` users alike; and whether the
    background worker keeps up with the carriers' pushes (a worker behind is reported, still with 200: this
    web process is healthy, and a load balancer must not take it out of rotation for that)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        backlog = pushes_waiting()
    except Exception as exc:  # the probe must answer, whatever broke
        return JsonResponse({"status": "error", "database": str(exc.__class__.__name__)}, status=503)
    if backlog is None:
        return JsonResponse({"status": "ok", "database": "ok", "worker": "ok"})
    return JsonResponse({
        "status": "degraded", "database": "ok", "worker": "behind",
        "pushes_waiting": f"{backlog.waiting}{'+' if backlog.more else ''}",
        "oldest_waiting_since": backlog.oldest_at.isoformat(),
    })  # fmt: skip


@require_GET
@never_cache
def livez(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches nothing else (also the benchmarks' trivial-view baseline)."""
    return JsonResponse({"status": "ok"})


# --- store administration (/stores/) ---------------------------------------------------------------
# Admins of a store (and superusers) manage it here. Every path looks the store up through
# store_get_for_admin, so another store, or a store the user is only an agent or supervisor of, is a 404.
# The rules (who may act, the last admin) live in portal.services; these views validate and render.


def _flash_oob(request: HttpRequest) -> str:
    return render_to_string("_flash.html", {"oob": True}, request=request)


def _store_context(
    request: HttpRequest,
    store: Store,
    *,
    settings_form: StoreSettingsForm | None = None,
    add_form: MemberAddForm | None = None,
) -> dict[str, Any]:
    if settings_form is None:
        settings_form = StoreSettingsForm(
            initial={name: getattr(store, name) for name in STORE_EDITABLE_FIELDS}
        )
    return {
        "store": store,
        "settings_form": settings_form,
        "add_form": add_form if add_form is not None else MemberAddForm(),
        "members": list(store_members(store)),
        "roles": Role.choices,
        "tracking_connections": connections_for_store(store.pk),
        # Querysets, read only where rendered: a members partial does not pay for the API section.
        "api_keys": api_keys_for_store(store),
        "key_form": ApiKeyForm(),
        "webhook_endpoints": endpoints_for_store(store),
        "endpoint_form": WebhookEndpointForm(),
    }


def _members_response(
    request: HttpRequest, store: Store, *, add_form: MemberAddForm | None = None, status: int = 200
) -> HttpResponse:
    """After a member action: the refreshed members partial and the flash for HTMX, the page otherwise (a
    redirect after a success, the page with the error in it after a refusal). When the actor has just
    taken away their own admin role, the store is no longer theirs to see: back to the store list."""
    if not user_is_store_admin(request.user, store):
        if request.htmx:
            return HttpResponseClientRedirect(reverse("stores:list"))
        return redirect("stores:list")
    if request.htmx:
        context = _store_context(request, store, add_form=add_form)
        html = render_to_string("portal/store_detail.html#store-members", context, request=request)
        return HttpResponse(html + _flash_oob(request), status=status)
    if status >= 400:
        context = _store_context(request, store, add_form=add_form)
        return render(request, "portal/store_detail.html", context, status=status)
    return redirect("stores:detail", code=store.code)


def _form_error(form: forms.Form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


@require_GET
@never_cache
@login_required
def store_list(request: HttpRequest) -> HttpResponse:
    rows = [
        (store, Role(role).label if role else None, manages)
        for store, role, manages in store_rows_for_user(request.user)
    ]
    return render(request, "portal/store_list.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def store_detail(request: HttpRequest, code: str) -> HttpResponse:
    """The store's settings and members. A POST saves the settings (the member actions post elsewhere)."""
    store = store_get_for_admin(request.user, code)
    if request.method == "GET":
        return render(request, "portal/store_detail.html", _store_context(request, store))
    form = StoreSettingsForm(request.POST)
    if form.is_valid():
        try:
            store = store_update(store=store, actor=request.user, data=form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("Saved the settings of %(store)s.") % {"store": store.name})
            return redirect("stores:detail", code=store.code)
    context = _store_context(request, store, settings_form=form)
    return render(request, "portal/store_detail.html", context, status=400)


@require_POST
@login_required
def store_member_add(request: HttpRequest, code: str) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _members_response(request, store, add_form=form, status=400)
    try:
        membership = member_add(
            store=store,
            actor=request.user,
            username_or_email=form.cleaned_data["username_or_email"],
            role=form.cleaned_data["role"],
        )
    except MembershipError as exc:
        form.add_error("username_or_email", exc)
        return _members_response(request, store, add_form=form, status=400)
    messages.success(
        request,
        _("Added %(username)s as %(role)s.")
        % {"username": membership.user.get_username(), "role": _role_name(membership.role)},
    )
    return _members_response(request, store)


@require_POST
@login_required
def store_member_role(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    membership = store_membership_get(store, pk)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return _members_response(request, store, status=400)
    before = membership.role
    try:
        member_set_role(membership=membership, actor=request.user, role=form.cleaned_data["role"])
    except MembershipError as exc:
        messages.error(request, " ".join(exc.messages))
        return _members_response(request, store, status=400)
    username = membership.user.get_username()
    if membership.role == before:
        messages.info(
            request,
            _("%(username)s is already %(role)s.") % {"username": username, "role": _role_name(before)},
        )
    else:
        messages.success(
            request,
            _("%(username)s is now %(role)s.") % {"username": username, "role": _role_name(membership.role)},
        )
    return _members_response(request, store)


@require_POST
@login_required
def store_member_remove(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    membership = store_membership_get(store, pk)
    try:
        member_remove(membership=membership, actor=request.user)
    except MembershipError as exc:
        messages.error(request, " ".join(exc.messages))
        return _members_response(request, store, status=400)
    messages.success(
        request,
        _("Removed %(username)s from %(store)s.")
        % {"username": membership.user.get_username(), "store": store.name},
    )
    return _members_response(request, store)


def _role_name(role: str) -> str:
    """The role's label as it reads inside a sentence ("Added lee as supervisor")."""
    return str(Role(role).label).lower()


# --- the storefront API: keys and webhook endpoints (/stores/<code>/api-keys/, /stores/<code>/webhooks/) ---


def _api_response(request: HttpRequest, store: Store, *, status: int = 200, **extra: Any) -> HttpResponse:
    """After an API key or endpoint action: the refreshed section (with a new secret to copy once, or a
    form's errors) for HTMX; the whole page otherwise."""
    context = {**_store_context(request, store), **extra}
    if request.htmx:
        html = render_to_string("portal/store_detail.html#store-api", context, request=request)
        return HttpResponse(html + _flash_oob(request), status=status)
    return render(request, "portal/store_detail.html", context, status=status)


@require_POST
@login_required
def store_api_key_create(request: HttpRequest, code: str) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _api_response(request, store, status=400, key_form=form)
    try:
        key, secret = api_key_create(
            store=store,
            name=form.cleaned_data["name"],
            read_only=form.cleaned_data["read_only"],
            actor=request.user,
        )
    except ValidationError as exc:
        form.add_error("name", exc.messages)
        return _api_response(request, store, status=400, key_form=form)
    return _api_response(request, store, new_key=key, new_secret=secret)


@require_POST
@login_required
def store_api_key_revoke(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    key = api_key_get_for_store(store, pk)
    if api_key_revoke(key=key, actor=request.user):
        messages.success(
            request, _("Revoked the API key %(name)s: it is refused from now on.") % {"name": key.name}
        )
    return _api_response(request, store)


@require_POST
@login_required
def store_webhook_create(request: HttpRequest, code: str) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    form = WebhookEndpointForm(request.POST)
    if not form.is_valid():
        return _api_response(request, store, status=400, endpoint_form=form)
    try:
        endpoint = endpoint_create(
            store=store, url=form.cleaned_data["url"], event_types=form.cleaned_data["event_types"],
            description=form.cleaned_data["description"], actor=request.user,
        )  # fmt: skip
    except IntegrationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return _api_response(request, store, status=400, endpoint_form=form)
    return _api_response(request, store, new_endpoint=endpoint)


WEBHOOK_LOG_ROWS = 50


def _webhook_page(
    request: HttpRequest, store: Store, endpoint, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context = {
        "store": store,
        "endpoint": endpoint,
        "deliveries": list(endpoint_deliveries(endpoint)[:WEBHOOK_LOG_ROWS]),
        "signature_header": "Afterdesk-Signature",
        **extra,
    }
    return render(request, "portal/webhook_endpoint.html", context, status=status)


@require_GET
@never_cache
@login_required
def store_webhook_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """One endpoint: its settings, the receiver's verification recipe and its delivery log."""
    store = store_get_for_admin(request.user, code)
    return _webhook_page(request, store, endpoint_get_for_store(store, pk))


@require_POST
@login_required
def store_webhook_change(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """Switch the endpoint off or on, roll its secret, or remove it (the `action` posted)."""
    store = store_get_for_admin(request.user, code)
    endpoint = endpoint_get_for_store(store, pk)
    action = request.POST.get("action", "")
    if action == "delete":
        endpoint_delete(endpoint=endpoint)
        messages.success(request, _("Removed the webhook endpoint %(url)s.") % {"url": endpoint.url})
        return redirect("stores:detail", code=store.code)
    if action not in ("activate", "deactivate", "roll"):
        messages.error(request, _("Unknown action."))
        return _webhook_page(request, store, endpoint, status=400)
    try:
        endpoint_update(
            endpoint=endpoint,
            is_active={"activate": True, "deactivate": False}.get(action),
            roll_secret=action == "roll",
        )
    except IntegrationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _webhook_page(request, store, endpoint, status=400)
    if action == "roll":
        return _webhook_page(request, store, endpoint, new_secret=endpoint.secret)
    messages.success(request, _("The endpoint is on.") if endpoint.is_active else _("The endpoint is off."))
    return redirect("stores:webhook", code=store.code, pk=endpoint.pk)


@require_POST
@login_required
def store_webhook_redeliver(request: HttpRequest, code: str, pk: int, delivery_pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    endpoint = endpoint_get_for_store(store, pk)
    delivery = delivery_redeliver(delivery=delivery_get_for_endpoint(endpoint, delivery_pk))
    messages.success(
        request, _("Event %(event)s will be sent again within a minute.") % {"event": delivery.event_id}
    )
    return redirect("stores:webhook", code=store.code, pk=endpoint.pk)
