"""The agent workspace: the queue (/cases/) and the case page (/cases/<id>/), with their HTMX partials.

Every lookup goes through case_get_for_user / cases_for_user: another store's case is a 404 on every page,
partial and action. A mutation answers an HTMX request with the refreshed partial, the flash area swapped
out of band, and `HX-Trigger: cases-changed` so the queue counts refresh; a plain form post redirects.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from cases.choices import CaseStatus, CaseType, CompensationStatus, FaultParty, Resolution
from cases.compensation import (
    Proposal,
    Result,
    case_cost,
    case_fault_set,
    claim_open,
    compensation_approve,
    compensation_cancel,
    compensation_propose,
    compensation_reject,
    compensation_result,
    fault_suggested,
    limit_refusal,
    offer_propose,
    playbook_offers,
    policy_for,
)
from cases.evidence_views import evidence_context
from cases.forms import (
    ASSIGN,
    CLAIM,
    SEND,
    AssignForm,
    BulkActionForm,
    BuyerChoiceForm,
    CaseFilterForm,
    CompensationForm,
    MessageForm,
    NoteForm,
    OfferForm,
    RejectForm,
    ResolveForm,
    ResultForm,
    StatusForm,
)
from cases.integration import IntegrationError, buyer_reply_record
from cases.messages import message_preview, message_send, messages_bulk_send
from cases.models import Case, Claim
from cases.presenters import queue_rows_present
from cases.selectors import (
    approvals_count_for_user,
    assignees_for_user,
    case_children,
    case_compensations,
    case_get_for_user,
    case_messages,
    case_next_for_user,
    case_page,
    case_timeline,
    cases_for_user,
    compensation_get_for_user,
    live_sessions_for_user,
    message_templates_for_case,
    message_templates_for_user,
    queue_counts_for_user,
)
from cases.workflow import (
    MANAGER_ROLES,
    BulkResult,
    CaseWorkflowError,
    actor_role_require,
    allowed_transitions,
    case_assign,
    case_claim,
    case_note_add,
    case_transition,
    cases_bulk_assign,
    cases_bulk_claim,
    cases_bulk_transition,
)
from portal.selectors import store_roles_for_user, stores_for_user
from tracking.selectors import (
    connections_silent_for_user,
    connections_stopped_for_user,
    pushes_waiting_for_user,
    shipment_timeline,
    shipments_find_for_user,
    stores_untracked_for_user,
)

BUYERS_SHOWN = 50
REFUSALS_SHOWN = 5
CASES_CHANGED = "cases-changed"


# --- helpers --------------------------------------------------------------------------------------


def _is_manager(request: HttpRequest) -> bool:
    return any(role in MANAGER_ROLES for role in store_roles_for_user(request.user).values())


def _flash_oob(request: HttpRequest) -> str:
    return render_to_string("_flash.html", {"oob": True}, request=request)


def _htmx_response(
    request: HttpRequest, parts: list[tuple[str, dict[str, Any]]], *, status: int = 200, changed: bool = False
) -> HttpResponse:
    """The named partials (the first is the swap target, the others carry hx-swap-oob) and the flash."""
    html = "".join(render_to_string(name, context, request=request) for name, context in parts)
    response = HttpResponse(html + _flash_oob(request), status=status)
    if changed:
        response["HX-Trigger"] = CASES_CHANGED
    return response


def _form_error(form) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def _bulk_summary(result: BulkResult, *, done: str) -> tuple[int, str]:
    """A flash level and text saying what a bulk action did: "Claimed 20 cases. 3 refused: #12 ..."."""
    parts = [done % {"count": result.changed}] if result.changed else []
    if result.unchanged:
        parts.append(
            ngettext("%(count)d was already so.", "%(count)d were already so.", result.unchanged)
            % {"count": result.unchanged}
        )
    if result.refused:
        shown = "; ".join(f"#{pk}: {why}" for pk, why in list(result.refused.items())[:REFUSALS_SHOWN])
        more = len(result.refused) - REFUSALS_SHOWN
        parts.append(
            ngettext("%(count)d refused: %(why)s", "%(count)d refused: %(why)s", len(result.refused))
            % {"count": len(result.refused), "why": shown}
            + (" " + _("(and %(more)d more)") % {"more": more} if more > 0 else "")
        )
    if not parts:
        parts.append(_("Nothing changed."))
    level = messages.WARNING if result.refused else messages.SUCCESS
    return level, " ".join(parts)


# --- the queue ------------------------------------------------------------------------------------


def _filter_form(request: HttpRequest) -> CaseFilterForm:
    return CaseFilterForm(
        request.GET or None,
        stores=stores_for_user(request.user),
        live_sessions=live_sessions_for_user(request.user),
        assignees=assignees_for_user(request.user),
    )


def _queue_context(request: HttpRequest, form: CaseFilterForm) -> dict[str, Any]:
    """The queue page's context for a valid (or unbound) filter form."""
    data = form.cleaned_data if form.is_bound else {}
    cases = cases_for_user(request.user, **form.queue_filters())
    page = case_page(cases, after=int(data["after"]) if data.get("after") else None)
    queue_rows_present(page.rows)
    search = data.get("q", "")
    query = request.GET.copy()
    query.pop("after", None)
    is_manager = _is_manager(request)
    case_type = data.get("type") or ""
    return {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "full_query": request.GET.urlencode(),
        "is_first_page": not data.get("after"),
        "queue": data.get("queue") or "",
        "current_type": case_type,
        "is_manager": is_manager,
        "statuses": CaseStatus.choices,
        "resolutions": Resolution.choices,
        "assignees": assignees_for_user(request.user) if is_manager else [],
        "bulk_templates": message_templates_for_user(request.user, case_type=case_type) if case_type else [],
        # A search for a tracking number or order id also finds its parcels, with a case or without.
        "parcels": shipments_find_for_user(request.user, search) if search and not data.get("after") else [],
    }


