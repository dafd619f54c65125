from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import UTC, date, datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.tracking.providers.conftest import fixture_bytes, fixture_json
from tracking.choices import SUBTAGS
from tracking.providers._parsing import hmac_sha256_base64
from tracking.providers.aftership import TRACKING_EXISTS, AfterShipProvider
from tracking.providers.base import PayloadError, PermanentProviderError, RetryableProviderError, TrackingRef
from tracking.services import EventData

SECRET = "as-webhook-secret-123"
API_KEY = "asat_test_key"


def provider(**kwargs) -> AfterShipProvider:
    return AfterShipProvider(credentials={"api_key": API_KEY}, webhook_secret=SECRET, **kwargs)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"aftership-hmac-sha256": hmac_sha256_base64(secret, body)}


def push(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def update_with(**checkpoint_fields) -> bytes:
    document = fixture_json("aftership_tracking_update.json")
    document["msg"]["checkpoints"] = [{**document["msg"]["checkpoints"][0], **checkpoint_fields}]
    return push(document)


# --- signature ----------------------------------------------------------------------------------------
def test_a_push_signed_with_the_connection_secret_is_accepted():
    body = fixture_bytes("aftership_tracking_update.json")
    assert provider().verify(body=body, headers=signed(body))


def test_a_push_signed_with_another_secret_is_rejected():
    body = fixture_bytes("aftership_tracking_update.json")
    assert not provider().verify(body=body, headers=signed(body, "someone-elses-secret"))


def test_a_push_without_a_signature_is_rejected():
    body = fixture_bytes("aftership_tracking_update.json")
    assert not provider().verify(body=body, headers={})
    assert not provider().verify(body=body, headers={"aftership-hmac-sha256": ""})


def test_a_tampered_body_fails_the_signature():
    body = fixture_bytes("aftership_tracking_update.json")
    headers = signed(body)
    assert not provider().verify(body=body.replace(b"AttemptFail_002", b"Delivered_001"), headers=headers)


def test_without_a_secret_nothing_verifies():
    body = fixture_bytes("aftership_tracking_update.json")
    assert not AfterShipProvider(webhook_secret="").verify(body=body, headers=signed(body, ""))


def test_the_signature_header_is_found_whatever_its_case_or_django_spelling():
    body = fixture_bytes("aftership_tracking_update.json")
    value = signed(body)["aftership-hmac-sha256"]
    assert provider().verify(body=body, headers={"Aftership-Hmac-Sha256": value})
    assert provider().verify(body=body, headers={"HTTP_AFTERSHIP_HMAC_SHA256": value})


# --- parsing ------------------------------------------------------------------------------------------
def test_the_shared_fixture_parses_to_the_expected_events():
    parsed = provider().parse_push(body=fixture_bytes("aftership_tracking_update.json"), headers={})

    assert parsed.kind == "tracking_update"
    assert parsed.event_id == "6f0c1a52-8f1e-4e43-9a4e-2b1c7d9e0a11"
    assert parsed.reply is None
    [tracking] = parsed.trackings
    assert tracking.tracking_number == "JT5012345678901"
    assert tracking.carrier == "jtexpress"
    assert tracking.expected_delivery == date(2026, 11, 22)
    assert tracking.raw_status == "AttemptFail_002"
    assert list(tracking.events) == [
        EventData(
            checkpoint_at=datetime(2026, 11, 19, 1, 12, tzinfo=UTC),
            tag="InTransit",
            subtag="InTransit_002",
            source="aftership",
            raw_code="1",
            raw_text="快件已由杭州余杭网点揽收",
            location="Hangzhou, Zhejiang",
            provider_key="b1f3c0e2a9d4",
        ),
        EventData(
            checkpoint_at=datetime(2026, 11, 19, 15, 40, tzinfo=UTC),
            tag="InTransit",
            subtag="InTransit_003",
            source="aftership",
            raw_code="2",
            raw_text="快件已到达杭州转运中心",
            location="Hangzhou Hub",
            provider_key="c7e19d04f2aa",
        ),
        EventData(
            checkpoint_at=datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
            tag="AttemptFail",
            subtag="AttemptFail_002",
            source="aftership",
            raw_code="405",
            raw_text="派件失败:收件人电话无人接听",
            location="Changsha, Hunan",
            provider_key="e4a8b7c3d211",
        ),
    ]


def test_event_times_are_utc_whatever_offset_the_carrier_used():
    parsed = provider().parse_push(body=fixture_bytes("aftership_tracking_update.json"), headers={})
    for event in parsed.trackings[0].events:
        assert event.checkpoint_at.utcoffset().total_seconds() == 0


def test_an_edd_revision_carries_the_new_date_and_no_checkpoints():
    parsed = provider().parse_push(body=fixture_bytes("aftership_edd_revise.json"), headers={})

    assert parsed.kind == "edd_revise"
    [tracking] = parsed.trackings
    assert tracking.tracking_number == "NVMYLUMI000123456"
    assert tracking.events == []
    assert tracking.expected_delivery == date(2026, 11, 24)  # the latest estimate wins over the courier's


def test_a_pending_time_alert_parses_the_tracking_without_events():
    parsed = provider().parse_push(body=fixture_bytes("aftership_tracking_pending_time.json"), headers={})

    assert parsed.kind == "tracking_pending_time"
    [tracking] = parsed.trackings
    assert (tracking.tracking_number, tracking.events, tracking.expected_delivery) == (
        "630012345678",
        [],
        None,
    )
    assert tracking.raw_status == "Pending_001"


def test_an_event_type_this_adapter_does_not_know_is_acknowledged_and_ignored():
    parsed = provider().parse_push(body=push({"event": "returns_update", "msg": {"whatever": 1}}), headers={})
    assert parsed.kind == "returns_update"
    assert parsed.trackings == ()
    assert parsed.extra["ignored"] is True


@pytest.mark.parametrize("subtag", sorted(SUBTAGS))
def test_every_aftership_subtag_is_kept_verbatim(subtag):
    tag = subtag.split("_", 1)[0]
    parsed = provider().parse_push(body=update_with(tag=tag, subtag=subtag), headers={})
    event = parsed.trackings[0].events[0]
    assert (event.tag, event.subtag) == (tag, subtag)


@pytest.mark.parametrize(
    ("tag", "subtag", "expected"),
    [
        ("Exception", "Exception_099", ("Exception", "Exception_001")),  # a subtag AfterShip adds later
        ("InTransit", "Delivered_001", ("InTransit", "InTransit_001")),  # a subtag of another tag
        ("InTransit", None, ("InTransit", "InTransit_001")),
        ("Teleported", "Teleported_001", ("Pending", "Pending_001")),
    ],
)
def test_unknown_tags_and_subtags_fall_back_but_keep_the_raw_code(tag, subtag, expected):
    event = provider().parse_push(body=update_with(tag=tag, subtag=subtag), headers={}).trackings[0].events[0]
    assert (event.tag, event.subtag) == expected
    assert event.raw_code == "1"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # A time without an offset is local time at the checkpoint: China's zone for a Chinese checkpoint...
        (
            {"checkpoint_time": "2026-11-19T09:12:00", "country_iso3": "CHN"},
            datetime(2026, 11, 19, 1, 12, tzinfo=UTC),
        ),
        (
            {"checkpoint_time": "2026-11-19T09:12:00", "country_region": "MYS"},
            datetime(2026, 11, 19, 1, 12, tzinfo=UTC),
        ),
        # ...and UTC where the country does not pin one zone.
        (
            {"checkpoint_time": "2026-11-19T09:12:00", "country_iso3": "USA"},
            datetime(2026, 11, 19, 9, 12, tzinfo=UTC),
        ),
        ({"checkpoint_time": "2026-11-19", "country_iso3": "THA"}, datetime(2026, 11, 18, 17, 0, tzinfo=UTC)),
        ({"checkpoint_time": "2026-11-19T09:12:00Z"}, datetime(2026, 11, 19, 9, 12, tzinfo=UTC)),
        (
            {"checkpoint_time": "", "created_at": "2026-11-19T01:20:11+00:00"},
            datetime(2026, 11, 19, 1, 20, 11, tzinfo=UTC),
        ),
    ],
)
def test_checkpoint_times_follow_the_documented_formats(fields, expected):
    event = provider().parse_push(body=update_with(**fields), headers={}).trackings[0].events[0]
    assert event.checkpoint_at == expected


