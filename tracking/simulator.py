"""Believable carrier tracking histories for the demo seed, load tests and the simulator provider.

Pure functions: every random choice comes from the `random.Random` passed in and every time from the
arguments, so the same (rng state, carrier, scenario, booked_at, now) always gives the same history. Nothing
here touches the database.

Histories follow a real network: pickup near the seller's warehouse, the national gateway hub, a regional
hub for far destinations, the last-mile station, and deliveries inside local working hours. Cross-border
parcels start in China with the first-mile carrier's Chinese scans, fly out, and clear import customs. When
the time between booking and `now` is too short for the natural pace, the history is compressed so that
the scenario's final state is still reached before `now`.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tracking.services import EventData

SOURCE = "simulator"

SCENARIOS: tuple[str, ...] = (
    "delivered",
    "in_transit",
    "not_picked_up",
    "stalled",
    "failed_delivery",
    "customs_hold",
    "lost",
    "damaged",
    "address_issue",
    "returned_to_sender",
)

# How long after booking each scenario needs before it can be shown at all truthfully: "not_picked_up" means
# the 24 h acceptance deadline has passed, "stalled" that the last scan is over 12 h old. Other scenarios
# can be compressed into shorter windows but read better with at least this much time.
SCENARIO_MIN_AGE: dict[str, timedelta] = {
    "delivered": timedelta(hours=12),
    "in_transit": timedelta(hours=1),
    "not_picked_up": timedelta(hours=24, minutes=30),
    "stalled": timedelta(hours=16),
    "failed_delivery": timedelta(hours=14),
    "customs_hold": timedelta(hours=18),
    "lost": timedelta(hours=20),
    "damaged": timedelta(hours=10),
    "address_issue": timedelta(hours=14),
    "returned_to_sender": timedelta(hours=20),
}

# Step kinds and the normalized subtag each one carries.
_KIND_SUBTAG: dict[str, str] = {
    "info": "InfoReceived_001",
    "pickup": "InTransit_002",
    "arrive": "InTransit_003",
    "depart": "InTransit_007",
    "export": "InTransit_007",
    "import": "InTransit_004",
    "customs": "InTransit_006",
    "cleared": "InTransit_005",
    "ofd": "OutForDelivery_001",
    "delivered": "Delivered_001",
    "signed": "Delivered_003",
    "not_home": "AttemptFail_002",
    "attempt": "AttemptFail_001",
    "customs_hold": "Exception_004",
    "bad_address": "Exception_007",
    "returning": "Exception_010",
    "damaged": "Exception_012",
    "lost": "Exception_013",
}


@dataclass(frozen=True)
class CarrierProfile:
    """How one carrier names its sites, codes its scans and words its messages."""

    code: str
    name: str
    country: str
    language: str  # the language of the carrier's own messages ("en" or "th")
    hub: str  # format of a sorting hub's name, from its city
    station: str  # format of a last-mile station's name, from its city
    codes: dict[str, str]  # raw carrier code per step kind
    texts: dict[str, tuple[str, ...]]  # message templates per step kind; {site} and {next} are filled in


# fmt: off
CARRIERS: dict[str, CarrierProfile] = {
    profile.code: profile
    for profile in (
        CarrierProfile(
            code="jtexpress-my",
            name="J&T Express",
            country="MY",
            language="en",
            hub="{city} Gateway",
            station="{city} DP",
            codes={
                "info": "0", "pickup": "1", "arrive": "2", "depart": "3", "ofd": "4", "delivered": "5",
                "signed": "5", "not_home": "405", "attempt": "401", "bad_address": "402", "damaged": "611",
                "lost": "613", "returning": "701", "export": "31", "import": "21", "customs": "22",
                "cleared": "23", "customs_hold": "604",
            },
            texts={
                "info": ("Order information received, awaiting parcel pickup",),
                "pickup": ("Parcel has been picked up by our courier [{site}]",),
                "arrive": ("Parcel has arrived at sorting centre [{site}]",),
                "depart": ("Parcel has departed from sorting centre [{site}], next stop [{next}]",),
                "ofd": ("Parcel is out for delivery from [{site}], our courier will contact you shortly",),
                "delivered": ("Parcel has been delivered",),
                "signed": ("Parcel has been delivered and signed for by the recipient",),
                "not_home": (
                    "Delivery unsuccessful: recipient not available, we will reattempt on the next working day",
                    "Delivery unsuccessful: recipient's phone unreachable",
                ),
                "attempt": ("Delivery attempt failed, parcel returned to [{site}]",),
                "bad_address": ("Unable to deliver: address incomplete or incorrect, please contact J&T Express",),
                "damaged": ("Parcel damaged during sorting at [{site}], held for inspection",),
                "lost": ("Parcel could not be located after investigation and is declared lost",),
                "returning": ("Parcel is being returned to the sender",),
                "import": ("Parcel has arrived in the destination country [{site}]",),
                "customs": ("Import customs clearance in progress [{site}]",),
                "cleared": ("Import customs clearance completed [{site}]",),
                "customs_hold": ("Held by customs [{site}]: pending duty payment and commercial invoice",),
            },
        ),
        CarrierProfile(
            code="ninjavan-my",
            name="Ninja Van",
            country="MY",
            language="en",
            hub="{city} Sorting Hub",
            station="Ninja Point {city}",
            codes={
                "info": "PENDING_PICKUP", "pickup": "SUCCESSFUL_PICKUP", "arrive": "ARRIVED_AT_SORTING_HUB",
                "depart": "IN_TRANSIT_TO_NEXT_SORTING_HUB", "ofd": "ON_VEHICLE_FOR_DELIVERY",
                "delivered": "SUCCESSFUL_DELIVERY", "signed": "SUCCESSFUL_DELIVERY", "not_home": "PENDING_RESCHEDULE",
                "attempt": "FAILED_DELIVERY", "bad_address": "DELIVERY_EXCEPTION_ADDRESS",
                "damaged": "PARCEL_DAMAGED", "lost": "PARCEL_LOST", "returning": "RETURN_TO_SENDER_TRIGGERED",
                "export": "CROSS_BORDER_EXPORT", "import": "CROSS_BORDER_IMPORT", "customs": "CUSTOMS_CLEARANCE",
                "cleared": "CUSTOMS_CLEARED", "customs_hold": "CUSTOMS_HELD",
            },
            texts={
                "info": ("Order created - pending pickup",),
                "pickup": ("Successfully picked up from sender - {site}",),
                "arrive": ("Arrived at Sorting Hub: {site}",),
                "depart": ("In transit to next sorting hub: {next}",),
                "ofd": ("On Vehicle for Delivery - {site}",),
                "delivered": ("Successfully delivered",),
                "signed": ("Successfully delivered - proof of delivery signed by recipient",),
                "not_home": ("Delivery is unsuccessful: recipient not available - pending reschedule",),
                "attempt": ("Delivery is unsuccessful - parcel returned to {site}",),
                "bad_address": ("Delivery exception: unable to locate recipient address",),
                "damaged": ("Parcel damaged at {site} - under investigation",),
                "lost": ("Parcel lost - investigation completed",),
                "returning": ("Return to sender triggered",),
                "import": ("Arrived in destination country - {site}",),
                "customs": ("Customs clearance in progress - {site}",),
                "cleared": ("Customs clearance completed - {site}",),
                "customs_hold": ("Held by customs - {site}: awaiting import duty payment",),
            },
        ),
        CarrierProfile(
            code="poslaju",
            name="Pos Laju",
            country="MY",
            language="en",
            hub="Pos Laju Hub {city}",
            station="PPL {city}",
            # Pos Malaysia shows UPU EMSEVT-style codes on its tracking page.
            codes={
                "info": "EDA", "pickup": "EMA", "arrive": "EMJ", "depart": "EMK", "ofd": "EMG", "delivered": "EMI",
                "signed": "EMI", "not_home": "EMH", "attempt": "EMH", "bad_address": "EMH", "damaged": "EMX",
                "lost": "EMX", "returning": "EMH", "export": "EMC", "import": "EMD", "customs": "EMD",
                "cleared": "EMF", "customs_hold": "EME",
            },
            texts={
                "info": ("Shipment information received",),
                "pickup": ("Item picked up - {site}",),
                "arrive": ("Item processed at {site}",),
                "depart": ("Item dispatched out from {site}",),
                "ofd": ("Item out for delivery - {site}",),
                "delivered": ("Item delivered",),
                "signed": ("Item delivered - signed by recipient",),
                "not_home": ("Delivery attempted but unsuccessful - addressee not at home, notice card left",),
                "attempt": ("Delivery attempted but unsuccessful - item returned to {site}",),
                "bad_address": ("Delivery attempted but unsuccessful - incorrect address",),
                "damaged": ("Item damaged - held at {site} for inspection",),
                "lost": ("Item reported missing - investigation closed",),
                "returning": ("Item returned to sender",),
                "import": ("Item arrived at inward office of exchange - {site}",),
                "customs": ("Item presented to customs - {site}",),
                "cleared": ("Item released by customs - {site}",),
                "customs_hold": ("Item held by customs - {site}",),
            },
        ),
        CarrierProfile(
            code="citylink",
            name="City-Link Express",
            country="MY",
            language="en",
            hub="City-Link {city} Hub",
            station="City-Link {city}",
            codes={
                "info": "IR", "pickup": "PU", "arrive": "AR", "depart": "DP", "ofd": "OD", "delivered": "DL",
                "signed": "DS", "not_home": "NA", "attempt": "UD", "bad_address": "WA", "damaged": "DM",
                "lost": "LS", "returning": "RT", "export": "EX", "import": "IA", "customs": "CC",
                "cleared": "CR", "customs_hold": "CH",
            },
            texts={
                "info": ("Shipment information received",),
                "pickup": ("Shipment picked up by courier - {site}",),
                "arrive": ("Shipment arrived at {site}",),
                "depart": ("Shipment departed from {site} to {next}",),
                "ofd": ("Shipment out for delivery - {site}",),
                "delivered": ("Shipment delivered",),
                "signed": ("Shipment delivered - received and signed by consignee",),
                "not_home": ("Consignee not available - delivery will be reattempted",),
                "attempt": ("Undelivered - shipment returned to {site}",),
                "bad_address": ("Undelivered - wrong or incomplete address",),
                "damaged": ("Shipment damaged - held at {site}",),
                "lost": ("Shipment lost in transit",),
                "returning": ("Shipment returning to shipper",),
                "import": ("Shipment arrived in destination country - {site}",),
                "customs": ("Shipment under customs clearance - {site}",),
                "cleared": ("Shipment cleared by customs - {site}",),
                "customs_hold": ("Shipment on hold at customs - {site}",),
            },
        ),
        CarrierProfile(
            code="flash-express",
            name="Flash Express",
            country="TH",
            language="th",
            hub="ศูนย์คัดแยก{city}",
            station="สาขา{city}",
            codes={
                "info": "CREATED", "pickup": "RECEIVED", "arrive": "ARRIVAL_WAREHOUSE_SCAN",
                "depart": "SHIPMENT_WAREHOUSE_SCAN", "ofd": "DELIVERY_TICKET_CREATION_SCAN",
                "delivered": "DELIVERY_CONFIRM", "signed": "DELIVERY_CONFIRM", "not_home": "DIFFICULTY_HANDOVER",
                "attempt": "DETAIN_WAREHOUSE", "bad_address": "DIFFICULTY_HANDOVER_ADDRESS",
                "damaged": "DAMAGED_PARCEL", "lost": "LOST_PARCEL", "returning": "RETURN_TO_SENDER",
                "export": "CROSS_BORDER_EXPORT", "import": "CROSS_BORDER_IMPORT", "customs": "CUSTOMS_CLEARANCE",
                "cleared": "CUSTOMS_RELEASED", "customs_hold": "CUSTOMS_DETAINED",
            },
            texts={
                "info": ("ผู้ส่งสร้างรายการพัสดุแล้ว รอพนักงานเข้ารับพัสดุ",),
                "pickup": ("พนักงานเข้ารับพัสดุแล้ว ที่{site}",),
                "arrive": ("พัสดุถึง{site}แล้ว",),
                "depart": ("พัสดุออกจาก{site} กำลังส่งต่อไปยัง{next}",),
                "ofd": ("พนักงานกำลังนำส่งพัสดุ จาก{site}",),
                "delivered": ("นำส่งพัสดุสำเร็จแล้ว",),
                "signed": ("ผู้รับเซ็นรับพัสดุเรียบร้อยแล้ว",),
                "not_home": ("นำส่งไม่สำเร็จ ติดต่อผู้รับไม่ได้ จะนำส่งใหม่ในวันทำการถัดไป",),
                "attempt": ("นำส่งไม่สำเร็จ พัสดุถูกนำกลับไปที่{site}",),
                "bad_address": ("ที่อยู่ผู้รับไม่ถูกต้องหรือไม่ครบถ้วน ไม่สามารถนำส่งได้",),
                "damaged": ("พัสดุได้รับความเสียหายระหว่างการคัดแยกที่{site} อยู่ระหว่างตรวจสอบ",),
                "lost": ("พัสดุสูญหาย ตรวจสอบแล้วไม่พบพัสดุในระบบ",),
                "returning": ("กำลังตีกลับพัสดุไปยังผู้ส่ง",),
                "import": ("พัสดุถึงประเทศปลายทางแล้ว ที่{site}",),
                "customs": ("อยู่ระหว่างพิธีการศุลกากรขาเข้า ที่{site}",),
                "cleared": ("ผ่านพิธีการศุลกากรเรียบร้อยแล้ว ที่{site}",),
                "customs_hold": ("พัสดุถูกกักที่ศุลกากร ({site}) รอชำระภาษีและเอกสารเพิ่มเติม",),
            },
        ),
        CarrierProfile(
            code="kerry-express-th",
            name="Kerry Express",
            country="TH",
            language="en",
            hub="{city} Hub",
            station="Kerry {city} Branch",
            codes={
                "info": "SHP", "pickup": "PUP", "arrive": "ARR", "depart": "DEP", "ofd": "OFD", "delivered": "POD",
                "signed": "POD", "not_home": "NDL-02", "attempt": "NDL-01", "bad_address": "NDL-05",
                "damaged": "DMG", "lost": "LST", "returning": "RTS", "export": "EXP", "import": "IMP",
                "customs": "CUS", "cleared": "CLR", "customs_hold": "CHD",
            },
            texts={
                "info": ("Shipment created, waiting for pickup",),
                "pickup": ("Shipment picked up - {site}",),
                "arrive": ("Arrived at {site}",),
                "depart": ("Departed from {site} to {next}",),
                "ofd": ("Out for delivery - {site}",),
                "delivered": ("Successfully delivered",),
                "signed": ("Successfully delivered - signed by recipient",),
                "not_home": ("Unable to deliver - consignee not available, will redeliver next business day",),
                "attempt": ("Unable to deliver - shipment returned to {site}",),
                "bad_address": ("Unable to deliver - incorrect or incomplete address",),
                "damaged": ("Shipment damaged at {site} - pending inspection",),
                "lost": ("Shipment lost - claim process initiated",),
                "returning": ("Returning shipment to sender",),
                "import": ("Arrived in destination country - {site}",),
                "customs": ("Import customs clearance in progress - {site}",),
                "cleared": ("Customs clearance completed - {site}",),
                "customs_hold": ("Held by customs - {site}: additional documents required",),
            },
        ),
    )
}
# fmt: on


@dataclass(frozen=True)
class _Network:
    """One country's parcel network: the seller's pickup area, the gateway hub and the regional hubs."""

    tz: ZoneInfo
    origin: tuple[str, str]  # (city, state) of the seller's warehouse
    gateway: tuple[str, str]
    regional_hub: dict[str, str]  # destination state -> regional hub city; absent = served from the gateway
    hub_state: dict[str, str]
    linehaul_by_air: frozenset[str]  # destination states a day further away
    airport: tuple[str, str]  # (site, "City, State") where cross-border parcels land
    destinations: tuple[tuple[str, str], ...]  # (state, city) when the caller gives none


_NETWORKS: dict[str, _Network] = {
    "MY": _Network(
        tz=ZoneInfo("Asia/Kuala_Lumpur"),
        origin=("Shah Alam", "Selangor"),
        gateway=("Bukit Raja", "Selangor"),
        regional_hub={
            "Pulau Pinang": "Batu Kawan",
            "Kedah": "Batu Kawan",
            "Perlis": "Batu Kawan",
            "Perak": "Ipoh",
            "Johor": "Senai",
            "Melaka": "Senai",
            "Pahang": "Kuantan",
            "Terengganu": "Kuantan",
            "Kelantan": "Kota Bharu",
            "Sabah": "Kota Kinabalu",
            "Sarawak": "Kuching",
        },
        hub_state={
            "Bukit Raja": "Selangor",
            "Batu Kawan": "Pulau Pinang",
            "Ipoh": "Perak",
            "Senai": "Johor",
            "Kuantan": "Pahang",
            "Kota Bharu": "Kelantan",
            "Kota Kinabalu": "Sabah",
            "Kuching": "Sarawak",
        },
        linehaul_by_air=frozenset({"Sabah", "Sarawak"}),
        airport=("KLIA Cargo", "Sepang, Selangor"),
        destinations=(
            ("Selangor", "Petaling Jaya"),
            ("Wilayah Persekutuan Kuala Lumpur", "Kuala Lumpur"),
            ("Pulau Pinang", "George Town"),
            ("Johor", "Johor Bahru"),
            ("Sabah", "Kota Kinabalu"),
        ),
    ),
    "TH": _Network(
        tz=ZoneInfo("Asia/Bangkok"),
        origin=("Lat Krabang", "Bangkok"),
        gateway=("Wang Noi", "Phra Nakhon Si Ayutthaya"),
        regional_hub={
            "Chiang Mai": "Chiang Mai",
            "Khon Kaen": "Khon Kaen",
            "Udon Thani": "Khon Kaen",
            "Nakhon Ratchasima": "Nakhon Ratchasima",
            "Songkhla": "Hat Yai",
            "Phuket": "Surat Thani",
            "Surat Thani": "Surat Thani",
        },
        hub_state={
            "Wang Noi": "Phra Nakhon Si Ayutthaya",
            "Chiang Mai": "Chiang Mai",
            "Khon Kaen": "Khon Kaen",
            "Nakhon Ratchasima": "Nakhon Ratchasima",
            "Hat Yai": "Songkhla",
            "Surat Thani": "Surat Thani",
        },
        linehaul_by_air=frozenset({"Songkhla", "Phuket"}),
        airport=("Suvarnabhumi Airport Cargo", "Bang Phli, Samut Prakan"),
        destinations=(
            ("Bangkok", "Chatuchak"),
            ("Nonthaburi", "Pak Kret"),
            ("Chiang Mai", "Mueang Chiang Mai"),
            ("Khon Kaen", "Mueang Khon Kaen"),
            ("Songkhla", "Hat Yai"),
        ),
    ),
}

# Place names as a Thai-language carrier writes them; anything missing stays in English.
_THAI_PLACES: dict[str, str] = {
    "Lat Krabang": "ลาดกระบัง",
    "Wang Noi": "วังน้อย",
    "Chiang Mai": "เชียงใหม่",
    "Khon Kaen": "ขอนแก่น",
    "Nakhon Ratchasima": "นครราชสีมา",
    "Hat Yai": "หาดใหญ่",
    "Surat Thani": "สุราษฎร์ธานี",
    "Chatuchak": "จตุจักร",
    "Bang Kapi": "บางกะปิ",
    "Huai Khwang": "ห้วยขวาง",
    "Bang Khen": "บางเขน",
    "Khlong Toei": "คลองเตย",
    "Bang Na": "บางนา",
    "Pak Kret": "ปากเกร็ด",
    "Khlong Luang": "คลองหลวง",
    "Bang Phli": "บางพลี",
    "Bang Lamung": "บางละมุง",
    "Mueang Chiang Mai": "เมืองเชียงใหม่",
    "Mueang Khon Kaen": "เมืองขอนแก่น",
    "Mueang Nakhon Ratchasima": "เมืองนครราชสีมา",
    "Mueang Phuket": "เมืองภูเก็ต",
    "Mueang Udon Thani": "เมืองอุดรธานี",
    "Mueang Surat Thani": "เมืองสุราษฎร์ธานี",
    "Suvarnabhumi Airport Cargo": "คลังสินค้าท่าอากาศยานสุวรรณภูมิ",
}

# First mile in China for cross-border parcels: (outlet, transit centre, "City, Province").
_CHINA_ORIGINS: tuple[tuple[str, str, str], ...] = (
    ("深圳宝安", "深圳", "Shenzhen, Guangdong"),
    ("深圳龙华", "深圳", "Shenzhen, Guangdong"),
    ("广州白云", "广州", "Guangzhou, Guangdong"),
    ("东莞长安", "东莞", "Dongguan, Guangdong"),
)
_CHINA_TZ = ZoneInfo("Asia/Shanghai")
_CHINA_DESTINATION_NAMES = {"MY": "吉隆坡", "TH": "曼谷"}


@dataclass(frozen=True)
class _Step:
    kind: str
    at: datetime
    site: str = ""  # the site's name as the carrier writes it in the message
    location: str = ""  # "City, State", as providers report a checkpoint's place
    next_site: str = ""
    text: str = ""  # set for first-mile scans written by the Chinese network


def _hours(value: float) -> timedelta:
    return timedelta(seconds=round(value * 3600))


def _working(
    rng: random.Random, at: datetime, tz: ZoneInfo, *, opens: float, closes: float, spread: float
) -> datetime:
    """`at` if it falls in local working hours, else a moment soon after the next opening time."""
    local = at.astimezone(tz)
    hour = local.hour + local.minute / 60
    if opens <= hour < closes:
        return at
    day = local.date() if hour < opens else local.date() + timedelta(days=1)
    opening = datetime.combine(day, time(0), tzinfo=tz) + _hours(opens + rng.uniform(0, spread))
    return opening.astimezone(UTC)


class _Route:
    """Builds the natural (unhurried) sequence of scans for one parcel."""

    def __init__(self, *, rng: random.Random, carrier: CarrierProfile, state: str, city: str) -> None:
        self.rng = rng
        self.carrier = carrier
        self.net = _NETWORKS[carrier.country]
        self.state = state
        self.city = city
        self.steps: list[_Step] = []

    def _place(self, city: str) -> str:
        return _THAI_PLACES.get(city, city) if self.carrier.language == "th" else city

    def hub(self, city: str) -> str:
        return self.carrier.hub.format(city=self._place(city))

    def station(self, city: str) -> str:
        return self.carrier.station.format(city=self._place(city))

    def add(
        self,
        kind: str,
        at: datetime,
        *,
        site: str = "",
        location: str = "",
        next_site: str = "",
        text: str = "",
    ) -> datetime:
        self.steps.append(_Step(kind, at, site=site, location=location, next_site=next_site, text=text))
        return at

    @property
    def last_site(self) -> tuple[str, str]:
        for step in reversed(self.steps):
            if step.site:
                return step.site, step.location
        return "", ""

    def domestic(self, start: datetime, *, picked_up_here: bool) -> datetime:
        """Scans from pickup (or from the airport, after customs) to arrival at the last-mile station."""
        rng, net = self.rng, self.net
        gateway_city, gateway_state = net.gateway
        gateway = self.hub(gateway_city)
        t = start
        if picked_up_here:
            origin_city, origin_state = net.origin
            t = _working(rng, t + _hours(rng.uniform(1, 6)), net.tz, opens=9, closes=19, spread=3)
            self.add("pickup", t, site=self.station(origin_city), location=f"{origin_city}, {origin_state}")
        t = self.add(
            "arrive", t + _hours(rng.uniform(2, 5)), site=gateway, location=f"{gateway_city}, {gateway_state}"
        )
        regional = net.regional_hub.get(self.state)
        station = self.station(self.city)
        next_stop = self.hub(regional) if regional else station
        t = self.add(
            "depart",
            t + _hours(rng.uniform(1.5, 6)),
            site=gateway,
            location=f"{gateway_city}, {gateway_state}",
            next_site=next_stop,
        )
        if regional:
            far = self.state in net.linehaul_by_air
            location = f"{regional}, {net.hub_state[regional]}"
            t = self.add(
                "arrive",
                t + _hours(rng.uniform(10, 20) if far else rng.uniform(4, 9)),
                site=next_stop,
                location=location,
            )
            t = self.add(
                "depart", t + _hours(rng.uniform(1, 4)), site=next_stop, location=location, next_site=station
            )
        return self.add(
            "arrive", t + _hours(rng.uniform(2, 6)), site=station, location=f"{self.city}, {self.state}"
        )

    def out_for_delivery(self, after: datetime) -> datetime:
        # Couriers load their vans in the morning; a parcel that reaches the station later waits a day.
        at = _working(
            self.rng, after + _hours(self.rng.uniform(0.5, 1.5)), self.net.tz, opens=8, closes=10.5, spread=2
        )
        return self.add("ofd", at, site=self.station(self.city), location=f"{self.city}, {self.state}")

    def doorstep(self, kind: str, ofd_at: datetime) -> datetime:
        """The courier's outcome at the door, within the same working day as the van left."""
        local = ofd_at.astimezone(self.net.tz)
        evening = datetime.combine(local.date(), time(20, 30), tzinfo=self.net.tz).astimezone(UTC)
        room = max(0.5, (evening - ofd_at).total_seconds() / 3600)
        at = ofd_at + _hours(self.rng.uniform(0.4, min(9.0, room)))
        return self.add(kind, at, site=self.station(self.city), location=f"{self.city}, {self.state}")

    def cross_border(self, start: datetime) -> datetime:
        """First mile in China, export by air, arrival and import customs in the destination country."""
        rng = self.rng
        outlet, centre, location = rng.choice(_CHINA_ORIGINS)
        destination = _CHINA_DESTINATION_NAMES[self.carrier.country]
        t = _working(rng, start + _hours(rng.uniform(1, 5)), _CHINA_TZ, opens=9, closes=19, spread=3)
        self.add("pickup", t, location=location, text=f"快件已由{outlet}网点揽收")
        t = self.add(
            "arrive", t + _hours(rng.uniform(2, 6)), location=location, text=f"快件已到达{centre}转运中心"
        )
        t = self.add(
            "depart",
            t + _hours(rng.uniform(1, 4)),
            location=location,
            text=f"快件已从{centre}转运中心发出，下一站【深圳国际件处理中心】",  # noqa: RUF001 - Chinese punctuation
        )
        t = self.add(
            "arrive",
            t + _hours(rng.uniform(2, 5)),
            location="Shenzhen, Guangdong",
            text="快件已到达深圳国际件处理中心",
        )
        t = self.add(
            "export",
            t + _hours(rng.uniform(8, 20)),
            location="Shenzhen, Guangdong",
            text=f"快件已完成出口报关，已交航空公司发往{destination}",  # noqa: RUF001 - Chinese punctuation
        )
        airport, airport_location = self.net.airport
        site = self._place(airport)
        t = self.add("import", t + _hours(rng.uniform(4, 8)), site=site, location=airport_location)
        return self.add("customs", t + _hours(rng.uniform(1, 6)), site=site, location=airport_location)

    def to_station(self, start: datetime, *, cross_border: bool) -> datetime:
        if not cross_border:
            return self.domestic(start, picked_up_here=True)
        t = self.cross_border(start)
        site, location = self.last_site
        t = self.add("cleared", t + _hours(self.rng.uniform(6, 24)), site=site, location=location)
        return self.domestic(t, picked_up_here=False)