def _nav_context(
    request: HttpRequest,
    *,
    queue: str = "",
    case_type: str = "",
    in_queue: bool = True,
    counted: bool = False,
) -> dict[str, Any]:
    """The queue nav. Pages render it without counts (it fetches them itself once loaded, and again on every
    `cases-changed`), which keeps the count query off the pages' pinned query budget."""
    counts = queue_counts_for_user(request.user) if counted else None
    manager = _is_manager(request)
    return {
        "counts": counts,
        "money_nav": manager,
        "approvals_waiting": approvals_count_for_user(request.user) if counted and manager else None,
        # With the counts (refreshed on every change, off the pages' query budget): tracking that stopped,
        # push-only connections that hear nothing, and pushes no worker has processed.
        "tracking_stopped": connections_stopped_for_user(request.user) if counted else [],
        "tracking_silent": connections_silent_for_user(request.user) if counted else [],
        "tracking_missing": stores_untracked_for_user(request.user) if counted else [],
        "pushes_waiting": pushes_waiting_for_user(request.user) if counted else None,
        "type_counts": [
            (value, label, counts["types"][value] if counts else None) for value, label in CaseType.choices
        ],
        "queue": queue,
        "current_type": case_type,
        "in_queue": in_queue,
    }


# One URL answers a page or a partial, and the queue changes by the minute: the browser must neither hand
# a cached partial back as the page nor show stale counts when the agent comes back with the Back button.
@require_GET
@never_cache
@vary_on_headers("HX-Request", "HX-Target")
@login_required
def case_list(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request)
    if form.is_bound and not form.is_valid():
        context = {"form": form, "page": None, **_nav_context(request)}
        return render(request, "cases/case_list.html", context, status=400)
    context = _queue_context(request, form)
    if request.htmx and request.htmx.target != "workspace":
        return render(request, "cases/case_list.html#case-table", context)
    context.update(_nav_context(request, queue=context["queue"], case_type=context["current_type"]))
    template = "cases/case_list.html#workspace" if request.htmx else "cases/case_list.html"
    return render(request, template, context)


@require_GET
@never_cache
@login_required
def queue_counts(request: HttpRequest) -> HttpResponse:
    context = _nav_context(
        request,
        queue=request.GET.get("queue", ""),
        case_type=request.GET.get("type", ""),
        in_queue=request.GET.get("in_queue") == "1",
        counted=True,
    )
    return render(request, "cases/case_list.html#queue-nav", context)