def test_location_falls_back_to_city_and_state_and_hash_may_be_absent():
    body = update_with(location=None, city="Ipoh", state="Perak", hash=None)
    event = provider().parse_push(body=body, headers={}).trackings[0].events[0]
    assert event.location == "Ipoh, Perak"
    assert event.provider_key == ""


@pytest.mark.parametrize(
    "checkpoint_fields",
    [
        {},
        {"checkpoint_time": "2026-11-19T09:12:00", "country_iso3": "CHN"},
        {"checkpoint_time": "2026-11-19", "country_region": "THA", "country_iso3": None},
        {"checkpoint_time": "", "created_at": "2026-11-19T01:20:11+00:00"},
        {"location": None, "city": " Ipoh ", "state": "Perak", "hash": None},
        {"message": "  Arrived at hub  ", "raw_tag": " 30 ", "tag": " InTransit ", "subtag": "InTransit_099"},
        {"tag": "Teleported", "subtag": None, "slug": "ninjavan-my", "extra_field": [1, {"x": None}]},
    ],
)
@pytest.mark.parametrize("fixture", ["aftership_tracking_update.json", "aftership_edd_revise.json"])
def test_a_push_parses_the_same_whichever_decoder_takes_it(fixture, checkpoint_fields):
    """Well-formed pushes take the typed decoder; a push with a loosely typed field takes the lenient parser.
    Both must give the same trackings: here the same push, once as documented and once with the tracking's
    `tag` sent as a number (only the lenient parser accepts that; it is read only when `subtag` is empty)."""
    document = fixture_json(fixture)
    checkpoints = document["msg"].get("checkpoints") or [
        fixture_json("aftership_tracking_update.json")["msg"]["checkpoints"][0]
    ]
    document["msg"]["checkpoints"] = [{**checkpoint, **checkpoint_fields} for checkpoint in checkpoints]
    document["msg"]["subtag"] = document["msg"].get("subtag") or "InTransit_001"
    loose = copy.deepcopy(document)
    loose["msg"]["tag"] = 7

    typed = provider().parse_push(body=push(document), headers={})
    lenient = provider().parse_push(body=push(loose), headers={})

    assert typed.trackings == lenient.trackings
    assert (typed.kind, typed.event_id, typed.extra) == (lenient.kind, lenient.event_id, lenient.extra)
    assert typed.trackings[0].events


