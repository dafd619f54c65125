"""AfterShip: tracking webhooks (tracking_update, edd_revise, tracking_pending_time) and the Tracking API.

Guarantees:
- `verify` accepts a push only when `aftership-hmac-sha256` equals base64(HMAC-SHA256(webhook secret, raw
  body)), compared in constant time; a missing header or an unset secret is a rejection.
- A checkpoint becomes the same EventData every time it is parsed: AfterShip's own tag and subtag (already
  in our taxonomy, so only normalized), the carrier's raw status (`raw_tag`) and message kept verbatim,
  the time in UTC, and AfterShip's checkpoint `hash` as provider key when it sends one.
- Checkpoint times carry the checkpoint's own offset. AfterShip documents that a time may come without
  one (then it is local time at the checkpoint, in the checkpoint's time zone): we read it in the zone of
  the checkpoint's country when that country has a single zone, otherwise as UTC.
- A well-formed push is decoded straight into typed structs (msgspec: no dict per checkpoint, no field
  by field type checks in Python); anything else (a number where a string belongs, an empty time, a
  broken body) is parsed again by the lenient parser, which accepts what it can and names what it can't.
  Both build every EventData with the same `checkpoint_event`.
- `fetch` asks GET /trackings for up to 50 tracking numbers per request (the documented maximum of the
  `tracking_numbers` filter), 200 per page, at most 6 requests/s (the documented limit of that endpoint),
  honouring 429 with Retry-After or X-RateLimit-Reset.
- AfterShip tracks (and pushes) only trackings created in the account. `register` creates them (POST
  /trackings, one each, at most 20 requests/s, its documented limit; the courier left to AfterShip's
  detection, as our carrier codes are not its slugs) and returns the numbers AfterShip refused (an invalid
  number, say) with its message; "already exists" (4003) is not a refusal, and a refusal never stops the
  connection. The registration step (`tracking.registration`) calls it for every new parcel; `fetch`
  also creates numbers GET /trackings does not return (one deleted in AfterShip's dashboard, say).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any

import httpx
import msgspec

from tracking.providers._parsing import (
    constant_time_equal,
    country_zone,
    header,
    hmac_sha256_base64,
    join_location,
    load_json,
    normalize_tags,
    optional_str,
    parse_date,
    parse_timestamp,
    require_list,
    require_mapping,
    require_str,
    response_object,
)
from tracking.providers.base import (
    HttpProvider,
    ParsedPush,
    ParsedTracking,
    PayloadError,
    PermanentProviderError,
    RetryableProviderError,
    TrackingRef,
)
from tracking.providers.ratelimit import (
    TokenBucket,
    configured_rate,
    credential,
    request_with_retries,
    shared_bucket,
)
from tracking.services import EventData

log = logging.getLogger(__name__)

SOURCE = "aftership"
API_VERSION = "2026-07"
SIGNATURE_HEADER = "aftership-hmac-sha256"
# Webhook events whose `msg` is a tracking. Pending-time and EDD updates may carry no new checkpoint.
TRACKING_EVENTS = frozenset({"tracking_update", "edd_revise", "tracking_pending_time"})
GET_TRACKINGS_PER_SECOND = 6.0  # "GET /trackings: 6 req/s" since the 2024-07 version's per-endpoint limits
POST_TRACKINGS_PER_SECOND = 20.0  # "POST /trackings: 20 req/s", the same table
TRACKING_EXISTS = 4003  # meta.code of a create for a number the account already tracks
PAGE_LIMIT = 200  # documented maximum page size of GET /trackings
MAX_PAGES = 10

# Where a tracking carries its estimated delivery, most current first (the legacy field last).
_EDD_FIELDS: tuple[tuple[str, str], ...] = (
    ("latest_estimated_delivery", "datetime"),
    ("latest_estimated_delivery", "datetime_max"),
    ("courier_estimated_delivery_date", "estimated_delivery_date"),
    ("aftership_estimated_delivery_date", "estimated_delivery_date"),
    ("custom_estimated_delivery_date", "date"),
    ("first_estimated_delivery", "datetime"),
)


class AfterShipProvider(HttpProvider):
    name = "aftership"
    label = "AfterShip"
    batch_size = 50
    registers = True
    pulls_unregistered = False
    default_base_url = f"https://api.aftership.com/tracking/{API_VERSION}"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.api_key = credential(self.credentials, "api_key", "as-api-key")

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature or not self.webhook_secret:
            return False
        return constant_time_equal(hmac_sha256_base64(self.webhook_secret, body), signature.strip())

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        try:
            return _parse_push_typed(body)
        except (msgspec.DecodeError, msgspec.ValidationError, PayloadError):
            pass  # not the documented shape, exactly: the lenient parser takes it, or says what is wrong
        document = require_mapping(load_json(body, what="AfterShip webhook"), field="body")
        event = require_str(document, "event", field="body")
        event_id = optional_str(document, "event_id", field="body")
        extra = {key: document[key] for key in _PUSH_EXTRA if key in document}
        if event not in TRACKING_EVENTS:
            return _ignored(event, event_id, extra)
        msg = require_mapping(document.get("msg"), field="body.msg")
        return ParsedPush(
            kind=event, trackings=(parse_tracking(msg, field="body.msg"),), event_id=event_id, extra=extra
        )

    # --- pull -------------------------------------------------------------------------------------------
    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        numbers = list(dict.fromkeys(ref.tracking_number for ref in refs))
        if not numbers:
            return []
        if not self.api_key:
            raise PermanentProviderError("aftership: no API key configured (credentials['api_key']).")
        bucket = self._bucket or shared_bucket(
            provider=self.name, account=self.api_key, endpoint="GET /trackings",
            requests_per_second=configured_rate(self.credentials, GET_TRACKINGS_PER_SECOND),
        )  # fmt: skip
        with self.http() as client:
            results: list[ParsedTracking] = []
            for start in range(0, len(numbers), self.batch_size):
                results += self._fetch_chunk(client, bucket, numbers[start : start + self.batch_size])
            returned = {tracking.tracking_number for tracking in results}
            missing = [number for number in numbers if number not in returned]
            if missing:
                self._create(client, missing)
            return results

    def register(self, refs: Sequence[TrackingRef]) -> dict[str, str]:
        numbers = list(dict.fromkeys(ref.tracking_number for ref in refs))
        if not numbers:
            return {}
        if not self.api_key:
            raise PermanentProviderError("aftership: no API key configured (credentials['api_key']).")
        with self.http() as client:
            return self._create(client, numbers)

    def check(self) -> str:
        """GET /couriers: the couriers the account has activated, which needs a valid API key."""
        if not self.api_key:
            raise PermanentProviderError("aftership: no API key configured (credentials['api_key']).")
        bucket = self._bucket or shared_bucket(
            provider=self.name, account=self.api_key, endpoint="GET /couriers",
            requests_per_second=GET_TRACKINGS_PER_SECOND,
        )  # fmt: skip
        with self.http() as client:
            response = request_with_retries(
                client, "GET", f"{self.base_url}/couriers", bucket=bucket, provider=self.name,
                error_message=_error_message, headers={"as-api-key": self.api_key, "Accept": "application/json"},
            )  # fmt: skip
        couriers = _envelope_data(response, what="GET /couriers").get("couriers")
        count = len(couriers) if isinstance(couriers, list) else 0
        return f"AfterShip accepted the API key; {count} couriers are activated on the account."

    def _create(self, client: httpx.Client, numbers: list[str]) -> dict[str, str]:
        """Have AfterShip start tracking these numbers. Returns those it refused, with its message: a refusal
        about one number is not raised."""
        refused: dict[str, str] = {}
        bucket = self._bucket or shared_bucket(
            provider=self.name, account=self.api_key, endpoint="POST /trackings",
            requests_per_second=POST_TRACKINGS_PER_SECOND,
        )  # fmt: skip
        for number in numbers:
            response = request_with_retries(
                client, "POST", f"{self.base_url}/trackings", bucket=bucket, provider=self.name,
                error_message=_error_message, passthrough=(400, 404, 409, 422), json={"tracking_number": number},
                headers={"as-api-key": self.api_key, "Accept": "application/json"},
            )  # fmt: skip
            if response.status_code < 300:
                continue
            try:
                document = response.json()
            except ValueError:
                document = None
            meta = document.get("meta") if isinstance(document, Mapping) else None
            if isinstance(meta, Mapping) and meta.get("code") == TRACKING_EXISTS:
                continue
            refused[number] = f"HTTP {response.status_code}: {_error_message(response) or 'no message'}"
            log.warning("aftership: tracking %s not created: %s", number, refused[number])
        return refused

    def _fetch_chunk(
        self, client: httpx.Client, bucket: TokenBucket, numbers: list[str]
    ) -> list[ParsedTracking]:
        wanted = set(numbers)
        params: dict[str, Any] = {"tracking_numbers": ",".join(numbers), "limit": PAGE_LIMIT}
        results: list[ParsedTracking] = []
        for _ in range(MAX_PAGES):
            response = request_with_retries(
                client, "GET", f"{self.base_url}/trackings", bucket=bucket, provider=self.name,
                error_message=_error_message, params=params,
                headers={"as-api-key": self.api_key, "Accept": "application/json"},
            )  # fmt: skip
            data = _envelope_data(response)
            for index, item in enumerate(_trackings_of(data)):
                try:
                    tracking = parse_tracking(
                        require_mapping(item, field="tracking"), field=f"data.trackings[{index}]"
                    )
                except PayloadError as exc:
                    log.warning("aftership: skipping a malformed tracking in GET /trackings: %s", exc)
                    continue
                if tracking.tracking_number in wanted:
                    results.append(tracking)
            pagination = data.get("pagination")
            cursor = pagination.get("next_cursor") if isinstance(pagination, Mapping) else None
            if not (isinstance(pagination, Mapping) and pagination.get("has_next_page") and cursor):
                break
            params = {**params, "cursor": cursor}
        return results


def parse_tracking(msg: Mapping[str, Any], *, field: str) -> ParsedTracking:
    """One AfterShip tracking object (webhook `msg` or an API tracking) as a ParsedTracking."""
    number = require_str(msg, "tracking_number", field=field)
    checkpoints = msg.get("checkpoints")
    items = [] if checkpoints is None else require_list(checkpoints, field=f"{field}.checkpoints")
    events = [parse_checkpoint(item, field=f"{field}.checkpoints[{i}]") for i, item in enumerate(items)]
    return ParsedTracking(
        tracking_number=number,
        carrier=optional_str(msg, "slug", field=field),
        events=events,
        expected_delivery=expected_delivery(msg.get),
        raw_status=optional_str(msg, "subtag", field=field) or optional_str(msg, "tag", field=field),
    )


def parse_checkpoint(item: object, *, field: str) -> EventData:
    checkpoint = require_mapping(item, field=field)
    return checkpoint_event(
        when=optional_str(checkpoint, "checkpoint_time", field=field),
        created_at=optional_str(checkpoint, "created_at", field=field),
        country=checkpoint.get("country_region") or checkpoint.get("country_iso3"),
        tag=optional_str(checkpoint, "tag", field=field),
        subtag=optional_str(checkpoint, "subtag", field=field),
        raw_code=optional_str(checkpoint, "raw_tag", field=field),
        raw_text=optional_str(checkpoint, "message", field=field),
        location=optional_str(checkpoint, "location", field=field),
        city=optional_str(checkpoint, "city", field=field),
        state=optional_str(checkpoint, "state", field=field),
        key=optional_str(checkpoint, "hash", field=field),
        field=field,
    )


def checkpoint_event(
    *,
    when: str,
    created_at: str,
    country: object,
    tag: str,
    subtag: str,
    raw_code: str,
    raw_text: str,
    location: str,
    city: str,
    state: str,
    key: str,
    field: str,
) -> EventData:
    """One checkpoint's fields (strings, stripped) as the EventData every parse of it gives."""
    if not when:
        # An empty checkpoint_time is documented; when AfterShip added the checkpoint (UTC) is then the
        # closest stable fact we have.
        when = created_at
    if not when:
        raise PayloadError(f"{field}.checkpoint_time: required, missing or empty (and no created_at).")
    tag, subtag = normalize_tags(tag, subtag)
    return EventData(  # positionally: one is built per checkpoint of every push, and keywords cost double
        parse_timestamp(when, field=f"{field}.checkpoint_time", naive_zone=country_zone(country)),
        tag,
        subtag,
        SOURCE,
        raw_code,
        raw_text,
        location or join_location(city, state),
        key,
    )


