from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlencode

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
from tracking.providers.kdniao import STATE_SUBTAGS, KdniaoProvider, data_sign, subtag_for
from tracking.services import EventData

APP_KEY = "56da2cf8-c8a2-44b2-b6fa-476cd7d1ba17"
BUSINESS_ID = "1237100"
WEBHOOK_SECRET = "connection-secret-xyz"
PUSHED_AT = datetime(2026, 11, 21, 7, 31, 9, tzinfo=UTC)


def provider(**kwargs) -> KdniaoProvider:
    kwargs.setdefault("credentials", {"api_key": APP_KEY, "business_id": BUSINESS_ID})
    return KdniaoProvider(webhook_secret=WEBHOOK_SECRET, now=lambda: PUSHED_AT, **kwargs)


def request_data() -> str:
    return fixture_bytes("kdniao_push_request_data.json").decode()


def form_body(data: str, *, key: str = APP_KEY, request_type: str = "101", sign: str | None = None) -> bytes:
    """A push as Kdniao sends it: form-encoded RequestData, DataSign and RequestType."""
    fields = {"RequestData": data, "DataSign": sign if sign is not None else data_sign(data, key)}
    if request_type:
        fields["RequestType"] = request_type
    return urlencode(fields).encode()


def trace(at: datetime, text: str, **fields) -> dict:
    local = at.astimezone(UTC) + timedelta(hours=8)
    return {"AcceptTime": local.strftime("%Y-%m-%d %H:%M:%S"), "AcceptStation": text, **fields}


def push_of(traces: list[dict], *, state: str = "2", state_ex: str | None = None) -> bytes:
    item = {"LogisticCode": "JT3109999999999", "ShipperCode": "JTSD", "State": state, "Traces": traces}
    if state_ex:
        item["StateEx"] = state_ex
    data = {"EBusinessID": BUSINESS_ID, "PushTime": "2026-11-21 15:31:08", "Count": "1", "Data": [item]}
    return form_body(json.dumps(data, ensure_ascii=False))


# --- signature ----------------------------------------------------------------------------------------
def test_data_sign_is_base64_of_the_lowercase_hex_md5_of_request_data_and_app_key():
    expected = base64.b64encode(
        hashlib.md5(b'{"a":1}' + APP_KEY.encode(), usedforsecurity=False).hexdigest().encode()
    ).decode()
    assert data_sign('{"a":1}', APP_KEY) == expected
    assert len(expected) == 44  # base64 of 32 hex characters, not of the 16 raw bytes


def test_a_push_signed_with_the_app_key_is_accepted():
    assert provider().verify(body=form_body(request_data()), headers={})


def test_a_push_signed_with_the_connection_secret_is_accepted_too():
    assert provider().verify(body=form_body(request_data(), key=WEBHOOK_SECRET), headers={})


def test_a_push_signed_with_another_key_is_rejected():
    assert not provider().verify(body=form_body(request_data(), key="another-app-key"), headers={})


def test_a_push_without_data_sign_is_rejected():
    assert not provider().verify(
        body=urlencode({"RequestData": request_data(), "RequestType": "101"}).encode(), headers={}
    )
    assert not provider().verify(body=form_body(request_data(), sign=""), headers={})


def test_tampered_request_data_fails_the_signature():
    sign = data_sign(request_data(), APP_KEY)
    tampered = request_data().replace('"StateEx": "405"', '"StateEx": "301"')
    assert not provider().verify(body=form_body(tampered, sign=sign), headers={})


def test_a_body_that_is_not_form_encoded_is_rejected():
    assert not provider().verify(body=fixture_bytes("kdniao_push_request_data.json"), headers={})
    assert not provider().verify(body=b"", headers={})


def test_a_data_sign_sent_without_url_encoding_still_verifies():
    data = request_data()
    sign = data_sign(data, APP_KEY)
    body = (
        f"RequestData={quote(data)}&DataSign={sign}&RequestType=101".encode()
    )  # "+" in the sign becomes " "
    assert provider().verify(body=body, headers={})