def test_a_number_where_a_string_is_documented_is_read_as_its_text():
    event = provider().parse_push(body=update_with(raw_tag=404), headers={}).trackings[0].events[0]
    assert event.raw_code == "404"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "body: expected a JSON object, got an array"),
        (push({"msg": {}}), "body.event: required"),
        (push({"event": "tracking_update"}), "body.msg: expected a JSON object, got null"),
        (push({"event": "tracking_update", "msg": {"slug": "ups"}}), "body.msg.tracking_number: required"),
        (
            push({"event": "tracking_update", "msg": {"tracking_number": ["x"]}}),
            "tracking_number: expected a string",
        ),
        (
            push({"event": "tracking_update", "msg": {"tracking_number": "X1", "checkpoints": {"a": 1}}}),
            "body.msg.checkpoints: expected a JSON array",
        ),
        (
            push({"event": "tracking_update", "msg": {"tracking_number": "X1", "checkpoints": ["late"]}}),
            r"body.msg.checkpoints\[0\]: expected a JSON object",
        ),
        (
            update_with(checkpoint_time="yesterday"),
            r"checkpoints\[0\].checkpoint_time: 'yesterday' is not a date-time",
        ),
        (update_with(checkpoint_time=None, created_at=None), r"checkpoints\[0\].checkpoint_time: required"),
        (update_with(tag={"code": "InTransit"}), r"checkpoints\[0\].tag: expected a string, got an object"),
    ],
)
def test_malformed_pushes_raise_a_payload_error_that_names_the_field(body, message):
    with pytest.raises(PayloadError, match=message):
        provider().parse_push(body=body, headers={})


