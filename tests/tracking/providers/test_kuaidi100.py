"""Kuaidi100 against its documented formats: signed form pushes, the real-time query and the subscription,
tested against a local server that speaks them."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.tracking.providers.conftest import fixture_bytes, fixture_json
from tracking.providers.base import (
    PayloadError,
    PermanentProviderError,
    Recipient,
    RetryableProviderError,
    TrackingRef,
)
from tracking.providers.kuaidi100 import STATE_SUBTAGS, Kuaidi100Provider, sign, subtag_for

KEY = "k100-key-0123456789"
CUSTOMER = "B2C4D6E8F0A1B3C5D7E9F1A3B5C7D9E1"
SALT = "connection-salt-xyz"
CALLBACK = "https://desk.example.com/webhooks/tracking/kuaidi100/7e57/"
BUYER = Recipient(name="王小明", phone="+86 138-0013-8000", province="广东省", city="广州市", district="天河区",
                  address="体育西路 191 号")  # fmt: skip


def provider(**kwargs) -> Kuaidi100Provider:
    kwargs.setdefault("credentials", {"api_key": KEY, "customer": CUSTOMER})
    return Kuaidi100Provider(webhook_secret=SALT, callback_url=CALLBACK, **kwargs)


def param() -> str:
    return fixture_bytes("kuaidi100_push_param.json").decode()


def form_body(text: str, *, salt: str = SALT, signature: str | None = None) -> bytes:
    """A push as Kuaidi100 sends it: form-encoded param and sign."""
    return urlencode(
        {"param": text, "sign": signature if signature is not None else sign(text, salt)}
    ).encode()


def trace(at: datetime, text: str, **fields) -> dict:
    local = (at.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    return {"time": local, "ftime": local, "context": text, **fields}


def push_of(items: list[dict], *, state: str = "0", status: str = "polling") -> bytes:
    document = {"status": status, "message": "", "lastResult": {"nu": "YT7500000000999", "com": "yuantong",
                                                                "state": state, "data": items}}  # fmt: skip
    return form_body(json.dumps(document, ensure_ascii=False))


# --- signature ----------------------------------------------------------------------------------------
def test_sign_is_the_uppercase_hex_md5_of_the_text_and_the_salt():
    assert (
        sign('{"a":1}', SALT)
        == hashlib.md5(b'{"a":1}' + SALT.encode(), usedforsecurity=False).hexdigest().upper()
    )


def test_a_push_signed_with_the_connections_salt_is_accepted_in_either_case():
    assert provider().verify(body=form_body(param()), headers={})
    assert provider().verify(body=form_body(param(), signature=sign(param(), SALT).lower()), headers={})


@pytest.mark.parametrize(
    "body",
    [
        form_body(param(), salt="another-salt"),  # signed by someone else
        form_body(param(), signature=""),  # sign missing
        urlencode({"param": param()}).encode(),  # sign missing altogether
        form_body(
            param().replace("YT7500000000123", "YT7500000000124"), signature=sign(param(), SALT)
        ),  # altered
        b"not a form at all \xff",
    ],
)
def test_a_push_with_a_bad_or_missing_signature_is_rejected(body):
    assert not provider().verify(body=body, headers={})


def test_without_a_salt_no_push_is_accepted():
    assert not Kuaidi100Provider(webhook_secret="").verify(body=form_body(param(), salt=""), headers={})


# --- push ---------------------------------------------------------------------------------------------
def test_a_push_parses_to_the_full_trace_in_utc_with_the_advanced_statuses():
    parsed = provider().parse_push(body=form_body(param()), headers={})

    assert (parsed.kind, parsed.extra["status"]) == ("kuaidi100_polling", "polling")
    assert parsed.reply == {"result": True, "returnCode": "200", "message": "成功"}
    [tracking] = parsed.trackings
    assert (tracking.tracking_number, tracking.carrier, tracking.raw_status) == (
        "YT7500000000123",
        "yuantong",
        "5",
    )
    assert [e.subtag for e in tracking.events] == [
        "InTransit_002", "InTransit_001", "InTransit_001", "InTransit_003", "OutForDelivery_001",
    ]  # fmt: skip
    first, last = tracking.events[0], tracking.events[-1]
    assert first.checkpoint_at == datetime(2026, 11, 20, 0, 2, 11, tzinfo=UTC)  # 08:02 Beijing time
    assert (first.raw_code, first.raw_text) == ("103", "【金华市】浙江省金华市义乌市公司 已揽收")
    assert (last.tag, last.location, last.source) == ("OutForDelivery", "广东,广州市,天河区", "kuaidi100")


@pytest.mark.parametrize(("code", "subtag"), sorted(STATE_SUBTAGS.items()))
def test_every_mapped_status_code_parses_to_its_subtag(code, subtag):
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    parsed = provider().parse_push(body=push_of([trace(at, "扫描", statusCode=code)]), headers={})

    [event] = parsed.trackings[0].events
    assert (event.subtag, event.raw_code) == (subtag, code)


def test_unknown_advanced_codes_fall_back_to_their_basic_status_and_unknown_ones_to_in_transit():
    assert subtag_for("299") == "Exception_001"  # 2xx: a problem
    assert subtag_for("1009") == "InTransit_001"  # 10xx: in transit
    assert subtag_for("399") == "Delivered_001"
    assert subtag_for("77") is None
    at = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    [event] = (
        provider().parse_push(body=push_of([trace(at, "x", statusCode="77")]), headers={}).trackings[0].events
    )
    assert event.subtag == "InTransit_001"


def test_without_status_codes_the_latest_checkpoint_takes_the_parcels_state():
    t0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    items = [trace(t0 + timedelta(hours=5), "已签收"), trace(t0, "已揽收")]
    events = provider().parse_push(body=push_of(items, state="3"), headers={}).trackings[0].events

    assert [(e.subtag, e.raw_code) for e in events] == [("InTransit_001", ""), ("Delivered_001", "3")]


def test_a_full_trace_re_push_of_50_old_checkpoints_adds_only_the_new_one():
    number = "YT7500000000999"
    t0 = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    old = [trace(t0 + timedelta(hours=i), f"第 {i} 站 已发出") for i in range(50)]
    new = trace(t0 + timedelta(hours=60), "正在为您派件")
    first = (
        provider().parse_push(body=push_of(list(reversed(old)), state="0"), headers={}).trackings[0].events
    )
    # Newest first again, the parcel's state moved on: the old checkpoints' keys must not.
    second = (
        provider().parse_push(body=push_of([new, *reversed(old)], state="5"), headers={}).trackings[0].events
    )

    first_keys = {e.dedupe_key(number) for e in first}
    second_keys = {e.dedupe_key(number) for e in second}
    assert len(first_keys) == 50
    assert first_keys <= second_keys
    assert len(second_keys - first_keys) == 1


def test_an_abort_push_says_why_kuaidi100_stopped_and_the_corrected_company():
    document = json.loads(param())
    document.update(status="abort", message="3天查询无记录", comNew="zhongtong")
    parsed = provider().parse_push(body=form_body(json.dumps(document, ensure_ascii=False)), headers={})

    assert parsed.kind == "kuaidi100_abort"
    assert (parsed.extra["message"], parsed.extra["company_corrected_to"]) == ("3天查询无记录", "zhongtong")
    assert parsed.carriers_corrected == {"YT7500000000123": "zhongtong"}
    assert parsed.stopped == {}  # Kuaidi100 tracks it on under the right company itself


def test_our_codes_for_a_kuaidi100_company_come_first_its_own_last():
    assert provider().carrier_codes("zhongtong") == ["zto", "zto-express", "zhongtong"]
    assert provider().carrier_codes(" SHUNFENG ") == ["sf-express", "sf", "sfexpress", "shunfeng"]
    assert provider().carrier_codes("ane66") == ["ane66"]  # a company we have no code of our own for


def test_a_connections_own_company_codes_come_before_ours_both_ways():
    own = provider(
        credentials={
            "api_key": KEY,
            "customer": CUSTOMER,
            "company_codes": {"ANE": "annengwuliu", "yto": "yuantongguoji"},
        }
    )

    assert own.company_code("ane") == "annengwuliu"  # a carrier we have no code for
    assert own.company_code("yto") == "yuantongguoji"  # the connection's mapping beats ours
    assert own.company_code("zto") == "zhongtong"  # everything else as before
    assert own.carrier_codes("annengwuliu") == ["ane", "annengwuliu"]
    assert own.carrier_codes("yuantongguoji") == ["yto", "yuantongguoji"]
    assert own.carrier_codes("yuantong") == ["yto", "yto-express", "yuantong"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture_bytes("kuaidi100_push_param.json"), "not form-encoded"),
        (b"", "param form field missing"),
        (b"sign=ABC", "param form field missing"),
        (form_body(""), "param: required"),
        (form_body("{not json"), "Kuaidi100 param: body is not valid JSON"),
        (form_body("[]"), "param: expected a JSON object, got an array"),
        (form_body('{"lastResult": {}}'), "param.status: required"),
        (form_body('{"status": "polling"}'), "param.lastResult: expected a JSON object, got null"),
        (form_body('{"status": "polling", "lastResult": {"data": []}}'), r"param.lastResult.nu: required"),
        (form_body('{"status": "polling", "lastResult": {"nu": "YT1", "data": {}}}'), r"lastResult.data: expected a JSON array"),
        (form_body('{"status": "polling", "lastResult": {"nu": "YT1", "data": [{"context": "x"}]}}'), r"data\[0\].time: required"),
        (form_body('{"status": "polling", "lastResult": {"nu": "YT1", "data": [{"time": "昨天"}]}}'), r"data\[0\].time: '昨天' is not a date-time"),
    ],
)  # fmt: skip
def test_malformed_pushes_raise_a_payload_error_that_names_the_field(body, message):
    with pytest.raises(PayloadError, match=message):
        provider().parse_push(body=body, headers={})


# --- pull ---------------------------------------------------------------------------------------------
def _query_handler(seen: list[dict], answer: dict | None = None):
    def handler(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        seen.append(form)
        body = dict(answer if answer is not None else fixture_json("kuaidi100_query.json"))
        if "nu" in body:
            body["nu"] = json.loads(form["param"])["num"]
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json")

    return handler


def test_fetch_sends_one_signed_real_time_query_per_number(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request("/poll/query.do", method="POST").respond_with_handler(_query_handler(seen))
    refs = [TrackingRef("YT7500000000123", "yto"), TrackingRef("SF1400000000001", "sf-express", BUYER)]

    trackings = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(refs)

    assert [t.tracking_number for t in trackings] == ["YT7500000000123", "SF1400000000001"]
    assert [e.subtag for e in trackings[0].events] == ["InTransit_002", "OutForDelivery_001", "Delivered_003"]
    for form in seen:
        assert form["customer"] == CUSTOMER
        assert form["sign"] == sign(form["param"], KEY, CUSTOMER)
    yto, sf = (json.loads(form["param"]) for form in seen)
    assert (yto["com"], yto["num"], yto["resultv2"], "phone" in yto) == (
        "yuantong",
        "YT7500000000123",
        "4",
        False,
    )
    assert (sf["com"], sf["phone"]) == ("shunfeng", "13800138000")  # SF checks the phone; YTO gets none


def test_the_real_time_query_sends_the_connections_own_company_code(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request("/poll/query.do", method="POST").respond_with_handler(_query_handler(seen))
    credentials = {"api_key": KEY, "customer": CUSTOMER, "company_codes": {"ane": "annengwuliu"}}

    provider(credentials=credentials, base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("AN3000000001", "ane")]
    )

    assert json.loads(seen[0]["param"])["com"] == "annengwuliu"


def test_a_number_kuaidi100_has_nothing_on_yet_is_no_tracking_not_an_error(
    httpserver: HTTPServer, fake_bucket
):
    httpserver.expect_request("/poll/query.do").respond_with_json(
        {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
    )
    assert (
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("YT1", "yto")])
        == []
    )


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (
            {"result": False, "returnCode": "601", "message": "key已过期"},
            PermanentProviderError,
            "601 key expired",
        ),
        (
            {"result": False, "returnCode": "503", "message": "验证签名失败"},
            PermanentProviderError,
            "503 signature",
        ),
        (
            {"result": False, "returnCode": "600", "message": "您不是合法的用户"},
            PermanentProviderError,
            "600 not a valid",
        ),
    ],
)
def test_an_answer_about_the_account_is_a_permanent_error(
    httpserver: HTTPServer, fake_bucket, answer, error, match
):
    httpserver.expect_request("/poll/query.do").respond_with_json(answer)
    with pytest.raises(error, match=match):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("YT1", "yto")])


def test_http_errors_are_retryable_or_permanent_and_incomplete_credentials_send_nothing(
    httpserver: HTTPServer, fake_bucket
):
    httpserver.expect_ordered_request("/poll/query.do").respond_with_data("boom", status=502)
    httpserver.expect_ordered_request("/poll/query.do").respond_with_data("no", status=403)
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)

    with pytest.raises(RetryableProviderError, match="HTTP 502"):
        client.fetch([TrackingRef("YT1", "yto")])
    with pytest.raises(PermanentProviderError, match="HTTP 403"):
        client.fetch([TrackingRef("YT1", "yto")])
    seen = len(httpserver.log)
    with pytest.raises(PermanentProviderError, match="credentials incomplete"):
        provider(base_url=httpserver.url_for("/"), credentials={"api_key": KEY}).fetch(
            [TrackingRef("YT1", "yto")]
        )
    assert len(httpserver.log) == seen


@pytest.mark.django_db  # the shared buckets are kept in the database, as in production
def test_real_time_queries_never_exceed_the_quota_in_any_second(httpserver: HTTPServer):
    stamps: list[float] = []
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        with lock:
            stamps.append(time.monotonic())
        return _query_handler([])(request)

    httpserver.expect_request("/poll/query.do").respond_with_handler(handler)
    credentials = {"api_key": KEY, "customer": CUSTOMER, "requests_per_second": 5}
    refs = [TrackingRef(f"YT75000000{i:05d}", "yto") for i in range(12)]

    provider(base_url=httpserver.url_for("/"), credentials=credentials).fetch(refs)

    assert len(stamps) == 12
    windows = [stamps[i + 5] - stamps[i] for i in range(len(stamps) - 5)]
    assert min(windows) >= 1.0, f"6 requests within {min(windows):.3f} s"


# --- registration -------------------------------------------------------------------------------------
def _subscribe_handler(seen: list[dict], answers: dict[str, dict] | None = None):
    def handler(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        seen.append(form)
        number = json.loads(form["param"])["number"]
        body = (answers or {}).get(number, {"result": True, "returnCode": "200", "message": "提交成功"})
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json")

    return handler


def test_register_subscribes_each_parcel_with_the_callback_the_salt_and_what_the_carrier_checks(
    httpserver: HTTPServer, fake_bucket
):
    seen: list[dict] = []
    httpserver.expect_request("/poll", method="POST").respond_with_handler(_subscribe_handler(seen))
    refs = [TrackingRef("SF1400000000001", "sf-express", BUYER), TrackingRef("YT7500000000009", "yto", BUYER)]

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(refs)

    assert refused == {}
    assert [form["schema"] for form in seen] == ["json", "json"]
    sf, yto = (json.loads(form["param"]) for form in seen)
    assert (sf["company"], sf["number"], sf["key"], sf["to"]) == (
        "shunfeng",
        "SF1400000000001",
        KEY,
        "广东省广州市天河区",
    )
    assert sf["parameters"] == {
        "callbackurl": CALLBACK,
        "salt": SALT,
        "resultv2": "4",
        "autoCom": "1",  # Kuaidi100 checks the company and names the right one if it was wrong
        "phone": "13800138000",
    }
    assert "phone" not in yto["parameters"]  # only SF Express and ZTO check it: the buyer's phone stays here


def test_an_already_subscribed_number_is_registered_and_a_refused_one_returned_with_the_reason(
    httpserver: HTTPServer, fake_bucket
):
    answers = {
        "YT1": {"result": False, "returnCode": "501", "message": "重复订阅"},
        "BAD": {
            "result": False,
            "returnCode": "700",
            "message": "订阅方的订阅数据存在错误",
        },
    }
    httpserver.expect_request("/poll").respond_with_handler(_subscribe_handler([], answers))

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(
        [TrackingRef("YT1", "yto"), TrackingRef("BAD", "nowhere"), TrackingRef("YT2", "yto")]
    )

    assert list(refused) == ["BAD"]
    assert refused["BAD"].startswith("700: 订阅方的订阅数据存在错误")


@pytest.mark.parametrize(
    ("answer", "error"),
    [({"result": False, "returnCode": "601", "message": "POLL:KEY已过期"}, PermanentProviderError),
     ({"result": False, "returnCode": "600", "message": "您不是合法的订阅者"}, PermanentProviderError),
     ({"result": False, "returnCode": "500", "message": "服务器错误"}, RetryableProviderError)],
)  # fmt: skip
def test_a_subscription_answer_about_the_account_is_permanent_and_a_server_error_retryable(
    httpserver: HTTPServer, fake_bucket, answer, error
):
    httpserver.expect_request("/poll").respond_with_json(answer)
    with pytest.raises(error, match=answer["message"][:4]):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register([TrackingRef("YT1", "yto")])


def test_register_without_a_key_or_a_callback_url_is_permanent_and_sends_nothing(httpserver: HTTPServer):
    with pytest.raises(PermanentProviderError, match="credentials incomplete"):
        provider(base_url=httpserver.url_for("/"), credentials={}).register([TrackingRef("YT1", "yto")])
    with pytest.raises(PermanentProviderError, match="no callback URL"):
        Kuaidi100Provider(
            credentials={"api_key": KEY}, webhook_secret=SALT, base_url=httpserver.url_for("/")
        ).register([TrackingRef("YT1", "yto")])
    assert httpserver.log == []


# --- credentials check ----------------------------------------------------------------------------------
def test_check_is_one_signed_query_and_says_when_the_account_is_refused(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    answer = {"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"}
    httpserver.expect_ordered_request("/poll/query.do").respond_with_handler(_query_handler(seen, answer))
    httpserver.expect_ordered_request("/poll/query.do").respond_with_json(
        {"result": False, "returnCode": "601", "message": "key已过期"}
    )
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)

    assert client.check().startswith(
        "Kuaidi100 accepted the customer and the key (it answered of a made-up number"
    )
    assert seen[0]["sign"] == sign(seen[0]["param"], KEY, CUSTOMER)
    with pytest.raises(PermanentProviderError, match="601 key expired"):
        client.check()


def test_an_abort_without_a_corrected_company_says_the_number_is_no_longer_monitored():
    document = json.loads(param())
    document.update(status="abort", message="3天查询无记录")
    aborted = provider().parse_push(body=form_body(json.dumps(document, ensure_ascii=False)), headers={})
    document.update(comNew="zhongtong")
    corrected = provider().parse_push(body=form_body(json.dumps(document, ensure_ascii=False)), headers={})

    assert aborted.stopped == {"YT7500000000123": "3天查询无记录"}
    assert corrected.stopped == {}  # Kuaidi100 subscribed it again itself, with the right company
    assert provider().parse_push(body=form_body(param()), headers={}).stopped == {}
