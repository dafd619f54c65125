"""Cell values as the Seller Centers (and Excel after them) write them: times in the shop's local time and
its local formats, money with currency signs and either decimal convention, countries by name or code.
Each parser returns the value or raises CellError with a message a seller can act on."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _


class CellError(ValueError):
    pass


def clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("\u00a0", " ").strip()


_ISO = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)
_SLASHED = re.compile(
    r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4})"
    r"(?:[ T,]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?\s*(?P<ampm>[AaPp][Mm])?)?$"
)
_CHINESE = re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日\s*(?:(?P<H>\d{1,2})[:时時](?P<M>\d{2})分?"
                      r"(?:[:](?P<S>\d{2})秒?)?)?$")  # fmt: skip
_EXCEL_EPOCH = datetime(1899, 12, 30)


def day_first_for(values: Iterable[str], default: bool) -> bool:
    """Whether a file's slashed dates put the day first: proven by any first part over 12 (day first) or
    any second part over 12 (month first); else a 12-hour clock (AM/PM) says the US English export, month
    first; else the format's convention."""
    twelve_hour = False
    for value in values:
        match = _SLASHED.match(clean(value))
        if match is None:
            continue
        a, b = int(match["a"]), int(match["b"])
        if a > 12 >= b:
            return True
        if b > 12 >= a:
            return False
        twelve_hour = twelve_hour or bool(match["ampm"])
    return False if twelve_hour else default


def parse_time(text: str, *, tz: tzinfo, day_first: bool) -> datetime | None:
    """A Seller Center time: ISO (with or without an offset), slashed day-first or month-first with an
    optional AM/PM, Chinese 2026年11月11日 20:05, or an Excel serial day number; local to the shop unless
    it carries an offset. Empty (or a placeholder dash): None."""
    value = clean(text)
    if value in ("", "-", "--", "/", "N/A", "n/a", "null", "NULL"):
        return None
    try:
        if match := _ISO.match(value):
            parts = (int(match["y"]), int(match["m"]), int(match["d"]))
            clock = (int(match["H"] or 0), int(match["M"] or 0), int(match["S"] or 0))
            offset = match["tz"]
        elif match := _SLASHED.match(value):
            a, b = int(match["a"]), int(match["b"])
            day, month = (a, b) if day_first else (b, a)
            parts = (int(match["y"]), month, day)
            hour = int(match["H"] or 0)
            if match["ampm"]:
                if not 1 <= hour <= 12:
                    raise CellError(_("%(value)s is not a time of day.") % {"value": value})
                hour = hour % 12 + (12 if match["ampm"].lower() == "pm" else 0)
            clock = (hour, int(match["M"] or 0), int(match["S"] or 0))
            offset = None
        elif match := _CHINESE.match(value):
            parts = (int(match["y"]), int(match["m"]), int(match["d"]))
            clock = (int(match["H"] or 0), int(match["M"] or 0), int(match["S"] or 0))
            offset = None
        elif re.fullmatch(r"\d{5}(\.\d+)?", value) and 20000 < float(value) < 80000:
            local = _EXCEL_EPOCH + timedelta(days=float(value))
            return local.replace(microsecond=0, tzinfo=tz).astimezone(UTC)
        else:
            raise CellError(
                _("%(value)s is not a date and time we can read (e.g. 2026-11-11 20:05 or 11/11/2026 20:05).")
                % {"value": value[:40]}
            )
        naive = datetime(*parts, *clock)
    except ValueError as exc:
        if isinstance(exc, CellError):
            raise
        raise CellError(_("%(value)s is not a real date.") % {"value": value[:40]}) from exc
    if offset:
        sign = -1 if offset.startswith("-") else 1
        digits = offset.lstrip("+-").replace(":", "") if offset != "Z" else "0000"
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return naive.replace(tzinfo=UTC) - sign * delta
    return naive.replace(tzinfo=tz).astimezone(UTC)


_MONEY = re.compile(
    r"(?P<lead>-?\s*(?:[^\W\d_]{1,3}\$?|[^\w\s])?\s*-?)"  # -, RM, MYR, NT$, ₫, ฿, ¥ ...
    r"(?P<digits>\d[\d.,\s]*?)"
    r"(?P<trail>\s*(?:[^\W\d_]{1,3}|[^\w\s.,-])?)"  # MYR, 元, ₫
)
_ZERO_DECIMAL = {"IDR", "VND", "JPY", "KRW", "CLP", "TWD"}