# --- pull ---------------------------------------------------------------------------------------------
def _trackings_handler(seen: list[dict]):
    """GET /trackings as documented: filtered by tracking_numbers, each returned once."""
    template = fixture_json("aftership_get_trackings.json")["data"]["trackings"][0]

    def handler(request: Request) -> Response:
        seen.append(
            {"numbers": request.args["tracking_numbers"].split(","), "limit": request.args.get("limit")}
        )
        trackings = []
        for number in request.args["tracking_numbers"].split(","):
            item = copy.deepcopy(template)
            item["tracking_number"] = number
            trackings.append(item)
        body = {
            "meta": {"code": 200},
            "data": {"pagination": {"has_next_page": False}, "trackings": trackings},
        }
        return Response(json.dumps(body), content_type="application/json")

    return handler


def test_fetch_asks_for_at_most_50_numbers_a_request_with_the_api_key(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request(
        "/trackings", method="GET", headers={"as-api-key": API_KEY}
    ).respond_with_handler(_trackings_handler(seen))
    refs = [TrackingRef(f"ER{i:09d}MY") for i in range(120)]

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(refs)

    assert [len(call["numbers"]) for call in seen] == [50, 50, 20]
    assert {call["limit"] for call in seen} == {"200"}
    assert [t.tracking_number for t in parsed] == [r.tracking_number for r in refs]
    first = parsed[0]
    assert first.carrier == "malaysia-post-posdaftar"
    assert first.expected_delivery == date(2026, 11, 20)
    assert [(e.subtag, e.raw_code, e.location) for e in first.events] == [
        ("InTransit_002", "EMA", "Shah Alam, Selangor"),
        ("Delivered_003", "EMI", "PPL Petaling Jaya"),
    ]
    # The API's second checkpoint has no offset: Malaysian local time.
    assert first.events[1].checkpoint_at == datetime(2026, 11, 19, 8, 20, tzinfo=UTC)


def test_fetch_follows_the_cursor_to_the_next_page(httpserver: HTTPServer, fake_bucket):
    page = fixture_json("aftership_get_trackings.json")
    second = copy.deepcopy(page)
    page["data"]["pagination"] = {"has_next_page": True, "next_cursor": "c2"}
    second["data"]["trackings"][0]["slug"] = "citylink"
    httpserver.expect_ordered_request("/trackings").respond_with_json(page)
    httpserver.expect_ordered_request(
        "/trackings", query_string={"tracking_numbers": "ER123456785MY", "limit": "200", "cursor": "c2"}
    ).respond_with_json(second)

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("ER123456785MY")]
    )

    assert [t.carrier for t in parsed] == ["malaysia-post-posdaftar", "citylink"]
    httpserver.check_assertions()


def test_fetch_waits_out_a_429_using_x_ratelimit_reset(httpserver: HTTPServer, fake_bucket, fake_clock):
    reset = int(datetime.now(UTC).timestamp()) + 3
    httpserver.expect_ordered_request("/trackings").respond_with_json(
        {
            "meta": {
                "code": 429,
                "message": "You have exceeded the API call rate limit.",
                "type": "TooManyRequests",
            },
            "data": {},
        },
        status=429,
        headers={"X-RateLimit-Reset": str(reset), "X-RateLimit-Limit": "6", "X-RateLimit-Remaining": "0"},
    )
    httpserver.expect_ordered_request("/trackings").respond_with_json(
        fixture_json("aftership_get_trackings.json")
    )

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("ER123456785MY")]
    )

    assert [t.tracking_number for t in parsed] == ["ER123456785MY"]
    assert len(fake_clock.sleeps) == 1 and 1.0 <= fake_clock.sleeps[0] <= 3.0


def test_fetch_waits_out_a_429_with_retry_after(httpserver: HTTPServer, fake_bucket, fake_clock):
    httpserver.expect_ordered_request("/trackings").respond_with_data(
        "", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/trackings").respond_with_json(
        fixture_json("aftership_get_trackings.json")
    )

    assert provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("ER123456785MY")]
    )
    assert fake_clock.sleeps == [pytest.approx(2.0)]


