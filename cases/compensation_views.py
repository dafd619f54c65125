"""The supervisors' money pages: the approval queue (/cases/approvals/), the carrier claims queue
(/cases/claims/) and the ledger and claims CSV exports. Every row comes through a selector scoped to the
stores the user supervises or administers; another store's row is a 404, an agent sees none."""

from __future__ import annotations

import csv
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from cases.choices import ClaimStatus
from cases.compensation import CompensationError, claim_move, compensation_approve, compensation_reject
from cases.forms import ClaimMoveForm, LedgerForm, RejectForm
from cases.models import Compensation
from cases.selectors import approvals_for_user, claim_get_for_user, claims_for_user, compensation_get_for_user
from cases.workflow import MANAGER_ROLES
from portal.selectors import store_ids_with_roles, stores_for_user
from tracking.imports.service import csv_safe

BULK_APPROVE_MAX = 100


def _manager_require(request: HttpRequest) -> None:
    if not store_ids_with_roles(request.user, MANAGER_ROLES):
        raise PermissionDenied(_("The approval queue and the claims are for supervisors and admins."))


@require_GET
@never_cache
@login_required
def approvals_view(request: HttpRequest) -> HttpResponse:
    """Proposals over their proposer's limits, oldest first: approve, reject with a reason, or approve many."""
    _manager_require(request)
    pending = list(approvals_for_user(request.user)[:500])
    return render(request, "cases/approvals.html", {"pending": pending, "reject_form": RejectForm()})


@require_POST
@login_required
def approvals_decide_view(request: HttpRequest) -> HttpResponse:
    """Approve the ticked proposals, or reject one with a reason. Each refusal is reported by itself."""
    _manager_require(request)
    action = request.POST.get("action", "")
    ids = [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()][:BULK_APPROVE_MAX]
    if action == "reject":
        form = RejectForm(request.POST)
        if not form.is_valid() or len(ids) != 1:
            messages.error(request, _("Reject one proposal at a time, with the reason the agent will read."))
            return redirect("cases:approvals")
    elif action != "approve" or not ids:
        messages.error(request, _("Tick the proposals to approve."))
        return redirect("cases:approvals")
    done, refused = 0, []
    for pk in ids:
        compensation = compensation_get_for_user(request.user, pk)
        try:
            if action == "approve":
                compensation_approve(compensation=compensation, actor=request.user)
            else:
                compensation_reject(
                    compensation=compensation, actor=request.user, reason=form.cleaned_data["reason"]
                )
            done += 1
        except (CompensationError, PermissionDenied) as exc:
            refused.append(f"#{pk}: {exc}")
    if done:
        text = (
            ngettext("Approved %(count)d proposal.", "Approved %(count)d proposals.", done)
            if action == "approve"
            else ngettext("Rejected %(count)d proposal.", "Rejected %(count)d proposals.", done)
        )
        messages.success(request, text % {"count": done})
    for refusal in refused[:5]:
        messages.error(request, refusal)
    return redirect("cases:approvals")


@require_GET
@never_cache
@login_required
def claims_view(request: HttpRequest) -> HttpResponse:
    """Claims against carriers, nearest deadline first; a status filter in the URL."""
    _manager_require(request)
    status = request.GET.get("status", "")
    if status and status not in ClaimStatus.values:
        status = ""
    claims = list(claims_for_user(request.user, status=status)[:500])
    today = timezone.localdate()
    for claim in claims:
        claim.days_left = (claim.deadline - today).days
    return render(
        request, "cases/claims.html",
        {"claims": claims, "status": status, "statuses": ClaimStatus.choices, "move_form": ClaimMoveForm()},
    )  # fmt: skip


@require_POST
@login_required
def claim_move_view(request: HttpRequest, pk: int) -> HttpResponse:
    _manager_require(request)
    claim = claim_get_for_user(request.user, pk)
    form = ClaimMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("cases:claims")
    data = form.cleaned_data
    try:
        claim_move(claim=claim, to_status=data["to_status"], actor=request.user, reference=data["reference"],
                   recovered=data["recovered"], note=data["note"])  # fmt: skip
    except (CompensationError, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("Claim #%(id)d: %(status)s.")
            % {"id": claim.pk, "status": ClaimStatus(data["to_status"]).label},
        )
    return redirect("cases:claims")


