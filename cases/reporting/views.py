"""/reports/: the supervisor's figures (exceptions, service, money, agents) with every filter in the URL, and
each table as a streamed CSV. Thin: the figures come from cases.reporting.selectors (rollups only)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from cases.choices import CaseType
from cases.reporting.selectors import (
    PRESETS,
    TABLE_SECTIONS,
    Filters,
    Table,
    filter_suggestions,
    live_sessions_for_report,
    period_for,
    report_build,
    report_store_ids,
    report_stores,
)
from cases.templatetags.reports import cell_text
from tracking.imports.service import csv_safe

MAX_DAYS = 366


class ReportFilterForm(forms.Form):
    store = forms.ChoiceField(label=gettext_lazy("Store"), required=False)
    period = forms.ChoiceField(label=gettext_lazy("Period"), choices=list(PRESETS.items()), required=False)
    start = forms.DateField(label=gettext_lazy("From"), required=False)
    end = forms.DateField(label=gettext_lazy("To"), required=False)
    carrier = forms.CharField(label=gettext_lazy("Carrier"), max_length=40, required=False)
    type = forms.ChoiceField(label=gettext_lazy("Case type"), required=False)
    live = forms.ChoiceField(label=gettext_lazy("Live session"), required=False)
    sku = forms.CharField(label=gettext_lazy("SKU"), max_length=64, required=False)
    region = forms.CharField(label=gettext_lazy("Destination"), max_length=80, required=False)

    def __init__(self, data, *, user):
        super().__init__(data)
        self.stores = list(report_stores(user))
        for name in ("carrier", "region", "sku"):  # typed, with the known values suggested (<datalist>)
            self.fields[name].widget.attrs["list"] = f"suggest-{name}"
        self.fields["store"].choices = [("", _("All my stores"))] + [(s.code, s.name) for s in self.stores]
        self.fields["type"].choices = [("", _("All types")), *list(CaseType.choices)]
        sessions = live_sessions_for_report(s.pk for s in self.stores)[:100]
        self.fields["live"].choices = [("", _("Any"))] + [(str(s.pk), s.title) for s in sessions]

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        preset = data.get("period") or "28d"
        if preset == "custom" or data.get("start") or data.get("end"):
            start, end = data.get("start"), data.get("end")
            if not start or not end:
                raise forms.ValidationError(_("A custom period needs both a first and a last day."))
            if start > end:
                raise forms.ValidationError(_("The period's first day is after its last day."))
            if (end - start).days >= MAX_DAYS:
                raise forms.ValidationError(_("A period is at most %(days)d days long.") % {"days": MAX_DAYS})
            data["period"] = "custom"
        else:
            data["start"], data["end"] = period_for(preset, today=today)
            data["period"] = preset
        return data

    def filters(self, user) -> Filters:
        ids, manager = report_store_ids(user)
        data = self.cleaned_data
        if data.get("store"):
            ids = [s.pk for s in self.stores if s.code == data["store"]]
        return Filters(
            store_ids=ids, start=data["start"], end=data["end"], carrier=data.get("carrier", "").strip(),
            case_type=data.get("type") or "", live_session_id=int(data["live"]) if data.get("live") else None,
            sku=data.get("sku", "").strip(), region=data.get("region", "").strip(),
            agent_id=None if manager else user.pk,
        )  # fmt: skip


def _form(request: HttpRequest) -> ReportFilterForm:
    data = request.GET.copy()
    if not data.get("period") and not (data.get("start") or data.get("end")):
        data["period"] = "28d"
    return ReportFilterForm(data, user=request.user)


@login_required
@require_GET
def report_page(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if not form.stores:
        raise Http404(_("You are not a member of any store."))
    if not form.is_valid():
        return render(request, "reports/index.html", {"form": form, "report": None}, status=400)
    _ids, manager = report_store_ids(request.user)
    filters = form.filters(request.user)
    report = report_build(filters, manager=manager)
    suggestions = filter_suggestions(filters.store_ids, since=filters.start) if manager else {}
    query = request.GET.urlencode()
    return render(
        request,
        "reports/index.html",
        {"form": form, "report": report, "query": query, "suggest": suggestions},
    )


def _csv_lines(table: Table) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        return text

    yield "\ufeff"  # spreadsheets read the UTF-8 (Chinese names) right with the byte order mark
    writer.writerow([csv_safe(c.label) for c in table.columns])
    yield flush()
    for row in table.rows:
        cells = []
        for column, value in zip(table.columns, row, strict=False):
            if isinstance(value, int | float | Decimal) and column.kind != "minutes":
                cells.append("" if value is None else str(value))
            elif column.kind == "minutes":
                cells.append("" if value is None else f"{value:.0f}")
            else:
                cells.append(csv_safe(cell_text(value, column.kind)))
        writer.writerow(cells)
        yield flush()


@login_required
@require_GET
def report_csv(request: HttpRequest, table: str) -> HttpResponse:
    if table not in TABLE_SECTIONS:
        raise Http404(_("No such table."))
    form = _form(request)
    if not form.stores:
        raise Http404(_("You are not a member of any store."))
    if not form.is_valid():
        return HttpResponse(" ".join(form.non_field_errors() + [str(e) for e in form.errors.values()]),
                            status=400, content_type="text/plain; charset=utf-8")  # fmt: skip
    _ids, manager = report_store_ids(request.user)
    filters = form.filters(request.user)
    report = report_build(filters, manager=manager, only=table)
    if table not in report.tables:
        raise Http404(_("No such table."))
    response = StreamingHttpResponse(_csv_lines(report.tables[table]), content_type="text/csv; charset=utf-8")
    name = f"afterdesk-{table}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