def simulate_history(
    *,
    rng: random.Random,
    carrier: str,
    scenario: str,
    booked_at: datetime,
    now: datetime,
    destination_state: str = "",
    destination_city: str = "",
    cross_border: bool | None = None,
    horizon: datetime | None = None,
) -> list[EventData]:
    """A carrier's checkpoints for one parcel booked at `booked_at`, as seen at `now`.

    With `horizon` (later than `now`), a parcel whose story is not over also gets the scans its carrier
    makes after `now` up to `horizon` (see ONWARD and `_onward`): most in-transit parcels go on to the
    door, some stalled ones move again, some failed deliveries get a second attempt. The checkpoints up to
    `now` are the same as without it. Other scenarios have reached their final state and get nothing more.

    Guarantees: events are in strictly increasing time order, none is later than `now` (or `horizon`)
    nor earlier than `booked_at`, and (given at least SCENARIO_MIN_AGE[scenario] between the two) the
    latest one by `now` is the scenario's signature: Delivered_001/003, AttemptFail_001/002, Exception_004/007/010/012/013, a recent
    InTransit scan, an arrival scan over 12 h old (stalled), or nothing beyond InfoReceived_001. Customs holds
    are cross-border (first mile in China); other scenarios are domestic unless `cross_border` says so.
    Deterministic for a given rng state. Events carry source "simulator" and no provider key.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"Unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}.")
    if carrier not in CARRIERS:
        raise ValueError(f"Unknown carrier {carrier!r}; expected one of {', '.join(CARRIERS)}.")
    if booked_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("booked_at and now must be timezone-aware.")
    profile = CARRIERS[carrier]
    if not destination_state or not destination_city:
        destination_state, destination_city = rng.choice(_NETWORKS[profile.country].destinations)
    if cross_border is None:
        cross_border = scenario == "customs_hold"
    if now <= booked_at:
        return []

    route = _Route(rng=rng, carrier=profile, state=destination_state, city=destination_city)
    if scenario == "not_picked_up":
        # Booked, label printed, and the courier never came: at most the carrier's order acknowledgement.
        if rng.random() < 0.6:
            route.add("info", booked_at + _hours(rng.uniform(0.03, 0.4)))
        return _events(route.steps, rng=rng, carrier=profile, booked_at=booked_at, now=now)
    if rng.random() < 0.7:
        route.add("info", booked_at + _hours(rng.uniform(0.03, 0.4)))

    window = now - booked_at
    # A provider reports with a little delay.
    latest = now - min(timedelta(minutes=rng.uniform(2, 20)), window / 4)
    low, high = booked_at, latest  # where the final event must land; natural pace kept if it already does
    ahead: list[_Step] = []  # the natural route's steps not reached by `now` (in transit, stalled)
    if scenario == "customs_hold":
        t = route.cross_border(booked_at)
        site, location = route.last_site
        route.add("customs_hold", t + _hours(rng.uniform(3, 20)), site=site, location=location)
    elif scenario == "stalled":
        route.to_station(booked_at, cross_border=cross_border)
        arrivals = [i for i, step in enumerate(route.steps) if step.kind == "arrive" and step.site]
        cut = rng.choice(arrivals) + 1
        route.steps, ahead = route.steps[:cut], route.steps[cut:]
        # Stuck means the last scan is well past the 12 h progress deadline, but not days old. A parcel
        # booked too recently for that stalls as early as it can.
        stuck_for = rng.uniform(13, 20)
        hours = window.total_seconds() / 3600
        if hours >= 56 and rng.random() < 0.4:
            # Some go silent for days: no scan at all for over 48 h ("no update" on top of "stalled").
            stuck_for = rng.uniform(49, hours - 4)
        if stuck_for > hours - 2:
            stuck_for = max(13.0, hours - 2) if hours >= 15 else hours / 2
        low, high = now - timedelta(hours=max(36, stuck_for + 1)), now - timedelta(hours=stuck_for)
    elif scenario == "damaged":
        route.to_station(booked_at, cross_border=cross_border)
        arrivals = [i for i, step in enumerate(route.steps) if step.kind == "arrive" and step.site]
        route.steps = route.steps[: rng.choice(arrivals) + 1]
        site, location = route.last_site
        route.add("damaged", route.steps[-1].at + _hours(rng.uniform(0.5, 3)), site=site, location=location)
    elif scenario == "lost":
        route.to_station(booked_at, cross_border=cross_border)
        departures = [i for i, step in enumerate(route.steps) if step.kind == "depart" and step.site]
        route.steps = route.steps[: rng.choice(departures) + 1]
        site, location = route.last_site
        # The carrier declares a parcel lost only after days without a scan and an internal search.
        route.add("lost", route.steps[-1].at + _hours(rng.uniform(72, 144)), site=site, location=location)
    elif scenario == "in_transit":
        t = route.to_station(booked_at, cross_border=cross_border)
        route.out_for_delivery(t)
        recent = now - timedelta(minutes=5)
        done = [step for step in route.steps if step.at <= recent]
        first_scan = next(i for i, step in enumerate(route.steps) if step.kind != "info")
        cut = max(len(done), first_scan + 1)
        route.steps, ahead = route.steps[:cut], route.steps[cut:]
        # Still moving: the latest scan is fresh, well inside the 12 h progress deadline.
        low, high = now - timedelta(hours=min(8.0, window.total_seconds() / 3600 / 3)), latest
    else:
        t = route.to_station(booked_at, cross_border=cross_border)
        if scenario == "address_issue" and rng.random() < 0.4:
            # Caught at the station while routing, before the van ever left.
            route.add(
                "bad_address",
                t + _hours(rng.uniform(0.5, 3)),
                site=route.station(destination_city),
                location=f"{destination_city}, {destination_state}",
            )
        else:
            ofd = route.out_for_delivery(t)
            _last_mile(route, scenario, ofd)

    natural = route.steps[-1].at if route.steps else booked_at
    last_kind = route.steps[-1].kind if route.steps else ""
    events = _events(
        _fit(route.steps, booked_at=booked_at, low=low, high=high, rng=rng),
        rng=rng,
        carrier=profile,
        booked_at=booked_at,
        now=now,
    )
    if scenario in ONWARD and horizon is not None and horizon > now and events:
        # Drawn after everything above, so the history up to `now` is the same with or without a horizon.
        share, (soonest_low, soonest_high), outcomes = ONWARD[scenario]
        if rng.random() < share:
            events += _onward(
                route, ahead, natural=natural, last=events[-1].checkpoint_at, last_kind=last_kind,
                soonest=now + _hours(rng.uniform(soonest_low, soonest_high)), horizon=horizon, outcomes=outcomes,
            )  # fmt: skip
    return events


# What can still happen after `now`, per scenario not yet final: the share of parcels that move on (the
# rest stay as they are: silent, for the stalled and no-update rules), how soon their first scan comes
# (hours after now), and the courier's outcome at the door. A stalled parcel that moves again clears its
# stalled case; a failed delivery gets a second attempt on a later morning.
ONWARD: dict[str, tuple[float, tuple[float, float], dict[str, int]]] = {
    "in_transit": (0.97, (0.1, 1.5), {"delivered": 80, "signed": 13, "not_home": 7}),
    "stalled": (0.45, (1.0, 20.0), {"delivered": 80, "signed": 10, "not_home": 10}),
    "failed_delivery": (0.55, (0.5, 12.0), {"delivered": 70, "signed": 10, "not_home": 20}),
}
_FAILED_AT_THE_DOOR = frozenset({"not_home", "attempt"})


def _onward(
    route: _Route,
    ahead: list[_Step],
    *,
    natural: datetime,
    last: datetime,
    last_kind: str,
    soonest: datetime,
    horizon: datetime,
    outcomes: dict[str, int],
) -> list[EventData]:
    """A parcel's scans after `now`, the first no sooner than `soonest`, up to `horizon`.

    `ahead` are the natural route's steps not reached (after the last one shown, of kind `last_kind`, at
    natural time `natural`, shown at `last`): they follow at their natural intervals. Then the van leaves
    on a working morning (the day after a failed attempt, for a second one) and the courier's outcome at
    the door is drawn from `outcomes`.
    """
    rng = route.rng
    route.steps = []
    t, ofd_at = last, None
    for step in ahead:
        if step.kind == "ofd":
            t = ofd_at = route.out_for_delivery(max(t, soonest - timedelta(minutes=30)))
        else:
            t = route.add(
                step.kind,
                max(t + (step.at - natural), soonest),
                site=step.site,
                location=step.location,
                next_site=step.next_site,
                text=step.text,
            )
        natural = step.at
    if ofd_at is None and last_kind != "ofd":
        retry = timedelta(hours=8) if last_kind in _FAILED_AT_THE_DOOR else timedelta(0)
        ofd_at = route.out_for_delivery(max(t + retry, soonest - timedelta(minutes=30)))
    # A parcel already out for delivery (nothing ahead) gets its outcome from that van's round.
    outcome = rng.choices(list(outcomes), weights=list(outcomes.values()))[0]
    at = route.doorstep(outcome, ofd_at or last)
    if at < soonest:
        route.steps[-1] = replace(route.steps[-1], at=soonest)
    return _events(route.steps, rng=rng, carrier=route.carrier, booked_at=last, now=horizon)


def _last_mile(route: _Route, scenario: str, ofd: datetime) -> None:
    rng = route.rng
    if scenario == "delivered":
        route.doorstep(rng.choice(("delivered", "signed")), ofd)
    elif scenario == "failed_delivery":
        failed = route.doorstep("not_home", ofd)
        if rng.random() < 0.35:
            ofd = route.out_for_delivery(failed + timedelta(hours=8))
            route.doorstep(rng.choice(("not_home", "attempt")), ofd)
        else:
            route.steps[-1] = replace(route.steps[-1], kind=rng.choice(("not_home", "not_home", "attempt")))
    elif scenario == "address_issue":
        route.doorstep("bad_address", ofd)
    elif scenario == "returned_to_sender":
        failed = route.doorstep("not_home", ofd)
        ofd = route.out_for_delivery(failed + timedelta(hours=8))
        failed = route.doorstep("not_home", ofd)
        site, location = route.last_site
        route.add("returning", failed + _hours(rng.uniform(10, 30)), site=site, location=location)
    else:  # pragma: no cover - every scenario is handled by the caller or above
        raise AssertionError(scenario)


def _fit(
    steps: list[_Step], *, booked_at: datetime, low: datetime, high: datetime, rng: random.Random
) -> list[_Step]:
    """Keep the natural pace when the last step lands in [low, high]; else rescale the whole history so it does.

    The new end is drawn from the latest part of the allowed range, so a compressed history loses as little
    of its natural rhythm as it can.
    """
    if not steps:
        return steps
    if high <= booked_at:
        return []
    low = min(max(low, booked_at + timedelta(minutes=1)), high)
    last = steps[-1].at
    if low <= last <= high:
        return steps
    low = max(low, high - (high - booked_at) * 0.3)
    target = low + (high - low) * rng.random()
    factor = (target - booked_at) / (last - booked_at)
    return [replace(step, at=booked_at + (step.at - booked_at) * factor) for step in steps]


def _events(
    steps: list[_Step], *, rng: random.Random, carrier: CarrierProfile, booked_at: datetime, now: datetime
) -> list[EventData]:
    events: list[EventData] = []
    previous = booked_at.replace(microsecond=0)
    for step in steps:
        at = max(step.at.replace(microsecond=0), previous + timedelta(seconds=1))
        if at > now:
            break
        previous = at
        subtag = _KIND_SUBTAG[step.kind]
        text = step.text or rng.choice(carrier.texts[step.kind]).format(site=step.site, next=step.next_site)
        events.append(
            EventData(
                checkpoint_at=at,
                tag=subtag.split("_", 1)[0],
                subtag=subtag,
                source=SOURCE,
                raw_code=carrier.codes[step.kind],
                raw_text=text,
                location=step.location,
            )
        )
    return events


def make_tracking_number(*, rng: random.Random, carrier: str) -> str:
    """A tracking number in the carrier's own format (prefix, length, check digit where it has one)."""

    def digits(n: int) -> str:
        return "".join(rng.choices(string.digits, k=n))

    if carrier == "jtexpress-my":
        return f"63{digits(10)}"
    if carrier == "ninjavan-my":
        return f"NVMYLUMI{digits(9)}"
    if carrier == "poslaju":
        return _upu_s10(rng.choice(("ER", "EP", "EE")), digits(8), "MY")
    if carrier == "citylink":
        return f"060{digits(10)}"
    if carrier == "flash-express":
        return f"TH{digits(10)}{rng.choice(string.ascii_uppercase[:4])}"
    if carrier == "kerry-express-th":
        return f"SHP{digits(10)}"
    raise ValueError(f"Unknown carrier {carrier!r}.")


def _upu_s10(prefix: str, serial: str, country: str) -> str:
    """A UPU S10 item id (as Pos Laju uses): two letters, eight digits, a mod-11 check digit, the country."""
    total = sum(int(d) * w for d, w in zip(serial, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    check = 11 - total % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"{prefix}{serial}{check}{country}"
