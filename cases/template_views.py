"""The template library (/cases/templates/): supervisors and admins manage their stores' buyer message
templates in the workspace. Agents get 403 on every page; another store's template is a 404 on every path
(template_get_for_user); the global defaults are read-only for everyone but superusers. The rules live in
cases.messages (template_save, template_duplicate, template_preview); these views only validate and render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from cases.forms import TemplateDuplicateForm, TemplateFilterForm, TemplateForm, TemplatePreviewForm
from cases.messages import template_duplicate, template_preview, template_save
from cases.models import MessageTemplate
from cases.selectors import (
    template_get_for_user,
    template_sample_case_for_user,
    template_stores_for_user,
    templates_for_user,
    user_manages_templates,
)
from cases.validators import PLACEHOLDERS, MessageTemplateError, template_errors

FIELDS = ("store", "case_type", "language", "channel", "name", "subject", "body", "is_active")


def _manager_require(request: HttpRequest) -> None:
    if not user_manages_templates(request.user):
        raise PermissionDenied(_("Only supervisors and admins manage message templates."))


def _can_edit(request: HttpRequest, template: MessageTemplate) -> bool:
    return template.store_id is not None or request.user.is_superuser


def _template_form(request: HttpRequest, form_class=TemplateForm, **kwargs: Any) -> TemplateForm:
    return form_class(
        stores=template_stores_for_user(request.user), allow_global=request.user.is_superuser, **kwargs
    )


def _list_context(request: HttpRequest, form: TemplateFilterForm) -> dict[str, Any]:
    filters = form.cleaned_data if form.is_bound else {}
    return {
        "form": form,
        "templates": templates_for_user(request.user, filters=filters),
        "stores": list(template_stores_for_user(request.user)),
        "query": request.GET.urlencode(),
    }


@require_GET
@never_cache
@vary_on_headers("HX-Request")
@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    _manager_require(request)
    form = TemplateFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "cases/template_list.html", {"form": form, "templates": None}, status=400)
    context = _list_context(request, form)
    if request.htmx:
        return render(request, "cases/template_list.html#template-table", context)
    return render(request, "cases/template_list.html", context)


def _form_page(
    request: HttpRequest, form: TemplateForm, *, template: MessageTemplate | None = None, status: int = 200,
    error: str = "",
) -> HttpResponse:  # fmt: skip
    editable = template is None or _can_edit(request, template)
    if not editable:
        for field in form.fields.values():
            field.disabled = True
    context = {
        "form": form,
        "template": template,
        "editable": editable,
        "error": error,
        "placeholders": PLACEHOLDERS.items(),
        "duplicate_form": TemplateDuplicateForm(stores=template_stores_for_user(request.user))
        if template is not None and template.store_id is None
        else None,
    }
    return render(request, "cases/template_form.html", context, status=status)


def _save(request: HttpRequest, form: TemplateForm, template: MessageTemplate | None) -> HttpResponse:
    if not form.is_valid():
        return _form_page(request, form, template=template, status=400)
    data = {name: form.cleaned_data.get(name) for name in FIELDS}
    try:
        saved = template_save(actor=request.user, template=template, data=data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _form_page(request, form, template=template, status=400)
    except PermissionDenied as exc:
        return _form_page(request, form, template=template, status=403, error=str(exc))
    messages.success(request, _("Template “%(name)s” saved.") % {"name": saved.name})
    return redirect("cases:template_edit", pk=saved.pk)


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def template_new(request: HttpRequest) -> HttpResponse:
    _manager_require(request)
    if request.method == "POST":
        return _save(request, _template_form(request, data=request.POST), None)
    initial = {k: v for k, v in request.GET.items() if k in ("case_type", "language", "channel")}
    return _form_page(request, _template_form(request, initial={"is_active": True, **initial}))


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _manager_require(request)
    template = template_get_for_user(request.user, pk)
    if request.method == "POST":
        if not _can_edit(request, template):
            form = _template_form(request, initial={name: getattr(template, name) for name in FIELDS})
            error = _("This is a global default: it is read-only. Duplicate it into your store to edit it.")
            return _form_page(request, form, template=template, status=403, error=error)
        return _save(request, _template_form(request, data=request.POST), template)
    form = _template_form(request, initial={name: getattr(template, name) for name in FIELDS})
    return _form_page(request, form, template=template)


@require_POST
@login_required
def template_duplicate_view(request: HttpRequest, pk: int) -> HttpResponse:
    _manager_require(request)
    template = template_get_for_user(request.user, pk)
    form = TemplateDuplicateForm(request.POST, stores=template_stores_for_user(request.user))
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("cases:template_edit", pk=template.pk)
    copy = template_duplicate(actor=request.user, template=template, store=form.cleaned_data["store"])
    messages.success(
        request,
        _("Copied into %(store)s as “%(name)s”: edit the store's own version here.")
        % {"store": copy.store.name, "name": copy.name},
    )
    return redirect("cases:template_edit", pk=copy.pk)


@require_POST
@login_required
def template_active_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Switch a template off (or back on). Templates are never deleted: sent messages point at them."""
    _manager_require(request)
    template = template_get_for_user(request.user, pk)
    data = {name: getattr(template, name) for name in FIELDS}
    data["is_active"] = request.POST.get("active") == "1"
    template_save(actor=request.user, template=template, data=data)
    done = (
        _("Template “%(name)s” switched on.") if data["is_active"] else _("Template “%(name)s” switched off.")
    )
    messages.success(request, done % {"name": template.name})
    back = request.POST.get("next", "")
    if back.startswith(reverse("cases:template_list")) or back.startswith(
        reverse("cases:template_edit", args=[pk])
    ):
        return redirect(back)
    return redirect("cases:template_list")


@require_POST
@login_required
def template_preview_view(request: HttpRequest) -> HttpResponse:
    """The half-written template rendered against the newest case of its type in the user's stores (sample
    values when there is none), with the placeholders that had no value and any error in the text."""
    _manager_require(request)
    form = _template_form(request, TemplatePreviewForm, data=request.POST)
    context: dict[str, Any] = {}
    status = 200
    if not form.is_valid():
        status, context["preview_errors"] = 400, [e for errors in form.errors.values() for e in errors]
    else:
        data = form.cleaned_data
        draft = MessageTemplate(
            case_type=data["case_type"], language=data["language"], channel=data["channel"],
            subject=data["subject"], body=data["body"],
        )  # fmt: skip
        errors = template_errors(subject=draft.subject if draft.channel == "email" else "", body=draft.body)
        if errors:
            status, context["preview_errors"] = 400, list(errors.values())
        else:
            store = data.get("store")
            case = template_sample_case_for_user(
                request.user, case_type=draft.case_type, store_id=store.pk if store else None
            )
            try:
                context.update(preview=template_preview(template=draft, case=case), sample_case=case)
            except MessageTemplateError as exc:
                status, context["preview_errors"] = 400, [str(exc)]
    return render(request, "cases/template_form.html#template-preview", context, status=status)
