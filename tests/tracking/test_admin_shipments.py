from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from tests.factories import make_order, make_shipment
from tracking.models import Shipment
from tracking.services import EventData, events_ingest

T0 = datetime(2026, 11, 19, 1, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_the_admin_rebuilds_a_damaged_summary_from_the_events(client, store):
    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-123")
    client.force_login(admin)
    shipment = make_shipment(order=make_order(store=store))
    events_ingest(
        shipment=shipment,
        events=[
            EventData(checkpoint_at=T0, tag="InTransit", subtag="InTransit_002", source="aftership"),
            EventData(checkpoint_at=T0 + timedelta(hours=30), tag="Delivered", subtag="Delivered_001", source="aftership"),
        ],
    )  # fmt: skip
    Shipment.objects.filter(pk=shipment.pk).update(
        status="InTransit", substatus="InTransit_001", accepted_at=None, delivered_at=None
    )  # a repair by hand gone wrong

    response = client.post(
        "/admin/tracking/shipment/",
        {"action": "rebuild_summaries", "_selected_action": [shipment.pk]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["1 shipment rebuilt from its events."]
    shipment.refresh_from_db()
    assert (shipment.status, shipment.substatus) == ("Delivered", "Delivered_001")
    assert (shipment.accepted_at, shipment.delivered_at) == (T0, T0 + timedelta(hours=30))
