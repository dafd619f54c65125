from __future__ import annotations

import copy
import hashlib
import json
import time
import uuid
from datetime import UTC, date, datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.tracking.providers.conftest import fixture_bytes, fixture_json
from tracking.providers.base import (
    FinalRefusal,
    PayloadError,
    PermanentProviderError,
    RetryableProviderError,
    TrackingRef,
)
from tracking.providers.seventeentrack import (
    MAIN_STATUS_SUBTAGS,
    STAGE_SUBTAGS,
    SUB_STATUS_SUBTAGS,
    SeventeenTrackProvider,
    subtag_for,
)
from tracking.services import EventData

API_KEY = "17track-security-key-ABC"
WEBHOOK_SECRET = "connection-secret-xyz"

# The 30 sub-statuses 17TRACK documents (Tracking API v2.2, "sub status").
DOCUMENTED_SUB_STATUSES = {
    "NotFound_Other", "NotFound_InvalidCode", "InfoReceived", "InTransit_PickedUp", "InTransit_Other",
    "InTransit_Departure", "InTransit_Arrival", "InTransit_CustomsProcessing", "InTransit_CustomsReleased",
    "InTransit_CustomsRequiringInformation", "Expired_Other", "AvailableForPickup_Other", "OutForDelivery_Other",
    "DeliveryFailure_Other", "DeliveryFailure_NoBody", "DeliveryFailure_Security", "DeliveryFailure_Rejected",
    "DeliveryFailure_InvalidAddress", "Delivered_Other", "Exception_Other", "Exception_Returning",
    "Exception_Returned", "Exception_NoBody", "Exception_Security", "Exception_Damage", "Exception_Rejected",
    "Exception_Delayed", "Exception_Lost", "Exception_Destroyed", "Exception_Cancel",
}  # fmt: skip
DOCUMENTED_MAIN_STATUSES = {
    "NotFound", "InfoReceived", "InTransit", "Expired", "AvailableForPickup", "OutForDelivery", "DeliveryFailure",
    "Delivered", "Exception",
}  # fmt: skip


def provider(**kwargs) -> SeventeenTrackProvider:
    kwargs.setdefault("credentials", {"api_key": API_KEY})
    return SeventeenTrackProvider(webhook_secret=WEBHOOK_SECRET, **kwargs)


def sign(body: bytes, key: str = API_KEY) -> dict[str, str]:
    return {"sign": hashlib.sha256(body + b"/" + key.encode()).hexdigest()}


def update_push(
    events: list[dict], *, status: str = "InTransit", sub_status: str = "InTransit_Other"
) -> bytes:
    return json.dumps(
        {
            "event": "TRACKING_UPDATED",
            "data": {
                "number": "LP00123456789",
                "carrier": 190271,
                "track_info": {
                    "latest_status": {"status": status, "sub_status": sub_status},
                    "tracking": {
                        "providers": [{"provider": {"key": 190271, "name": "Cainiao"}, "events": events}]
                    },
                },
            },
        }
    ).encode()


def event(at: str, description: str = "Scan", **fields) -> dict:
    return {"time_iso": at, "time_utc": None, "description": description, "location": "Hub", **fields}


# --- signature ----------------------------------------------------------------------------------------
def test_a_push_signed_with_the_security_key_is_accepted():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    assert provider().verify(body=body, headers=sign(body))


def test_a_push_signed_with_the_connection_secret_is_accepted_too():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    assert provider().verify(body=body, headers=sign(body, WEBHOOK_SECRET))


def test_a_push_signed_with_another_key_is_rejected():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    assert not provider().verify(body=body, headers=sign(body, "not-our-key"))


def test_a_push_without_a_sign_header_is_rejected():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    assert not provider().verify(body=body, headers={})


def test_a_tampered_body_fails_the_signature():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    headers = sign(body)
    assert not provider().verify(
        body=body.replace(b"DeliveryFailure_NoBody", b"Delivered_Other"), headers=headers
    )


def test_the_signature_is_sha256_of_body_slash_key_not_an_hmac():
    body = b'{"event":"TRACKING_UPDATED"}'
    expected = hashlib.sha256(b'{"event":"TRACKING_UPDATED"}/' + API_KEY.encode()).hexdigest()
    assert provider().verify(body=body, headers={"Sign": expected.upper()})


