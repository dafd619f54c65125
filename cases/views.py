from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from cases.choices import CaseType
from cases.forms import OPEN, CaseFilterForm
from cases.selectors import case_children, case_get_for_user, case_page, case_timeline, cases_for_user
from portal.selectors import stores_for_user
from tracking.selectors import shipment_timeline

BUYERS_SHOWN = 50


@require_GET
@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    form = CaseFilterForm(request.GET or None, stores=stores_for_user(request.user))
    if form.is_bound and not form.is_valid():
        context = {"form": form, "page": None}
        return render(request, "cases/case_list.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    cases = cases_for_user(
        request.user,
        status=data.get("status") or OPEN,
        type=data.get("type") or None,
        store_id=data["store"].pk if data.get("store") else None,
        search=data.get("q", ""),
    )
    page = case_page(cases, after=int(data["after"]) if data.get("after") else None)
    query = request.GET.copy()
    query.pop("after", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "is_first_page": not data.get("after")}
    template = "cases/case_list.html#case-table" if request.htmx else "cases/case_list.html"
    return render(request, template, context)


@require_GET
@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    context = {
        "case": case,
        "order": case.order,
        "lines": case.order.lines.all() if case.order else [],
        "tracking": shipment_timeline(case.shipment) if case.shipment else [],
        "timeline": case_timeline(case),
        "triggers": case.trigger_events.order_by("checkpoint_at"),
        "facts": {k: v for k, v in case.facts.items() if not isinstance(v, list | dict)},
        "children": case_children(case) if case.type == CaseType.QUALITY_BATCH else [],
        "buyers": case.facts.get("buyers", [])[:BUYERS_SHOWN],
    }
    return render(request, "cases/case_detail.html", context)
