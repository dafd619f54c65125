"""Small helpers the adapters share: reading JSON bodies, headers and timestamps defensively.

Everything here raises PayloadError with a message that names the offending field, so a webhook that
answers 400 tells the provider (and the operator reading the log) exactly what was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson

if TYPE_CHECKING:
    import httpx

from tracking.choices import normalize_subtag, normalize_tag
from tracking.providers.base import PayloadError, RetryableProviderError

# Countries with a single civil time zone, by ISO 3166 alpha-3 and alpha-2 code. A carrier timestamp
# without an offset is local time at the checkpoint; where the country pins the zone we use it.
_COUNTRY_ZONES: dict[str, str] = {
    "CHN": "Asia/Shanghai",
    "HKG": "Asia/Hong_Kong",
    "MAC": "Asia/Macau",
    "TWN": "Asia/Taipei",
    "MYS": "Asia/Kuala_Lumpur",
    "SGP": "Asia/Singapore",
    "THA": "Asia/Bangkok",
    "VNM": "Asia/Ho_Chi_Minh",
    "PHL": "Asia/Manila",
    "KHM": "Asia/Phnom_Penh",
    "LAO": "Asia/Vientiane",
    "MMR": "Asia/Yangon",
    "BRN": "Asia/Brunei",
    "KOR": "Asia/Seoul",
    "JPN": "Asia/Tokyo",
    "IND": "Asia/Kolkata",
    "BGD": "Asia/Dhaka",
    "PAK": "Asia/Karachi",
    "ARE": "Asia/Dubai",
    "SAU": "Asia/Riyadh",
    "GBR": "Europe/London",
    "DEU": "Europe/Berlin",
    "FRA": "Europe/Paris",
    "ITA": "Europe/Rome",
    "ESP": "Europe/Madrid",
    "NLD": "Europe/Amsterdam",
    "POL": "Europe/Warsaw",
}
_ALPHA2 = {
    "CN": "CHN", "HK": "HKG", "MO": "MAC", "TW": "TWN", "MY": "MYS", "SG": "SGP", "TH": "THA", "VN": "VNM",
    "PH": "PHL", "KH": "KHM", "LA": "LAO", "MM": "MMR", "BN": "BRN", "KR": "KOR", "JP": "JPN", "IN": "IND",
    "BD": "BGD", "PK": "PAK", "AE": "ARE", "SA": "SAU", "GB": "GBR", "DE": "DEU", "FR": "FRA", "IT": "ITA",
    "ES": "ESP", "NL": "NLD", "PL": "POL",
}  # fmt: skip


# Both spellings of every code, resolved once: the lookup runs for every checkpoint of every push.
_ZONES: dict[str, tzinfo] = {
    **{code: ZoneInfo(name) for code, name in _COUNTRY_ZONES.items()},
    **{alpha2: ZoneInfo(_COUNTRY_ZONES[alpha3]) for alpha2, alpha3 in _ALPHA2.items()},
}


def country_zone(country: object) -> tzinfo | None:
    """The time zone of a single-zone country named by ISO alpha-2 or alpha-3 code, else None."""
    if not isinstance(country, str):
        return None
    zone = _ZONES.get(country)
    if zone is None and country:
        zone = _ZONES.get(country.strip().upper())
    return zone


@lru_cache(maxsize=1024)
def normalize_tags(tag: str, subtag: str) -> tuple[str, str]:
    """`normalize_tag` and `normalize_subtag` as values, memoized: every checkpoint of every push asks, and
    only a few dozen pairs exist."""
    normalized = normalize_tag(tag)
    return normalized.value, normalize_subtag(normalized, subtag)


def load_json(body: bytes | str, *, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    # orjson is stricter than the standard library (NaN, integers beyond 64 bits, non-UTF-8 encodings):
    # what the standard library accepts stays accepted, and its message names the error when it doesn't.
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"{what}: body is not valid JSON ({exc}).") from exc


def form_fields(body: bytes, *, required: str, what: str, shape: str) -> dict[str, str]:
    """The fields of a form-encoded push body (the first value of each). PayloadError, naming `what`, when
    the body is not UTF-8, not a form (`shape` says what one looks like), or lacks the `required` field."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what}: body is not UTF-8 ({exc}).") from exc
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError as exc:
        raise PayloadError(f"{what}: body is not form-encoded ({shape}): {exc}.") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    if required not in form:
        raise PayloadError(f"{what}: {required} form field missing (body must be form-encoded).")
    return form