# --- parsing ------------------------------------------------------------------------------------------
def test_the_webhook_fixture_parses_to_the_expected_events():
    parsed = provider().parse_push(body=fixture_bytes("seventeentrack_tracking_updated.json"), headers={})

    assert parsed.kind == "TRACKING_UPDATED"
    [tracking] = parsed.trackings
    assert (tracking.tracking_number, tracking.carrier) == ("YT2432100012345678", "190008")
    assert tracking.expected_delivery == date(2026, 11, 24)
    assert tracking.raw_status == "DeliveryFailure_NoBody"
    summary = [(e.checkpoint_at, e.subtag, e.raw_code, e.location) for e in tracking.events]
    assert summary == [
        (datetime(2026, 11, 17, 8, 0, tzinfo=UTC), "InfoReceived_001", "InfoReceived", ""),
        (datetime(2026, 11, 18, 1, 12, tzinfo=UTC), "InTransit_002", "InTransit_PickedUp", "SHENZHEN, GUANGDONG"),
        (datetime(2026, 11, 19, 14, 40, tzinfo=UTC), "InTransit_007", "InTransit_Departure", "SHENZHEN"),
        (datetime(2026, 11, 20, 2, 5, tzinfo=UTC), "InTransit_004", "InTransit_Arrival", "KUALA LUMPUR"),
        (datetime(2026, 11, 20, 18, 0, tzinfo=UTC), "InTransit_001", "", "Klang, Selangor, MY"),
        (datetime(2026, 11, 21, 6, 0, tzinfo=UTC), "InTransit_005", "InTransit_CustomsReleased", "Sepang, Selangor"),
        (datetime(2026, 11, 22, 0, 10, tzinfo=UTC), "OutForDelivery_001", "OutForDelivery_Other", "Petaling Jaya, Selangor"),
        (datetime(2026, 11, 22, 7, 30, tzinfo=UTC), "AttemptFail_002", "DeliveryFailure_NoBody", "Petaling Jaya, Selangor"),
    ]  # fmt: skip
    assert tracking.events[-1] == EventData(
        checkpoint_at=datetime(2026, 11, 22, 7, 30, tzinfo=UTC),
        tag="AttemptFail",
        subtag="AttemptFail_002",
        source="17track",
        raw_code="DeliveryFailure_NoBody",
        raw_text="Delivery unsuccessful: recipient not available",
        location="Petaling Jaya, Selangor",
        provider_key="",
    )
    # Events with their own status have no key of their own (ingestion hashes them); only the one without does.
    assert [bool(e.provider_key) for e in tracking.events] == [
        False,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]


def test_a_tracking_stopped_push_names_the_number_and_carries_no_checkpoints():
    parsed = provider().parse_push(body=fixture_bytes("seventeentrack_tracking_stopped.json"), headers={})
    assert parsed.kind == "TRACKING_STOPPED"
    assert parsed.trackings == ()
    assert parsed.extra == {"number": "YT2432100012345678", "carrier": "190008"}
    assert parsed.stopped == {"YT2432100012345678": "TRACKING_STOPPED"}


def test_every_documented_status_has_an_explicit_mapping():
    assert set(SUB_STATUS_SUBTAGS) == DOCUMENTED_SUB_STATUSES
    assert set(MAIN_STATUS_SUBTAGS) == DOCUMENTED_MAIN_STATUSES


@pytest.mark.parametrize(("code", "expected"), sorted(SUB_STATUS_SUBTAGS.items()))
def test_each_sub_status_maps_to_its_aftership_subtag(code, expected):
    push = update_push([event("2026-11-20T10:00:00+08:00", sub_status=code)])
    [parsed] = provider().parse_push(body=push, headers={}).trackings[0].events
    assert (parsed.tag, parsed.subtag, parsed.raw_code) == (expected.split("_")[0], expected, code)


@pytest.mark.parametrize(("stage", "expected"), sorted(STAGE_SUBTAGS.items()))
def test_an_event_with_only_a_stage_maps_through_the_stage(stage, expected):
    push = update_push([event("2026-11-20T10:00:00+08:00", stage=stage, sub_status=None)])
    [parsed] = provider().parse_push(body=push, headers={}).trackings[0].events
    assert (parsed.subtag, parsed.raw_code) == (expected, stage)