def test_an_invalid_api_key_is_a_permanent_error_with_afterships_message(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/trackings").respond_with_json(
        {"meta": {"code": 401, "message": "Invalid API key.", "type": "Unauthorized"}, "data": {}}, status=401
    )
    with pytest.raises(PermanentProviderError, match="Unauthorized - Invalid API key"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


def test_a_server_error_is_retryable(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/trackings").respond_with_json(
        {
            "meta": {
                "code": 500,
                "message": "Something went wrong on AfterShip's end.",
                "type": "InternalError",
            }
        },
        status=500,
    )
    with pytest.raises(RetryableProviderError, match="HTTP 500"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


def test_a_timeout_is_retryable(httpserver: HTTPServer, fake_bucket, stalled_handler):
    httpserver.expect_request("/trackings").respond_with_handler(stalled_handler)
    with pytest.raises(RetryableProviderError, match="timed out"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket, timeout=0.1).fetch([TrackingRef("X1")])


def test_fetch_without_an_api_key_is_a_permanent_error_and_sends_nothing(httpserver: HTTPServer):
    with pytest.raises(PermanentProviderError, match="no API key"):
        AfterShipProvider(base_url=httpserver.url_for("/")).fetch([TrackingRef("X1")])
    assert httpserver.log == []


class FakeAccount:
    """An AfterShip account as its Tracking API shows it: GET /trackings returns the trackings it has,
    POST /trackings creates one (201), or answers 4003 for a number it has, or 4005 for a refused one."""

    def __init__(self, *, known=(), refused=(), unlisted=()):
        self.known, self.refused, self.unlisted = set(known), set(refused), set(unlisted)
        self.created: list[dict] = []
        self.post_stamps: list[float] = []
        self.template = fixture_json("aftership_get_trackings.json")["data"]["trackings"][0]

    def serve(self, httpserver: HTTPServer) -> None:
        httpserver.expect_request("/trackings", method="GET").respond_with_handler(self.get)
        httpserver.expect_request(
            "/trackings", method="POST", headers={"as-api-key": API_KEY}
        ).respond_with_handler(self.post)

    def get(self, request: Request) -> Response:
        numbers = [n for n in request.args["tracking_numbers"].split(",") if n in self.known - self.unlisted]
        trackings = [{**copy.deepcopy(self.template), "tracking_number": n} for n in numbers]
        body = {
            "meta": {"code": 200},
            "data": {"pagination": {"has_next_page": False}, "trackings": trackings},
        }
        return Response(json.dumps(body), content_type="application/json")

    def post(self, request: Request) -> Response:
        self.post_stamps.append(time.monotonic())
        body = json.loads(request.data)
        self.created.append(body)
        number = body["tracking_number"]
        if number in self.refused:
            meta = {
                "code": 4005,
                "type": "BadRequest",
                "message": "The value of `tracking_number` is invalid.",
            }
            return Response(
                json.dumps({"meta": meta, "data": {}}), status=400, content_type="application/json"
            )
        if number in self.known:
            meta = {"code": TRACKING_EXISTS, "type": "BadRequest", "message": "Tracking already exists."}
            return Response(
                json.dumps({"meta": meta, "data": {}}), status=400, content_type="application/json"
            )
        self.known.add(number)
        data = {"id": uuid.uuid4().hex, "tracking_number": number, "slug": "jtexpress", "tag": "Pending"}
        return Response(
            json.dumps({"meta": {"code": 201}, "data": data}), status=201, content_type="application/json"
        )


def test_numbers_the_account_does_not_track_are_created_and_read_at_the_next_poll(
    httpserver: HTTPServer, fake_bucket
):
    account = FakeAccount(known={"ER000000001MY"})
    account.serve(httpserver)
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)
    refs = [
        TrackingRef("ER000000000MY"),
        TrackingRef("ER000000001MY"),
        TrackingRef("ER000000002MY", "jtexpress-my"),
    ]

    assert [t.tracking_number for t in client.fetch(refs)] == ["ER000000001MY"]
    # One create each, the courier left to AfterShip's detection.
    assert account.created == [{"tracking_number": "ER000000000MY"}, {"tracking_number": "ER000000002MY"}]

    assert [t.tracking_number for t in client.fetch(refs)] == [r.tracking_number for r in refs]
    assert len(account.created) == 2  # nothing left to create


def test_a_number_aftership_refuses_or_already_has_is_not_an_error(httpserver: HTTPServer, fake_bucket):
    # ER000000009MY: created meanwhile by another worker, after GET /trackings answered without it.
    account = FakeAccount(refused={"BAD"}, known={"ER000000009MY"}, unlisted={"ER000000009MY"})
    account.serve(httpserver)

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("BAD"), TrackingRef("ER000000009MY"), TrackingRef("ER000000010MY")]
    )

    assert parsed == []
    assert [c["tracking_number"] for c in account.created] == ["BAD", "ER000000009MY", "ER000000010MY"]
    assert "ER000000010MY" in account.known  # the refusal of one did not stop the others


