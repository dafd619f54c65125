from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from cases.models import Case
from tests.factories import add_line, make_live_session, make_order, make_sku


@pytest.mark.django_db
def test_raising_stock_in_the_admin_reevaluates_the_stock_rules(
    client, store, monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the woken task runs inline instead of in a worker
    admin = get_user_model().objects.create_superuser("root", password="pw-for-tests-123")
    client.force_login(admin)
    sku = make_sku(store=store, on_hand=0, restock_eta=None)
    session = make_live_session(store=store, allocations={sku: 1})
    orders = [make_order(store=store, live_session=session) for _ in range(2)]
    for order in orders:
        add_line(order=order, sku=sku)
    from cases.stock import stock_evaluate

    stock_evaluate(store=store)
    assert Case.objects.filter(type="oversold", status="new").count() == 1

    allocation = session.allocations.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/tracking/livesession/{session.pk}/change/",
            {"store": store.pk, "title": session.title, "host": session.host,
             "started_at_0": session.started_at.strftime("%Y-%m-%d"), "started_at_1": session.started_at.strftime("%H:%M:%S"),
             "ended_at_0": "", "ended_at_1": "",
             "allocations-TOTAL_FORMS": "1", "allocations-INITIAL_FORMS": "1", "allocations-MIN_NUM_FORMS": "0",
             "allocations-MAX_NUM_FORMS": "1000", "allocations-0-id": allocation.pk, "allocations-0-live_session": session.pk,
             "allocations-0-sku": sku.pk, "allocations-0-quantity": "2"},
        )  # fmt: skip

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Case.objects.filter(type="oversold", status="resolved").count() == 1
