from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tracking.providers.base import PayloadError, TrackingRef
from tracking.providers.simulator import SimulatorProvider, push_body, sign

SECRET = "bench-secret-123"
ANCHOR = "2026-11-20T00:00:00+00:00"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REFS = [TrackingRef(f"63{i:010d}", "jtexpress-my") for i in range(20)] + [TrackingRef("NVMYLUMI000000001")]


def provider(now: datetime = NOW, **credentials) -> SimulatorProvider:
    credentials = {"seed": "7", "anchor": ANCHOR, **credentials}
    return SimulatorProvider(credentials=credentials, webhook_secret=SECRET, now=lambda: now)


# --- pull ---------------------------------------------------------------------------------------------
def test_the_same_seed_pulls_the_same_histories():
    assert provider().fetch(REFS) == provider().fetch(REFS)


def test_another_seed_pulls_other_histories():
    assert provider().fetch(REFS) != provider(seed="8").fetch(REFS)


def test_pulled_events_are_utc_simulator_events_no_later_than_now():
    for tracking in provider().fetch(REFS):
        assert tracking.raw_status  # the scenario, for debugging
        for event in tracking.events:
            assert event.source == "simulator"
            assert event.checkpoint_at.utcoffset() == timedelta(0)
            assert event.checkpoint_at <= NOW
            assert event.raw_code and event.raw_text


def test_a_history_only_grows_as_time_passes_so_repeated_pulls_never_restate_a_checkpoint():
    early = {t.tracking_number: t for t in provider(now=NOW - timedelta(hours=34)).fetch(REFS)}
    late = {t.tracking_number: t for t in provider(now=NOW + timedelta(days=5)).fetch(REFS)}

    grew = 0
    for number, tracking in early.items():
        before = [e.dedupe_key(number) for e in tracking.events]
        after = [e.dedupe_key(number) for e in late[number].events]
        assert after[: len(before)] == before
        grew += len(after) > len(before)
    assert grew > 0


def test_a_connection_can_force_a_scenario():
    for tracking in provider(now=NOW + timedelta(days=10), scenario="lost").fetch(REFS[:5]):
        assert tracking.raw_status == "lost"
        assert tracking.events[-1].subtag == "Exception_013"


def test_a_carrier_the_simulator_does_not_know_is_replaced_by_one_it_does():
    [tracking] = provider().fetch([TrackingRef("X123", "dhl")])
    assert tracking.carrier in {
        "jtexpress-my",
        "ninjavan-my",
        "poslaju",
        "citylink",
        "flash-express",
        "kerry-express-th",
    }


def test_an_unknown_forced_scenario_is_refused():
    with pytest.raises(ValueError, match="Unknown scenario 'abducted'"):
        provider(scenario="abducted")


# --- push ---------------------------------------------------------------------------------------------
def test_a_push_signed_like_aftership_with_the_connection_secret_is_accepted():
    body = push_body(provider().fetch(REFS[:2]))
    assert provider().verify(body=body, headers={"X-Simulator-Hmac-Sha256": sign(body, SECRET)})


def test_a_push_with_a_wrong_missing_or_tampered_signature_is_rejected():
    body = push_body(provider().fetch(REFS[:2]))
    assert not provider().verify(body=body, headers={"x-simulator-hmac-sha256": sign(body, "other")})
    assert not provider().verify(body=body, headers={})
    assert not provider().verify(body=body + b" ", headers={"x-simulator-hmac-sha256": sign(body, SECRET)})


def test_a_pushed_history_parses_back_to_the_same_events():
    pulled = provider().fetch(REFS)
    parsed = provider().parse_push(body=push_body(pulled, event_id="bench-1"), headers={})
    assert parsed.kind == "simulator_push"
    assert parsed.event_id == "bench-1"
    assert [(t.tracking_number, t.carrier, list(t.events)) for t in parsed.trackings] == [
        (t.tracking_number, t.carrier, list(t.events)) for t in pulled
    ]


def test_the_simple_single_parcel_shape_is_accepted():
    body = json.dumps(
        {
            "tracking_number": "630000000001",
            "carrier": "jtexpress-my",
            "events": [
                {"checkpoint_at": "2026-11-21T08:00:00+08:00", "subtag": "InTransit_002", "raw_code": "1"},
                {
                    "time": "2026-11-21T10:00:00Z",
                    "tag": "Exception",
                    "subtag": "Exception_999",
                    "location": "KL",
                },
            ],
        }
    ).encode()
    [tracking] = provider().parse_push(body=body, headers={}).trackings
    first, second = tracking.events
    assert (first.checkpoint_at, first.tag, first.subtag) == (
        datetime(2026, 11, 21, 0, 0, tzinfo=UTC),
        "InTransit",
        "InTransit_002",
    )
    assert (second.tag, second.subtag, second.location) == ("Exception", "Exception_001", "KL")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"nope", "not valid JSON"),
        (b'{"carrier": "x", "events": []}', "body.tracking_number: required"),
        (b'{"tracking_number": "1", "events": {}}', "body.events: expected a JSON array"),
        (b'{"trackings": {}}', "body.trackings: expected a JSON array"),
        (
            b'{"tracking_number": "1", "events": [{"subtag": "InTransit_001"}]}',
            r"events\[0\].checkpoint_at: required",
        ),
        (
            b'{"tracking_number": "1", "events": [{"checkpoint_at": "2026-11-21T08:00:00Z"}]}',
            "needs a tag or a subtag",
        ),
        (
            b'{"tracking_number": "1", "events": [{"checkpoint_at": "soon", "subtag": "InTransit_001"}]}',
            "'soon' is not a date-time",
        ),
    ],
)
def test_malformed_pushes_raise_a_payload_error_that_names_the_field(body, message):
    with pytest.raises(PayloadError, match=message):
        provider().parse_push(body=body, headers={})


def test_the_simulators_credentials_check_asks_nothing():
    assert provider().check() == "The simulator needs no credentials."