@pytest.mark.parametrize(("status", "expected"), sorted(MAIN_STATUS_SUBTAGS.items()))
def test_each_main_status_maps_to_a_tag(status, expected):
    assert subtag_for(status) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InTransit_Teleported", "InTransit_001"),
        ("Exception_Alien", "Exception_001"),
        ("Mystery", None),
        ("", None),
    ],
)
def test_an_unknown_sub_status_falls_back_to_its_main_status(code, expected):
    assert subtag_for(code) == expected


def test_events_without_a_status_take_the_latest_status_when_latest_and_in_transit_otherwise():
    push = update_push(
        [
            event("2026-11-21T10:00:00+08:00", "Delivered to the front desk"),
            event("2026-11-20T10:00:00+08:00"),
        ],
        status="Delivered",
        sub_status="Delivered_Other",
    )
    earlier, latest = provider().parse_push(body=push, headers={}).trackings[0].events
    assert (latest.tag, latest.subtag, latest.raw_code) == ("Delivered", "Delivered_001", "")
    assert (earlier.tag, earlier.subtag) == ("InTransit", "InTransit_001")


def test_an_event_without_a_status_keeps_its_dedupe_key_when_newer_events_arrive():
    old = event("2026-11-20T10:00:00+08:00", "Arrived at hub")
    first = provider().parse_push(body=update_push([old], sub_status="InTransit_PickedUp"), headers={})
    newer = event("2026-11-21T10:00:00+08:00", "Out for delivery", sub_status="OutForDelivery_Other")
    second = provider().parse_push(
        body=update_push([newer, old], sub_status="OutForDelivery_Other"), headers={}
    )

    [before] = first.trackings[0].events
    after = second.trackings[0].events[0]
    assert before.subtag != after.subtag  # it was the latest, then it was not...
    assert before.dedupe_key("LP00123456789") == after.dedupe_key(
        "LP00123456789"
    )  # ...and is still the same event


def test_an_event_with_a_status_hashes_the_same_on_every_push():
    body = fixture_bytes("seventeentrack_tracking_updated.json")
    first = provider().parse_push(body=body, headers={}).trackings[0].events
    second = provider().parse_push(body=body, headers={}).trackings[0].events
    assert [e.dedupe_key("YT2432100012345678") for e in first] == [
        e.dedupe_key("YT2432100012345678") for e in second
    ]


def test_time_raw_is_used_when_17track_has_no_normalized_time():
    document = fixture_json("seventeentrack_gettrackinfo.json")
    push = json.dumps({"event": "TRACKING_UPDATED", "data": document["data"]["accepted"][0]}).encode()
    events = provider().parse_push(body=push, headers={}).trackings[0].events
    # 18:30 on a Chinese carrier's clock, no offset given: China time.
    assert events[0].checkpoint_at == datetime(2026, 11, 19, 10, 30, tzinfo=UTC)
    assert events[0].raw_text == "收寄计费信息"


def test_an_unknown_push_event_is_acknowledged_and_ignored():
    parsed = provider().parse_push(body=b'{"event": "TRACKING_ARCHIVED", "data": {}}', headers={})
    assert parsed.trackings == () and parsed.extra["ignored"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (b'{"data": {}}', "body.event: required"),
        (
            b'{"event": "TRACKING_UPDATED", "data": "LP001"}',
            "body.data: expected a JSON object, got a string",
        ),
        (b'{"event": "TRACKING_UPDATED", "data": {"carrier": 1}}', "body.data.number: required"),
        (b'{"event": "TRACKING_STOPPED", "data": {}}', "body.data.number: required"),
        (
            b'{"event": "TRACKING_UPDATED", "data": {"number": "X", "track_info": {"tracking": {"providers": {}}}}}',
            "providers: expected a JSON array",
        ),
        (update_push([{"description": "no time at all"}]), r"events\[0\]: no time_utc, time_iso or time_raw"),
        (update_push([event("20/11/2026")]), r"events\[0\].time_iso: '20/11/2026' is not a date-time"),
        (
            update_push([event("2026-11-20T10:00:00Z", sub_status=["x"])]),
            r"events\[0\].sub_status: expected a string",
        ),
    ],
)
def test_malformed_pushes_raise_a_payload_error_that_names_the_field(body, message):
    with pytest.raises(PayloadError, match=message):
        provider().parse_push(body=body, headers={})