def test_request_data_encoded_twice_still_verifies_and_parses():
    data = request_data()
    body = urlencode(
        {"RequestData": quote(data), "DataSign": data_sign(data, APP_KEY), "RequestType": "101"}
    ).encode()
    assert provider().verify(body=body, headers={})
    assert len(provider().parse_push(body=body, headers={}).trackings) == 2


# --- parsing ------------------------------------------------------------------------------------------
def test_the_push_fixture_parses_every_parcel_in_it():
    parsed = provider().parse_push(body=form_body(request_data()), headers={})

    assert parsed.kind == "kdniao_push"
    assert parsed.extra == {"request_type": "101", "push_time": "2026-11-21 15:31:08"}
    first, second = parsed.trackings
    assert (first.tracking_number, first.carrier, first.raw_status) == ("JT3101234567890", "JTSD", "405")
    assert list(first.events) == [
        EventData(datetime(2026, 11, 19, 1, 12, tzinfo=UTC), "InTransit", "InTransit_002", "kdniao", "1",
                  "【杭州市】您的快件已被 杭州余杭网点 揽收", "杭州市"),
        EventData(datetime(2026, 11, 19, 15, 40, tzinfo=UTC), "InTransit", "InTransit_003", "kdniao", "204",
                  "【杭州市】快件已到达 杭州转运中心", "杭州市"),
        EventData(datetime(2026, 11, 19, 17, 15, tzinfo=UTC), "InTransit", "InTransit_001", "kdniao", "2",
                  "【杭州市】快件已从 杭州转运中心 发出，下一站 长沙转运中心", "杭州市"),
        EventData(datetime(2026, 11, 20, 23, 50, tzinfo=UTC), "InTransit", "InTransit_003", "kdniao", "205",
                  "【长沙市】快件已到达 长沙岳麓网点", "长沙市"),
        EventData(datetime(2026, 11, 21, 0, 30, tzinfo=UTC), "OutForDelivery", "OutForDelivery_001", "kdniao", "202",
                  "【长沙市】长沙岳麓网点 快递员 王师傅 正在派件", "长沙市"),
        EventData(datetime(2026, 11, 21, 7, 30, tzinfo=UTC), "AttemptFail", "AttemptFail_001", "kdniao", "405",
                  "【长沙市】派件失败：收件人电话无人接听", "长沙市"),
    ]  # fmt: skip
    # The standard push has no per-trace Action: the latest trace takes the parcel's State ("2": in transit).
    assert (second.tracking_number, second.raw_status) == ("YT7500000000001", "2")
    assert [(e.subtag, e.raw_code) for e in second.events] == [("InTransit_001", ""), ("InTransit_001", "")]
    assert all(e.provider_key.startswith("trace-") for e in second.events)


def test_the_reply_is_the_acknowledgement_kdniao_expects():
    parsed = provider().parse_push(body=form_body(request_data()), headers={})
    assert parsed.reply == {
        "EBusinessID": "1237100",
        "UpdateTime": "2026-11-21 15:31:09",
        "Success": True,
        "Reason": "",
    }


def test_a_payment_status_push_is_acknowledged_and_carries_no_trackings():
    """107 is the payment status of a cash-on-delivery e-waybill: no trace, but Kdniao repeats it until
    it is acknowledged."""
    data = json.dumps({"EBusinessID": BUSINESS_ID, "PushTime": "2026-11-21 15:31:08", "Count": "1",
                       "Data": [{"OrderCode": "580001234567", "CodStatus": "1"}]})  # fmt: skip
    parsed = provider().parse_push(body=form_body(data, request_type="107"), headers={})

    assert (parsed.kind, parsed.trackings) == ("kdniao_107", [])
    assert parsed.reply["Success"] is True
    assert parsed.extra["request_type"] == "107"


