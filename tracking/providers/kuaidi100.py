"""Kuaidi100 (快递100): the subscription's full-trace pushes (form-encoded `param` + `sign`), the real-time
query, and the subscription itself.

Guarantees:
- `verify` accepts a push only when `sign` equals the uppercase hex MD5 of `param` (the JSON as sent,
  before URL encoding) followed by the salt the subscription gave, compared in constant time. The salt is
  the connection's webhook secret: `register` sends it with every subscription.
- Kuaidi100 pushes a parcel's whole trace every time (`lastResult.data`, newest first). Each checkpoint is
  keyed on its own time and text, so the same checkpoint parses to the same event on every push and a
  re-push of 50 old checkpoints plus 1 new one adds exactly 1 event.
- `state` and the checkpoints' `statusCode` (the advanced statuses `resultv2=4` asks for) map onto AfterShip
  subtags through `STATE_SUBTAGS`, every code Kuaidi100 lists; an unknown advanced code falls back to its
  basic status (2xx problem, 3xx signed for, 10xx in transit...). Without a `statusCode`, the latest
  checkpoint takes the parcel's `state` and earlier ones read "in transit". Raw code and text are kept.
- The push's `status` (polling, shutdown once delivered, abort after "3 days with no record" or "60 days
  without change", updateall) and its message are kept in `extra`; an abort without a corrected company
  is in `stopped`, so the parcel is subscribed again later; a corrected company (`comNew`: subscriptions
  ask for that check, autoCom) is in `carriers_corrected`; `reply` is the acknowledgement
  Kuaidi100 expects, {"result": true, "returnCode": "200", "message": "成功"}.
- `fetch` uses the real-time query (poll/query.do, one number per request, signed with the key and the
  customer id) at a polite 5 requests/s, with the buyer's phone for SF Express and ZTO (polls carry it);
  "no result yet" (returnCode 500) is no tracking, not an error.
- `register` subscribes each parcel (poll) with the connection's webhook URL as `callbackurl`, the salt,
  `resultv2=4`, the recipient's phone (SF Express and ZTO check it) and destination. 501 (already
  subscribed) is success; an answer about the account (600, 601, signature) is a permanent error, a busy
  one retryable, and any other a refusal of that number with Kuaidi100's message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
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

SOURCE = "kuaidi100"
CHINA_TIME = ZoneInfo("Asia/Shanghai")  # checkpoint times are Beijing time, without an offset
SUBSCRIBE_PATH = "/poll"
QUERY_PATH = "/poll/query.do"
RESULT_VERSION = "4"  # resultv2=4: advanced statuses per checkpoint (statusCode)
REPLY = {"result": True, "returnCode": "200", "message": "成功"}
PHONE_CHECKED = frozenset({"shunfeng", "shunfengkuaiyun", "zhongtong"})  # the phone (or its last 4 digits)
CHECK_NUMBER = "YT0000000000000"  # the credentials check's query: a YTO number no parcel has
# returnCode: what it says about the request. Kuaidi100 publishes no per-second figure for the real-time
# query that we could find: a polite default, raised per connection with credentials['requests_per_second'].
ACCOUNT_CODES = {
    "503": "signature refused",
    "600": "not a valid customer",
    "601": "key expired or no balance",
}
BUSY_CODES = frozenset({"501", "502"})  # server error / busy, for the query (501 is "already" for poll)
NO_RESULT = "500"  # the query found nothing yet
ALREADY_SUBSCRIBED = "501"
REQUESTS_PER_SECOND = 5.0

# `state` (basic) and `statusCode` (advanced) -> AfterShip subtag; Kuaidi100's meaning in the comment.
STATE_SUBTAGS: dict[str, str] = {
    "0": "InTransit_001",  # 在途: in transit
    "1001": "InTransit_003",  # 到达派件城: arrived in the destination city
    "1002": "InTransit_001",  # 干线: on the trunk line
    "1003": "InTransit_009",  # 转递: handed to another carrier
    "1": "InTransit_002",  # 揽收: picked up (acceptance scan)
    "101": "InfoReceived_001",  # 已下单: order placed with the carrier
    "102": "InfoReceived_001",  # 待揽收: waiting for pickup
    "103": "InTransit_002",  # 已揽收: picked up
    "2": "Exception_001",  # 疑难: problem parcel
    "201": "Exception_005",  # 超时未签收: not signed for in time
    "202": "Exception_005",  # 超时未更新: no update in time
    "203": "Exception_003",  # 拒收: refused by the recipient
    "204": "AttemptFail_001",  # 派件异常: delivery attempt failed
    "205": "Exception_008",  # 柜或驿站超时未取: not collected from the locker or station in time
    "206": "AttemptFail_002",  # 无法联系: recipient could not be reached
    "207": "Exception_007",  # 超区: outside the carrier's delivery area
    "208": "Exception_005",  # 滞留: held up
    "209": "Exception_012",  # 破损: damaged
    "210": "Exception_001",  # 销单: cancelled
    "3": "Delivered_001",  # 签收: signed for
    "301": "Delivered_003",  # 本人签收: signed by the recipient
    "302": "Delivered_001",  # 派件异常后签收: delivered after an earlier failed attempt
    "303": "Delivered_005",  # 代签: signed for on the recipient's behalf
    "304": "Delivered_001",  # 投柜或站签收: signed into a locker or station
    "4": "Exception_011",  # 退签: returned, signed for by the sender
    "401": "Exception_001",  # 已销单: cancelled
    "5": "OutForDelivery_001",  # 派件: out for delivery
    "501": "AvailableForPickup_001",  # 投柜或驿站: in a parcel locker or pickup station
    "6": "Exception_010",  # 退回: returning to the sender
    "7": "InTransit_009",  # 转投: forwarded
    "8": "InTransit_006",  # 清关: customs clearance
    "10": "InTransit_006",  # 待清关: waiting for customs clearance
    "11": "InTransit_006",  # 清关中: in customs clearance
    "12": "InTransit_005",  # 已清关: cleared customs
    "13": "Exception_004",  # 清关异常: customs problem
    "14": "Exception_003",  # 拒签: refused
}

# Our carrier codes -> Kuaidi100 company codes (lowercase; Kuaidi100's own codes pass through).
COMPANY_CODES: dict[str, str] = {
    "sf-express": "shunfeng", "sf": "shunfeng", "sfexpress": "shunfeng",
    "yto": "yuantong", "yto-express": "yuantong",
    "zto": "zhongtong", "zto-express": "zhongtong",
    "sto": "shentong", "sto-express": "shentong",
    "yd": "yunda", "yunda-express": "yunda",
    "ems": "ems", "china-ems": "ems",
    "china-post": "youzhengguonei", "chinapost": "youzhengguonei",
    "jd": "jd", "jd-logistics": "jd", "jdl": "jd", "jingdong": "jd",
    "jtexpress-cn": "jtexpress", "jt-express-cn": "jtexpress", "jtsd": "jtexpress", "jitu": "jtexpress",
    "deppon": "debangkuaidi", "dbl": "debangkuaidi", "debang": "debangkuaidi",
    "best-express": "huitongkuaidi", "htky": "huitongkuaidi",
}  # fmt: skip


def subtag_for(code: str) -> str | None:
    """The AfterShip subtag for a Kuaidi100 state or statusCode; an unknown advanced code falls back to its
    basic status (1xx picked up, 2xx problem, 3xx signed for, 10xx in transit, ...)."""
    if not code:
        return None
    if code in STATE_SUBTAGS:
        return STATE_SUBTAGS[code]
    if code.isdigit() and len(code) == 4 and code.startswith("10"):
        return STATE_SUBTAGS["0"]
    if code.isdigit() and len(code) == 3:
        return STATE_SUBTAGS.get(code[0])
    return None


def sign(text: str, *parts: str) -> str:
    """Kuaidi100's signature: the uppercase hex MD5 of the text followed by the parts (salt; key and
    customer)."""
    return hashlib.md5((text + "".join(parts)).encode(), usedforsecurity=False).hexdigest().upper()


class Kuaidi100Provider(HttpProvider):
    name = "kuaidi100"
    label = "Kuaidi100"
    batch_size = 1  # the real-time query takes one number per request
    registers = True  # pushes come for subscribed parcels only; the real-time query needs no subscription
    default_base_url = "https://poll.kuaidi100.com"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.key = credential(self.credentials, "api_key", "key")
        self.customer = credential(self.credentials, "customer", "business_id")

    # --- push -------------------------------------------------------------------------------------------
    def verify(self, *, body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            form = _form(body)
        except PayloadError:
            return False
        param, signature = form.get("param", ""), form.get("sign", "").strip()
        if not param.strip() or not signature or not self.webhook_secret:
            return False
        return constant_time_equal(sign(param, self.webhook_secret), signature.upper())

    def parse_push(self, *, body: bytes, headers: Mapping[str, str]) -> ParsedPush:
        form = _form(body)
        if not form.get("param", "").strip():
            raise PayloadError("param: required form field, missing or empty.")
        document = require_mapping(load_json(form["param"], what="Kuaidi100 param"), field="param")
        status = require_str(document, "status", field="param")
        result = require_mapping(document.get("lastResult"), field="param.lastResult")
        extra = {
            "status": status,
            "message": optional_str(document, "message", field="param"),
            "company_corrected_to": optional_str(document, "comNew", field="param"),
        }
        tracking = parse_result(result, field="param.lastResult")
        # With autoCom on (as `register` subscribes), Kuaidi100 names the right company when the one given was
        # wrong, and asks that ours be updated: the parcel's carrier is corrected (ParsedPush.carriers_corrected).
        corrected = (extra["company_corrected_to"] or "").strip().lower()
        stopped = {}
        if status == "abort" and not extra["company_corrected_to"]:
            # Kuaidi100 stopped monitoring ("3天查询无记录": no scan 3 days after the subscription, "60天无变化"):
            # no more pushes unless subscribed again. With a corrected company it subscribed again itself.
            stopped[tracking.tracking_number] = extra["message"] or status  # Kuaidi100's own words
        return ParsedPush(
            kind=f"kuaidi100_{status}", trackings=(tracking,), reply=dict(REPLY), extra=extra, stopped=stopped,
            carriers_corrected={tracking.tracking_number: corrected} if corrected else {},
        )  # fmt: skip

    # --- pull -------------------------------------------------------------------------------------------
    def fetch(self, refs: Sequence[TrackingRef]) -> list[ParsedTracking]:
        refs = list({ref.tracking_number: ref for ref in refs}.values())
        if not refs:
            return []
        self._require_credentials(customer=True)
        bucket = self._quota("query")
        with self.http() as client:
            results = []
            for ref in refs:
                tracking = self._query(
                    client, bucket, ref.tracking_number, self.company_code(ref.carrier), ref
                )
                if tracking is not None:
                    results.append(tracking)
            return results

    def _query(
        self, client: httpx.Client, bucket: TokenBucket, number: str, company: str, ref: TrackingRef
    ) -> ParsedTracking | None:
        param = {"com": company, "num": number, "resultv2": RESULT_VERSION, "show": "0", "order": "desc"}
        phone = _phone(ref, company)
        if phone:
            param["phone"] = phone
        text = _json(param)
        form = {"customer": self.customer, "sign": sign(text, self.key, self.customer), "param": text}
        document = self._post(client, bucket, QUERY_PATH, form, what="real-time query")
        code = str(document.get("returnCode") or "")
        if document.get("result") is False or (code and code != "200"):
            message = str(document.get("message") or "no message")
            if code == NO_RESULT:
                return None  # nothing scanned yet: no tracking, not an error
            _raise_for_account(code, message, what="real-time query")
            log.warning("kuaidi100: real-time query of %s refused (%s): %s", number, code, message)
            return None
        try:
            return parse_result(document, field="response", number=number)
        except PayloadError as exc:
            raise RetryableProviderError(
                f"kuaidi100: real-time query answered in an unexpected format: {exc}"
            ) from exc

    # --- registration -----------------------------------------------------------------------------------
    def register(self, refs: Sequence[TrackingRef]) -> dict[str, str]:
        refs = list({ref.tracking_number: ref for ref in refs}.values())
        if not refs:
            return {}
        self._require_credentials(customer=False)
        if not self.callback_url:
            raise PermanentProviderError(
                "kuaidi100: no callback URL to subscribe with (the connection's webhook URL)."
            )
        bucket = self._quota("poll")
        refused: dict[str, str] = {}
        with self.http() as client:
            for ref in refs:
                reason = self._subscribe(client, bucket, ref)
                if reason:
                    refused[ref.tracking_number] = reason
        if refused:
            log.warning("kuaidi100: numbers not subscribed: %s", refused)
        return refused

    def _subscribe(self, client: httpx.Client, bucket: TokenBucket, ref: TrackingRef) -> str:
        """Subscribe one parcel; Kuaidi100's message when it refused it, else ""."""
        parameters: dict[str, str] = {
            "callbackurl": self.callback_url, "salt": self.webhook_secret, "resultv2": RESULT_VERSION,
            # Kuaidi100 checks the company against the number and, when it was wrong, tracks the right one and
            # says so in its pushes (comNew), instead of pushing nothing.
            "autoCom": "1",
        }  # fmt: skip
        company = self.company_code(ref.carrier)
        phone = _phone(ref, company)
        if phone:
            parameters["phone"] = phone
        param: dict[str, Any] = {
            "company": company, "number": ref.tracking_number, "key": self.key, "parameters": parameters,
        }  # fmt: skip
        recipient = ref.recipient
        destination = (
            "".join(p for p in (recipient.province, recipient.city, recipient.district) if p)
            if recipient
            else ""
        )
        if destination:
            param["to"] = destination  # helps Kuaidi100 tell when the parcel is near and signed for
        document = self._post(
            client, bucket, SUBSCRIBE_PATH, {"schema": "json", "param": _json(param)}, what="subscription"
        )
        code = str(document.get("returnCode") or "")
        if document.get("result") is True or code in ("200", ALREADY_SUBSCRIBED):
            return ""
        message = str(document.get("message") or "no message")
        _raise_for_account(code, message, what="subscription")
        if code in ("500", "502"):
            raise RetryableProviderError(f"kuaidi100: subscription failed, try later ({code}): {message}")
        return f"{code}: {message}"[:500] if code else message[:500]

    # --- health -----------------------------------------------------------------------------------------
    def check(self) -> str:
        """One real-time query of a number no carrier issued: Kuaidi100 checks the customer, key and
        signature before it looks at the number, so only an answer about those is the credentials' fault."""
        self._require_credentials(customer=True)
        with self.http() as client:
            text = _json({"com": "yuantong", "num": CHECK_NUMBER, "resultv2": RESULT_VERSION})
            form = {"customer": self.customer, "sign": sign(text, self.key, self.customer), "param": text}
            document = self._post(client, self._quota("query"), QUERY_PATH, form, what="real-time query")
        code = str(document.get("returnCode") or "")
        message = str(document.get("message") or "")
        _raise_for_account(code, message, what="real-time query")
        if code in BUSY_CODES:
            raise RetryableProviderError(f"kuaidi100: real-time query failed, try later ({code}): {message}")
        answer = f" (it answered of a made-up number: {message})" if message else ""
        return f"Kuaidi100 accepted the customer and the key{answer}."

    # --- helpers ----------------------------------------------------------------------------------------
    def company_code(self, carrier: str) -> str:
        """Kuaidi100's company code for our carrier code: the connection's own mapping first
        (credentials["company_codes"], set in the admin), then COMPANY_CODES, else the code itself."""
        code = carrier.strip().lower()
        return self._overrides().get(code) or COMPANY_CODES.get(code, code)

    def carrier_codes(self, provider_code: str) -> list[str]:
        code = provider_code.strip().lower()
        ours = [carrier for carrier, company in self._overrides().items() if company == code]
        known = [o for o, theirs in COMPANY_CODES.items() if theirs == code and o != code and o not in ours]
        return [*ours, *known, code]

    def _overrides(self) -> dict[str, str]:
        mapping = self.credentials.get("company_codes")
        if not isinstance(mapping, Mapping):
            return {}
        return {
            str(ours).strip().lower(): theirs.strip().lower()
            for ours, theirs in mapping.items()
            if isinstance(theirs, str) and theirs.strip()
        }

    def _quota(self, endpoint: str) -> TokenBucket:
        """The account's quota of one endpoint, shared by every process (5 requests/s unless configured)."""
        return self._bucket or shared_bucket(
            provider=self.name, account=self.key, endpoint=endpoint,
            requests_per_second=configured_rate(self.credentials, REQUESTS_PER_SECOND),
        )  # fmt: skip

    def _require_credentials(self, *, customer: bool) -> None:
        if not self.key or (customer and not self.customer):
            needed = (
                "credentials['api_key'] (the key) and credentials['customer']"
                if customer
                else "credentials['api_key'] (the key)"
            )
            raise PermanentProviderError(f"kuaidi100: credentials incomplete (needs {needed}).")

    def _post(
        self, client: httpx.Client, bucket: TokenBucket, path: str, form: Mapping[str, str], *, what: str
    ) -> Mapping[str, Any]:
        response = request_with_retries(
            client, "POST", f"{self.base_url}{path}", bucket=bucket, provider=self.name,
            error_message=_error_message, data=dict(form),
        )  # fmt: skip
        return response_object(response, provider=self.name, what=what)


