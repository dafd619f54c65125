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
- `fetch` asks GET /trackings for up to 50 tracking numbers per request (the documented maximum of the
  `tracking_numbers` filter), 200 per page, at most 6 requests/s (the documented limit of that endpoint),
  honouring 429 with Retry-After or X-RateLimit-Reset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import httpx

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
)
from tracking.providers.base import (
    ParsedPush,
    ParsedTracking,
    PayloadError,
    PermanentProviderError,
    Provider,
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


class AfterShipProvider(Provider):
    name = "aftership"
    label = "AfterShip"
    batch_size = 50
    default_base_url = f"https://api.aftership.com/tracking/{API_VERSION}"

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        webhook_secret: str = "",
        base_url: str | None = None,
        timeout: float = 10.0,
        bucket: TokenBucket | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            credentials=credentials, webhook_secret=webhook_secret, base_url=base_url, timeout=timeout
        )
        self.api_key = credential(self.credentials, "api_key", "as-api-key")
        self._bucket = bucket
        self._client = client

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature or not self.webhook_secret:
            return False
        return constant_time_equal(hmac_sha256_base64(self.webhook_secret, body), signature.strip())

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        document = require_mapping(load_json(body, what="AfterShip webhook"), field="body")
        event = require_str(document, "event", field="body")
        event_id = optional_str(document, "event_id", field="body")
        extra = {key: document[key] for key in ("ts", "is_tracking_first_tag") if key in document}
        if event not in TRACKING_EVENTS:
            # An event type added after this adapter: acknowledged (so AfterShip stops retrying), not parsed.
            return ParsedPush(kind=event, trackings=(), event_id=event_id, extra={**extra, "ignored": True})
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
        client = self._client or httpx.Client(timeout=self.timeout)
        try:
            results: list[ParsedTracking] = []
            for start in range(0, len(numbers), self.batch_size):
                results += self._fetch_chunk(client, bucket, numbers[start : start + self.batch_size])
            return results
        finally:
            if self._client is None:
                client.close()

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
        expected_delivery=expected_delivery(msg),
        raw_status=optional_str(msg, "subtag", field=field) or optional_str(msg, "tag", field=field),
    )


def parse_checkpoint(item: object, *, field: str) -> EventData:
    checkpoint = require_mapping(item, field=field)
    when = optional_str(checkpoint, "checkpoint_time", field=field)
    if not when:
        # An empty checkpoint_time is documented; when AfterShip added the checkpoint (UTC) is then the
        # closest stable fact we have.
        when = optional_str(checkpoint, "created_at", field=field)
    if not when:
        raise PayloadError(f"{field}.checkpoint_time: required, missing or empty (and no created_at).")
    zone = country_zone(checkpoint.get("country_region") or checkpoint.get("country_iso3"))
    tag, subtag = normalize_tags(
        optional_str(checkpoint, "tag", field=field), optional_str(checkpoint, "subtag", field=field)
    )
    location = optional_str(checkpoint, "location", field=field) or join_location(
        optional_str(checkpoint, "city", field=field), optional_str(checkpoint, "state", field=field)
    )
    return EventData(
        checkpoint_at=parse_timestamp(when, field=f"{field}.checkpoint_time", naive_zone=zone),
        tag=tag,
        subtag=subtag,
        source=SOURCE,
        raw_code=optional_str(checkpoint, "raw_tag", field=field),
        raw_text=optional_str(checkpoint, "message", field=field),
        location=location,
        provider_key=optional_str(checkpoint, "hash", field=field),
    )


def expected_delivery(msg: Mapping[str, Any]) -> date | None:
    for parent, key in _EDD_FIELDS:
        block = msg.get(parent)
        if isinstance(block, Mapping) and (found := parse_date(block.get(key))):
            return found
    return parse_date(msg.get("expected_delivery"))


def _envelope_data(response: httpx.Response) -> Mapping[str, Any]:
    try:
        document = response.json()
    except ValueError as exc:
        raise RetryableProviderError(
            "aftership: GET /trackings answered with a body that is not JSON."
        ) from exc
    if not isinstance(document, Mapping):
        raise RetryableProviderError("aftership: GET /trackings answered with an unexpected body.")
    meta = document.get("meta")
    code = meta.get("code") if isinstance(meta, Mapping) else 200
    if code not in (200, 201, None):
        raise PermanentProviderError(
            f"aftership: request refused (meta.code {code}): {_meta_message(document)}"
        )
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise RetryableProviderError("aftership: GET /trackings answered without a data object.")
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