@require_POST
@login_required
def cases_bulk(request: HttpRequest) -> HttpResponse:
    """Apply one bulk action to the ticked cases; answer with the queue's table, filtered as the URL says."""
    filters = _filter_form(request)
    if filters.is_bound and not filters.is_valid():
        return HttpResponse(_form_error(filters), status=400)
    case_type = filters.cleaned_data.get("type") if filters.is_bound else ""
    form = BulkActionForm(
        request.POST,
        assignees=assignees_for_user(request.user),
        templates=message_templates_for_user(request.user, case_type=case_type or ""),
    )
    status, changed = 200, False
    if not form.is_valid():
        status = 400
        messages.error(request, _form_error(form))
    else:
        data, actor, ids = form.cleaned_data, request.user, form.cleaned_data["ids"]
        try:
            if data["action"] == CLAIM:
                result = cases_bulk_claim(case_ids=ids, actor=actor)
                done = ngettext("Claimed %(count)d case.", "Claimed %(count)d cases.", result.changed)
            elif data["action"] == ASSIGN:
                if not _is_manager(request):
                    raise PermissionDenied(_("Only supervisors and admins assign cases."))
                result = cases_bulk_assign(case_ids=ids, assignee=data["assignee"], actor=actor)
                done = ngettext("Assigned %(count)d case.", "Assigned %(count)d cases.", result.changed)
            elif data["action"] == SEND:
                result = messages_bulk_send(case_ids=ids, template=data["template"], actor=actor)
                done = ngettext(
                    "Queued a message on %(count)d case.",
                    "Queued messages on %(count)d cases.",
                    result.changed,
                )
            else:
                result = cases_bulk_transition(
                    case_ids=ids,
                    to_status=data["to_status"],
                    resolution=data["resolution"] or None,
                    actor=actor,
                )
                done = ngettext("Updated %(count)d case.", "Updated %(count)d cases.", result.changed)
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            status = 403
        except CaseWorkflowError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            level, text = _bulk_summary(result, done=done)
            messages.add_message(request, level, text)
            changed = result.changed > 0
    if not request.htmx:
        return redirect(f"{reverse('cases:list')}?{request.GET.urlencode()}")
    context = _queue_context(request, filters)
    return _htmx_response(
        request, [("cases/case_list.html#case-table", context)], status=status, changed=changed
    )


# --- the case page --------------------------------------------------------------------------------


def _case_context(request: HttpRequest, case: Case, **extra: Any) -> dict[str, Any]:
    can_manage = store_roles_for_user(request.user).get(case.store_id) in MANAGER_ROLES
    next_statuses = [
        (status.value, status.label)
        for status in CaseStatus
        if status in allowed_transitions(case.status) and status != CaseStatus.RESOLVED
    ]
    return {
        "case": case,
        "can_manage": can_manage,
        "next_statuses": next_statuses,
        "can_resolve": CaseStatus.RESOLVED in allowed_transitions(case.status),
        "can_reopen": case.status == CaseStatus.RESOLVED,
        "resolutions": Resolution.choices,
        "assign_form": AssignForm(assignees=assignees_for_user(request.user)) if can_manage else None,
        "templates": message_templates_for_case(case),
        "timeline": case_timeline(case),
        "buyer_messages": case_messages(case),
        "faults": FaultParty.choices,
        "fault_suggested": case.fault_party
        if case.fault_party != FaultParty.UNKNOWN
        else fault_suggested(case),
        **_compensation_context(request, case, can_manage=can_manage),
        **extra,
    }


