"""The simulator provider: believable carrier histories from `tracking.simulator`, pulled or pushed.

The demo and the load tests use it as a tracking provider with no network at all.

Guarantees:
- `fetch` is deterministic: the same (seed, anchor, tracking number, carrier) always yields the same
  history, and as `now` advances a parcel's history only grows (each history is generated once up to a
  fixed horizon and cut at `now`), so repeated pulls never restate a checkpoint differently.
  credentials: "seed" (default "0"), "anchor" (ISO date-time the simulated bookings are placed before;
  default: the start of the current UTC day), "scenario" (force one of `tracking.simulator.SCENARIOS`).
- `verify` accepts a push whose `x-simulator-hmac-sha256` header is base64(HMAC-SHA256(webhook secret,
  raw body)), like AfterShip's, compared in constant time.
- `parse_push` reads {"tracking_number", "carrier", "events": [...]} (or {"trackings": [that, ...]});
  `push_body` and `sign` build such a push for the bench.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking import simulator
from tracking.choices import normalize_subtag, normalize_tag
from tracking.providers._parsing import (
    constant_time_equal,
    header,
    hmac_sha256_base64,
    load_json,
    optional_str,
    parse_date,
    parse_timestamp,
    require_list,
    require_mapping,
    require_str,
)
from tracking.providers.base import ParsedPush, ParsedTracking, PayloadError, Provider, TrackingRef
from tracking.services import EventData

SOURCE = simulator.SOURCE
SIGNATURE_HEADER = "x-simulator-hmac-sha256"
# How often each scenario comes up when a connection does not force one: mostly healthy parcels.
SCENARIO_WEIGHTS: dict[str, int] = {
    "delivered": 40,
    "in_transit": 25,
    "not_picked_up": 4,
    "stalled": 6,
    "failed_delivery": 7,
    "customs_hold": 3,
    "lost": 2,
    "damaged": 3,
    "address_issue": 5,
    "returned_to_sender": 5,
}


class SimulatorProvider(Provider):
    name = "simulator"
    label = "Simulator"
    batch_size = 100

    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        webhook_secret: str = "",
        base_url: str | None = None,
        timeout: float = 10.0,
        callback_url: str = "",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(
            credentials=credentials,
            webhook_secret=webhook_secret,
            base_url=base_url,
            timeout=timeout,
            callback_url=callback_url,
        )
        self._now = now or (lambda: datetime.now(UTC))
        self.seed = str(self.credentials.get("seed", "0"))
        scenario = str(self.credentials.get("scenario") or "")
        if scenario and scenario not in simulator.SCENARIOS:
            raise ValueError(
                f"Unknown scenario {scenario!r}; expected one of {', '.join(simulator.SCENARIOS)}."
            )
        self.scenario = scenario
        anchor = self.credentials.get("anchor")
        if anchor:
            self.anchor = parse_timestamp(str(anchor), field="credentials.anchor")
        else:
            self.anchor = self._now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature or not self.webhook_secret:
            return False
        return constant_time_equal(sign(body, self.webhook_secret), signature.strip())

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        document = require_mapping(load_json(body, what="Simulator push"), field="body")
        if "trackings" in document:
            items = require_list(document["trackings"], field="body.trackings")
            trackings = [
                _tracking(require_mapping(item, field=f"body.trackings[{i}]"), field=f"body.trackings[{i}]")
                for i, item in enumerate(items)
            ]
        else:
            trackings = [_tracking(document, field="body")]
        return ParsedPush(
            kind="simulator_push",
            trackings=trackings,
            event_id=optional_str(document, "event_id", field="body"),
        )

    # --- pull -------------------------------------------------------------------------------------------
    def check(self) -> str:
        return "The simulator needs no credentials."

    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        now = self._now()
        return [self.history(ref, now=now) for ref in dict.fromkeys(refs)]

    def history(self, ref: TrackingRef, *, now: datetime) -> ParsedTracking:
        """The parcel's simulated checkpoints up to `now`."""
        rng = random.Random(f"{self.seed}|{ref.tracking_number}")  # a str seed is stable across processes
        scenario = (
            self.scenario or rng.choices(list(SCENARIO_WEIGHTS), weights=list(SCENARIO_WEIGHTS.values()))[0]
        )
        carrier = ref.carrier if ref.carrier in simulator.CARRIERS else rng.choice(sorted(simulator.CARRIERS))
        booked_at = (self.anchor - timedelta(minutes=rng.randrange(0, 72 * 60))).replace(second=0)
        horizon = booked_at + simulator.SCENARIO_MIN_AGE[scenario] + timedelta(hours=12)
        events = simulator.simulate_history(
            rng=rng, carrier=carrier, scenario=scenario, booked_at=booked_at, now=horizon
        )
        return ParsedTracking(
            tracking_number=ref.tracking_number,
            carrier=carrier,
            events=[event for event in events if event.checkpoint_at <= now],
            raw_status=scenario,
        )


def sign(body: bytes, secret: str) -> str:
    """The `x-simulator-hmac-sha256` header value for a push body."""
    return hmac_sha256_base64(secret, body)


def push_body(trackings: Sequence[ParsedTracking], *, event_id: str = "") -> bytes:
    """A simulator push carrying these trackings, in the shape `parse_push` reads."""
    document: dict[str, Any] = {
        "trackings": [
            {
                "tracking_number": tracking.tracking_number,
                "carrier": tracking.carrier,
                "expected_delivery": tracking.expected_delivery.isoformat()
                if tracking.expected_delivery
                else None,
                "events": [
                    {
                        "checkpoint_at": event.checkpoint_at.isoformat(),
                        "tag": event.tag,
                        "subtag": event.subtag,
                        "raw_code": event.raw_code,
                        "raw_text": event.raw_text,
                        "location": event.location,
                        "id": event.provider_key,
                    }
                    for event in tracking.events
                ],
            }
            for tracking in trackings
        ]
    }
    if event_id:
        document["event_id"] = event_id
    return json.dumps(document, ensure_ascii=False).encode()


def _tracking(item: Mapping[str, Any], *, field: str) -> ParsedTracking:
    number = require_str(item, "tracking_number", field=field)
    events = require_list(item.get("events", []), field=f"{field}.events")
    return ParsedTracking(
        tracking_number=number,
        carrier=optional_str(item, "carrier", field=field),
        events=[_event(event, field=f"{field}.events[{i}]") for i, event in enumerate(events)],
        expected_delivery=parse_date(item.get("expected_delivery")),
    )


def _event(item: object, *, field: str) -> EventData:
    event = require_mapping(item, field=field)
    when = optional_str(event, "checkpoint_at", field=field) or optional_str(event, "time", field=field)
    if not when:
        raise PayloadError(f"{field}.checkpoint_at: required, missing or empty.")
    subtag = optional_str(event, "subtag", field=field)
    tag_name = optional_str(event, "tag", field=field) or subtag.split("_", 1)[0]
    if not tag_name:
        raise PayloadError(f"{field}: needs a tag or a subtag.")
    tag = normalize_tag(tag_name)
    return EventData(
        checkpoint_at=parse_timestamp(when, field=f"{field}.checkpoint_at"),
        tag=tag.value,
        subtag=normalize_subtag(tag, subtag),
        source=SOURCE,
        raw_code=optional_str(event, "raw_code", field=field),
        raw_text=optional_str(event, "raw_text", field=field),
        location=optional_str(event, "location", field=field),
        provider_key=optional_str(event, "id", field=field)
        or optional_str(event, "provider_key", field=field),
    )
