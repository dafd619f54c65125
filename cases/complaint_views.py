"""Complaints in the agents' pages: "Log a complaint" on the case and parcel pages (a phone call, a chat an
agent copies in), the triage queue of complaints the classifier was not sure of, and the labelled examples
it produced, as JSON lines for the corpus. Every lookup is scoped to the user's stores."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from cases.choices import ComplaintCategory, ComplaintChannel, EvidenceKind
from cases.complaints.intake import ComplaintError, complaint_label, complaint_receive, coupon_for
from cases.evidence import EvidenceRefused, evidence_add
from cases.selectors import (
    complaint_get_for_user,
    complaints_labelled_for_user,
    complaints_triage_for_user,
    order_get_for_user,
)
from cases.workflow import CaseWorkflowError
from portal.uploads import sent_name


def _outcome_message(request: HttpRequest, complaint) -> None:
    if complaint.needs_triage:
        messages.warning(
            request,
            _(
                "Logged. The classifier is not sure what it is about (%(confidence)s%%): it waits in the triage queue."
            )
            % {"confidence": round(complaint.confidence * 100)},
        )
        return
    label = ComplaintCategory(complaint.label).label
    text = (
        _("Logged as %(category)s (%(confidence)s%% sure): joined case #%(case)s.")
        if complaint.routed == "joined"
        else _("Logged as %(category)s (%(confidence)s%% sure): opened case #%(case)s.")
    ) % {"category": label, "confidence": round(complaint.confidence * 100), "case": complaint.case_id}
    coupon = coupon_for(complaint.case)
    if coupon is not None and complaint.label == ComplaintCategory.DAMAGED:
        text += " " + _("The small-damage coupon (%(amount)s) is proposed.") % {"amount": coupon.amount}
    messages.success(request, text)


@require_POST
@login_required
def complaint_log_view(request: HttpRequest, order_pk: int) -> HttpResponse:
    """An agent logs what a buyer said (by phone, in a chat) about an order; back to the case it landed on."""
    order = order_get_for_user(request.user, order_pk)
    back = request.POST.get("next", "")
    try:
        intake = complaint_receive(
            order=order, text=request.POST.get("text", ""), channel=request.POST.get("channel", ComplaintChannel.PHONE),
            actor=request.user,
        )  # fmt: skip
    except ComplaintError as exc:
        messages.error(request, " ".join(str(message) for message in exc.errors.values()))
        safe = url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return redirect(back if back and safe else "cases:list")
    complaint = intake.complaint
    _outcome_message(request, complaint)
    _photos_attach(request, complaint)
    if complaint.case_id:
        return redirect("cases:detail", pk=complaint.case_id)
    return redirect("cases:triage")


def _photos_attach(request: HttpRequest, complaint) -> None:
    """The buyer's photos the agent attached: evidence on the case the complaint went to (a damage photo
    for a damaged complaint). A file the evidence checks refuse is named with its reason; the complaint
    stands."""
    uploads = request.FILES.getlist("photos")
    if not uploads:
        return
    if complaint.case_id is None:
        messages.warning(
            request,
            _(
                "The photos were not attached: the complaint waits in triage. Add them to its case once it is routed."
            ),
        )
        return
    kind = (
        EvidenceKind.DAMAGE_PHOTO if complaint.label == ComplaintCategory.DAMAGED else EvidenceKind.BUYER_CHAT
    )
    for upload in uploads:
        try:
            evidence_add(case=complaint.case, upload=upload, name=sent_name(upload), kind=kind, actor=request.user,
                         description=_("Sent by the buyer with their complaint."))  # fmt: skip
        except (EvidenceRefused, CaseWorkflowError) as exc:
            messages.error(request, f"{upload.name}: {exc}")


@require_GET
@never_cache
@login_required
def triage_view(request: HttpRequest) -> HttpResponse:
    waiting = list(complaints_triage_for_user(request.user)[:200])
    return render(request, "cases/triage.html", {"waiting": waiting, "categories": ComplaintCategory.choices})


@require_POST
@login_required
def triage_label_view(request: HttpRequest, pk: int) -> HttpResponse:
    complaint = complaint_get_for_user(request.user, pk)
    try:
        complaint = complaint_label(complaint, category=request.POST.get("category", ""), actor=request.user)
    except ComplaintError as exc:
        messages.error(request, " ".join(str(message) for message in exc.errors.values()))
        return redirect("cases:triage")
    messages.success(
        request,
        _("Complaint on order %(order)s: %(category)s, now in case #%(case)s. Kept as a labelled example.")
        % {"order": complaint.order.platform_order_id, "category": ComplaintCategory(complaint.label).label,
           "case": complaint.case_id},
    )  # fmt: skip
    return redirect("cases:triage")


@require_GET
@login_required
def labelled_export_view(request: HttpRequest) -> StreamingHttpResponse:
    """The agents' labels as corpus lines ({"text", "label", "lang"}): add them to cases/complaints/corpus/
    and run train_classifier to teach the model what it got wrong."""

    def lines():
        for text, label, language in (
            complaints_labelled_for_user(request.user).values_list("text", "label", "language").iterator()
        ):
            yield (
                json.dumps({"text": text, "label": label, "lang": language or "en"}, ensure_ascii=False)
                + "\n"
            ).encode()

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="labelled-complaints.jsonl"'
    return response