def parse_money(text: str, *, currency: str) -> Decimal | None:
    """An amount as written in an export: "59.90", "RM 59.90", "1,234.50", "1.234,50", "Rp 125.000" (no
    decimals in IDR or VND: the dots group thousands). Empty: None."""
    value = clean(text)
    if not value or value in ("-", "--"):
        return None
    # A currency sign or code before or after ("RM 59.90", "59.90 MYR", "₫ 1.250.000", "-RM5"); between
    # them only digits and their separators.
    match = _MONEY.fullmatch(value)
    if match is None:
        raise CellError(_("%(value)s is not an amount of money.") % {"value": value[:40]})
    negative = "-" in match["lead"]
    digits = re.sub(r"\s", "", match["digits"])
    if "," in digits and "." in digits:
        decimal_mark = "," if digits.rfind(",") > digits.rfind(".") else "."
    elif "," in digits:
        _head, _sep, tail = digits.rpartition(",")
        decimal_mark = "," if digits.count(",") == 1 and len(tail) in (1, 2) else ""
    elif "." in digits:
        _head, _sep, tail = digits.rpartition(".")
        grouped = digits.count(".") > 1 or (currency in _ZERO_DECIMAL and len(tail) == 3)
        decimal_mark = "" if grouped else "."
    else:
        decimal_mark = ""
    group = {",": ".", ".": ",", "": ".,"}[decimal_mark]
    for mark in group:
        digits = digits.replace(mark, "")
    if decimal_mark == ",":
        digits = digits.replace(",", ".")
    try:
        amount = Decimal(digits)
    except InvalidOperation as exc:
        raise CellError(_("%(value)s is not an amount of money.") % {"value": value[:40]}) from exc
    if negative:
        raise CellError(_("%(value)s is negative: an order's amounts are not.") % {"value": value[:40]})
    if amount >= Decimal("1e10"):
        raise CellError(_("%(value)s is too large for an amount.") % {"value": value[:40]})
    return amount.quantize(Decimal("0.01"))


def parse_quantity(text: str) -> int:
    value = clean(text)
    if re.fullmatch(r"\d{1,6}(\.0+)?", value):
        quantity = int(float(value))
        if quantity >= 1:
            return quantity
    raise CellError(
        _("Quantity %(value)s is not a whole number of items (1 or more).") % {"value": value[:40]}
    )


# Country names as the Seller Centers write them, in English and Chinese, for the markets they serve.
_COUNTRIES = {
    "MY": ("malaysia", "马来西亚", "馬來西亞"),
    "SG": ("singapore", "新加坡"),
    "TH": ("thailand", "泰国", "泰國", "ประเทศไทย"),
    "VN": ("vietnam", "viet nam", "越南", "việt nam"),
    "PH": ("philippines", "菲律宾", "菲律賓"),
    "ID": ("indonesia", "印度尼西亚", "印尼"),
    "TW": ("taiwan", "台湾", "台灣", "臺灣"),
    "CN": ("china", "中国", "中國", "中国大陆"),
    "HK": ("hong kong", "香港"),
    "US": ("united states", "united states of america", "usa", "美国"),
    "GB": ("united kingdom", "uk", "英国"),
    "MX": ("mexico", "méxico", "墨西哥"),
    "BR": ("brazil", "brasil", "巴西"),
    "JP": ("japan", "日本"),
}
_COUNTRY_BY_NAME = {name: code for code, names in _COUNTRIES.items() for name in names}


def parse_country(text: str) -> str | None:
    """An ISO code from a code or a name; None when empty or unknown."""
    value = clean(text)
    if not value:
        return None
    if re.fullmatch(r"[A-Za-z]{2}", value):
        return value.upper()
    return _COUNTRY_BY_NAME.get(value.casefold())


def excel_mangled(text: str) -> bool:
    """Whether a long number was rounded by Excel into scientific notation (5.77E+17): the digits are lost."""
    return bool(re.fullmatch(r"\d(\.\d+)?[eE]\+\d+", clean(text)))