# --- pull ---------------------------------------------------------------------------------------------
def _gettrackinfo_handler(seen: list[list[dict]], stamps: list[float] | None = None):
    template = fixture_json("seventeentrack_gettrackinfo.json")["data"]["accepted"][0]

    def handler(request: Request) -> Response:
        if stamps is not None:
            stamps.append(time.monotonic())
        items = json.loads(request.data)
        seen.append(items)
        accepted = []
        for item in items:
            entry = copy.deepcopy(template)
            entry["number"] = item["number"]
            accepted.append(entry)
        body = {"code": 0, "data": {"accepted": accepted, "rejected": []}}
        return Response(json.dumps(body), content_type="application/json")

    return handler


def test_fetch_sends_40_numbers_a_request_so_100_numbers_take_3(httpserver: HTTPServer, fake_bucket):
    seen: list[list[dict]] = []
    httpserver.expect_request(
        "/gettrackinfo", method="POST", headers={"17token": API_KEY}
    ).respond_with_handler(_gettrackinfo_handler(seen))
    refs = [TrackingRef(f"RR{i:09d}CN", carrier="3011" if i == 0 else "jtexpress-my") for i in range(100)]

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(refs)

    assert [len(items) for items in seen] == [40, 40, 20]
    assert seen[0][0] == {
        "number": "RR000000000CN",
        "carrier": 3011,
    }  # a numeric 17TRACK carrier code is sent
    assert seen[0][1] == {"number": "RR000000001CN"}  # our own carrier codes are not 17TRACK's
    assert [t.tracking_number for t in parsed] == [r.tracking_number for r in refs]
    assert [e.subtag for e in parsed[0].events] == ["InTransit_002", "InTransit_006"]


def test_fetch_returns_accepted_numbers_and_registers_the_ones_17track_does_not_track_yet(
    httpserver: HTTPServer, fake_bucket
):
    registered: list[list[dict]] = []
    httpserver.expect_request("/gettrackinfo").respond_with_json(
        fixture_json("seventeentrack_gettrackinfo.json")  # LX000000000CN rejected: not registered
    )
    httpserver.expect_request("/register", method="POST", headers={"17token": API_KEY}).respond_with_handler(
        _register_handler(registered, already=set())
    )

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("RR123456789CN"), TrackingRef("LX000000000CN", carrier="3011")]
    )

    assert [t.tracking_number for t in parsed] == ["RR123456789CN"]
    assert parsed[0].raw_status == "InTransit_CustomsProcessing"
    assert registered == [[{"number": "LX000000000CN", "carrier": 3011}]]


def _register_handler(registered: list[list[dict]], *, already: set[str]):
    """17TRACK's `register`: accepts new numbers, rejects known ones as already registered."""

    def handler(request: Request) -> Response:
        items = json.loads(request.data)
        registered.append(items)
        accepted, rejected = [], []
        for item in items:
            if item["number"] in already:
                message = f"The tracking number '{item['number']}' has been registered, don't need to repeat registration."
                rejected.append({"number": item["number"], "error": {"code": -18019901, "message": message}})
            else:
                already.add(item["number"])
                accepted.append({"origin": 1, "number": item["number"], "carrier": item.get("carrier", 3011)})
        body = {"code": 0, "data": {"accepted": accepted, "rejected": rejected}}
        return Response(json.dumps(body), content_type="application/json")

    return handler


def test_a_number_registered_at_one_poll_is_read_at_the_next(httpserver: HTTPServer, fake_bucket):
    known: set[str] = set()  # what 17TRACK tracks
    template = fixture_json("seventeentrack_gettrackinfo.json")["data"]["accepted"][0]

    def gettrackinfo(request: Request) -> Response:
        accepted, rejected = [], []
        for item in json.loads(request.data):
            if item["number"] in known:
                accepted.append({**copy.deepcopy(template), "number": item["number"]})
            else:
                message = f"The tracking number '{item['number']}' does not register, please register first."
                rejected.append({"number": item["number"], "error": {"code": -18019902, "message": message}})
        return Response(json.dumps({"code": 0, "data": {"accepted": accepted, "rejected": rejected}}))

    calls: list[list[dict]] = []
    httpserver.expect_request("/gettrackinfo").respond_with_handler(gettrackinfo)
    httpserver.expect_request("/register").respond_with_handler(_register_handler(calls, already=known))
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)
    refs = [TrackingRef("RR000000000CN"), TrackingRef("RR000000001CN")]

    assert client.fetch(refs) == []
    assert calls == [[{"number": "RR000000000CN"}, {"number": "RR000000001CN"}]]  # one request for both

    assert [t.tracking_number for t in client.fetch(refs)] == ["RR000000000CN", "RR000000001CN"]
    assert len(calls) == 1  # nothing left to register


