"""The cell parsers of Seller Center imports, against the formats the Seller Centers and Excel write."""

from __future__ import annotations

import io
import zipfile
import zoneinfo
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tracking.imports import files
from tracking.imports.files import FileRefused, read_table
from tracking.imports.formats import SHOPEE, TIKTOK_SHOP, detect, header_key
from tracking.imports.values import (
    CellError,
    day_first_for,
    parse_country,
    parse_money,
    parse_quantity,
    parse_time,
)

KL = zoneinfo.ZoneInfo("Asia/Kuala_Lumpur")


@pytest.mark.parametrize(
    ("text", "day_first", "expected"),
    [
        ("2026-11-11 20:05", True, datetime(2026, 11, 11, 12, 5, tzinfo=UTC)),
        ("2026/11/11 20:05:09", True, datetime(2026, 11, 11, 12, 5, 9, tzinfo=UTC)),
        ("2026-11-11T20:05:00+07:00", True, datetime(2026, 11, 11, 13, 5, tzinfo=UTC)),
        ("2026-11-11T12:05:00Z", True, datetime(2026, 11, 11, 12, 5, tzinfo=UTC)),
        ("11/04/2026 08:05:12 PM", False, datetime(2026, 11, 4, 12, 5, 12, tzinfo=UTC)),
        ("04/11/2026 20:05:12", True, datetime(2026, 11, 4, 12, 5, 12, tzinfo=UTC)),
        ("12/11/2026 12:30:00 AM", False, datetime(2026, 12, 10, 16, 30, tzinfo=UTC)),
        ("2026年11月11日 20:05", True, datetime(2026, 11, 11, 12, 5, tzinfo=UTC)),
        ("2026年11月11日", True, datetime(2026, 11, 10, 16, 0, tzinfo=UTC)),
        ("46337.5", True, datetime(2026, 11, 11, 4, 0, tzinfo=UTC)),  # an Excel serial day, noon local
        ("", True, None),
        ("-", True, None),
    ],
)
def test_times_in_the_seller_centers_formats_are_read_in_the_shop_s_time_zone(text, day_first, expected):
    assert parse_time(text, tz=KL, day_first=day_first) == expected


@pytest.mark.parametrize(
    "text", ["31/31/2026 10:00", "2026-02-30 10:00", "yesterday", "13:00 PM 1/1/2026", "0/1/2026"]
)
def test_what_is_not_a_time_says_so(text):
    with pytest.raises(CellError):
        parse_time(text, tz=KL, day_first=True)


def test_the_day_order_is_proven_by_the_file():
    assert day_first_for(["03/11/2026 10:00", "25/11/2026 10:00"], default=False) is True
    assert day_first_for(["11/03/2026 10:00", "11/25/2026 10:00"], default=True) is False
    assert day_first_for(["03/11/2026 10:00:00 AM"], default=True) is False  # a 12-hour clock: the US export
    assert day_first_for(["03/11/2026 10:00"], default=True) is True


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("59.90", "MYR", Decimal("59.90")),
        ("RM 59.90", "MYR", Decimal("59.90")),
        ("MYR1,234.50", "MYR", Decimal("1234.50")),
        ("1.234,50", "EUR", Decimal("1234.50")),
        ("฿1,299", "THB", Decimal("1299.00")),
        ("Rp 125.000", "IDR", Decimal("125000.00")),
        ("₫ 1.250.000", "VND", Decimal("1250000.00")),
        ("NT$ 399", "TWD", Decimal("399.00")),
        ("59,9", "MYR", Decimal("59.90")),
        ("", "MYR", None),
    ],
)
def test_amounts_with_signs_and_either_decimal_mark(text, currency, expected):
    assert parse_money(text, currency=currency) == expected


@pytest.mark.parametrize("text", ["abc", "-5.00", "1e99", "12-3", "99999999999"])
def test_what_is_not_an_amount_says_so(text):
    with pytest.raises(CellError):
        parse_money(text, currency="MYR")


@pytest.mark.parametrize(("text", "expected"), [("2", 2), ("2.0", 2), (" 15 ", 15)])
def test_quantities(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["0", "two", "1.5", "-1", "", "=1+1"])
def test_what_is_not_a_quantity_says_so(text):
    with pytest.raises(CellError, match="whole number"):
        parse_quantity(text)


def test_countries_by_code_or_name():
    assert [parse_country(t) for t in ("MY", "my", "Malaysia", "馬來西亞", "泰国", "Atlantis", "")] == [
        "MY", "MY", "MY", "MY", "TH", None, None,
    ]  # fmt: skip


def test_headers_are_compared_without_case_marks_or_width():
    assert (
        header_key(" Tracking Number* ")
        == header_key("tracking number")
        == header_key("\uff34\uff32\uff21\uff23\uff2b\uff29\uff2e\uff27\u3000NUMBER")
    )
    detection = detect(["\ufeffOrder ID", "Seller SKU", "Quantity", "Created Time", "Recipient"])
    assert detection.format is TIKTOK_SHOP and detection.complete
    assert detect(["訂單編號", "商品選項貨號", "數量", "訂單成立日期", "收件者姓名"]).format is SHOPEE


def test_a_zip_bomb_is_refused_before_it_is_unpacked(monkeypatch):
    monkeypatch.setattr(files, "MAX_XLSX_UNPACKED", 1000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", "<row/>" * 10_000)
    with pytest.raises(FileRefused, match="unpacks to more than"):
        read_table(buffer.getvalue())


def test_too_many_rows_is_a_file_level_refusal(monkeypatch):
    monkeypatch.setattr(files, "MAX_ROWS", 5)
    data = ("Order ID,Seller SKU\r\n" + "".join(f"{i},A\r\n" for i in range(6))).encode()
    with pytest.raises(FileRefused, match="more than 5 rows"):
        read_table(data)