def parse_result(result: Mapping[str, Any], *, field: str, number: str = "") -> ParsedTracking:
    """One parcel's full trace (a push's lastResult, or a real-time query's answer) as a ParsedTracking."""
    number = number or require_str(result, "nu", field=field)
    state = optional_str(result, "state", field=field)
    items = result.get("data")
    items = [] if items is None else require_list(items, field=f"{field}.data")
    parsed = []
    for index, item in enumerate(items):
        i_field = f"{field}.data[{index}]"
        item = require_mapping(item, field=i_field)
        when = optional_str(item, "ftime", field=i_field) or require_str(item, "time", field=i_field)
        parsed.append((parse_timestamp(when, field=f"{i_field}.time", naive_zone=CHINA_TIME), item, i_field))
    latest_at = max((at for at, _, _ in parsed), default=None)
    events, latest_seen = [], False
    for at, item, i_field in parsed:
        is_latest = at == latest_at and not latest_seen
        latest_seen |= is_latest
        events.append(_event(item, at=at, number=number, is_latest=is_latest, state=state, field=i_field))
    return ParsedTracking(
        tracking_number=number,
        carrier=optional_str(result, "com", field=field),
        events=sorted(events, key=lambda event: event.checkpoint_at),
        raw_status=state,
    )


def _event(
    item: Mapping[str, Any], *, at: datetime, number: str, is_latest: bool, state: str, field: str
) -> EventData:
    code = optional_str(item, "statusCode", field=field)
    text = optional_str(item, "context", field=field)
    location = optional_str(item, "areaName", field=field) or optional_str(item, "location", field=field)
    subtag = subtag_for(code) or (subtag_for(state) if is_latest else None) or "InTransit_001"
    tag = normalize_tag(subtag.split("_", 1)[0])
    # Keyed on the checkpoint's own time and text: the status of one without a statusCode moves as newer
    # checkpoints arrive, and the next full-trace push must not store it again.
    basis = "|".join((number, at.isoformat(), text))
    return EventData(
        checkpoint_at=at,
        tag=tag.value,
        subtag=normalize_subtag(tag, subtag),
        source=SOURCE,
        raw_code=code or (state if is_latest else ""),
        raw_text=text,
        location=location,
        provider_key="k100-" + hashlib.sha256(basis.encode()).hexdigest()[:32],
    )


def _raise_for_account(code: str, message: str, *, what: str) -> None:
    if code in ACCOUNT_CODES or "签名" in message:
        meaning = ACCOUNT_CODES.get(code, "signature refused")
        raise PermanentProviderError(
            f"kuaidi100: {what} refused for the account ({code} {meaning}): {message}"
        )


def _phone(ref: TrackingRef, company: str) -> str:
    """The recipient's phone, only where the carrier checks it (SF Express, ZTO): it is the buyer's."""
    if company not in PHONE_CHECKED:
        return ""
    phone = ref.recipient.phone if ref.recipient else ""
    digits = "".join(c for c in phone if c.isdigit())
    return digits[-11:] if digits else ""


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _form(body: bytes) -> dict[str, str]:
    return form_fields(body, required="param", what="Kuaidi100 push", shape="param=...&sign=...")


def _error_message(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return response.text.strip()[:300]
    return str(document.get("message") or "") if isinstance(document, Mapping) else ""
