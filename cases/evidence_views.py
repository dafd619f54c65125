"""Evidence on the case page (upload, withdraw, view, download) and the appeal pages (build, checklist,
export, outcome). Files are served only here, through store-scoped lookups: never from a public media
URL. Every view and download of a file, and every export, is a line of the custody log."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from cases.appeals import (
    AppealError,
    appeal_cases_add,
    appeal_checklist,
    appeal_create,
    appeal_export_allowed,
    appeal_outcome,
    scenarios_for_store,
)
from cases.choices import AppealDecision, CustodyAction, EvidenceKind
from cases.evidence import INLINE, EvidenceRefused, custody_log, evidence_add, evidence_tombstone
from cases.packet import packet_name, packet_stream
from cases.selectors import (
    appeal_get_for_user,
    appeals_for_user,
    case_evidence,
    case_get_for_user,
    cases_get_for_user,
    custody_for_evidence,
    evidence_get_for_user,
)
from cases.workflow import BULK_LIMIT, CaseWorkflowError
from portal.uploads import form_parse_keeping_names, sent_name

# A file shown in the browser runs nothing and loads nothing: the strictest policy that still shows an
# image or a PDF.
SANDBOX_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


# seed 000: when the carrier is late to pick up, ask for the booking proof and the chat log at once.
WATCHDOG = {"pickup_overdue": (EvidenceKind.BOOKING_CONFIRMATION, EvidenceKind.CARRIER_CHAT)}


def evidence_context(case) -> dict:
    """The case page's evidence card: the files, the kinds to choose from, and what a pickup-overdue case
    still lacks (the evidence is freshest while the carrier is late)."""
    evidence = list(case_evidence(case))
    live = {item.kind for item in evidence if item.is_live}
    labels = dict(EvidenceKind.choices)
    return {
        "evidence": evidence,
        "evidence_kinds": EvidenceKind.choices,
        "evidence_wanted": [(kind, labels[kind]) for kind in WATCHDOG.get(case.type, ()) if kind not in live],
        "case_appeals": list(case.appeals.select_related("scenario").order_by("-created_at")),
    }


def _evidence_response(request: HttpRequest, case, *, status: int = 200, error: str = "") -> HttpResponse:
    context = {"case": case, **evidence_context(case), "evidence_error": error}
    if request.htmx or request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return render(request, "cases/case_detail.html#case-evidence", context, status=status)
    if error:
        messages.error(request, error)
    return redirect(f"{reverse('cases:detail', args=[case.pk])}#case-evidence")


@csrf_exempt  # checked below, once the body is parsed with the names as sent (portal.uploads)
@require_POST
@login_required
def evidence_upload_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Files dropped on the case (the page sends each by itself, with its progress; a form without
    JavaScript sends them all at once). Each is checked and stored, or refused with its reason."""
    case = case_get_for_user(request.user, pk)
    # More than a case can hold is refused before a byte is parsed (nothing spools to disk).
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.EVIDENCE_CASE_MAX_BYTES + 1024 * 1024:
        error = _("The upload is larger than a case holds (%(max)s): send fewer or smaller files.") % {
            "max": filesizeformat(settings.EVIDENCE_CASE_MAX_BYTES)}  # fmt: skip
        return _evidence_response(request, case, status=413, error=error)
    refused = form_parse_keeping_names(request)
    if refused is not None:
        return refused
    uploads = request.FILES.getlist("file")
    if not uploads:
        return _evidence_response(request, case, status=400, error=_("Choose a file to upload."))
    captured = None
    raw = (request.POST.get("captured_at") or "").strip()
    if raw:
        captured = parse_datetime(raw)
        if captured is None:
            return _evidence_response(
                request, case, status=400, error=_("The capture time is not a date and time.")
            )
        if timezone.is_naive(captured):
            captured = captured.replace(tzinfo=case.store.tzinfo)
    errors, status = [], 200
    for upload in uploads:
        try:
            evidence_add(
                case=case, upload=upload, name=sent_name(upload), kind=request.POST.get("kind") or EvidenceKind.OTHER,
                actor=request.user, captured_at=captured, description=request.POST.get("description", ""),
            )  # fmt: skip
        except (EvidenceRefused, CaseWorkflowError) as exc:
            errors.append(f"{upload.name}: {exc}")
            status = 400
        except PermissionDenied as exc:
            return _evidence_response(request, case, status=403, error=str(exc))
    return _evidence_response(request, case, status=status, error=" ".join(errors))


