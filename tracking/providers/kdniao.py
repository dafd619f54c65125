"""Kdniao (快递鸟): full-trace track pushes (form-encoded RequestData + DataSign) and the instant query.

Guarantees:
- `verify` accepts a push only when DataSign equals base64(lowercase hex MD5(RequestData + AppKey)), with
  RequestData as sent before URL encoding, compared in constant time. The AppKey is the account's API key
  (credentials['api_key']); the connection's webhook secret is accepted too.
- Kdniao pushes a parcel's whole trace every time. The same trace parses to the same EventData on every
  push: its time (AcceptTime, China time, to UTC), its Action code and its Location are the trace's own,
  never positional, so ingestion's hash of (number, time, code, location) is stable and a re-push of 50
  old traces plus 1 new one adds exactly 1 event.
- State / StateEx / Action codes (one code space) map onto AfterShip tags through `STATE_SUBTAGS`, every
  code Kdniao lists; an unknown three-digit code falls back to its group (2xx in transit, 4xx problem...).
  The raw code and AcceptStation text are always kept.
- `reply` is the acknowledgement Kdniao expects: {"EBusinessID", "UpdateTime", "Success": true, "Reason"}.
  Track pushes are RequestType 101 (standard subscription) and 102 (map and in-transit monitor editions);
  a signed 107 (a cash-on-delivery payment status) is acknowledged and kept with no trackings, so Kdniao
  stops repeating it; any other RequestType is a PayloadError (400).
- `fetch` uses the instant query (RequestType 8001, one number per request) at a polite 5 requests/s.
- Kdniao pushes only parcels subscribed to: `register` subscribes them (RequestType 8008, the in-transit
  monitor's subscription that goes with the 8001 query; credentials['subscribe_request_type'] = "1008"
  for the standard track subscription), one number per request at the same 5 requests/s, with the
  recipient Kdniao asks for (name, phone, address) and, for SF Express and ZTO, CustomerName = the last
  four digits of the phone (credentials['customer_names'] sets it per ShipperCode instead, e.g. JD's
  青龙 code), and the Sender (the store's return address) where credentials['sender'] gives one. A
  parcel whose carrier has no ShipperCode, or that Kdniao answers Success false for, is
  refused with the reason; an answer that names the account (signature, business id, no plan) is a
  permanent error, a busy one retryable. The instant query works without a subscription, so polling
  never waits for one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import httpx

from tracking.choices import normalize_subtag, normalize_tag
from tracking.providers._parsing import (
    constant_time_equal,
    form_fields,
    load_json,
    optional_str,
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

SOURCE = "kdniao"
CHINA_TIME = ZoneInfo("Asia/Shanghai")  # AcceptTime and PushTime are Beijing time, without an offset
# Track pushes: 101 from the standard subscription, 102 from the map and in-transit monitor editions.
PUSH_REQUEST_TYPES = frozenset({"101", "102"})
# Signed pushes that carry no trace, acknowledged so Kdniao does not send them again: 107, the payment
# status of a cash-on-delivery order booked through Kdniao's e-waybill.
IGNORED_PUSH_REQUEST_TYPES = frozenset({"107"})
INSTANT_QUERY_REQUEST_TYPE = "8001"
INSTANT_QUERY_PATH = "/Ebusiness/EbusinessOrderHandle.aspx"
CHECK_NUMBER = "YT0000000000000"  # the credentials check's instant query: a YTO number no parcel has
SUBSCRIBE_REQUEST_TYPE = "8008"
SUBSCRIBE_PATH = "/api/dist"
PHONE_CHECKED_SHIPPERS = frozenset({"SF", "ZTO"})  # CustomerName: last four digits of the phone
# The subscription's Sender, where the plan asks for it (credentials['sender'], set in the admin): the
# store's return address, in Kdniao's field names.
SENDER_FIELDS = (
    "Company",
    "Name",
    "Tel",
    "Mobile",
    "PostCode",
    "ProvinceName",
    "CityName",
    "ExpAreaName",
    "Address",
)
# A Success false whose Reason says one of these is about the account, not the number (and pauses the
# connection's registration): signature, business id, merchant, plan, permission, not enabled, balance.
# Narrow on purpose: a per-number refusal read as the account's would stop every parcel's subscription.
ACCOUNT_REASONS = ("签名", "DataSign", "EBusinessID", "商户", "套餐", "权限", "未开通", "余额")
BUSY_REASONS = ("繁忙", "稍后", "超时")  # busy / try later / timed out
# Kdniao publishes no per-second figure for the instant query that we could find: a polite default,
# raised per connection with credentials['requests_per_second'].
REQUESTS_PER_SECOND = 5.0

# State / StateEx / trace Action code -> AfterShip subtag (Kdniao's meaning in the comment).
STATE_SUBTAGS: dict[str, str] = {
    "0": "Pending_001",  # 暂无轨迹信息: no trace yet
    "1": "InTransit_002",  # 已揽收: picked up (acceptance scan)
    "10": "InfoReceived_001",  # 待揽件: waiting for pickup
    "2": "InTransit_001",  # 在途中: in transit
    "201": "InTransit_003",  # 到达派件城市: arrived in the destination city
    "204": "InTransit_003",  # 到达转运中心: arrived at a sorting hub
    "205": "InTransit_003",  # 到达派件网点: arrived at the delivery station
    "206": "InTransit_007",  # 寄件网点发件: dispatched from the origin station
    "202": "OutForDelivery_001",  # 派件中: out for delivery
    "211": "AvailableForPickup_001",  # 已放入快递柜或驿站: in a parcel locker or pickup station
    "3": "Delivered_001",  # 已签收: signed for
    "301": "Delivered_003",  # 正常签收: signed by the recipient
    "302": "Delivered_001",  # 派件异常后最终签收: delivered after an earlier failed attempt
    "304": "Delivered_005",  # 代收签收: signed for on the recipient's behalf
    "311": "Delivered_001",  # 快递柜或驿站签收: signed into a locker or station (Kdniao counts it delivered)
    "4": "Exception_001",  # 问题件: problem parcel
    "401": "Pending_002",  # 发货无信息: shipped, never scanned (the pickup-overdue rule owns the deadline)
    "402": "Exception_005",  # 超时未签收: not signed for in time
    "403": "Exception_005",  # 超时未更新: no update in time (stalled; the stall rule measures it itself)
    "404": "Exception_003",  # 拒收(退件): refused by the recipient
    "405": "AttemptFail_001",  # 派件异常: delivery attempt failed
    "406": "Exception_011",  # 退货签收: returned, signed for by the sender
    "407": "Exception_010",  # 退货未签收: returning to the sender
    "412": "Exception_008",  # 快递柜或驿站超时未取: not collected from the locker or station in time
    "413": "Exception_010",  # 单号已拦截: intercepted (on its way back to the sender)
    "414": "Exception_012",  # 破损: damaged
    "415": "Exception_001",  # 客户取消发货: shipment cancelled by the customer
    "416": "AttemptFail_002",  # 无法联系: recipient could not be reached
    "417": "Exception_005",  # 配送延迟: delivery delayed
    "418": "Exception_001",  # 快件取出: taken back out of the locker or station
    "419": "OutForDelivery_001",  # 重新派送: out for delivery again
    "420": "Exception_007",  # 收货地址不详细: address incomplete
    "421": "Exception_007",  # 收件人电话错误: recipient's phone wrong (confirm contact details like an address)
    "422": "Exception_016",  # 错分件: mis-sorted
    "423": "Exception_007",  # 超区件: outside the carrier's delivery area
    "5": "InTransit_009",  # 转寄: forwarded
    "6": "InTransit_006",  # 清关: customs clearance
    "601": "InTransit_006",  # 待清关: waiting for customs clearance
    "602": "InTransit_006",  # 清关中: in customs clearance
    "603": "InTransit_005",  # 已清关: cleared customs
    "604": "Exception_004",  # 清关异常: customs problem
}

# Our carrier codes -> Kdniao ShipperCode (Kdniao's own codes, e.g. "YTO", are passed through).
SHIPPER_CODES: dict[str, str] = {
    "sf-express": "SF", "sf": "SF", "shunfeng": "SF",
    "yto": "YTO", "yuantong": "YTO",
    "zto": "ZTO", "zhongtong": "ZTO",
    "sto": "STO", "shentong": "STO",
    "yunda": "YD",
    "ems": "EMS", "china-ems": "EMS",
    "china-post": "YZPY", "chinapost": "YZPY",
    "jd": "JD", "jd-logistics": "JD", "jingdong": "JD",
    "jtexpress-cn": "JTSD", "jt-express-cn": "JTSD", "jitu": "JTSD",
    "deppon": "DBL", "debang": "DBL",
    "best-express": "HTKY", "htky": "HTKY",
}  # fmt: skip


def subtag_for(code: str) -> str | None:
    """The AfterShip subtag for a Kdniao State/StateEx/Action code; an unknown xNN code falls back to x."""
    if not code:
        return None
    if code in STATE_SUBTAGS:
        return STATE_SUBTAGS[code]
    if len(code) == 3 and code.isdigit():
        return STATE_SUBTAGS.get(code[0])
    return None


def data_sign(request_data: str, app_key: str) -> str:
    """Kdniao's DataSign: base64 of the lowercase hex MD5 of RequestData followed by the AppKey."""
    digest = hashlib.md5((request_data + app_key).encode(), usedforsecurity=False).hexdigest()
    return base64.b64encode(digest.encode()).decode()