def test_parsing_does_not_need_the_request_headers():
    body = form_body(request_data())
    assert (
        provider().parse_push(body=body, headers={}).trackings
        == provider()
        .parse_push(body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        .trackings
    )


@pytest.mark.parametrize(("code", "expected"), sorted(STATE_SUBTAGS.items()))
def test_each_kdniao_code_on_a_trace_maps_to_its_aftership_subtag(code, expected):
    body = push_of([trace(PUSHED_AT, "scan", Action=code)])
    [event] = provider().parse_push(body=body, headers={}).trackings[0].events
    assert (event.tag, event.subtag, event.raw_code) == (expected.split("_")[0], expected, code)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("499", "Exception_001"), ("299", "InTransit_001"), ("688", "InTransit_006"), ("77", None), ("", None)],
)
def test_an_unknown_code_falls_back_to_its_group(code, expected):
    assert subtag_for(code) == expected


def test_the_parcels_state_ex_names_the_latest_trace_when_traces_carry_no_action():
    body = push_of(
        [trace(PUSHED_AT - timedelta(hours=5), "派件中"), trace(PUSHED_AT, "已签收，签收人：本人")],
        state="3",
        state_ex="301",
    )
    earlier, latest = provider().parse_push(body=body, headers={}).trackings[0].events
    assert (latest.tag, latest.subtag) == ("Delivered", "Delivered_003")
    assert (earlier.tag, earlier.subtag) == ("InTransit", "InTransit_001")


@pytest.mark.parametrize("with_action", [True, False], ids=["with Action", "standard push without Action"])
def test_a_full_trace_repush_of_50_old_traces_and_1_new_keeps_the_50_keys(with_action):
    start = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    old = [
        trace(start + timedelta(hours=3 * i), f"快件到达第{i}站", Location=f"站点{i % 7}", **({"Action": "2"} if with_action else {}))
        for i in range(50)
    ]  # fmt: skip
    new = trace(start + timedelta(hours=200), "快件派送中", **({"Action": "202"} if with_action else {}))
    number = "JT3109999999999"

    first = provider().parse_push(body=push_of(old, state="2"), headers={}).trackings[0].events
    # Kdniao re-sends the whole trace, newest first this time, with the parcel's new state.
    second = provider().parse_push(body=push_of([new, *reversed(old)], state="2", state_ex="202"), headers={})
    second_events = second.trackings[0].events

    first_keys = {e.dedupe_key(number) for e in first}
    second_keys = {e.dedupe_key(number) for e in second_events}
    assert len(first_keys) == 50
    assert first_keys <= second_keys
    assert len(second_keys - first_keys) == 1
    [added] = [e for e in second_events if e.dedupe_key(number) not in first_keys]
    assert (added.raw_text, added.subtag) == ("快件派送中", "OutForDelivery_001")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (fixture_bytes("kdniao_push_request_data.json"), "not form-encoded"),
        (b"", "RequestData form field missing"),
        (b"DataSign=abc&RequestType=101", "RequestData form field missing"),
        (form_body(""), "RequestData: required"),
        (form_body("{not json"), "Kdniao RequestData: body is not valid JSON"),
        (form_body("[]"), "RequestData: expected a JSON object, got an array"),
        (form_body('{"EBusinessID": "1"}'), "RequestData.Data: expected a JSON array, got null"),
        (form_body('{"Data": ["JT1"]}'), r"RequestData.Data\[0\]: expected a JSON object"),
        (form_body('{"Data": [{"State": "2"}]}'), r"RequestData.Data\[0\].LogisticCode: required"),
        (form_body('{"Data": [{"LogisticCode": "JT1", "Traces": {}}]}'), r"Data\[0\].Traces: expected a JSON array"),
        (form_body('{"Data": [{"LogisticCode": "JT1", "Traces": [{"AcceptStation": "x"}]}]}'), r"Traces\[0\].AcceptTime: required"),
        (form_body('{"Data": [{"LogisticCode": "JT1", "Traces": [{"AcceptTime": "昨天"}]}]}'), r"Traces\[0\].AcceptTime: '昨天' is not a date-time"),
        (form_body('{"Count": [1], "Data": []}'), "RequestData.Count: expected a number"),
        (form_body(request_data(), request_type="1008"), "RequestType '1008' is not a track push"),
    ],
)  # fmt: skip
def test_malformed_pushes_raise_a_payload_error_that_names_the_field(body, message):
    with pytest.raises(PayloadError, match=message):
        provider().parse_push(body=body, headers={})