def response_object(response: httpx.Response, *, provider: str, what: str) -> Mapping[str, Any]:
    """A provider's JSON object answer; RetryableProviderError when the body is not one (a proxy's error
    page, a truncated answer: worth asking again)."""
    try:
        document = response.json()
    except ValueError as exc:
        raise RetryableProviderError(f"{provider}: {what} answered with a body that is not JSON.") from exc
    if not isinstance(document, Mapping):
        raise RetryableProviderError(f"{provider}: {what} answered with an unexpected body.")
    return document


def require_mapping(value: object, *, field: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what JSON decodes to: skip the (slower) abstract-base-class check
        return value
    if not isinstance(value, Mapping):
        raise PayloadError(f"{field}: expected a JSON object, got {_type_name(value)}.")
    return value


def require_list(value: object, *, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise PayloadError(f"{field}: expected a JSON array, got {_type_name(value)}.")
    return value


def require_str(container: Mapping[str, Any], key: str, *, field: str) -> str:
    """A non-empty string (numbers are accepted and turned into strings: providers are loose here)."""
    value = container.get(key)
    if type(value) is str:  # the common case first: this runs for most fields of every push
        value = value.strip()
        if value:
            return value
        raise PayloadError(f"{field}.{key}: required, got an empty string.")
    if isinstance(value, bool) or value is None:
        raise PayloadError(f"{field}.{key}: required, missing or null.")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise PayloadError(f"{field}.{key}: expected a string, got {_type_name(value)}.")
    value = value.strip()
    if not value:
        raise PayloadError(f"{field}.{key}: required, got an empty string.")
    return value


def optional_str(container: Mapping[str, Any], key: str, *, field: str) -> str:
    """A string or empty; numbers become strings; anything else is a format error."""
    value = container.get(key)
    if type(value) is str:  # the common case first: this runs for most fields of every push
        return value.strip()
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise PayloadError(f"{field}.{key}: expected a string, got {_type_name(value)}.")
    return value.strip()


def _type_name(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, case-insensitively; also finds Django's META spelling (HTTP_X_Y)."""
    wanted = name.lower()
    meta = "HTTP_" + name.upper().replace("-", "_")
    for key, value in headers.items():
        if key.lower() == wanted or key == meta:
            return value
    return None


def hmac_sha256_base64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def parse_timestamp(value: str, *, field: str, naive_zone: tzinfo | None = None) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime.

    Accepts "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.fff]]", a "T" separator, "Z" or "+HH:MM" offsets.
    A value without an offset is read in `naive_zone` (UTC when None); a date alone is its midnight.
    """
    try:
        # The documented forms first, as they are: Python 3.11 reads "T" or " ", "Z", offsets and fractions.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text.replace("/", "-"))
        except ValueError as exc:
            raise PayloadError(f"{field}: {value!r} is not a date-time this provider documents.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_zone or UTC)
    return parsed.astimezone(UTC)


def parse_date(value: object) -> date | None:
    """The calendar date at the start of an ISO date or date-time string; None when absent or unreadable.

    Expected-delivery dates are advisory: a malformed one is dropped rather than failing the push.
    """
    if not isinstance(value, str) or len(value.strip()) < 10:
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def join_location(*parts: object) -> str:
    """'City, State, Country' from the parts that are present, without repeating a part."""
    seen: list[str] = []
    for part in parts:
        if isinstance(part, str) and part.strip() and part.strip() not in seen:
            seen.append(part.strip())
    return ", ".join(seen)