def test_a_number_registered_meanwhile_is_not_an_error(httpserver: HTTPServer, fake_bucket):
    calls: list[list[dict]] = []
    httpserver.expect_request("/gettrackinfo").respond_with_json(
        fixture_json("seventeentrack_gettrackinfo.json")
    )
    # Another worker (or the seller in 17TRACK's dashboard) registered it since gettrackinfo answered.
    httpserver.expect_request("/register").respond_with_handler(
        _register_handler(calls, already={"LX000000000CN"})
    )

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("RR123456789CN"), TrackingRef("LX000000000CN")]
    )

    assert [t.tracking_number for t in parsed] == ["RR123456789CN"]
    assert len(calls) == 1


def test_a_refused_registration_request_is_a_provider_error(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/gettrackinfo").respond_with_json(
        fixture_json("seventeentrack_gettrackinfo.json")
    )
    httpserver.expect_request("/register").respond_with_json(
        {
            "code": -18010013,
            "data": {"errors": [{"code": -18010013, "message": "Submitted data is invalid."}]},
        }
    )

    with pytest.raises(PermanentProviderError, match="Submitted data is invalid"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("LX000000000CN")])


def test_fetch_waits_out_a_429_then_succeeds(httpserver: HTTPServer, fake_bucket, fake_clock):
    httpserver.expect_ordered_request("/gettrackinfo").respond_with_data(
        "", status=429, headers={"Retry-After": "1"}
    )
    httpserver.expect_ordered_request("/gettrackinfo").respond_with_json(
        fixture_json("seventeentrack_gettrackinfo.json")
    )

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("RR123456789CN")]
    )

    assert [t.tracking_number for t in parsed] == ["RR123456789CN"]
    assert fake_clock.sleeps == [pytest.approx(1.0)]