@require_POST
@login_required
def evidence_withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = evidence_get_for_user(request.user, pk)
    try:
        evidence_tombstone(evidence=evidence, actor=request.user, reason=request.POST.get("reason", ""))
    except (EvidenceRefused, PermissionDenied) as exc:
        return _evidence_response(request, evidence.case, status=400, error=str(exc))
    return _evidence_response(request, evidence.case)


@require_GET
@login_required
def evidence_file_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The file itself: images and PDFs inline (sandboxed), everything else as a download; `?download=1`
    always downloads. Logged in the custody log."""
    evidence = evidence_get_for_user(request.user, pk)
    if evidence.bytes_deleted_at is not None:
        return HttpResponse(
            _("This file was withdrawn and its bytes deleted on %(at)s, after the retention period. Its SHA-256 "
              "was %(sha)s.") % {"at": evidence.bytes_deleted_at.date().isoformat(), "sha": evidence.sha256},
            status=410, content_type="text/plain; charset=utf-8",
        )  # fmt: skip
    download = request.GET.get("download") == "1" or evidence.content_type not in INLINE
    custody_log(
        evidence=evidence,
        action=CustodyAction.DOWNLOAD if download else CustodyAction.VIEW,
        actor=request.user,
    )
    response = FileResponse(
        default_storage.open(evidence.file.name, "rb"), content_type=evidence.content_type,
        as_attachment=download, filename=evidence.original_name,
    )  # fmt: skip
    return _harden(response)


@require_GET
@login_required
def evidence_thumbnail_view(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = evidence_get_for_user(request.user, pk)
    if not evidence.thumbnail or evidence.bytes_deleted_at is not None:
        return HttpResponse(status=404)
    return _harden(
        FileResponse(default_storage.open(evidence.thumbnail.name, "rb"), content_type="image/jpeg")
    )


def _harden(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = SANDBOX_CSP
    response["Cache-Control"] = "private, no-store"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


@require_GET
@never_cache
@login_required
def evidence_custody_view(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = evidence_get_for_user(request.user, pk)
    return render(
        request, "cases/custody.html", {"evidence": evidence, "entries": list(custody_for_evidence(evidence))}
    )


# --- appeals -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
def appeal_new_view(request: HttpRequest) -> HttpResponse:
    """Build an appeal for the cases picked (one case from its page, many from the queue's bulk action)."""
    source = request.POST if request.method == "POST" else request.GET
    ids = [int(pk) for pk in source.getlist("ids") if pk.isdigit()][:BULK_LIMIT]
    cases = cases_get_for_user(request.user, ids)
    if not cases:
        messages.error(request, _("Pick the cases the appeal covers."))
        return redirect("cases:list")
    stores = {case.store_id for case in cases}
    if len(stores) > 1:
        messages.error(request, _("An appeal covers the cases of one store: pick cases of one store."))
        return redirect("cases:list")
    store = cases[0].store
    scenarios = list(scenarios_for_store(store))

    def form(status: int = 200, error: str = "") -> HttpResponse:
        if error:
            messages.error(request, error)
        context = {"cases": cases, "scenarios": scenarios, "store": store}
        return render(request, "cases/appeal_new.html", context, status=status)

    if request.method == "GET" or "scenario" not in request.POST:
        return form()
    scenario = next((s for s in scenarios if str(s.pk) == request.POST.get("scenario")), None)
    if scenario is None:
        return form(400, _("Pick a scenario of this store's platform."))
    penalty = None
    if request.POST.get("penalty_date"):
        try:
            penalty = datetime.strptime(request.POST["penalty_date"], "%Y-%m-%d").date()
        except ValueError:
            return form(400, _("The penalty date is not a date."))
    try:
        appeal = appeal_create(
            store=store, scenario=scenario, cases=cases, actor=request.user, penalty_date=penalty
        )
    except (AppealError, PermissionDenied) as exc:
        return form(400, str(exc))
    return redirect("cases:appeal", pk=appeal.pk)


@require_GET
@never_cache
@login_required
def appeal_list_view(request: HttpRequest) -> HttpResponse:
    appeals = appeals_for_user(request.user).annotate(case_count=Count("cases"))[:200]
    return render(request, "cases/appeal_list.html", {"appeals": list(appeals), "now": timezone.now()})


@require_GET
@never_cache
@login_required
def appeal_view(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = appeal_get_for_user(request.user, pk)
    checklist = appeal_checklist(appeal)
    cases = list(appeal.cases.select_related("order", "shipment").order_by("pk")[:BULK_LIMIT])
    count = len(cases) if len(cases) < BULK_LIMIT else appeal.cases.count()
    next_item = next((item for item in checklist.missing if not item.system), None)
    left = appeal.deadline - timezone.now() if appeal.deadline else None
    return render(
        request, "cases/appeal.html",
        {"appeal": appeal, "checklist": checklist, "cases": cases, "next_item": next_item, "left": left,
         "decisions": AppealDecision.choices, "first_case": cases[0] if cases else None,
         "appeal_case_count": count},
    )  # fmt: skip


@require_POST
@login_required
def appeal_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The packet, streamed. Refused while a required item is missing, unless a supervisor overrides it
    with a reason (recorded on the appeal and in the packet)."""
    appeal = appeal_get_for_user(request.user, pk)
    try:
        checklist = appeal_export_allowed(
            appeal, request.user, override_reason=request.POST.get("override_reason", "")
        )
    except (AppealError, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return redirect("cases:appeal", pk=appeal.pk)
    appeal.refresh_from_db()
    response = StreamingHttpResponse(
        packet_stream(appeal, exporter=request.user, checklist=checklist), content_type="application/zip"
    )
    response["Content-Disposition"] = f'attachment; filename="{packet_name(appeal)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@login_required
def appeal_cases_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cases added by the order ids or tracking numbers pasted from the platform's penalty notice."""
    appeal = appeal_get_for_user(request.user, pk)
    try:
        added, missing = appeal_cases_add(appeal=appeal, references=request.POST.get("references", ""),
                                          actor=request.user)  # fmt: skip
    except (AppealError, PermissionDenied) as exc:
        messages.error(request, str(exc))
        return redirect("cases:appeal", pk=appeal.pk)
    done = ngettext("Added %(count)d case.", "Added %(count)d cases.", len(added)) % {"count": len(added)}
    messages.success(request, done)
    if missing:
        shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
        messages.warning(
            request,
            _("No case of this store for %(count)d of them: %(refs)s")
            % {"count": len(missing), "refs": shown},
        )
    return redirect("cases:appeal", pk=appeal.pk)


@require_POST
@login_required
def appeal_outcome_view(request: HttpRequest, pk: int) -> HttpResponse:
    appeal = appeal_get_for_user(request.user, pk)
    avoided = request.POST.get("penalty_avoided") or None
    try:
        appeal_outcome(appeal=appeal, actor=request.user, submitted=bool(request.POST.get("submitted")),
                       decision=request.POST.get("decision", ""), penalty_avoided=avoided)  # fmt: skip
    except (AppealError, PermissionDenied, ValueError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Appeal updated."))
    return redirect("cases:appeal", pk=appeal.pk)