# --- pull ---------------------------------------------------------------------------------------------
def _instant_query_handler(seen: list[dict], answer: dict | None = None):
    def handler(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        seen.append(form)
        body = dict(answer or fixture_json("kdniao_instant_query.json"))
        body["LogisticCode"] = json.loads(form["RequestData"])["LogisticCode"]
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json")

    return handler


def test_fetch_sends_one_signed_instant_query_per_number(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx", method="POST").respond_with_handler(
        _instant_query_handler(seen)
    )
    refs = [
        TrackingRef("YT7500000000009", "yto"),
        TrackingRef("JT3100000000001", "JTSD"),
        TrackingRef("SF1", "zto"),
    ]

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(refs)

    assert len(seen) == 3
    for form in seen:
        assert (form["RequestType"], form["EBusinessID"], form["DataType"]) == ("8001", BUSINESS_ID, "2")
        assert form["DataSign"] == data_sign(form["RequestData"], APP_KEY)
    assert [json.loads(form["RequestData"])["ShipperCode"] for form in seen] == ["YTO", "JTSD", "ZTO"]
    assert [t.tracking_number for t in parsed] == ["YT7500000000009", "JT3100000000001", "SF1"]
    events = parsed[0].events
    assert [(e.subtag, e.raw_code) for e in events] == [
        ("InTransit_002", "1"), ("InTransit_003", "204"), ("OutForDelivery_001", "202"), ("Delivered_003", "301")
    ]  # fmt: skip
    assert events[-1].checkpoint_at == datetime(2026, 11, 19, 6, 31, tzinfo=UTC)
    assert parsed[0].raw_status == "301"


def test_a_number_whose_carrier_kdniao_cannot_name_is_skipped_not_fatal(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx").respond_with_handler(
        _instant_query_handler(seen)
    )

    parsed = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("630012345678", "jtexpress-my"), TrackingRef("YT1", "yto")]
    )

    assert [t.tracking_number for t in parsed] == ["YT1"]
    assert len(seen) == 1


def test_a_number_without_traces_yet_is_an_empty_history_not_an_error(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    answer = {
        "EBusinessID": BUSINESS_ID,
        "ShipperCode": "YTO",
        "Success": False,
        "Reason": "暂无轨迹信息",
        "State": "0",
        "Traces": [],
    }
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx").respond_with_handler(
        _instant_query_handler(seen, answer)
    )

    [tracking] = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("YT1", "YTO")]
    )

    assert (tracking.events, tracking.raw_status) == ([], "0")


def test_a_refused_query_is_permanent_with_kdniaos_reason(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx").respond_with_json(
        {"EBusinessID": BUSINESS_ID, "Success": False, "Reason": "DataSign签名错误"}
    )
    with pytest.raises(PermanentProviderError, match="DataSign签名错误"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("YT1", "YTO")])


def test_a_busy_answer_is_retryable(httpserver: HTTPServer, fake_bucket):
    httpserver.expect_request("/Ebusiness/EbusinessOrderHandle.aspx").respond_with_json(
        {"EBusinessID": BUSINESS_ID, "Success": False, "Reason": "系统繁忙，请稍后再试"}
    )
    with pytest.raises(RetryableProviderError, match="系统繁忙"):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch([TrackingRef("YT1", "YTO")])


def test_fetch_waits_out_a_429_then_succeeds(httpserver: HTTPServer, fake_bucket, fake_clock):
    seen: list[dict] = []
    path = "/Ebusiness/EbusinessOrderHandle.aspx"
    httpserver.expect_ordered_request(path).respond_with_data("", status=429, headers={"Retry-After": "3"})
    httpserver.expect_ordered_request(path).respond_with_handler(_instant_query_handler(seen))

    [tracking] = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).fetch(
        [TrackingRef("YT9", "YTO")]
    )

    assert tracking.tracking_number == "YT9"
    assert fake_clock.sleeps == [pytest.approx(3.0)]