def expected_delivery(get: Callable[[str], Any]) -> date | None:
    """The tracking's current delivery estimate; `get` reads one of its fields (None when absent)."""
    for parent, key in _EDD_FIELDS:
        block = get(parent)
        if block and isinstance(block, Mapping) and (found := parse_date(block.get(key))):
            return found
    return parse_date(get("expected_delivery"))


def _ignored(event: str, event_id: str, extra: dict[str, Any]) -> ParsedPush:
    """An event type added after this adapter: acknowledged (so AfterShip stops retrying), not parsed."""
    return ParsedPush(kind=event, trackings=(), event_id=event_id, extra={**extra, "ignored": True})


# --- the typed path: the documented push, decoded straight into structs -----------------------------------
# Only what ingestion reads; other fields are skipped by the decoder. A field of another type than declared
# (say a number for `raw_tag`, which the lenient parser turns into a string) fails validation, and the
# lenient parser takes the push instead.
_Text = str | None
_PUSH_EXTRA = ("ts", "is_tracking_first_tag")


class _Checkpoint(msgspec.Struct):
    checkpoint_time: _Text = None
    created_at: _Text = None
    country_region: _Text = None
    country_iso3: _Text = None
    tag: _Text = None
    subtag: _Text = None
    raw_tag: _Text = None
    message: _Text = None
    location: _Text = None
    city: _Text = None
    state: _Text = None
    hash: _Text = None


