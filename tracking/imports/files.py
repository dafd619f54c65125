"""Reading an uploaded export into a header and rows of text, whatever Excel or the Seller Center made of it:
CSV in UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text", tab-separated), GBK/GB18030 (Chinese
Excel's default), Big5; or XLSX (openpyxl, read-only, values only: a formula is read as its cached value or
its text, never evaluated). A file that is none of these is refused with a message that says what it is.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

from django.utils.translation import gettext as _

MAX_BYTES = 64 * 1024 * 1024  # a 200,000-row export is ~60 MB as CSV, far less as XLSX
MAX_ROWS = 300_000  # a Seller Center export holds at most 200,000 orders' lines per file
MAX_COLUMNS = 300
MAX_CELL = 2_000
csv.field_size_limit(1_000_000)


class FileRefused(Exception):
    """The file as a whole cannot be read: nothing of it is imported."""


@dataclass
class Table:
    """A file's header and rows, cells as text (XLSX dates and numbers already rendered), with each row's
    number as a person counts it in the spreadsheet (the header is row 1)."""

    kind: str  # "csv" or "xlsx"
    encoding: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]


def read_table(data: bytes) -> Table:
    if not data.strip():
        raise FileRefused(_("The file is empty."))
    if len(data) > MAX_BYTES:
        raise FileRefused(
            _("The file is larger than %(mb)s MB: export fewer days at a time.") % {"mb": MAX_BYTES // 2**20}
        )
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused(
            _(
                "This is an old Excel (.xls) or a password-protected workbook. Open it in Excel and save it "
                "as .xlsx or .csv without a password, then upload that."
            )
        )
    if data[:5] == b"%PDF-" or data[:4] in (b"\x89PNG", b"GIF8") or data[:3] == b"\xff\xd8\xff":
        raise FileRefused(_("This is not a spreadsheet: upload the order export as .csv or .xlsx."))
    return _read_csv(data)


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[2:].decode(name, errors="strict"), "utf-16"
    sample = data[:4000]
    if sample.count(b"\x00") > len(sample) // 4:  # UTF-16 without its BOM
        name = "utf-16-le" if sample[1:2] == b"\x00" else "utf-16-be"
        return data.decode(name, errors="strict"), name
    for name in ("utf-8", "gb18030", "big5"):
        try:
            return data.decode(name, errors="strict"), name
        except UnicodeDecodeError:
            continue
    raise FileRefused(_("The file's text encoding is not one we can read (UTF-8, UTF-16, GBK or Big5)."))


def _read_csv(data: bytes) -> Table:
    try:
        text, encoding = _decode(data)
    except UnicodeDecodeError as exc:
        raise FileRefused(
            _("The file's text is broken at byte %(at)s: export it again.") % {"at": exc.start}
        ) from exc
    if "\x00" in text:
        raise FileRefused(
            _("The file holds binary data, not text: upload the order export as .csv or .xlsx.")
        )
    first = text[: text.find("\n") if "\n" in text else len(text)]
    delimiter = max(",\t;|", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _table("csv", encoding, reader)
    except csv.Error as exc:
        raise FileRefused(_("The file is not valid CSV: %(error)s") % {"error": exc}) from exc


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


MAX_XLSX_UNPACKED = (
    600 * 1024 * 1024
)  # what a 300,000-row sheet unpacks to, with room; a zip bomb is far more


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FileRefused(_("The workbook cannot be opened: save it again from Excel as .xlsx.")) from exc
    if unpacked > MAX_XLSX_UNPACKED:
        raise FileRefused(
            _("The workbook unpacks to more than %(mb)s MB: export fewer days at a time.")
            % {"mb": MAX_XLSX_UNPACKED // 2**20}
        )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise FileRefused(
            _("The workbook cannot be opened (%(error)s): save it again from Excel as .xlsx.")
            % {"error": exc.__class__.__name__}
        ) from exc
    except Exception as exc:  # openpyxl raises many kinds for hostile archives; none is the user's to read
        raise FileRefused(_("The workbook cannot be opened: save it again from Excel as .xlsx.")) from exc
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise FileRefused(_("The workbook has no sheet."))
        rows = ([_cell(value) for value in row] for row in sheet.iter_rows(values_only=True))
        return _table("xlsx", "", rows)
    finally:
        workbook.close()


def _table(kind: str, encoding: str, rows: Iterator[list[str]]) -> Table:
    headers: list[str] | None = None
    out: list[tuple[int, list[str]]] = []
    for number, row in enumerate(rows, start=1):
        if headers is None:
            if not any(cell.strip() for cell in row):
                continue  # blank lines above the header
            headers = [cell.strip() for cell in row]
            while headers and not headers[-1]:
                headers.pop()
            if len(headers) > MAX_COLUMNS:
                raise FileRefused(_("The file has more than %(n)s columns.") % {"n": MAX_COLUMNS})
            header_number = number
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(out) >= MAX_ROWS:
            raise FileRefused(
                _("The file has more than %(n)s rows: export fewer days at a time.") % {"n": f"{MAX_ROWS:,}"}
            )
        out.append((number, [cell[:MAX_CELL] for cell in row[: len(headers)]]))
    if headers is None:
        raise FileRefused(_("The file is empty."))
    if not out:
        raise FileRefused(
            _("The file has a header row (row %(row)s) but no orders.") % {"row": header_number}
        )
    return Table(kind=kind, encoding=encoding, headers=headers, rows=out)
