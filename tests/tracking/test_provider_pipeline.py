"""Each provider's pushes, end to end: its documented wire format posted to the webhook, stored, processed by
the worker's step, and checked in the database. The same three guarantees for every provider: a full-trace
re-push of 50 old checkpoints adds only the new one, 1,000 replays of one delivery add nothing, and pushes
arriving out of order leave the shipment's summary right."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from tests.factories import make_order, make_shipment
from tests.tracking.providers.conftest import fixture_json
from tracking.models import Shipment, TrackingConnection, TrackingEvent, WebhookDelivery
from tracking.providers import kdniao, kuaidi100, simulator
from tracking.providers._parsing import hmac_sha256_base64
from tracking.providers.base import ParsedTracking
from tracking.services import EventData
from tracking.tasks import process_deliveries

SECRET = "provider-secret-0123456789"
T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)  # the acceptance scan
CHINA = timedelta(hours=8)  # Kdniao and Kuaidi100 send China time without an offset

# A checkpoint: (time, kind, text). Kinds are what each provider's own codes say.
Checkpoint = tuple[datetime, str, str]


def history(hops: int = 49, *, delivered: bool = False) -> list[Checkpoint]:
    """An acceptance scan, `hops` hourly hub scans, and a delivery 60 hours after acceptance."""
    points = [(T0, "accepted", "Parcel picked up by the courier")]
    points += [(T0 + timedelta(hours=i), "hop", f"Arrived at hub {i}") for i in range(1, hops + 1)]
    if delivered:
        points.append((T0 + timedelta(hours=60), "delivered", "Delivered, signed for by the recipient"))
    return points


class AfterShip:
    provider = "aftership"
    number = "JT5012345678901"
    codes = {"accepted": "InTransit_002", "hop": "InTransit_003", "delivered": "Delivered_001"}

    def push(self, points: list[Checkpoint]) -> tuple[bytes, dict[str, str]]:
        document = fixture_json("aftership_tracking_update.json")
        document["event_id"] = str(uuid.uuid4())  # each push is a delivery of its own
        latest = self.codes[points[-1][1]]
        msg = document["msg"]
        msg.update(tracking_number=self.number, tag=latest.split("_")[0], subtag=latest)
        template = msg["checkpoints"][0]
        msg["checkpoints"] = [
            {**template, "checkpoint_time": at.isoformat(), "tag": self.codes[kind].split("_")[0],
             "subtag": self.codes[kind], "message": text, "location": "Shah Alam", "hash": None}
            for at, kind, text in points
        ]  # fmt: skip
        body = json.dumps(document).encode()
        return body, {"aftership-hmac-sha256": hmac_sha256_base64(SECRET, body)}


class SeventeenTrack:
    provider = "17track"
    number = "YT2432100012345678"
    codes = {"accepted": "InTransit_PickedUp", "hop": "InTransit_Arrival", "delivered": "Delivered_Other"}

    def push(self, points: list[Checkpoint]) -> tuple[bytes, dict[str, str]]:
        latest = self.codes[points[-1][1]]
        events = [
            {"time_iso": at.isoformat(), "time_utc": at.isoformat(), "description": text, "location": "Shenzhen",
             "stage": None, "sub_status": self.codes[kind]}
            for at, kind, text in reversed(points)  # newest first, as 17TRACK lists them
        ]  # fmt: skip
        document = {
            "event": "TRACKING_UPDATED",
            "data": {
                "number": self.number, "carrier": 190008,
                "track_info": {
                    "latest_status": {"status": latest.split("_")[0], "sub_status": latest},
                    "tracking": {"providers": [{"provider": {"key": 190008, "name": "YTO"}, "events": events}]},
                },
            },
        }  # fmt: skip
        body = json.dumps(document).encode()
        return body, {"sign": hashlib.sha256(body + b"/" + SECRET.encode()).hexdigest()}


class Kdniao:
    provider = "kdniao"
    number = "JT3109999999999"
    codes = {"accepted": "1", "hop": "204", "delivered": "3"}

    def push(self, points: list[Checkpoint]) -> tuple[bytes, dict[str, str]]:
        traces = [
            {"AcceptTime": (at + CHINA).strftime("%Y-%m-%d %H:%M:%S"), "AcceptStation": text,
             "Action": self.codes[kind]}
            for at, kind, text in points
        ]  # fmt: skip
        state = "3" if points[-1][1] == "delivered" else "2"
        item = {"LogisticCode": self.number, "ShipperCode": "JTSD", "State": state, "Traces": traces}
        data = json.dumps({"EBusinessID": "1237100", "PushTime": "2026-11-23 10:00:00", "Count": "1",
                           "Data": [item]}, ensure_ascii=False)  # fmt: skip
        fields = {"RequestData": data, "DataSign": kdniao.data_sign(data, SECRET), "RequestType": "101"}
        return urlencode(fields).encode(), {}


class Kuaidi100:
    provider = "kuaidi100"
    number = "YT7500000000999"
    codes = {"accepted": "1", "hop": "1001", "delivered": "3"}

    def push(self, points: list[Checkpoint]) -> tuple[bytes, dict[str, str]]:
        items = [
            {"time": (at + CHINA).strftime("%Y-%m-%d %H:%M:%S"), "ftime": (at + CHINA).strftime("%Y-%m-%d %H:%M:%S"),
             "context": text, "statusCode": self.codes[kind]}
            for at, kind, text in reversed(points)  # newest first, as Kuaidi100 sends them
        ]  # fmt: skip
        state = "3" if points[-1][1] == "delivered" else "0"
        document = {"status": "polling", "message": "",
                    "lastResult": {"nu": self.number, "com": "yuantong", "state": state, "data": items}}  # fmt: skip
        text = json.dumps(document, ensure_ascii=False)
        return urlencode({"param": text, "sign": kuaidi100.sign(text, SECRET)}).encode(), {}


class Simulator:
    provider = "simulator"
    number = "630828620703"
    codes = {"accepted": "InTransit_002", "hop": "InTransit_003", "delivered": "Delivered_001"}

    def push(self, points: list[Checkpoint]) -> tuple[bytes, dict[str, str]]:
        events = [
            EventData(at, self.codes[kind].split("_")[0], self.codes[kind], "simulator", raw_text=text)
            for at, kind, text in points
        ]
        body = simulator.push_body([ParsedTracking(self.number, "jtexpress-my", events)])
        return body, {simulator.SIGNATURE_HEADER: simulator.sign(body, SECRET)}


SPEAKERS = [AfterShip(), SeventeenTrack(), Kdniao(), Kuaidi100(), Simulator()]


@pytest.fixture(params=SPEAKERS, ids=lambda speaker: speaker.provider)
def speaker(request):
    return request.param


@pytest.fixture
def parcel(store, speaker) -> Shipment:
    TrackingConnection.objects.create(
        store=store, provider=speaker.provider, webhook_secret=SECRET,
        # 17TRACK signs with the account's key and Kdniao with its AppKey; both are the one secret here.
        credentials={"api_key": SECRET, "business_id": "1237100"} if speaker.provider in ("17track", "kdniao") else {},
    )  # fmt: skip
    return make_shipment(order=make_order(store=store), carrier="jtexpress", tracking_number=speaker.number)


def post(client, speaker, points: list[Checkpoint] | None = None, *, push=None) -> None:
    body, headers = push or speaker.push(points)
    connection = TrackingConnection.objects.get(provider=speaker.provider)
    content_type = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    response = client.post(connection.webhook_path, data=body, content_type=content_type, headers=headers)
    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_a_full_trace_re_push_of_50_old_checkpoints_adds_only_the_new_one(client, speaker, parcel):
    post(client, speaker, history(49))
    process_deliveries()
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 50

    post(client, speaker, history(49, delivered=True))
    process_deliveries()

    assert TrackingEvent.objects.filter(shipment=parcel).count() == 51
    second = WebhookDelivery.objects.order_by("pk").last()
    assert (second.status, second.events_new, second.events_duplicate) == ("processed", 1, 50)
    parcel.refresh_from_db()
    assert (parcel.status, parcel.delivered_at) == ("Delivered", T0 + timedelta(hours=60))


@pytest.mark.django_db
def test_a_thousand_replays_of_one_delivery_add_no_duplicate(client, speaker, parcel):
    push = speaker.push(history(49))
    for _ in range(1_000):
        post(client, speaker, push=push)
    process_deliveries()

    assert TrackingEvent.objects.filter(shipment=parcel).count() == 50
    deliveries = WebhookDelivery.objects.all()
    assert {d.status for d in deliveries} == {"processed"}
    assert sum(d.events_new for d in deliveries) == 50


@pytest.mark.django_db
def test_pushes_arriving_out_of_order_leave_the_summary_right(client, speaker, parcel):
    points = history(49, delivered=True)
    post(client, speaker, points[-2:])  # the last hub scan and the delivery arrive first
    process_deliveries()
    post(client, speaker, points[:10])  # the acceptance scan and the first hubs, late
    process_deliveries()

    parcel.refresh_from_db()
    assert parcel.status == "Delivered"  # late scans never move a parcel back in transit
    assert parcel.accepted_at == T0  # the first acceptance scan, the appeal's truth, whenever it came
    assert parcel.delivered_at == parcel.last_event_at == T0 + timedelta(hours=60)
    assert TrackingEvent.objects.filter(shipment=parcel).count() == 12
