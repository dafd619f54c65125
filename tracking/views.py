from __future__ import annotations

import logging
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from portal.middleware import machine_endpoint
from tracking.ingest import (
    PayloadTooLarge,
    SignatureRejected,
    delivery_receive,
    delivery_size_check,
    shipment_poll_now,
)
from tracking.providers.base import PayloadError
from tracking.selectors import (
    connection_get_for_webhook,
    connection_reload_for_webhook,
    shipment_cases,
    shipment_get_for_user,
    shipment_is_polled,
    shipment_registrations,
    shipment_timeline,
)
from tracking.tasks import wake_delivery_processing

log = logging.getLogger(__name__)

WEBHOOK_NOT_FOUND = (
    "No active tracking connection at this URL: check the webhook URL set in the provider's dashboard "
    "against the connection's page in Afterdesk."
)


@machine_endpoint
def tracking_webhook(request: HttpRequest, provider: str, uuid: UUID) -> HttpResponse:
    """A provider's push. 2xx only once the raw delivery is committed; processing happens in the worker.
    Every refusal is JSON with a message, for whoever reads the provider's delivery log."""
    if request.method != "POST":
        response = JsonResponse({"error": "Provider pushes are POST requests."}, status=405)
        response["Allow"] = "POST"
        return response
    connection = connection_get_for_webhook(provider=provider, uuid=uuid)
    if connection is None:
        # The same answer for an unknown, mismatched or switched-off connection: nothing to probe for.
        return JsonResponse({"error": WEBHOOK_NOT_FOUND}, status=404)
    try:
        delivery_size_check(connection=connection, size=_content_length(request))
        received = delivery_receive(
            connection=connection,
            # Read here, not as request.body: Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) would refuse a
            # larger push with a bare HTML 400. The stream stops at the declared length.
            body=request.read(),
            headers=request.headers,
            content_type=request.content_type or "",
            reload=lambda: connection_reload_for_webhook(provider=provider, uuid=uuid),
        )
    except SignatureRejected as exc:
        return JsonResponse({"error": str(exc)}, status=401)
    except PayloadTooLarge as exc:
        return JsonResponse({"error": str(exc)}, status=413)
    except PayloadError as exc:
        return JsonResponse({"error": f"Malformed payload: {exc}"}, status=400)
    wake_delivery_processing()
    if received.parsed.reply is not None:
        return JsonResponse(dict(received.parsed.reply))
    return JsonResponse({"ok": True, "delivery": received.delivery_id})


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


@require_GET
@login_required
def shipment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    shipment = shipment_get_for_user(request.user, pk)
    context = {
        "shipment": shipment,
        "order": shipment.order,
        "events": shipment_timeline(shipment),
        "cases": shipment_cases(shipment),
        "polled": shipment_is_polled(shipment),
        "registrations": shipment_registrations(shipment),
    }
    return render(request, "tracking/shipment_detail.html", context)


@require_POST
@login_required
def shipment_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the carrier for this parcel's latest now, instead of at its next scheduled poll."""
    shipment = shipment_get_for_user(request.user, pk)
    if shipment_poll_now(shipment=shipment):
        messages.success(
            request, _("Tracking refresh requested: new checkpoints appear here within a minute or two.")
        )
    else:
        messages.warning(
            request,
            _(
                "No tracking provider polls this store's parcels: their updates arrive only when the carrier pushes them."
            ),
        )
    return redirect("tracking:shipment", pk=shipment.pk)