def test_a_refused_api_key_when_creating_is_a_permanent_error(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/trackings", method="GET").respond_with_json(
        {"meta": {"code": 200}, "data": {"pagination": {"has_next_page": False}, "trackings": []}}
    )
    httpserver.expect_request("/trackings", method="POST").respond_with_json(
        {"meta": {"code": 401, "message": "Invalid API key.", "type": "Unauthorized"}, "data": {}}, status=401
    )
    with pytest.raises(PermanentProviderError, match="credentials refused"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("X1")])


@pytest.mark.django_db  # the shared buckets are kept in the database, as in production
def test_creating_trackings_never_exceeds_20_requests_in_any_second(httpserver: HTTPServer):
    """Real clock, real default buckets: the server's timestamps must respect POST /trackings' 20 req/s."""
    account = FakeAccount()
    account.serve(httpserver)
    client = provider(base_url=httpserver.url_for("/"))  # the shared buckets of this account

    assert client.fetch([TrackingRef(f"ER{i:09d}MY") for i in range(45)]) == []

    stamps = account.post_stamps
    assert len(stamps) == 45
    windows = [stamps[i + 20] - stamps[i] for i in range(len(stamps) - 20)]
    assert min(windows) >= 1.0, f"21 creates within {min(windows):.3f} s"


def test_the_default_endpoint_is_the_versioned_tracking_api():
    assert AfterShipProvider().base_url == "https://api.aftership.com/tracking/2026-07"
    assert AfterShipProvider.batch_size == 50


def test_register_creates_the_trackings_and_returns_the_refused_ones_with_the_reason(
    httpserver: HTTPServer, fake_bucket
):
    account = FakeAccount(known={"ER000000001MY"}, refused={"BAD"})
    account.serve(httpserver)

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(
        [
            TrackingRef("ER000000000MY"),
            TrackingRef("ER000000001MY"),
            TrackingRef("BAD"),
            TrackingRef("ER000000000MY"),
        ]
    )

    assert refused == {"BAD": "HTTP 400: BadRequest - The value of `tracking_number` is invalid."}
    assert [c["tracking_number"] for c in account.created] == ["ER000000000MY", "ER000000001MY", "BAD"]
    assert "ER000000000MY" in account.known  # created; ER000000001MY (4003, already there) is no refusal
    assert not any(request.method == "GET" for request, _ in httpserver.log)  # registering reads nothing


# --- credentials check ----------------------------------------------------------------------------------
def test_check_asks_for_the_activated_couriers_with_the_key(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/couriers", method="GET", headers={"as-api-key": API_KEY}).respond_with_json(
        {
            "meta": {"code": 200},
            "data": {"total": 2, "couriers": [{"slug": "jtexpress-my"}, {"slug": "poslaju"}]},
        }
    )

    message = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()

    assert message == "AfterShip accepted the API key; 2 couriers are activated on the account."


def test_check_with_a_refused_or_missing_key_is_a_permanent_error(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/couriers").respond_with_json(
        {"meta": {"code": 401, "message": "Invalid API key.", "type": "Unauthorized"}, "data": {}}, status=401
    )
    with pytest.raises(PermanentProviderError, match="credentials refused"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()
    with pytest.raises(PermanentProviderError, match="no API key configured"):
        AfterShipProvider(credentials={}, base_url=httpserver.url_for("/"), bucket=fake_bucket).check()