class _Tracking(msgspec.Struct):
    tracking_number: str
    slug: _Text = None
    tag: _Text = None
    subtag: _Text = None
    checkpoints: list[_Checkpoint] | None = None
    expected_delivery: Any = None
    latest_estimated_delivery: Any = None
    courier_estimated_delivery_date: Any = None
    aftership_estimated_delivery_date: Any = None
    custom_estimated_delivery_date: Any = None
    first_estimated_delivery: Any = None


class _Push(msgspec.Struct):
    event: str
    event_id: _Text = None
    ts: Any = msgspec.UNSET
    is_tracking_first_tag: Any = msgspec.UNSET
    msg: _Tracking | None = None


_PUSH_DECODER = msgspec.json.Decoder(_Push)


def _strip(value: str | None) -> str:
    return value.strip() if value else ""


def _parse_push_typed(body: bytes) -> ParsedPush:
    """What the lenient parser gives for the same push; raises (for it to take over) on anything else."""
    push = _PUSH_DECODER.decode(body)
    event, event_id = push.event.strip(), _strip(push.event_id)
    if not event:
        raise PayloadError("body.event: empty")
    extra = {key: getattr(push, key) for key in _PUSH_EXTRA if getattr(push, key) is not msgspec.UNSET}
    if event not in TRACKING_EVENTS:
        return _ignored(event, event_id, extra)
    msg = push.msg
    number = msg.tracking_number.strip() if msg else ""
    if not number:
        raise PayloadError("body.msg.tracking_number: missing or empty")
    events = [
        checkpoint_event(
            when=_strip(c.checkpoint_time), created_at=_strip(c.created_at), country=c.country_region or c.country_iso3,
            tag=_strip(c.tag), subtag=_strip(c.subtag), raw_code=_strip(c.raw_tag), raw_text=_strip(c.message),
            location=_strip(c.location), city=_strip(c.city), state=_strip(c.state), key=_strip(c.hash),
            field="body.msg.checkpoints[]",  # only for the message of an error, which hands over anyway
        )
        for c in msg.checkpoints or ()
    ]  # fmt: skip
    tracking = ParsedTracking(
        tracking_number=number,
        carrier=_strip(msg.slug),
        events=events,
        expected_delivery=expected_delivery(lambda name: getattr(msg, name)),
        raw_status=_strip(msg.subtag) or _strip(msg.tag),
    )
    return ParsedPush(kind=event, trackings=(tracking,), event_id=event_id, extra=extra)


def _envelope_data(response: httpx.Response, *, what: str = "GET /trackings") -> Mapping[str, Any]:
    document = response_object(response, provider="aftership", what=what)
    meta = document.get("meta")
    code = meta.get("code") if isinstance(meta, Mapping) else 200
    if code not in (200, 201, None):
        raise PermanentProviderError(
            f"aftership: request refused (meta.code {code}): {_meta_message(document)}"
        )
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise RetryableProviderError(f"aftership: {what} answered without a data object.")
    return data


def _trackings_of(data: Mapping[str, Any]) -> list[Any]:
    trackings = data.get("trackings")
    if trackings is None:
        return []
    if not isinstance(trackings, list):
        raise RetryableProviderError("aftership: data.trackings is not an array.")
    return trackings


def _meta_message(document: Mapping[str, Any]) -> str:
    meta = document.get("meta")
    if isinstance(meta, Mapping):
        parts = [str(meta.get(k)) for k in ("type", "message") if meta.get(k)]
        return " - ".join(parts)
    return ""


def _error_message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return _meta_message(document) if isinstance(document, Mapping) else ""
