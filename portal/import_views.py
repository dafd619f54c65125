"""Importing a Seller Center order export, for store admins: upload, the mapping step, the preview, the
confirm, the progress bar, the summary and first look, the refused rows. Every lookup goes through the
store the user administers (another store's import is a 404)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.selectors import import_first_look
from portal.models import Store
from portal.selectors import store_get_for_admin
from tracking.choices import ImportStatus
from tracking.imports.files import MAX_BYTES
from tracking.imports.formats import FIELDS, REQUIRED
from tracking.imports.service import (
    ImportError_,
    import_cancel,
    import_confirm,
    import_map,
    import_upload,
    refusals_csv,
)
from tracking.models import OrderImport

WORKING = (ImportStatus.CHECKING, ImportStatus.QUEUED, ImportStatus.RUNNING)


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Order export"),
        help_text=gettext_lazy(
            "The order export from TikTok Shop Seller Center or Shopee Seller Centre, as .csv or .xlsx, "
            "in English or Chinese."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,.txt,text/csv"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)s MB: export fewer days at a time.")
                % {"mb": MAX_BYTES // 2**20}
            )
        return upload


def _import_get(store: Store, pk: int) -> OrderImport:
    imp = OrderImport.objects.filter(store=store, pk=pk).select_related("store", "uploaded_by").first()
    if imp is None:
        raise Http404("No such import.")
    return imp


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest, code: str) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    form = UploadForm()
    status = 200
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                imp = import_upload(
                    store=store, actor=request.user, file_name=upload.name, data=upload.read()
                )
            except PermissionDenied:
                raise Http404("No such store.") from None
            return redirect("stores:import", code=store.code, pk=imp.pk)
        status = 400
    imports = OrderImport.objects.filter(store=store).select_related("uploaded_by")[:50]
    return render(request, "portal/import_list.html", {"store": store, "form": form, "imports": imports},
                  status=status)  # fmt: skip


def _mapping_rows(imp: OrderImport) -> list[dict]:
    rows = []
    for name, label in FIELDS.items():
        rows.append({
            "name": name, "label": label, "required": name in REQUIRED or name == "recipient",
            "chosen": imp.mapping.get(name),
        })  # fmt: skip
    return rows


def _detail_context(request: HttpRequest, imp: OrderImport, **extra) -> dict:
    context = {
        "store": imp.store, "imp": imp, "working": imp.status in WORKING,
        "refused_sample": list(imp.refusals.filter(
            stage="import" if imp.status in (ImportStatus.RUNNING, ImportStatus.DONE) else "preview"
        ).order_by("row")[:20]),
        **extra,
    }  # fmt: skip
    if imp.status == ImportStatus.NEEDS_MAPPING or (
        imp.status == ImportStatus.READY and request.GET.get("remap")
    ):
        context["mapping_rows"] = _mapping_rows(imp)
        samples = imp.preview.get("samples", [])
        first = samples[0] if samples else []
        context["headers"] = [
            (index, header, first[index] if index < len(first) else "")
            for index, header in enumerate(imp.headers)
        ]
        context["samples"] = samples
    if imp.status == ImportStatus.DONE:
        context["first_look"] = import_first_look(imp)
    return context


@login_required
@require_GET
def import_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    imp = _import_get(store, pk)
    context = _detail_context(request, imp)
    if request.htmx and request.GET.get("part") == "progress":
        if not context["working"]:  # finished while the page watched: show the whole result
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "portal/import_detail.html#progress", context)
    return render(request, "portal/import_detail.html", context)


@login_required
@require_POST
def import_mapping(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    imp = _import_get(store, pk)
    chosen = {}
    for name in FIELDS:
        value = request.POST.get(f"col_{name}", "")
        if value != "":
            if not value.isdigit():
                return render(request, "portal/import_detail.html",
                              _detail_context(request, imp, mapping_error=_("Choose columns from the list.")),
                              status=400)  # fmt: skip
            chosen[name] = int(value)
    try:
        import_map(imp, actor=request.user, mapping=chosen)
    except ImportError_ as exc:
        imp.mapping = chosen
        imp.status = ImportStatus.NEEDS_MAPPING
        return render(request, "portal/import_detail.html",
                      _detail_context(request, imp, mapping_error=str(exc)), status=400)  # fmt: skip
    return redirect("stores:import", code=store.code, pk=imp.pk)


@login_required
@require_POST
def import_confirm_view(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    imp = _import_get(store, pk)
    try:
        import_confirm(imp, actor=request.user)
    except ImportError_ as exc:
        messages.error(request, str(exc))
    return redirect("stores:import", code=store.code, pk=imp.pk)


@login_required
@require_POST
def import_cancel_view(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    store = store_get_for_admin(request.user, code)
    imp = _import_get(store, pk)
    try:
        import_cancel(imp, actor=request.user)
    except ImportError_ as exc:
        messages.error(request, str(exc))
        return redirect("stores:import", code=store.code, pk=imp.pk)
    messages.success(
        request, _("Import of %(name)s cancelled: nothing was written.") % {"name": imp.file_name}
    )
    return redirect("stores:imports", code=store.code)


@login_required
@require_GET
def import_refused_csv(request: HttpRequest, code: str, pk: int) -> StreamingHttpResponse:
    store = store_get_for_admin(request.user, code)
    imp = _import_get(store, pk)
    response = StreamingHttpResponse(refusals_csv(imp), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="refused-rows-{imp.pk}.csv"'
    return response