@pytest.mark.parametrize("code", [-18010001, -18010002, -18010004, -18010005])
def test_documented_key_and_account_error_codes_are_permanent(httpserver: HTTPServer, fake_bucket, code):
    httpserver.expect_request("/gettrackinfo").respond_with_json(
        {"code": code, "data": {"errors": [{"code": code, "message": "Invalid security key."}]}}
    )
    with pytest.raises(PermanentProviderError, match=f"credentials refused \\({code}.*Invalid security key"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


def test_an_internal_error_code_is_retryable(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/gettrackinfo").respond_with_json({"code": -18010003, "data": {"errors": []}})
    with pytest.raises(RetryableProviderError, match="-18010003"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


def test_a_refused_request_code_is_permanent_with_the_message(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/gettrackinfo").respond_with_json(
        {
            "code": -18010014,
            "data": {"errors": [{"code": -18010014, "message": "Tracking numbers exceed the 40 limit."}]},
        }
    )
    with pytest.raises(PermanentProviderError, match="exceed the 40 limit"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


def test_http_401_is_permanent_and_500_retryable(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_ordered_request("/gettrackinfo").respond_with_data("Unauthorized", status=401)
    httpserver.expect_ordered_request("/gettrackinfo").respond_with_data("boom", status=500)
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)

    with pytest.raises(PermanentProviderError, match="HTTP 401"):
        client.fetch([TrackingRef("X1")])
    with pytest.raises(RetryableProviderError, match="HTTP 500"):
        client.fetch([TrackingRef("X1")])


def test_a_timeout_is_retryable(httpserver: HTTPServer, fake_bucket, stalled_handler):
    httpserver.expect_request("/gettrackinfo").respond_with_handler(stalled_handler)
    with pytest.raises(RetryableProviderError, match="timed out"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket, timeout=0.1).fetch([TrackingRef("X1")])


@pytest.mark.django_db  # the shared buckets are kept in the database, as in production
def test_a_rate_limited_client_never_exceeds_3_requests_in_any_second(httpserver: HTTPServer):
    """Real clock, real default bucket: the timestamps the server saw must respect the documented quota."""
    seen: list[list[dict]] = []
    stamps: list[float] = []
    httpserver.expect_request("/gettrackinfo").respond_with_handler(_gettrackinfo_handler(seen, stamps))
    # A fresh account key: its own shared bucket, as in production.
    client = provider(credentials={"api_key": f"quota-{uuid.uuid4()}"}, base_url=httpserver.url_for("/"))

    parsed = client.fetch([TrackingRef(f"RR{i:09d}CN") for i in range(7 * 40)])

    assert len(parsed) == 280 and len(stamps) == 7
    windows = [stamps[i + 3] - stamps[i] for i in range(len(stamps) - 3)]
    assert min(windows) >= 1.0, f"4 requests within {min(windows):.3f} s"


@pytest.mark.django_db  # the shared buckets are kept in the database, as in production
def test_registering_shares_the_3_requests_a_second_quota_with_gettrackinfo(httpserver: HTTPServer):
    stamps: list[float] = []

    def not_registered(request: Request) -> Response:
        stamps.append(time.monotonic())
        rejected = [
            {"number": item["number"], "error": {"code": -18019902, "message": "does not register"}}
            for item in json.loads(request.data)
        ]
        return Response(json.dumps({"code": 0, "data": {"accepted": [], "rejected": rejected}}))

    def register(request: Request) -> Response:
        stamps.append(time.monotonic())
        accepted = [{"number": item["number"]} for item in json.loads(request.data)]
        return Response(json.dumps({"code": 0, "data": {"accepted": accepted, "rejected": []}}))

    httpserver.expect_request("/gettrackinfo").respond_with_handler(not_registered)
    httpserver.expect_request("/register").respond_with_handler(register)
    client = provider(credentials={"api_key": f"quota-{uuid.uuid4()}"}, base_url=httpserver.url_for("/"))

    assert client.fetch([TrackingRef(f"RR{i:09d}CN") for i in range(3 * 40)]) == []

    assert len(stamps) == 6  # three of each
    windows = [stamps[i + 3] - stamps[i] for i in range(len(stamps) - 3)]
    assert min(windows) >= 1.0, f"4 requests within {min(windows):.3f} s"


def test_fetch_without_an_api_key_is_permanent_and_sends_nothing(httpserver: HTTPServer):
    with pytest.raises(PermanentProviderError, match="no API key"):
        SeventeenTrackProvider(base_url=httpserver.url_for("/")).fetch([TrackingRef("X1")])
    assert httpserver.log == []


def test_register_sends_40_numbers_a_request_and_returns_the_refused_ones_with_the_message(
    httpserver: HTTPServer, fake_bucket
):
    calls: list[list[dict]] = []
    handler = _register_handler(calls, already={"RR000000001CN"})

    def register(request: Request) -> Response:
        response = handler(request)
        body = json.loads(response.get_data())
        refused = {"number": "BAD1", "error": {"code": -18019903, "message": "Carrier can not be detected."}}
        body["data"]["accepted"] = [a for a in body["data"]["accepted"] if a["number"] != "BAD1"]
        if any(item["number"] == "BAD1" for item in json.loads(request.data)):
            body["data"]["rejected"].append(refused)
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/register", method="POST", headers={"17token": API_KEY}).respond_with_handler(
        register
    )
    refs = [TrackingRef("BAD1")] + [TrackingRef(f"RR{i:09d}CN") for i in range(45)]

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(refs)

    assert [len(items) for items in calls] == [40, 6]
    assert refused == {"BAD1": "-18019903: Carrier can not be detected."}  # already registered: no refusal
    assert not any(request.path == "/gettrackinfo" for request, _ in httpserver.log)


class FakeTracker:
    """17TRACK's side of `register` and `retrack`: which numbers it tracks, has stopped, and has re-tracked
    (once only, as documented), answering with its documented codes and messages."""

    def __init__(self, *, tracking=(), stopped=()) -> None:
        self.tracking, self.stopped, self.retracked = set(tracking), set(stopped), set()
        self.calls: list[tuple[str, list[str]]] = []

    def install(self, httpserver: HTTPServer, *, api_key: str = API_KEY) -> None:
        for endpoint in ("register", "retrack"):
            httpserver.expect_request(
                f"/{endpoint}", method="POST", headers={"17token": api_key}
            ).respond_with_handler(self.handler)

    def stop(self, number: str) -> None:
        self.tracking.discard(number)
        self.stopped.add(number)

    def handler(self, request: Request) -> Response:
        endpoint = request.path.strip("/")
        items = json.loads(request.data)
        self.calls.append((endpoint, [item["number"] for item in items]))
        accepted, rejected = [], []
        for item in items:
            number = item["number"]
            error = self._register(number) if endpoint == "register" else self._retrack(number)
            if error:
                rejected.append({"number": number, "error": {"code": error[0], "message": error[1]}})
            else:
                accepted.append({"number": number, "carrier": 190008})
        body = {"code": 0, "data": {"accepted": accepted, "rejected": rejected}}
        return Response(json.dumps(body), content_type="application/json")

    def _register(self, number: str) -> tuple[int, str] | None:
        if number in self.tracking or number in self.stopped:
            return (
                -18019901,
                f"The tracking number '{number}' has been registered, don't need to repeat registration.",
            )
        self.tracking.add(number)
        return None

    def _retrack(self, number: str) -> tuple[int, str] | None:
        if number in self.tracking:
            return -18019904, "Retrack is not allowed. You can only retrack stopped number."
        if number not in self.stopped:
            return -18019902, f"The tracking number '{number}' does not register, please register first."
        if number in self.retracked:
            return -18019905, "Retrack is not allowed. You can only retrack each number once."
        self.stopped.discard(number)
        self.tracking.add(number)
        self.retracked.add(number)
        return None


def test_a_stopped_number_is_retracked_not_registered_again(httpserver: HTTPServer, fake_bucket):
    tracker = FakeTracker(stopped={"YT1"})
    tracker.install(httpserver)

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(
        [TrackingRef("NEW1"), TrackingRef("YT1", restart=True)]
    )

    assert refused == {}
    assert tracker.calls == [("register", ["NEW1"]), ("retrack", ["YT1"])]
    assert tracker.tracking == {"NEW1", "YT1"}


def test_a_second_stop_is_a_final_refusal_since_17track_retracks_a_number_once(
    httpserver: HTTPServer, fake_bucket
):
    tracker = FakeTracker(stopped={"YT1"})
    tracker.install(httpserver)
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)
    assert client.register([TrackingRef("YT1", restart=True)]) == {}
    tracker.stop("YT1")

    refused = client.register([TrackingRef("YT1", restart=True)])

    assert refused == {"YT1": "-18019905: Retrack is not allowed. You can only retrack each number once."}
    assert isinstance(refused["YT1"], FinalRefusal)


def test_a_restart_of_a_number_17track_still_tracks_or_no_longer_knows_ends_tracked(
    httpserver: HTTPServer, fake_bucket
):
    tracker = FakeTracker(tracking={"STILL1"})  # "GONE1" was deleted in 17TRACK's dashboard
    tracker.install(httpserver)

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(
        [TrackingRef("STILL1", restart=True), TrackingRef("GONE1", restart=True)]
    )

    assert refused == {}
    assert tracker.calls == [("retrack", ["STILL1", "GONE1"]), ("register", ["GONE1"])]
    assert tracker.tracking == {"STILL1", "GONE1"}


# --- credentials check ----------------------------------------------------------------------------------
def test_check_reads_the_quota_with_the_key(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/getquota", method="POST", headers={"17token": API_KEY}).respond_with_json(
        {"code": 0, "data": {"quota_total": 10000, "quota_used": 1766, "quota_remain": 8234, "today_used": 12,
                             "max_track_daily": 0, "free_email_quota": 100, "free_email_quotaused": 0}}
    )  # fmt: skip

    message = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()

    assert message == "17TRACK accepted the key; 8,234 of 10,000 trackings left in the quota."


def test_check_with_a_refused_key_is_a_permanent_error(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/getquota").respond_with_json(
        {"code": -18010001, "data": {"errors": [{"code": -18010001, "message": "Access key is invalid."}]}}
    )
    with pytest.raises(PermanentProviderError, match=r"credentials refused.*Access key is invalid"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()