def _compensation_context(request: HttpRequest, case: Case, *, can_manage: bool) -> dict[str, Any]:
    """The case's compensation panel: the playbook's offers, what was given and what it cost, the claim.
    Three queries: the compensation rows, the store's policy, the claim."""
    if case.order_id is None:
        return {"compensations": []}
    compensations = list(case_compensations(case))
    policy = policy_for(case.store_id)
    now = timezone.now()
    for compensation in compensations:
        compensation.approval_refusal = (
            limit_refusal(compensation, request.user, policy, now)
            if compensation.status == CompensationStatus.PROPOSED
            else ""
        )
        compensation.can_cancel = compensation.status in (
            CompensationStatus.PROPOSED,
            CompensationStatus.APPROVED,
        ) and (can_manage or compensation.proposed_by_id == request.user.pk)
        compensation.awaits_result = compensation.status in (
            CompensationStatus.APPROVED,
            CompensationStatus.EXECUTING,
        )
    claim = Claim.objects.filter(case=case).first()
    cost = case_cost(case, compensations=compensations, claim=claim)
    latest = max((c.proposed_at for c in compensations), default=None)
    return {
        "compensations": compensations,
        # refused by the platform, and nothing proposed since: the agent's next move
        "compensations_failed": [
            c for c in compensations if c.status == CompensationStatus.FAILED and c.proposed_at == latest
        ],
        "offers": playbook_offers(case, now=now, policy=policy),
        "compensation_cost": cost,
        "claim": claim,
        "can_claim": claim is None
        and case.fault_party == FaultParty.CARRIER
        and cost["spent"] > 0
        and case.shipment_id,
        "form_token": uuid.uuid4().hex,
        "compensation_form": CompensationForm(initial={"quantity": 1}),
        "stock_case": case.type in (CaseType.OVERSOLD, CaseType.OUT_OF_STOCK),
    }


def _case_page(request: HttpRequest, case: Case, *, status: int = 200, **extra: Any) -> HttpResponse:
    context = _case_context(request, case, **extra)
    context.update(
        {
            "order": case.order,
            "lines": case.order.lines.all() if case.order else [],
            "tracking": shipment_timeline(case.shipment) if case.shipment else [],
            "triggers": case.trigger_events.order_by("checkpoint_at"),
            "facts": {k: v for k, v in case.facts.items() if not isinstance(v, list | dict)},
            "children": case_children(case) if case.type == CaseType.QUALITY_BATCH else [],
            "buyers": case.facts.get("buyers", [])[:BUYERS_SHOWN],
            **evidence_context(case),
            **_nav_context(request, in_queue=False),
        }
    )
    return render(request, "cases/case_detail.html", context, status=status)


@require_GET
@never_cache
@vary_on_headers("HX-Request", "HX-Target")
@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    if request.htmx and request.htmx.target == "case-actions":
        return render(request, "cases/case_detail.html#case-actions", _case_context(request, case))
    return _case_page(request, case)