def test_a_server_error_is_retryable_and_a_401_permanent(httpserver: HTTPServer, fake_bucket):
    path = "/Ebusiness/EbusinessOrderHandle.aspx"
    httpserver.expect_ordered_request(path).respond_with_data("err", status=502)
    httpserver.expect_ordered_request(path).respond_with_data("denied", status=401)
    client = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket)

    with pytest.raises(RetryableProviderError, match="HTTP 502"):
        client.fetch([TrackingRef("YT1", "YTO")])
    with pytest.raises(PermanentProviderError, match="HTTP 401"):
        client.fetch([TrackingRef("YT1", "YTO")])


def test_fetch_without_credentials_is_permanent_and_sends_nothing(httpserver: HTTPServer):
    with pytest.raises(PermanentProviderError, match="business_id"):
        KdniaoProvider(credentials={"api_key": APP_KEY}, base_url=httpserver.url_for("/")).fetch(
            [TrackingRef("YT1", "YTO")]
        )
    assert httpserver.log == []


# --- subscription (register) ------------------------------------------------------------------------
SUBSCRIBE = "/api/dist"
BUYER = Recipient(
    name="王小明", phone="+86 138-0013-8000", province="广东省", city="广州市", district="天河区",
    address="体育西路 191 号",
)  # fmt: skip


def _subscribe_handler(seen: list[dict], refuse: dict[str, str] | None = None):
    """Kdniao's subscription: Success true, or false with the reason for the numbers in `refuse`."""

    def handler(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.get_data(as_text=True)).items()}
        seen.append(form)
        number = json.loads(form["RequestData"])["LogisticCode"]
        body = fixture_json("kdniao_subscribe_response.json")
        if refuse and number in refuse:
            body = {**body, "Success": False, "Reason": refuse[number]}
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json")

    return handler


def test_register_subscribes_each_parcel_signed_with_the_recipient_kdniao_asks_for(
    httpserver: HTTPServer, fake_bucket
):
    seen: list[dict] = []
    httpserver.expect_request(SUBSCRIBE, method="POST").respond_with_handler(_subscribe_handler(seen))
    refs = [TrackingRef("SF1400000000001", "sf-express", BUYER), TrackingRef("YT7500000000009", "yto", BUYER)]

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(refs)

    assert refused == {}
    assert len(seen) == 2
    for form in seen:
        assert (form["RequestType"], form["EBusinessID"], form["DataType"]) == ("8008", BUSINESS_ID, "2")
        assert form["DataSign"] == data_sign(form["RequestData"], APP_KEY)
    sf, yto = (json.loads(form["RequestData"]) for form in seen)
    assert (sf["ShipperCode"], sf["LogisticCode"], sf["CustomerName"]) == ("SF", "SF1400000000001", "8000")
    assert sf["Receiver"] == {
        "Name": "王小明", "Mobile": "+86 138-0013-8000", "ProvinceName": "广东省", "CityName": "广州市",
        "ExpAreaName": "天河区", "Address": "体育西路 191 号",
    }  # fmt: skip
    assert "CustomerName" not in yto  # only SF Express and ZTO check the phone


