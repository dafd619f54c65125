"""17TRACK (Tracking API v2.2): webhook pushes (TRACKING_UPDATED / TRACKING_STOPPED) and `gettrackinfo`.

Guarantees:
- `verify` accepts a push only when its `sign` header equals the lowercase hex SHA-256 of the raw body
  followed by "/" and the 17TRACK security key, compared in constant time. The key is the account's API
  key (`17token`); the connection's webhook secret is accepted too, for connections created with it.
- Every documented main status, sub-status and milestone stage maps onto AfterShip's tags/subtags through
  the explicit tables below; an unknown sub-status falls back to its main status's `<Tag>_001`. The raw
  17TRACK code (the event's `sub_status`, else its `stage`) and description are always kept.
- Event times are UTC (`time_utc`, else `time_iso` with its offset, else `time_raw`).
- The same event parses to the same dedupe key on every push and pull (see `_event_status`).
- `fetch` sends at most 40 numbers per request (the documented maximum) and at most 3 requests/s (the
  documented quota), and turns 17TRACK's envelope error codes into permanent or retryable errors.
- 17TRACK tracks (and pushes) only numbers registered with it. `register` registers parcels (batches of
  40, the same quota) and returns the numbers 17TRACK refused, with its message; "already registered" is
  not a refusal. The registration step (`tracking.registration`) calls it for every new parcel; `fetch`
  also registers numbers `gettrackinfo` rejects as not registered (one deleted in 17TRACK's dashboard,
  say), so the next poll reads them again. A number 17TRACK stopped tracking before delivery (its
  TRACKING_STOPPED push: `ParsedPush.stopped`) is re-tracked (`retrack`, which 17TRACK allows once per
  number; a second stop is final).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import httpx

from tracking.choices import normalize_subtag, normalize_tag
from tracking.providers._parsing import (
    constant_time_equal,
    country_zone,
    header,
    join_location,
    load_json,
    optional_str,
    parse_date,
    parse_timestamp,
    require_list,
    require_mapping,
    require_str,
    response_object,
)
from tracking.providers.base import (
    FinalRefusal,
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

SOURCE = "17track"
SIGNATURE_HEADER = "sign"
REQUESTS_PER_SECOND = 3.0  # documented: 3 requests per second per account
PUSH_EVENTS = frozenset({"TRACKING_UPDATED", "TRACKING_STOPPED"})

# Sub-statuses (all 30 documented) -> AfterShip subtag.
SUB_STATUS_SUBTAGS: dict[str, str] = {
    "NotFound_Other": "Pending_001",  # the carrier gave no information
    "NotFound_InvalidCode": "Pending_004",  # the tracking number is invalid
    "InfoReceived": "InfoReceived_001",
    "InTransit_PickedUp": "InTransit_002",  # collected from the sender: the acceptance scan
    "InTransit_Other": "InTransit_001",
    "InTransit_Departure": "InTransit_007",  # left the port of the origin country
    "InTransit_Arrival": "InTransit_004",  # arrived at the port of the destination country
    "InTransit_CustomsProcessing": "InTransit_006",
    "InTransit_CustomsReleased": "InTransit_005",
    # "Additional information is needed for clearance": a customs hold on missing documents, whatever
    # 17TRACK's main status says, so it raises the customs case.
    "InTransit_CustomsRequiringInformation": "Exception_018",
    "Expired_Other": "Expired_001",
    "AvailableForPickup_Other": "AvailableForPickup_001",
    "OutForDelivery_Other": "OutForDelivery_001",
    "DeliveryFailure_Other": "AttemptFail_001",
    "DeliveryFailure_NoBody": "AttemptFail_002",  # recipient could not be reached
    "DeliveryFailure_Security": "AttemptFail_001",  # security, customs or fee issue at the door: no closer subtag
    "DeliveryFailure_Rejected": "Exception_003",  # recipient refused
    "DeliveryFailure_InvalidAddress": "Exception_007",
    "Delivered_Other": "Delivered_001",
    "Exception_Other": "Exception_001",
    "Exception_Returning": "Exception_010",
    "Exception_Returned": "Exception_011",
    "Exception_NoBody": "Exception_008",  # recipient not found, parcel unclaimed
    "Exception_Security": "Exception_004",  # held for security or customs reasons
    "Exception_Damage": "Exception_012",
    "Exception_Rejected": "Exception_003",
    "Exception_Delayed": "Exception_005",
    "Exception_Lost": "Exception_013",
    "Exception_Destroyed": "Exception_013",  # destroyed (e.g. by customs): it will never arrive, like a loss
    "Exception_Cancel": "Exception_001",  # order cancelled: AfterShip has no closer subtag
}

# Milestone stages (`stage` on an event, `key_stage` in `milestone`) -> AfterShip subtag.
STAGE_SUBTAGS: dict[str, str] = {
    "InfoReceived": "InfoReceived_001",
    "PickedUp": "InTransit_002",
    "Departure": "InTransit_007",
    "Arrival": "InTransit_004",
    "AvailableForPickup": "AvailableForPickup_001",
    "OutForDelivery": "OutForDelivery_001",
    "Delivered": "Delivered_001",
    "Returning": "Exception_010",
    "Returned": "Exception_011",
}

# Main statuses (all 9 documented) -> AfterShip subtag; also the fallback for unknown sub-statuses.
MAIN_STATUS_SUBTAGS: dict[str, str] = {
    "NotFound": "Pending_001",
    "InfoReceived": "InfoReceived_001",
    "InTransit": "InTransit_001",
    "Expired": "Expired_001",
    "AvailableForPickup": "AvailableForPickup_001",
    "OutForDelivery": "OutForDelivery_001",
    "DeliveryFailure": "AttemptFail_001",
    "Delivered": "Delivered_001",
    "Exception": "Exception_001",
}

# Envelope error codes that no retry can fix: the key, the IP whitelist or the account.
AUTH_ERROR_CODES = {
    -18010001: "IP address not in the whitelist",
    -18010002: "invalid security key",
    -18010004: "account disabled",
    -18010005: "unauthorized access",
}
RETRYABLE_ERROR_CODES = {-18010003}  # internal service error, try again later
NOT_REGISTERED = -18019902  # gettrackinfo: "does not register, please register first"
ALREADY_REGISTERED = -18019901  # register: "has been registered, don't need to repeat registration"
RETRACK_ONLY_STOPPED = -18019904  # retrack: "only stopped numbers can be re-tracked" (it is tracking it)
RETRACK_ONLY_ONCE = -18019905  # retrack: "each tracking number can only be re-tracked once"


def subtag_for(code: str) -> str | None:
    """The AfterShip subtag for a 17TRACK sub-status, stage or main status; None when unknown."""
    if not code:
        return None
    for table in (SUB_STATUS_SUBTAGS, STAGE_SUBTAGS, MAIN_STATUS_SUBTAGS):
        if code in table:
            return table[code]
    return MAIN_STATUS_SUBTAGS.get(code.split("_", 1)[0])


class SeventeenTrackProvider(HttpProvider):
    name = "17track"
    label = "17TRACK"
    batch_size = 40
    registers = True
    pulls_unregistered = False
    default_base_url = "https://api.17track.net/track/v2.2"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.api_key = credential(self.credentials, "api_key", "17token", "security_key")

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            return False
        given = signature.strip().lower()
        valid = False
        for key in dict.fromkeys(k for k in (self.api_key, self.webhook_secret) if k):
            expected = hashlib.sha256(body + b"/" + key.encode()).hexdigest()
            valid |= constant_time_equal(expected, given)
        return valid

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        document = require_mapping(load_json(body, what="17TRACK webhook"), field="body")
        event = require_str(document, "event", field="body")
        if event not in PUSH_EVENTS:
            return ParsedPush(kind=event, trackings=(), extra={"ignored": True})
        data = require_mapping(document.get("data"), field="body.data")
        if event == "TRACKING_STOPPED":
            # Tracking ended: no checkpoints to store. A parcel not yet delivered (17TRACK stops numbers that
            # show nothing, or no change, for a long time) is restarted (`register`, restart=True).
            number = require_str(data, "number", field="body.data")
            carrier = optional_str(data, "carrier", field="body.data")
            return ParsedPush(
                kind=event, trackings=(), extra={"number": number, "carrier": carrier},
                stopped={number: event},  # its reason: the event itself, in its own words
            )  # fmt: skip
        return ParsedPush(kind=event, trackings=(parse_item(data, field="body.data"),))

    # --- pull -------------------------------------------------------------------------------------------
    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        results: list[ParsedTracking] = []
        for client, bucket, items in self._batches(refs):
            results += self._fetch_chunk(client, bucket, items)
        return results

    def register(self, refs: Sequence[TrackingRef]) -> dict[str, str]:
        """Register new numbers; numbers 17TRACK stopped (`restart`) are re-tracked instead, since
        registering them again only answers "already registered"."""
        refused: dict[str, str] = {}
        for client, bucket, items in self._batches([ref for ref in refs if not ref.restart]):
            refused |= self._register(client, bucket, items)
        for client, bucket, items in self._batches([ref for ref in refs if ref.restart]):
            refused |= self._retrack(client, bucket, items)
        return refused

    def check(self) -> str:
        """POST /getquota: the account's tracking quota, which needs a valid key (and costs none)."""
        if not self.api_key:
            raise PermanentProviderError("17track: no API key configured (credentials['api_key']).")
        bucket = self._quota()
        with self.http() as client:
            data = self._post(client, bucket, "getquota", [])
        remain, total = data.get("quota_remain"), data.get("quota_total")
        if isinstance(remain, int) and isinstance(total, int):
            return f"17TRACK accepted the key; {remain:,} of {total:,} trackings left in the quota."
        return "17TRACK accepted the key."

    def _quota(self) -> TokenBucket:
        """The account's one quota, which every endpoint draws on (3 requests/s unless configured)."""
        return self._bucket or shared_bucket(
            provider=self.name, account=self.api_key, endpoint="gettrackinfo+register",
            requests_per_second=configured_rate(self.credentials, REQUESTS_PER_SECOND),
        )  # fmt: skip

    def _batches(
        self, refs: Sequence[TrackingRef]
    ) -> Iterator[tuple[httpx.Client, TokenBucket, list[dict[str, Any]]]]:
        """The distinct numbers in request items, 40 at a time, with the client and the shared quota."""
        items = list({ref.tracking_number: _request_item(ref) for ref in refs}.values())
        if not items:
            return
        if not self.api_key:
            raise PermanentProviderError("17track: no API key configured (credentials['api_key']).")
        bucket = self._quota()
        with self.http() as client:
            for start in range(0, len(items), self.batch_size):
                yield client, bucket, items[start : start + self.batch_size]

    def _fetch_chunk(
        self, client: httpx.Client, bucket: TokenBucket, items: list[dict[str, Any]]
    ) -> list[ParsedTracking]:
        data = self._post(client, bucket, "gettrackinfo", items)
        unregistered: set[str] = set()
        for rejected in data.get("rejected") or []:
            if _rejection_code(rejected) == NOT_REGISTERED:
                unregistered.add(rejected.get("number"))
            else:
                log.info("17track: number rejected by gettrackinfo: %s", rejected)
        results = []
        for index, item in enumerate(data.get("accepted") or []):
            try:
                results.append(
                    parse_item(require_mapping(item, field="item"), field=f"data.accepted[{index}]")
                )
            except PayloadError as exc:
                log.warning("17track: skipping a malformed item in gettrackinfo: %s", exc)
        to_register = [item for item in items if item["number"] in unregistered]
        if to_register:
            self._register(client, bucket, to_register)
        return results

    def _register(
        self, client: httpx.Client, bucket: TokenBucket, items: list[dict[str, Any]]
    ) -> dict[str, str]:
        """Start 17TRACK tracking these numbers (the carrier too, where we know 17TRACK's code for it).
        Returns the refused numbers with 17TRACK's message."""
        data = self._post(client, bucket, "register", items)
        refused = {
            number: reason
            for number, code, reason in _rejections(data, endpoint="register")
            if code != ALREADY_REGISTERED
        }
        if refused:
            log.warning("17track: numbers not registered: %s", refused)
        return refused

    def _retrack(
        self, client: httpx.Client, bucket: TokenBucket, items: list[dict[str, Any]]
    ) -> dict[str, str]:
        """POST /retrack: track again numbers 17TRACK stopped. "Only stopped numbers can be re-tracked"
        means it tracks the number already; it re-tracks each number once only, so a second refusal for
        that is final; a number no longer registered (deleted in its dashboard) is registered again."""
        data = self._post(client, bucket, "retrack", items)
        refused: dict[str, str] = {}
        unregistered: set[str] = set()
        for number, code, reason in _rejections(data, endpoint="retrack"):
            if code == RETRACK_ONLY_STOPPED:
                continue
            if code == NOT_REGISTERED:
                unregistered.add(number)
                continue
            refused[number] = FinalRefusal(reason) if code == RETRACK_ONLY_ONCE else reason
        if unregistered:
            refused |= self._register(
                client, bucket, [item for item in items if item["number"] in unregistered]
            )
        if refused:
            log.warning("17track: numbers not re-tracked: %s", refused)
        return refused

    def _post(
        self, client: httpx.Client, bucket: TokenBucket, endpoint: str, items: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        """POST a batch to an endpoint; its envelope's `data` once the code says it was taken."""
        response = request_with_retries(
            client, "POST", f"{self.base_url}/{endpoint}", bucket=bucket, provider=self.name,
            error_message=_error_message, json=items,
            headers={"17token": self.api_key, "Content-Type": "application/json"},
        )  # fmt: skip
        document = response_object(response, provider=self.name, what=endpoint)
        _raise_for_code(document)
        return document.get("data") if isinstance(document.get("data"), Mapping) else {}


def parse_item(item: Mapping[str, Any], *, field: str) -> ParsedTracking:
    """One 17TRACK tracking (`data.accepted[]` item or a TRACKING_UPDATED `data`) as a ParsedTracking."""
    number = require_str(item, "number", field=field)
    carrier = optional_str(item, "carrier", field=field)
    info_raw = item.get("track_info")
    info = {} if info_raw is None else require_mapping(info_raw, field=f"{field}.track_info")
    latest = info.get("latest_status")
    latest = require_mapping(latest, field=f"{field}.track_info.latest_status") if latest is not None else {}
    latest_code = optional_str(
        latest, "sub_status", field=f"{field}.track_info.latest_status"
    ) or optional_str(latest, "status", field=f"{field}.track_info.latest_status")
    return ParsedTracking(
        tracking_number=number,
        carrier=carrier,
        events=_events(info, number=number, latest_code=latest_code, field=f"{field}.track_info"),
        expected_delivery=_expected_delivery(info),
        raw_status=latest_code,
    )


def _events(info: Mapping[str, Any], *, number: str, latest_code: str, field: str) -> list[EventData]:
    tracking = info.get("tracking")
    if tracking is None:
        return []
    tracking = require_mapping(tracking, field=f"{field}.tracking")
    providers = tracking.get("providers")
    providers = [] if providers is None else require_list(providers, field=f"{field}.tracking.providers")
    parsed: list[tuple[datetime, Mapping[str, Any], str]] = []
    for p_index, provider in enumerate(providers):
        p_field = f"{field}.tracking.providers[{p_index}]"
        provider = require_mapping(provider, field=p_field)
        events = provider.get("events")
        for e_index, event in enumerate(
            [] if events is None else require_list(events, field=f"{p_field}.events")
        ):
            e_field = f"{p_field}.events[{e_index}]"
            event = require_mapping(event, field=e_field)
            parsed.append((_event_time(event, field=e_field), event, e_field))
    if not parsed:
        return []
    latest_at = max(at for at, _, _ in parsed)
    latest_seen = False
    results = []
    for at, event, e_field in parsed:
        is_latest = at == latest_at and not latest_seen
        latest_seen |= is_latest
        results.append(
            _event(event, at=at, number=number, is_latest=is_latest, latest_code=latest_code, field=e_field)
        )
    # Each provider lists its events newest first; hand them on oldest first.
    return sorted(results, key=lambda event: event.checkpoint_at)


def _event(
    event: Mapping[str, Any], *, at: datetime, number: str, is_latest: bool, latest_code: str, field: str
) -> EventData:
    raw_code = optional_str(event, "sub_status", field=field) or optional_str(event, "stage", field=field)
    description = optional_str(event, "description", field=field)
    address = event.get("address") if isinstance(event.get("address"), Mapping) else {}
    location = optional_str(event, "location", field=field) or join_location(
        address.get("city"), address.get("state"), address.get("country")
    )
    subtag = _event_status(raw_code, is_latest=is_latest, latest_code=latest_code)
    tag = normalize_tag(subtag.split("_", 1)[0])
    provider_key = ""
    if not raw_code:
        # No per-event status: the subtag below depends on whether the event is the latest one, which
        # changes as new events arrive, and ingestion's hash would then change with it. Key such events on
        # their own content instead, so a re-pull never stores the same checkpoint twice.
        basis = "|".join((number, at.isoformat(), description, location))
        provider_key = "evt-" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return EventData(
        checkpoint_at=at,
        tag=tag.value,
        subtag=normalize_subtag(tag, subtag),
        source=SOURCE,
        raw_code=raw_code,
        raw_text=description,
        location=location,
        provider_key=provider_key,
    )


def _event_status(raw_code: str, *, is_latest: bool, latest_code: str) -> str:
    """The event's own status when 17TRACK gives one (v2.2 events carry `sub_status` and `stage`).

    Older carriers' events may carry neither, and 17TRACK documents no way to derive a status from the
    description. Then the latest event takes the tracking's latest status (that is what it reports) and
    earlier ones are plain "in transit" (InTransit_001): the safest claim about a scan we cannot classify.
    """
    if raw_code and (subtag := subtag_for(raw_code)):
        return subtag
    if is_latest and (subtag := subtag_for(latest_code)):
        return subtag
    return "InTransit_001"


def _event_time(event: Mapping[str, Any], *, field: str) -> datetime:
    time_utc = optional_str(event, "time_utc", field=field)
    if time_utc:
        return parse_timestamp(time_utc, field=f"{field}.time_utc")
    time_iso = optional_str(event, "time_iso", field=field)
    address = event.get("address") if isinstance(event.get("address"), Mapping) else {}
    zone = country_zone(address.get("country"))
    if time_iso:
        return parse_timestamp(time_iso, field=f"{field}.time_iso", naive_zone=zone)
    raw = event.get("time_raw")
    if isinstance(raw, Mapping) and optional_str(raw, "date", field=f"{field}.time_raw"):
        text = optional_str(raw, "date", field=f"{field}.time_raw")
        clock = optional_str(raw, "time", field=f"{field}.time_raw")
        offset = optional_str(raw, "timezone", field=f"{field}.time_raw")
        if clock:
            text = f"{text}T{clock}{offset}"
        return parse_timestamp(text, field=f"{field}.time_raw", naive_zone=zone)
    raise PayloadError(f"{field}: no time_utc, time_iso or time_raw.")


def _expected_delivery(info: Mapping[str, Any]) -> date | None:
    metrics = info.get("time_metrics")
    if not isinstance(metrics, Mapping):
        return None
    estimate = metrics.get("estimated_delivery_date")
    if not isinstance(estimate, Mapping):
        return None
    return parse_date(estimate.get("to")) or parse_date(estimate.get("from"))


def _rejection_code(rejected: object) -> int | None:
    """The error code of a `data.rejected[]` item, if it has the documented shape."""
    error = rejected.get("error") if isinstance(rejected, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    return code if isinstance(code, int) else None


def _rejections(data: Mapping[str, Any], *, endpoint: str) -> Iterator[tuple[str, int | None, str]]:
    """The numbers in `data.rejected[]`, each with its error code and a reason to show ("code: message")."""
    for rejected in data.get("rejected") or []:
        number = rejected.get("number") if isinstance(rejected, Mapping) else None
        if not isinstance(number, str):
            log.warning("17track: %s rejected an item we cannot place: %s", endpoint, rejected)
            continue
        code = _rejection_code(rejected)
        error = rejected.get("error")
        message = error.get("message") if isinstance(error, Mapping) else None
        yield number, code, f"{code}: {message or 'no message'}"


def _request_item(ref: TrackingRef) -> dict[str, Any]:
    item: dict[str, Any] = {"number": ref.tracking_number}
    # 17TRACK carrier codes are integers; our own carrier codes are not theirs, so only a numeric code is
    # passed (17TRACK otherwise uses the carrier the number was registered with).
    if ref.carrier.strip().isdigit():
        item["carrier"] = int(ref.carrier.strip())
    return item


def _raise_for_code(document: Mapping[str, Any]) -> None:
    code = document.get("code", 0)
    if code in (0, None):
        return
    message = _document_message(document)
    if code in AUTH_ERROR_CODES:
        raise PermanentProviderError(
            f"17track: credentials refused ({code} {AUTH_ERROR_CODES[code]}){_tail(message)}"
        )
    if code in RETRYABLE_ERROR_CODES:
        raise RetryableProviderError(f"17track: internal service error ({code}){_tail(message)}")
    raise PermanentProviderError(f"17track: request refused ({code}){_tail(message)}")


def _document_message(document: Mapping[str, Any]) -> str:
    data = document.get("data")
    if isinstance(data, Mapping):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            return str(errors[0].get("message") or "")
        if data.get("message"):
            return str(data["message"])
    return str(document.get("message") or "")


def _error_message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:300]
    if not isinstance(document, Mapping):
        return ""
    message = _document_message(document)
    code = document.get("code")
    return f"{code} {message}".strip() if code not in (0, None) else message


def _tail(message: str) -> str:
    return f": {message}" if message else "."