@require_GET
@never_cache
@login_required
def case_timeline_partial(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    return render(request, "cases/case_detail.html#case-timeline", _case_context(request, case))


@require_GET
@never_cache
@login_required
def case_parcel_partial(request: HttpRequest, pk: int) -> HttpResponse:
    """The case page's parcel section, fetched again every minute while the page is in view."""
    case = case_get_for_user(request.user, pk)
    if case.shipment is None:
        raise Http404("This case has no parcel.")
    context = {"case": case, "tracking": shipment_timeline(case.shipment)}
    return render(request, "cases/case_detail.html#case-parcel", context)


@require_GET
@never_cache
@login_required
def case_next(request: HttpRequest, pk: int) -> HttpResponse:
    """The next open case after this one in SLA order (the `n` shortcut without a queue in memory)."""
    case = case_get_for_user(request.user, pk)
    next_id = case_next_for_user(request.user, case)
    if next_id is None:
        messages.info(request, _("That was the last open case in the queue."))
        return redirect("cases:list")
    return redirect("cases:detail", pk=next_id)


def _action_response(
    request: HttpRequest, case: Case, *, error: str = "", status: int = 200, done: str = ""
) -> HttpResponse:
    """What every case action answers: the refreshed actions panel (and, after a change, the timeline out
    of band and the counts trigger); an error comes back in the same panel with its status."""
    if done and not error:
        messages.success(request, done)
    if not request.htmx:
        if error:
            return _case_page(request, case, status=status, action_error=error)
        return redirect("cases:detail", pk=case.pk)
    context = _case_context(request, case, action_error=error)
    parts = [("cases/case_detail.html#case-actions", context)]
    if not error:
        parts.append(("cases/case_detail.html#case-timeline", {**context, "oob": True}))
    return _htmx_response(request, parts, status=status, changed=not error)


def _run(request: HttpRequest, case: Case, action, *, done: str) -> HttpResponse:
    try:
        action()
    except PermissionDenied as exc:
        return _action_response(request, case, error=str(exc), status=403)
    except (CaseWorkflowError, ValidationError) as exc:
        text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return _action_response(request, case, error=text, status=400)
    return _action_response(request, case, done=done)


@require_POST
@login_required
def case_claim_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    done = _("Case #%(id)d is yours.") % {"id": case.pk}
    return _run(request, case, lambda: case_claim(case=case, actor=request.user), done=done)


@require_POST
@login_required
def case_assign_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    if store_roles_for_user(request.user).get(case.store_id) not in MANAGER_ROLES:
        return _action_response(
            request, case, error=_("Only supervisors and admins assign cases."), status=403
        )
    form = AssignForm(request.POST, assignees=assignees_for_user(request.user))
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    assignee = form.cleaned_data["assignee"]
    done = (
        _("Assigned to %(name)s.") % {"name": assignee.get_username()} if assignee else _("Case unassigned.")
    )
    return _run(
        request, case, lambda: case_assign(case=case, assignee=assignee, actor=request.user), done=done
    )


@require_POST
@login_required
def case_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    to_status = form.cleaned_data["to_status"]
    done = _("Status set to %(status)s.") % {"status": CaseStatus(to_status).label}
    return _run(
        request, case,
        lambda: case_transition(case=case, to_status=to_status, note=form.cleaned_data["note"], actor=request.user),
        done=done,
    )  # fmt: skip


@require_POST
@login_required
def case_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    data = form.cleaned_data
    done = _("Case #%(id)d resolved: %(resolution)s.") % {
        "id": case.pk, "resolution": Resolution(data["resolution"]).label}  # fmt: skip

    def resolve() -> None:
        with transaction.atomic():
            if data["fault_party"]:
                case_fault_set(case=case, fault=data["fault_party"], actor=request.user)
            case_transition(
                case=case,
                to_status=CaseStatus.RESOLVED,
                resolution=data["resolution"],
                note=data["note"],
                actor=request.user,
            )
            claim_open(case, actor=request.user)  # a carrier-fault case that cost something: a draft claim

    return _run(request, case, resolve, done=done)


@require_POST
@login_required
def case_reopen_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    if case.status != CaseStatus.RESOLVED:
        error = _("Only a resolved case is reopened; this one is %(status)s.") % {
            "status": case.get_status_display()
        }
        return _action_response(request, case, error=error, status=400)
    done = _("Case #%(id)d reopened.") % {"id": case.pk}
    return _run(
        request, case,
        lambda: case_transition(case=case, to_status=CaseStatus.IN_PROGRESS, actor=request.user),
        done=done,
    )  # fmt: skip


@require_POST
@login_required
def case_note_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    return _run(
        request, case,
        lambda: case_note_add(case=case, actor=request.user, text=form.cleaned_data["text"]),
        done=_("Note added."),
    )  # fmt: skip


@require_GET
@never_cache
@vary_on_headers("HX-Request")
@login_required
def case_message_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """What the picked template would send on this case, with the placeholders it could not fill."""
    case = case_get_for_user(request.user, pk)
    form = MessageForm(request.GET, templates=message_templates_for_case(case))
    status, context = 200, {"case": case}
    if not form.is_valid():
        status, context["preview_error"] = 400, _form_error(form)
    else:
        template = form.cleaned_data["template"]
        context["template"] = template
        try:
            context["preview"] = message_preview(case=case, template=template)
        except CaseWorkflowError as exc:
            status, context["preview_error"] = 400, str(exc)
    if request.htmx:
        return render(request, "cases/case_detail.html#message-preview", context, status=status)
    return _case_page(request, case, status=status, **{k: v for k, v in context.items() if k != "case"})


@require_POST
@login_required
def case_message_send(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)
    form = MessageForm(request.POST, templates=message_templates_for_case(case))
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    template = form.cleaned_data["template"]
    buyer = case.order.buyer_name if case.order else ""
    done = _("Message “%(template)s” queued for %(buyer)s.") % {"template": template.name, "buyer": buyer}
    return _run(
        request, case, lambda: message_send(case=case, template=template, actor=request.user), done=done
    )


# --- compensation on the case page ------------------------------------------------------------------------


@require_POST
@login_required
def case_offer_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Propose one of the playbook's offers (with its companion coupon)."""
    case = case_get_for_user(request.user, pk)
    form = OfferForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    offer = next((o for o in playbook_offers(case) if o.key == form.cleaned_data["offer"]), None)
    if offer is None:
        return _action_response(
            request, case, error=_("That offer is not in this case's playbook."), status=400
        )
    done = _("Proposed: %(offer)s.") % {"offer": offer.label.render()}
    key = f"form:{form.cleaned_data['token']}"
    return _run(
        request,
        case,
        lambda: offer_propose(case=case, offer=offer, actor=request.user, idempotency_key=key),
        done=done,
    )


@require_POST
@login_required
def case_compensate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Propose any compensation (the free form under the playbook)."""
    case = case_get_for_user(request.user, pk)
    form = CompensationForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)
    data = form.cleaned_data
    sku = None
    if data["sku"]:
        sku = case.store.skus.filter(code=data["sku"].strip()).first()
        if sku is None:
            return _action_response(
                request, case, error=_("No SKU %(code)s in this store.") % {"code": data["sku"]}, status=400
            )
    proposal = Proposal(
        kind=data["kind"], amount=data["amount"], percent=data["percent"], valid_until=data["valid_until"], sku=sku,
        quantity=data["quantity"] or 1, note=data["note"], reason=data["reason"],
    )  # fmt: skip

    def propose() -> None:
        compensation_propose(
            case=case, proposal=proposal, actor=request.user, idempotency_key=f"form:{data['token']}"
        )

    return _run(request, case, propose, done=_("Compensation proposed."))


def _compensation_action(request: HttpRequest, pk: int, action, *, done: str) -> HttpResponse:
    compensation = compensation_get_for_user(request.user, pk)
    case = case_get_for_user(request.user, compensation.case_id)
    return _run(request, case, lambda: action(compensation), done=done)


@require_POST
@login_required
def compensation_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _compensation_action(
        request, pk, lambda c: compensation_approve(compensation=c, actor=request.user),
        done=_("Approved: the storefront is asked to execute it."),
    )  # fmt: skip


@require_POST
@login_required
def compensation_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    form = RejectForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    return _compensation_action(
        request, pk, lambda c: compensation_reject(compensation=c, actor=request.user, reason=reason),
        done=_("Rejected."),
    )  # fmt: skip


@require_POST
@login_required
def compensation_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    reason = (request.POST.get("reason") or "")[:2000]
    return _compensation_action(
        request, pk, lambda c: compensation_cancel(compensation=c, actor=request.user, reason=reason),
        done=_("Cancelled."),
    )  # fmt: skip


@require_POST
@login_required
def compensation_result_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the platform's result by hand (a store without a storefront integration)."""
    form = ResultForm(request.POST)
    if not form.is_valid():
        compensation = compensation_get_for_user(request.user, pk)
        case = case_get_for_user(request.user, compensation.case_id)
        return _action_response(request, case, error=_form_error(form), status=400)
    data = form.cleaned_data
    result = Result(
        executed=data["outcome"] == "executed", reference=data["reference"], reason=data["reason"],
        carrier=data["carrier"], tracking_number=data["tracking_number"],
    )  # fmt: skip
    return _compensation_action(
        request, pk, lambda c: compensation_result(compensation=c, result=result, actor=request.user),
        done=_("Result recorded."),
    )  # fmt: skip


@require_POST
@login_required
def case_buyer_choice_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The buyer told an agent (chat, phone) which option they take."""
    case = case_get_for_user(request.user, pk)
    form = BuyerChoiceForm(request.POST)
    if not form.is_valid():
        return _action_response(request, case, error=_form_error(form), status=400)

    def record() -> None:
        actor_role_require(request.user, case.store_id)
        try:
            buyer_reply_record(
                case=case,
                actor=request.user,
                text=form.cleaned_data["text"],
                option=form.cleaned_data["option"],
            )
        except IntegrationError as exc:
            raise CaseWorkflowError(" ".join(exc.messages)) from None

    return _run(request, case, record, done=_("The buyer's choice is recorded."))


@require_POST
@login_required
def case_claim_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    case = case_get_for_user(request.user, pk)

    def draft() -> None:
        if claim_open(case, actor=request.user) is None:
            raise CaseWorkflowError(
                _("Nothing to claim: the carrier must be at fault and the case must have cost something.")
            )

    return _run(request, case, draft, done=_("A claim against the carrier was drafted."))