class KdniaoProvider(HttpProvider):
    name = "kdniao"
    label = "Kdniao"
    batch_size = 1  # the instant query takes one number per request
    registers = True  # pushes come for subscribed parcels only; the instant query needs no subscription
    default_base_url = "https://api.kdniao.com"

    def __init__(self, *, now: Callable[[], datetime] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.app_key = credential(self.credentials, "api_key", "app_key", "AppKey")
        self.business_id = credential(self.credentials, "business_id", "EBusinessID")
        self._now = now or (lambda: datetime.now(CHINA_TIME))

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            form = _form(body)
        except PayloadError:
            return False
        request_data = _request_data(form.get("RequestData", ""))
        signature = form.get("DataSign", "").strip()
        if not request_data.strip() or not signature:
            return False
        # A sender that forgot to URL-encode DataSign turns its "+" into spaces.
        candidates = dict.fromkeys((signature, signature.replace(" ", "+"), unquote_plus(signature)))
        valid = False
        for key in dict.fromkeys(k for k in (self.app_key, self.webhook_secret) if k):
            expected = data_sign(request_data, key)
            for candidate in candidates:
                valid |= constant_time_equal(expected, candidate)
        return valid

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        form = _form(body)
        request_type = form.get("RequestType", "").strip()
        if request_type and request_type not in PUSH_REQUEST_TYPES | IGNORED_PUSH_REQUEST_TYPES:
            raise PayloadError(
                f"RequestType {request_type!r} is not a track push (expected one of {', '.join(sorted(PUSH_REQUEST_TYPES))})."
            )
        raw = _request_data(form.get("RequestData", ""))
        if not raw.strip():
            raise PayloadError("RequestData: required form field, missing or empty.")
        document = require_mapping(load_json(raw, what="Kdniao RequestData"), field="RequestData")
        extra = {
            "request_type": request_type,
            "push_time": optional_str(document, "PushTime", field="RequestData"),
        }
        if request_type in IGNORED_PUSH_REQUEST_TYPES:
            reply = self._push_reply(document)
            return ParsedPush(kind=f"kdniao_{request_type}", trackings=[], reply=reply, extra=extra)
        items = require_list(document.get("Data"), field="RequestData.Data")
        count = document.get("Count")
        if count is not None and not (isinstance(count, int | str) and str(count).strip().isdigit()):
            raise PayloadError(f"RequestData.Count: expected a number, got {count!r}.")
        trackings = [
            parse_item(require_mapping(item, field=f"RequestData.Data[{i}]"), field=f"RequestData.Data[{i}]")
            for i, item in enumerate(items)
        ]
        return ParsedPush(
            kind="kdniao_push", trackings=trackings, reply=self._push_reply(document), extra=extra
        )

    def _push_reply(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """The answer Kdniao expects to a push it may stop sending: Success true, in Beijing time."""
        return {
            "EBusinessID": optional_str(document, "EBusinessID", field="RequestData") or self.business_id,
            "UpdateTime": self._now().astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S"),
            "Success": True,
            "Reason": "",
        }

    # --- pull -------------------------------------------------------------------------------------------
    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        refs = list({ref.tracking_number: ref for ref in refs}.values())
        if not refs:
            return []
        self._require_credentials()
        bucket = self._quota("instant query")
        with self.http() as client:
            results = []
            for ref in refs:
                shipper = self.shipper_code(ref.carrier)
                if not shipper:
                    log.warning(
                        "kdniao: no ShipperCode for carrier %r of %s; skipped",
                        ref.carrier,
                        ref.tracking_number,
                    )
                    continue
                results.append(self._query(client, bucket, ref.tracking_number, shipper))
            return results

    def register(self, refs: Sequence[TrackingRef]) -> dict[str, str]:
        refs = list({ref.tracking_number: ref for ref in refs}.values())
        if not refs:
            return {}
        self._require_credentials()
        bucket = self._quota("subscribe")
        refused: dict[str, str] = {}
        with self.http() as client:
            for ref in refs:
                shipper = self.shipper_code(ref.carrier)
                if not shipper:
                    refused[ref.tracking_number] = f"no Kdniao ShipperCode for carrier {ref.carrier!r}"
                    continue
                reason = self._subscribe(client, bucket, ref, shipper)
                if reason:
                    refused[ref.tracking_number] = reason
        if refused:
            log.warning("kdniao: numbers not subscribed: %s", refused)
        return refused

    def _subscribe(self, client: httpx.Client, bucket: TokenBucket, ref: TrackingRef, shipper: str) -> str:
        """Subscribe one parcel; Kdniao's reason when it refused it, else ""."""
        request = {"OrderCode": "", "ShipperCode": shipper, "LogisticCode": ref.tracking_number}
        customer_name = self.customer_name(shipper, ref)
        if customer_name:
            request["CustomerName"] = customer_name
        recipient = ref.recipient
        if recipient and (recipient.name or recipient.phone):
            request["Receiver"] = {
                "Name": recipient.name, "Mobile": recipient.phone, "ProvinceName": recipient.province,
                "CityName": recipient.city, "ExpAreaName": recipient.district, "Address": recipient.address,
            }  # fmt: skip
        sender = self.credentials.get("sender")
        if isinstance(sender, Mapping) and sender:
            request["Sender"] = {key: str(value) for key, value in sender.items() if key in SENDER_FIELDS}
        document = self._call(
            client, bucket, path=SUBSCRIBE_PATH, what="subscription", request=request,
            request_type=str(self.credentials.get("subscribe_request_type") or SUBSCRIBE_REQUEST_TYPE),
        )  # fmt: skip
        if document.get("Success") is True:
            return ""
        reason = str(document.get("Reason") or "no reason given")
        if any(word in reason for word in BUSY_REASONS):
            raise RetryableProviderError(f"kdniao: subscription failed, try later: {reason}")
        if any(word in reason for word in ACCOUNT_REASONS):
            raise PermanentProviderError(f"kdniao: subscription refused for the account: {reason}")
        return reason[:500]

    def customer_name(self, shipper: str, ref: TrackingRef) -> str:
        """CustomerName for the subscription: configured per ShipperCode, else the phone's last four digits
        for the carriers that check them."""
        configured = self.credentials.get("customer_names")
        if isinstance(configured, Mapping) and isinstance(configured.get(shipper), str):
            return configured[shipper]
        digits = "".join(c for c in (ref.recipient.phone if ref.recipient else "") if c.isdigit())
        return digits[-4:] if shipper in PHONE_CHECKED_SHIPPERS and len(digits) >= 4 else ""

    def _quota(self, endpoint: str) -> TokenBucket:
        """The account's quota of one endpoint, shared by every process (5 requests/s unless configured)."""
        return self._bucket or shared_bucket(
            provider=self.name, account=self.business_id, endpoint=endpoint,
            requests_per_second=configured_rate(self.credentials, REQUESTS_PER_SECOND),
        )  # fmt: skip

    def shipper_code(self, carrier: str) -> str:
        overrides = self.credentials.get("shipper_codes")
        if isinstance(overrides, Mapping) and isinstance(overrides.get(carrier), str):
            return overrides[carrier]
        code = carrier.strip()
        if code.lower() in SHIPPER_CODES:
            return SHIPPER_CODES[code.lower()]
        return code if code.isalnum() and code.isupper() else ""

    def _require_credentials(self) -> None:
        if not (self.app_key and self.business_id):
            raise PermanentProviderError(
                "kdniao: credentials incomplete (needs credentials['api_key'] and credentials['business_id'])."
            )

    def _call(
        self, client: httpx.Client, bucket: TokenBucket, *, path: str, what: str, request_type: str,
        request: Mapping[str, Any],
    ) -> Mapping[str, Any]:  # fmt: skip
        """POST one signed, form-encoded request; the JSON object Kdniao answered."""
        request_data = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
        form = {
            "RequestData": request_data,
            "EBusinessID": self.business_id,
            "RequestType": request_type,
            "DataSign": data_sign(request_data, self.app_key),
            "DataType": "2",
        }
        response = request_with_retries(
            client, "POST", f"{self.base_url}{path}", bucket=bucket, provider=self.name,
            error_message=_error_message, data=form,
        )  # fmt: skip
        return response_object(response, provider=self.name, what=what)

    def check(self) -> str:
        """One instant query of a number no carrier issued (it counts as one query of the plan): Kdniao
        signs and checks the account before it looks at the number, so an answer that names the account
        (the signature, the business id, the plan) is the credentials' fault, and any other the number's."""
        self._require_credentials()
        bucket = self._quota("instant query")
        with self.http() as client:
            document = self._call(
                client, bucket, path=INSTANT_QUERY_PATH, what="instant query",
                request_type=INSTANT_QUERY_REQUEST_TYPE,
                request={"OrderCode": "", "ShipperCode": "YTO", "LogisticCode": CHECK_NUMBER},
            )  # fmt: skip
        reason = str(document.get("Reason") or "")
        if document.get("Success") is False:
            if any(word in reason for word in BUSY_REASONS):
                raise RetryableProviderError(f"kdniao: instant query failed, try later: {reason}")
            if any(word in reason for word in ACCOUNT_REASONS):
                raise PermanentProviderError(f"kdniao: the account was refused: {reason}")
        answer = f" (it answered of a made-up number: {reason})" if reason else ""
        return f"Kdniao accepted the EBusinessID and the AppKey{answer}."

    def _query(self, client: httpx.Client, bucket: TokenBucket, number: str, shipper: str) -> ParsedTracking:
        document = self._call(
            client, bucket, path=INSTANT_QUERY_PATH, what="instant query",
            request_type=INSTANT_QUERY_REQUEST_TYPE,
            request={"OrderCode": "", "ShipperCode": shipper, "LogisticCode": number},
        )  # fmt: skip
        if document.get("Success") is False and document.get("State") in (None, ""):
            reason = str(document.get("Reason") or "no reason given")
            if any(word in reason for word in BUSY_REASONS):
                raise RetryableProviderError(f"kdniao: instant query failed, try later: {reason}")
            raise PermanentProviderError(f"kdniao: instant query refused: {reason}")
        try:
            return parse_item(document, field="response", number=number)
        except PayloadError as exc:
            raise RetryableProviderError(
                f"kdniao: instant query answered in an unexpected format: {exc}"
            ) from exc


def parse_item(item: Mapping[str, Any], *, field: str, number: str = "") -> ParsedTracking:
    """One parcel's full trace (a push's Data[] item, or an instant-query answer) as a ParsedTracking."""
    number = number or require_str(item, "LogisticCode", field=field)
    state = optional_str(item, "State", field=field)
    state_ex = optional_str(item, "StateEx", field=field)
    traces = item.get("Traces")
    traces = [] if traces is None else require_list(traces, field=f"{field}.Traces")
    parsed = []
    for index, trace in enumerate(traces):
        t_field = f"{field}.Traces[{index}]"
        trace = require_mapping(trace, field=t_field)
        accepted = require_str(trace, "AcceptTime", field=t_field)
        at = parse_timestamp(accepted, field=f"{t_field}.AcceptTime", naive_zone=CHINA_TIME)
        parsed.append((at, trace, t_field))
    latest_at = max((at for at, _, _ in parsed), default=None)
    latest_seen = False
    events = []
    for at, trace, t_field in parsed:
        is_latest = at == latest_at and not latest_seen
        latest_seen |= is_latest
        events.append(
            _event(trace, at=at, number=number, is_latest=is_latest, state=state_ex or state, field=t_field)
        )
    return ParsedTracking(
        tracking_number=number,
        carrier=optional_str(item, "ShipperCode", field=field),
        events=sorted(events, key=lambda event: event.checkpoint_at),
        raw_status=state_ex or state,
    )


def _event(
    trace: Mapping[str, Any], *, at: datetime, number: str, is_latest: bool, state: str, field: str
) -> EventData:
    action = optional_str(trace, "Action", field=field)
    station = optional_str(trace, "AcceptStation", field=field)
    location = optional_str(trace, "Location", field=field)
    subtag = subtag_for(action) or (subtag_for(state) if is_latest else None) or "InTransit_001"
    tag = normalize_tag(subtag.split("_", 1)[0])
    provider_key = ""
    if not action:
        # The standard push has no per-trace Action: the latest trace takes the parcel's State/StateEx and
        # earlier ones read "in transit", so the subtag moves as traces are added. Key such traces on their
        # own content so the next full-trace push does not store them again.
        basis = "|".join((number, at.isoformat(), station, location))
        provider_key = "trace-" + hashlib.sha256(basis.encode()).hexdigest()[:32]
    return EventData(
        checkpoint_at=at,
        tag=tag.value,
        subtag=normalize_subtag(tag, subtag),
        source=SOURCE,
        raw_code=action,
        raw_text=station,
        location=location,
        provider_key=provider_key,
    )


def _form(body: bytes) -> dict[str, str]:
    return form_fields(body, required="RequestData", what="Kdniao push", shape="RequestData=...&DataSign=...")


def _request_data(value: str) -> str:
    """RequestData as signed: form-decoded once; decoded again if the sender encoded it twice."""
    if value.lstrip()[:3].upper() in ("%7B", "%5B"):
        return unquote_plus(value)
    return value


def _error_message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return str(document.get("Reason") or "") if isinstance(document, Mapping) else ""