def _csv_response(name: str) -> tuple[HttpResponse, csv.writer]:
    """A CSV download. Its callers put every cell through csv_safe: a reason or an order id the storefront
    sent may start like a spreadsheet formula."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")  # Excel reads UTF-8 (Chinese and Thai names) only with the BOM
    return response, csv.writer(response)


@require_GET
@login_required
def claims_export_view(request: HttpRequest) -> HttpResponse:
    """The claims in the carriers' usual columns: order, tracking number, date, reason, amount."""
    _manager_require(request)
    status = request.GET.get("status", "")
    response, writer = _csv_response("carrier-claims.csv")
    writer.writerow(["carrier", "order_id", "tracking_number", "case_opened", "reason", "amount_claimed", "currency",
                     "deadline", "status", "amount_recovered", "carrier_reference"])  # fmt: skip
    for claim in claims_for_user(request.user, status=status if status in ClaimStatus.values else ""):
        writer.writerow([csv_safe(cell) for cell in [
            claim.carrier, claim.order.platform_order_id, claim.shipment.tracking_number if claim.shipment_id else "",
            timezone.localtime(claim.case.opened_at).date().isoformat(), claim.case.get_type_display(),
            f"{claim.amount_claimed:.2f}", claim.currency, claim.deadline.isoformat(), claim.status,
            f"{claim.amount_recovered:.2f}", claim.reference,
        ]])  # fmt: skip
    return response


@require_GET
@login_required
def ledger_export_view(request: HttpRequest) -> HttpResponse:
    """The compensation ledger of the user's stores for a period: every row, whatever its status."""
    _manager_require(request)
    stores = stores_for_user(request.user).filter(pk__in=store_ids_with_roles(request.user, MANAGER_ROLES))
    form = LedgerForm(request.GET or None, stores=stores)
    if request.GET and not form.is_valid():
        return HttpResponse(" ".join(str(e) for errors in form.errors.values() for e in errors), status=400,
                            content_type="text/plain; charset=utf-8")  # fmt: skip
    data = form.cleaned_data if request.GET else {}
    rows = Compensation.objects.filter(store__in=stores).select_related(
        "store", "order", "case", "sku", "proposed_by", "approved_by"
    )
    if data.get("store"):
        rows = rows.filter(store=data["store"])
    zone = timezone.get_current_timezone()
    if data.get("start"):
        rows = rows.filter(proposed_at__gte=datetime.combine(data["start"], time.min, tzinfo=zone))
    if data.get("end"):
        rows = rows.filter(
            proposed_at__lt=datetime.combine(data["end"] + timedelta(days=1), time.min, tzinfo=zone)
        )
    response, writer = _csv_response("compensation-ledger.csv")
    writer.writerow(["id", "store", "case", "case_type", "order_id", "kind", "status", "amount", "currency",
                     "sku", "quantity", "proposed_by", "proposed_at", "approved_by", "approved_at", "executed_at",
                     "platform_reference", "reason"])  # fmt: skip
    for c in rows.order_by("proposed_at", "pk").iterator(chunk_size=2000):
        writer.writerow([csv_safe(cell) for cell in [
            c.pk, c.store.code, c.case_id, c.case.type, c.order.platform_order_id, c.kind, c.status,
            f"{c.amount:.2f}", c.currency, c.sku.code if c.sku_id else "", c.quantity,
            c.proposed_by.get_username() if c.proposed_by_id else "", c.proposed_at.isoformat(),
            c.approved_by.get_username() if c.approved_by_id else "",
            c.approved_at.isoformat() if c.approved_at else "", c.executed_at.isoformat() if c.executed_at else "",
            c.platform_reference, c.reason,
        ]])  # fmt: skip
    return response