def test_register_takes_the_configured_request_type_and_customer_names(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request(SUBSCRIBE).respond_with_handler(_subscribe_handler(seen))
    credentials = {
        "api_key": APP_KEY, "business_id": BUSINESS_ID, "subscribe_request_type": "1008",
        "customer_names": {"JD": "020K123456"},
    }  # fmt: skip

    provider(base_url=httpserver.url_for("/"), bucket=fake_bucket, credentials=credentials).register(
        [TrackingRef("JDVA00000000001", "jd")]
    )

    assert seen[0]["RequestType"] == "1008"
    request = json.loads(seen[0]["RequestData"])
    assert request["CustomerName"] == "020K123456"
    assert "Receiver" not in request  # no recipient given, none invented
    assert "Sender" not in request  # none configured


def test_register_sends_the_configured_sender(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    httpserver.expect_request(SUBSCRIBE).respond_with_handler(_subscribe_handler(seen))
    sender = {"Name": "Lumi 仓库", "Mobile": "13800138000", "ProvinceName": "广东省", "CityName": "深圳市",
              "ExpAreaName": "南山区", "Address": "科技园 1 号", "Colour": "not Kdniao's"}  # fmt: skip
    credentials = {"api_key": APP_KEY, "business_id": BUSINESS_ID, "sender": sender}

    provider(base_url=httpserver.url_for("/"), bucket=fake_bucket, credentials=credentials).register(
        [TrackingRef("YT7500000000009", "yto", BUYER)]
    )

    request = json.loads(seen[0]["RequestData"])
    assert request["Sender"] == {key: value for key, value in sender.items() if key != "Colour"}
    assert request["Receiver"]["Name"] == "王小明"


def test_a_parcel_kdniao_refuses_or_cannot_name_the_carrier_of_is_returned_with_the_reason(
    httpserver: HTTPServer, fake_bucket
):
    seen: list[dict] = []
    httpserver.expect_request(SUBSCRIBE).respond_with_handler(
        _subscribe_handler(seen, refuse={"YT0": "单号格式不正确"})
    )

    refused = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register(
        [TrackingRef("YT0", "yto"), TrackingRef("630012345678", "jtexpress-my"), TrackingRef("YT1", "yto")]
    )

    assert refused == {
        "YT0": "单号格式不正确",
        "630012345678": "no Kdniao ShipperCode for carrier 'jtexpress-my'",
    }
    assert [json.loads(f["RequestData"])["LogisticCode"] for f in seen] == [
        "YT0",
        "YT1",
    ]  # the others went on


@pytest.mark.parametrize(
    ("reason", "error"),
    [("DataSign签名错误", PermanentProviderError), ("该商户未开通此接口", PermanentProviderError),
     ("系统繁忙，请稍后再试", RetryableProviderError)],
)  # fmt: skip
def test_an_answer_about_the_account_is_permanent_and_a_busy_one_retryable(
    httpserver: HTTPServer, fake_bucket, reason, error
):
    httpserver.expect_request(SUBSCRIBE).respond_with_json(
        {"EBusinessID": BUSINESS_ID, "Success": False, "Reason": reason}
    )
    with pytest.raises(error, match=reason[:4]):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).register([TrackingRef("YT1", "YTO")])


def test_register_without_credentials_is_permanent_and_sends_nothing(httpserver: HTTPServer):
    with pytest.raises(PermanentProviderError, match="credentials incomplete"):
        provider(base_url=httpserver.url_for("/"), credentials={}).register([TrackingRef("YT1", "YTO")])
    assert httpserver.log == []


# --- credentials check ----------------------------------------------------------------------------------
INSTANT_QUERY = "/Ebusiness/EbusinessOrderHandle.aspx"


def test_check_sends_one_signed_instant_query_of_a_made_up_number(httpserver: HTTPServer, fake_bucket):
    seen: list[dict] = []
    answer = {"EBusinessID": BUSINESS_ID, "Success": False, "LogisticCode": "YT0000000000000", "State": "0",
              "Reason": "暂无轨迹信息", "Traces": []}  # fmt: skip
    httpserver.expect_request(INSTANT_QUERY, method="POST").respond_with_handler(
        _instant_query_handler(seen, answer)
    )

    message = provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()

    assert (
        message
        == "Kdniao accepted the EBusinessID and the AppKey (it answered of a made-up number: 暂无轨迹信息)."
    )
    [form] = seen
    assert (form["RequestType"], form["EBusinessID"]) == ("8001", BUSINESS_ID)
    assert form["DataSign"] == data_sign(form["RequestData"], APP_KEY)


@pytest.mark.parametrize(
    ("reason", "error"),
    [("DataSign签名错误", PermanentProviderError), ("没有可用套餐", PermanentProviderError),
     ("系统繁忙，请稍后再试", RetryableProviderError)],
)  # fmt: skip
def test_check_says_when_the_account_is_refused_and_when_kdniao_is_busy(
    httpserver: HTTPServer, fake_bucket, reason, error
):
    httpserver.expect_request(INSTANT_QUERY).respond_with_json(
        {"EBusinessID": BUSINESS_ID, "Success": False, "Reason": reason}
    )
    with pytest.raises(error, match=reason[:4]):
        provider(base_url=httpserver.url_for("/"), bucket=fake_bucket).check()
