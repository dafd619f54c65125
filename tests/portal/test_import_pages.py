"""The import pages, through the client: upload, preview, the mapping step, confirm, progress, summary and
first look, the refused rows, and that another store's imports are not there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cases.engine import exceptions_sweep
from tests.factories import make_membership, make_store, make_user
from tests.tracking import exports
from tracking.choices import ImportStatus
from tracking.imports.service import imports_run
from tracking.models import Order, OrderImport


@pytest.fixture
def admin_client(client, store):
    user = make_user("ada")
    make_membership(user=user, store=store, role="admin")
    client.force_login(user)
    return client


def _upload(client, store, data: bytes, name: str = "export.csv"):
    return client.post(
        reverse("stores:imports", args=[store.code]), {"file": SimpleUploadedFile(name, data, "text/csv")}
    )


@pytest.mark.django_db
def test_upload_preview_confirm_and_first_look(admin_client, store):
    export = exports.orders(
        80, seed=12, start=timezone.localtime(timezone.now()).replace(tzinfo=None) - timedelta(days=6)
    )
    response = _upload(admin_client, store, exports.as_csv(exports.tiktok_rows(export)), "tiktok.csv")
    imp = OrderImport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "stores:import", args=[store.code, imp.pk]
    )

    page = admin_client.get(response["Location"]).content.decode()
    assert 'id="import-preview"' in page and f"{imp.preview['new']}</span>" in page
    assert "Not paid yet" in page  # the unpaid orders' rows, refused with their reason
    assert Order.objects.count() == 0

    response = admin_client.post(reverse("stores:import_confirm", args=[store.code, imp.pk]))
    assert response.status_code == 302
    progress = admin_client.get(
        reverse("stores:import", args=[store.code, imp.pk]) + "?part=progress", HTTP_HX_REQUEST="true"
    )
    assert progress.status_code == 200 and b'id="import-bar"' in progress.content

    imports_run()
    exceptions_sweep()
    progress = admin_client.get(
        reverse("stores:import", args=[store.code, imp.pk]) + "?part=progress", HTTP_HX_REQUEST="true"
    )
    assert progress.status_code == 204 and progress["HX-Refresh"] == "true"  # done: the page reloads whole
    page = admin_client.get(reverse("stores:import", args=[store.code, imp.pk])).content.decode()
    assert 'id="import-summary"' in page and 'id="first-look"' in page
    assert 'id="history-arriving"' in page  # just imported: the parcels' histories are on the way

    csv = admin_client.get(reverse("stores:import_refused", args=[store.code, imp.pk]))
    body = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert csv["Content-Disposition"].startswith("attachment") and body.count("Not paid yet") >= 1


@pytest.mark.django_db
def test_the_mapping_step_in_the_page(admin_client, store):
    rows = [["Nombor", "Barang", "Bil", "Masa", "Nama"]] + [
        [f"N{i}", "TEA-100", "1", "2026-11-20 09:00", "Ah Kow"] for i in range(5)
    ]
    _upload(admin_client, store, exports.as_csv(rows))
    imp = OrderImport.objects.get()
    page = admin_client.get(reverse("stores:import", args=[store.code, imp.pk])).content.decode()
    assert 'id="import-mapping"' in page and "Nombor — N0" in page

    url = reverse("stores:import_mapping", args=[store.code, imp.pk])
    response = admin_client.post(url, {"col_order_id": "0", "col_sku": "1"})
    assert response.status_code == 400 and "Still needed" in response.content.decode()

    response = admin_client.post(url, {"col_order_id": "0", "col_sku": "1", "col_quantity": "2", "col_created_at": "3",
                                       "col_recipient": "4"})  # fmt: skip
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == ImportStatus.READY and imp.preview["new"] == 5


@pytest.mark.django_db
def test_a_file_too_large_or_missing_is_a_form_error(admin_client, store, monkeypatch):
    from portal import import_views

    monkeypatch.setattr(import_views, "MAX_BYTES", 10)
    response = _upload(admin_client, store, b"Order ID,Seller SKU\r\n1,2\r\n")
    assert response.status_code == 400 and "larger than" in response.content.decode()
    response = admin_client.post(reverse("stores:imports", args=[store.code]), {})
    assert response.status_code == 400
    assert not OrderImport.objects.exists()


@pytest.mark.django_db
def test_another_store_s_import_and_an_agent_see_nothing(client, store, agent):
    other = make_store(code="other", name="Other")
    owner = make_user("owner")
    make_membership(user=owner, store=other, role="admin")
    client.force_login(owner)
    _upload(client, other, exports.as_csv(exports.tiktok_rows(exports.orders(5))))
    imp = OrderImport.objects.get()

    make_membership(user=owner, store=store, role="agent")
    for name in ("stores:import", "stores:import_refused"):
        assert client.get(reverse(name, args=[store.code, imp.pk])).status_code == 404
    client.force_login(agent)
    assert client.get(reverse("stores:imports", args=[store.code])).status_code == 404
    assert client.post(reverse("stores:import_confirm", args=[other.code, imp.pk])).status_code == 404
    assert OrderImport.objects.get().status == ImportStatus.READY
