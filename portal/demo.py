"""The demo shop: two beauty stores the day after a big livestream, with orders, parcels, tracking and cases.

`demo_plan` decides every row from the seed and a point in time without touching the database, so the
plan can be tested (and reasoned about) on its own. `demo_seed` writes that plan idempotently: every row
is found by its natural key (store code, username, SKU code, platform order id, tracking number, event
dedupe key) and only missing rows are created, so a second run adds nothing. Tracking comes in through the
real push path: a simulator connection per store, one signed push per new parcel.
"""

from __future__ import annotations

import random
import secrets
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from cases.choices import CaseStatus
from cases.engine import exceptions_sweep
from cases.message_defaults import default_templates_ensure
from cases.models import OPEN_CASE, Case
from cases.review import order_review_evaluate
from cases.stock import stock_evaluate
from cases.workflow import case_assign, case_transition
from portal.choices import Platform, Role
from portal.models import Membership, Store
from tracking.choices import OrderStatus, ProviderName
from tracking.ingest import deliveries_process
from tracking.models import (
    SKU,
    LiveSession,
    LiveSessionAllocation,
    Order,
    OrderLine,
    Shipment,
    SKUComponent,
    StockLevel,
    TrackingConnection,
)
from tracking.providers.base import ParsedTracking
from tracking.providers.simulator import push_body as simulator_push_body
from tracking.scheduled import scheduled_pushes_add, simulator_push_receive
from tracking.services import EventData
from tracking.simulator import CARRIERS, SCENARIO_MIN_AGE, make_tracking_number, simulate_history

DEFAULT_ORDERS = 2000
DEFAULT_SEED = 1111

LIVE_TITLE = "11.11 Mega Glow Live"
LIVE_HOST = "Nadia Rahman (@lumibeauty.my)"
LIVE_AGE = timedelta(hours=30)  # "the day after": the live started this long before the demo's now
# How far past the demo's now its parcels whose story is not over keep being scanned (tracking.scheduled):
# the demo stays alive for the days after it is seeded, parcels reaching the door or failing there.
ONWARD_HORIZON = timedelta(days=3)
DOOR_TAGS = frozenset({"Delivered", "AttemptFail"})  # the courier's outcome at the buyer's door
LIVE_LENGTH = timedelta(hours=3)
REGULAR_SPAN = timedelta(days=3)

# Share of shipped parcels per exceptional scenario; each gets at least one parcel so even a small demo
# (and the test suite) shows every queue. Everything else is delivered or moving normally.
EXCEPTION_SHARES: dict[str, float] = {
    "not_picked_up": 0.03,
    "stalled": 0.03,
    "failed_delivery": 0.02,
    "customs_hold": 0.01,
    "lost": 0.01,
    "damaged": 0.01,
    "address_issue": 0.005,
    "returned_to_sender": 0.005,
}
OVERSOLD_SHARE = 0.02  # of live-session orders: the tail of the flash deal beyond its allocation

# Case raised per scenario: (case type, base priority).
SCENARIO_CASE: dict[str, tuple[str, str]] = {
    "not_picked_up": ("pickup_overdue", "high"),
    "stalled": ("stalled_in_transit", "normal"),
    "failed_delivery": ("delivery_failed", "high"),
    "customs_hold": ("customs_hold", "normal"),
    "lost": ("lost", "urgent"),
    "damaged": ("damaged", "normal"),
    "address_issue": ("address_issue", "normal"),
    "returned_to_sender": ("returned_to_sender", "normal"),
}
_PRIORITY_BUMP = {"low": "normal", "normal": "high", "high": "urgent", "urgent": "urgent"}

# The deadlines the exception engine will apply (DESIGN.md, "Exception rules").
PICKUP_DEADLINE = timedelta(hours=24)
PROGRESS_DEADLINE = timedelta(hours=12)


@dataclass(frozen=True)
class StoreSpec:
    code: str
    name: str
    platform: str
    region: str
    currency: str
    timezone: str
    default_language: str
    ship_by: timedelta  # the platform's dispatch SLA
    carriers: tuple[tuple[str, int], ...]  # (carrier, weight)
    large_amount: Decimal  # an order worth this much gets its case bumped one priority level


TTS_MY = StoreSpec(
    code="tts-my",
    name="Lumi Beauty Official",
    platform=Platform.TIKTOK_SHOP,
    region="MY",
    currency="MYR",
    timezone="Asia/Kuala_Lumpur",
    default_language="en",
    ship_by=timedelta(hours=48),
    carriers=(("jtexpress-my", 40), ("ninjavan-my", 30), ("poslaju", 15), ("citylink", 15)),
    large_amount=Decimal("250"),
)
SHOPEE_TH = StoreSpec(
    code="shopee-th",
    name="Lumi Beauty TH",
    platform=Platform.SHOPEE,
    region="TH",
    currency="THB",
    timezone="Asia/Bangkok",
    default_language="th",
    ship_by=timedelta(hours=72),
    carriers=(("flash-express", 55), ("kerry-express-th", 45)),
    large_amount=Decimal("2000"),
)
STORES = (TTS_MY, SHOPEE_TH)
STORE_CODES = tuple(spec.code for spec in STORES)

# Only these carriers run a China first mile for this seller, so customs holds go through them.
CROSS_BORDER_CARRIERS = frozenset({"jtexpress-my", "ninjavan-my", "flash-express", "kerry-express-th"})


@dataclass(frozen=True)
class SkuSpec:
    code: str
    name: str
    price: Decimal
    live_price: Decimal | None = None  # the livestream deal price
    lots: tuple[str, ...] = ("LOT-2611A",)  # oldest first; most units come from the newest lot
    weight: int = 1  # relative popularity
    components: tuple[str, ...] = ()  # a combo pack's component SKU codes
    on_hand: int = 0
    restock_in_days: int | None = None


FLASH_DEAL_SKU = "LUMI-LIP-03"  # the RM 9.90 flash deal that sold past its allocation
BATCH_SKU = ("LUMI-VC-SER30", "LOT-2611A")  # the lot whose bottles arrive cracked

# fmt: off
SKUS: dict[str, tuple[SkuSpec, ...]] = {
    "tts-my": (
        SkuSpec("LUMI-VC-SER30", "Lumi Vitamin C Glow Serum 30ml", Decimal("89.90"), Decimal("59.90"),
                ("LOT-2609C", "LOT-2611A"), weight=15, on_hand=640),
        SkuSpec("LUMI-AMN-CLN150", "Lumi Amino Acid Gentle Cleanser 150ml", Decimal("45.90"), Decimal("32.90"),
                ("LOT-2610B",), weight=7, on_hand=880),
        SkuSpec("LUMI-UV-SPF50", "Lumi Daily UV Shield SPF50+ PA++++ 50ml", Decimal("59.90"), Decimal("42.90"),
                ("LOT-2608D", "LOT-2610A"), weight=10, on_hand=520),
        SkuSpec("LUMI-HYA-TNR200", "Lumi Hyaluronic Hydra Toner 200ml", Decimal("49.90"), Decimal("35.90"),
                ("LOT-2609A",), weight=5, on_hand=410),
        SkuSpec("LUMI-SLP-MSK5", "Lumi Overnight Sleeping Mask (5 pcs)", Decimal("39.90"), Decimal("25.90"),
                ("LOT-2607B",), weight=5, on_hand=36, restock_in_days=12),
        SkuSpec(FLASH_DEAL_SKU, "Lumi Velvet Lip Tint #03 Rosewood", Decimal("29.90"), Decimal("9.90"),
                ("LOT-2611A",), weight=30, on_hand=0, restock_in_days=6),
        SkuSpec("LUMI-CER-CRM50", "Lumi Ceramide Barrier Cream 50ml", Decimal("69.90"), Decimal("49.90"),
                ("LOT-2610C",), weight=3, on_hand=300),
        SkuSpec("LUMI-GLOW-SET", "Lumi Glow Set: Vitamin C Serum 30ml + Amino Cleanser 150ml", Decimal("119.90"),
                Decimal("79.90"), weight=25, components=("LUMI-VC-SER30", "LUMI-AMN-CLN150")),
    ),
    "shopee-th": (
        SkuSpec("LUMI-VC-SER30", "Lumi Vitamin C Glow Serum 30ml เซรั่มวิตามินซี", Decimal("690.00"),
                lots=("LOT-2609C", "LOT-2611A"), weight=14, on_hand=380),
        SkuSpec("LUMI-AMN-CLN150", "Lumi Amino Acid Gentle Cleanser 150ml โฟมล้างหน้าอะมิโน", Decimal("350.00"),
                lots=("LOT-2610B",), weight=9, on_hand=450),
        SkuSpec("LUMI-UV-SPF50", "Lumi Daily UV Shield SPF50+ PA++++ 50ml กันแดด", Decimal("459.00"),
                lots=("LOT-2610A",), weight=16, on_hand=0, restock_in_days=5),
        SkuSpec("LUMI-HYA-TNR200", "Lumi Hyaluronic Hydra Toner 200ml โทนเนอร์ไฮยาลูรอน", Decimal("390.00"),
                lots=("LOT-2609A",), weight=6, on_hand=210),
        SkuSpec(FLASH_DEAL_SKU, "Lumi Velvet Lip Tint #03 Rosewood ลิปทินท์", Decimal("229.00"),
                lots=("LOT-2611A",), weight=12, on_hand=160),
        SkuSpec("LUMI-CER-CRM50", "Lumi Ceramide Barrier Cream 50ml ครีมเซราไมด์", Decimal("529.00"),
                lots=("LOT-2610C",), weight=5, on_hand=140),
        SkuSpec("LUMI-GLOW-SET", "Lumi Glow Set เซรั่มวิตามินซี + โฟมล้างหน้า", Decimal("899.00"), weight=8,
                components=("LUMI-VC-SER30", "LUMI-AMN-CLN150")),
    ),
}

# (username, first name, last name, role in every demo store, is_staff, is_superuser)
DEMO_USERS = (
    ("agent", "Aina", "Zulkifli", Role.AGENT, False, False),
    ("supervisor", "Marcus", "Tan", Role.SUPERVISOR, True, False),
    ("admin", "Priya", "Raman", Role.ADMIN, True, True),
)

# --- buyers -------------------------------------------------------------------------------------------

_MY_MALAY_WOMEN = ("Nur Aisyah", "Siti Nurhaliza", "Nurul Izzah", "Farah Nadia", "Aina Sofea", "Nurin Balqis",
                   "Amirah", "Syafiqah", "Nur Hidayah", "Atiqah", "Husna", "Alya Maisarah", "Balqis", "Iman")
_MY_MALAY_MEN = ("Muhammad Haziq", "Ahmad Faris", "Amirul Hakim", "Muhammad Irfan", "Danial")
_MY_MALAY_FATHERS = ("Ahmad", "Rahman", "Ismail", "Hassan", "Zulkifli", "Othman", "Kamal", "Azman", "Yusof",
                     "Abdullah", "Razak", "Ibrahim", "Rosli", "Hamzah")
_MY_CHINESE_SURNAMES = ("Tan", "Lim", "Wong", "Ng", "Chong", "Lee", "Ooi", "Goh", "Teoh", "Chan", "Yap", "Khoo",
                        "Low", "Cheah", "Lau", "Foo")
_MY_CHINESE_GIVEN = ("Mei Ling", "Jia Hui", "Xin Yi", "Pei Shan", "Hui Min", "Kar Mun", "Siew Ling", "Zi Xuan",
                     "Yee Ting", "Wei Ling", "Shu Fen", "Wei Jie", "Jun Hao", "Jing Wen", "Li Ying")
_MY_INDIAN_WOMEN = ("Priya", "Kavitha", "Deepa", "Shalini", "Nisha", "Revathi", "Thivya", "Sangeetha", "Yamini")
_MY_INDIAN_MEN = ("Arun", "Vinod", "Karthik")
_MY_INDIAN_FATHERS = ("Raman", "Subramaniam", "Muthu", "Krishnan", "Ganesan", "Rajendran", "Selvam", "Maniam")

# (state, city, district, postcode, streets, weight); the Klang Valley carries most of the volume.
_KL = "Wilayah Persekutuan Kuala Lumpur"
_MY_ADDRESSES = (
    ("Selangor", "Petaling Jaya", "SS2", "47300", ("Jalan SS2/24", "Jalan SS2/55", "Jalan SS2/72"), 9),
    ("Selangor", "Shah Alam", "Seksyen 13", "40100", ("Jalan Kristal 13/9", "Persiaran Damai"), 7),
    ("Selangor", "Subang Jaya", "USJ 11", "47620", ("Jalan USJ 11/3", "Jalan USJ 11/1J"), 7),
    ("Selangor", "Puchong", "Bandar Puteri", "47100", ("Jalan Puteri 2/4", "Jalan Puteri 5/8"), 6),
    ("Selangor", "Kajang", "Taman Prima Saujana", "43000", ("Jalan Prima Saujana 2/3",), 4),
    ("Selangor", "Klang", "Bandar Botanic", "41200", ("Jalan Kasuarina 8", "Lebuh Batu Nilam 1"), 4),
    ("Selangor", "Seri Kembangan", "Taman Equine", "43300", ("Jalan Equine 1C", "Jalan Equine 9A"), 4),
    (_KL, "Kuala Lumpur", "Cheras", "56000", ("Jalan Cerdas", "Jalan Manis 4"), 7),
    (_KL, "Kuala Lumpur", "Bangsar", "59100", ("Jalan Telawi 3", "Lorong Maarof"), 4),
    (_KL, "Kuala Lumpur", "Setapak", "53300", ("Jalan Genting Kelang",), 5),
    (_KL, "Kuala Lumpur", "Kepong", "52100", ("Jalan Metro Perdana Barat 1",), 4),
    ("Pulau Pinang", "George Town", "Jelutong", "11600", ("Jalan Perak", "Lebuh Sungai Pinang 1"), 4),
    ("Pulau Pinang", "Bayan Lepas", "Bayan Baru", "11950", ("Jalan Mayang Pasir 3", "Lebuh Bukit Kecil 6"), 3),
    ("Pulau Pinang", "Butterworth", "Taman Bagan", "13400", ("Jalan Bagan Luar",), 2),
    ("Johor", "Johor Bahru", "Taman Molek", "81100", ("Jalan Molek 1/29", "Jalan Molek 2/4"), 5),
    ("Johor", "Skudai", "Taman Universiti", "81300", ("Jalan Pendidikan 5", "Jalan Kebudayaan 12"), 3),
    ("Perak", "Ipoh", "Ipoh Garden", "31400", ("Jalan Tasek", "Jalan Ipoh Garden 8"), 3),
    ("Negeri Sembilan", "Seremban", "Rasah Jaya", "70300", ("Jalan Rasah Jaya 5",), 2),
    ("Melaka", "Melaka", "Bukit Baru", "75150", ("Jalan Bukit Baru 3",), 2),
    ("Kedah", "Alor Setar", "Taman Uda", "05200", ("Jalan Sultan Badlishah",), 2),
    ("Pahang", "Kuantan", "Indera Mahkota", "25200", ("Jalan IM 3/12",), 2),
    ("Kelantan", "Kota Bharu", "Kubang Kerian", "16150", ("Jalan Raja Perempuan Zainab II",), 1),
    ("Terengganu", "Kuala Terengganu", "Chendering", "21080", ("Jalan Chendering",), 1),
    ("Sabah", "Kota Kinabalu", "Luyang", "88300", ("Jalan Lintas", "Lorong Kolam Luyang"), 2),
    ("Sarawak", "Kuching", "Tabuan Jaya", "93350", ("Jalan Wan Alwi", "Lorong Tabuan Jaya 3"), 2),
)
_MY_CONDOS = ("Residensi Harmoni", "Pangsapuri Seri Mas", "The Park Residences", "Vista Komanwel", "Sri Putramas")

# (first name in Thai, romanized) and (surname in Thai, romanized).
_TH_FIRST = (("สมหญิง", "somying"), ("กมลชนก", "kamonchanok"), ("ศิริพร", "siriporn"), ("วรรณา", "wanna"),
             ("อรทัย", "orathai"), ("พิมพ์ชนก", "pimchanok"), ("ชนิดา", "chanida"), ("สุภาวดี", "supawadee"),
             ("จิราพร", "jiraporn"), ("ภัทรา", "pattra"), ("ณัฐธิดา", "nattida"), ("ปวีณา", "paweena"),
             ("สมชาย", "somchai"), ("ณัฐวุฒิ", "nattawut"), ("ธนากร", "thanakorn"), ("กิตติพัฒน์", "kittipat"))
_TH_LAST = (("ใจดี", "jaidee"), ("ศรีสุข", "srisuk"), ("วงศ์สวัสดิ์", "wongsawat"), ("แสงทอง", "saengthong"),
            ("บุญมา", "boonma"), ("สุขสมบูรณ์", "suksomboon"), ("ทองดี", "thongdee"), ("พรหมมา", "promma"),
            ("จันทร์เพ็ญ", "chanpen"), ("รัตนพันธ์", "rattanapan"), ("เพชรรัตน์", "petcharat"),
            ("ชัยมงคล", "chaimongkol"))
# (province, district (khet / amphoe), subdistrict (khwaeng / tambon), postcode, streets, weight)
_TH_ADDRESSES = (
    ("Bangkok", "Chatuchak", "Lat Yao", "10900", ("ซอยพหลโยธิน 32 ถนนพหลโยธิน",), 6),
    ("Bangkok", "Bang Kapi", "Hua Mak", "10240", ("ซอยรามคำแหง 24 ถนนรามคำแหง",), 5),
    ("Bangkok", "Huai Khwang", "Huai Khwang", "10310", ("ถนนประชาราษฎร์บำเพ็ญ",), 4),
    ("Bangkok", "Bang Khen", "Anusawari", "10220", ("ซอยพหลโยธิน 52 ถนนพหลโยธิน",), 3),
    ("Bangkok", "Khlong Toei", "Khlong Tan", "10110", ("ซอยสุขุมวิท 26 ถนนสุขุมวิท",), 4),
    ("Bangkok", "Bang Na", "Bang Na Tai", "10260", ("ซอยบางนา-ตราด 25 ถนนบางนา-ตราด",), 3),
    ("Nonthaburi", "Pak Kret", "Bang Talat", "11120", ("ถนนแจ้งวัฒนะ",), 3),
    ("Pathum Thani", "Khlong Luang", "Khlong Nueng", "12120", ("ซอยพหลโยธิน 87 ถนนพหลโยธิน",), 2),
    ("Samut Prakan", "Bang Phli", "Bang Phli Yai", "10540", ("ถนนเทพารักษ์",), 2),
    ("Chon Buri", "Bang Lamung", "Nong Prue", "20150", ("ถนนพัทยาสาย 3",), 2),
    ("Chiang Mai", "Mueang Chiang Mai", "Suthep", "50200", ("ถนนนิมมานเหมินท์",), 3),
    ("Khon Kaen", "Mueang Khon Kaen", "Nai Mueang", "40000", ("ถนนหน้าเมือง",), 2),
    ("Nakhon Ratchasima", "Mueang Nakhon Ratchasima", "Nai Mueang", "30000", ("ถนนมิตรภาพ",), 2),
    ("Songkhla", "Hat Yai", "Hat Yai", "90110", ("ถนนนิพัทธ์อุทิศ 3",), 2),
    ("Phuket", "Mueang Phuket", "Talat Yai", "83000", ("ถนนเยาวราช",), 1),
    ("Udon Thani", "Mueang Udon Thani", "Mak Khaeng", "41000", ("ถนนโพศรี",), 1),
    ("Surat Thani", "Mueang Surat Thani", "Talat", "84000", ("ถนนตลาดใหม่",), 1),
)
# Thai shoppers buy at lunch and late in the evening; weights per local hour 0-23.
_TH_HOUR_WEIGHTS = (3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 9, 8, 6, 5, 5, 6, 7, 8, 10, 11, 10, 6)
# fmt: on


@dataclass(frozen=True)
class Buyer:
    name: str
    platform_id: str
    email: str
    phone: str
    language: str
    province: str
    city: str
    district: str
    street: str
    postal_code: str


# --- the plan -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinePlan:
    sku_code: str
    sku_name: str
    lot: str
    quantity: int
    unit_price: Decimal


@dataclass
class ShipmentPlan:
    carrier: str
    tracking_number: str
    booked_at: datetime
    scenario: str = ""
    events: list[EventData] = field(default_factory=list)
    # Checkpoints after the demo's `now` (parcels whose story is not over): sent as the carrier's pushes when due.
    onward: list[EventData] = field(default_factory=list)
    # The carrier's expected delivery date: the day the onward scans reach the door, when they do.
    expected_delivery: date | None = None


@dataclass
class CasePlan:
    type: str
    priority: str  # "normal", "high", "urgent": cases.choices.Priority by name
    summary: str
    facts: dict[str, Any]
    opened_at: datetime
    assigned_at: datetime | None = None  # the supervisor handed it to the agent
    started_at: datetime | None = None  # the agent started working it


@dataclass
class OrderPlan:
    store: StoreSpec
    platform_order_id: str
    buyer: Buyer
    placed_at: datetime
    lines: tuple[LinePlan, ...]
    live: bool
    payment_flagged: bool = False
    oversold: bool = False
    shipment: ShipmentPlan | None = None
    case: CasePlan | None = None

    @property
    def amount(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))

    @property
    def ship_by(self) -> datetime:
        return self.placed_at + self.store.ship_by

    @property
    def status(self) -> str:
        if self.shipment is None or self.shipment.scenario == "not_picked_up":
            return OrderStatus.AWAITING_SHIPMENT  # not with a carrier until the first scan
        if self.shipment.scenario == "delivered":
            return OrderStatus.DELIVERED
        return OrderStatus.SHIPPED


StockRow = tuple[int, int, date | None]  # on hand, allocated, restock ETA


@dataclass
class DemoPlan:
    seed: int
    now: datetime
    live_started_at: datetime
    live_ended_at: datetime
    orders: list[OrderPlan]
    live_allocations: dict[str, int]  # tts-my SKU code -> units set aside for the live session
    stock: dict[tuple[str, str], StockRow]  # (store code, SKU code) -> stock after the live


def demo_plan(*, orders: int, seed: int, now: datetime) -> DemoPlan:
    """Every demo row, decided from (orders, seed, now) alone: the same arguments give the same plan.

    Separate random streams per concern keep buyers, order ids and tracking numbers stable when another
    part of the generator changes.
    """
    if orders < 1:
        raise ValueError("The demo needs at least one live-session order.")
    now = now.replace(microsecond=0)
    live_started_at = now - LIVE_AGE
    live_ended_at = live_started_at + LIVE_LENGTH

    live = _live_orders(random.Random(f"{seed}:live"), count=orders, started_at=live_started_at)
    regular = _regular_orders(random.Random(f"{seed}:regular"), count=max(1, orders // 10), now=now)
    allocations = _oversell(live, orders=orders)
    plan = DemoPlan(
        seed=seed,
        now=now,
        live_started_at=live_started_at,
        live_ended_at=live_ended_at,
        orders=live + regular,
        live_allocations=allocations,
        stock={},
    )
    _plan_shipments(random.Random(f"{seed}:shipments"), plan)
    _plan_cases(random.Random(f"{seed}:cases"), plan)
    plan.stock = _stock(plan)
    return plan


def _my_buyer(rng: random.Random) -> Buyer:
    woman = rng.random() < 0.85
    group = rng.choices(("malay", "chinese", "indian"), weights=(55, 33, 12))[0]
    if group == "malay":
        given = rng.choice(_MY_MALAY_WOMEN if woman else _MY_MALAY_MEN)
        name = f"{given} {'binti' if woman else 'bin'} {rng.choice(_MY_MALAY_FATHERS)}"
        language = rng.choices(("ms", "en"), weights=(55, 45))[0]
    elif group == "chinese":
        name = f"{rng.choice(_MY_CHINESE_SURNAMES)} {rng.choice(_MY_CHINESE_GIVEN)}"
        language = rng.choices(("zh-hans", "en"), weights=(55, 45))[0]
    else:
        given = rng.choice(_MY_INDIAN_WOMEN if woman else _MY_INDIAN_MEN)
        name = f"{given} {'a/p' if woman else 'a/l'} {rng.choice(_MY_INDIAN_FATHERS)}"
        language = rng.choices(("en", "ms"), weights=(90, 10))[0]
    state, city, district, postcode, streets, _ = rng.choices(
        _MY_ADDRESSES, weights=[a[-1] for a in _MY_ADDRESSES]
    )[0]
    street = rng.choice(streets)
    if rng.random() < 0.35:
        unit = f"{rng.choice('ABCD')}-{rng.randint(2, 28)}-{rng.randint(1, 12):02d}"  # block-floor-unit
        street = f"{unit}, {rng.choice(_MY_CONDOS)}, {street}"
    else:
        street = f"No. {rng.randint(1, 120)}, {street}"
    words = [w for w in name.lower().replace("/", " ").split() if w not in {"bin", "binti", "a", "p", "l"}]
    local = f"{words[0]}{rng.choice(('.', '_', ''))}{words[-1]}{rng.choice(('', str(rng.randint(1, 99))))}"
    mobile = rng.choice(("12", "13", "16", "17", "19", "11"))
    phone = f"+60{mobile}{_digits(rng, 8 if mobile == '11' else 7)}"
    return Buyer(
        name=name,
        platform_id=f"7{_digits(rng, 18)}",
        email=f"{local}@{_email_domain(rng)}",
        phone=phone,
        language=language,
        province=state,
        city=city,
        district=district,
        street=street,
        postal_code=postcode,
    )


def _th_buyer(rng: random.Random) -> Buyer:
    (first, first_roman), (last, last_roman) = rng.choice(_TH_FIRST), rng.choice(_TH_LAST)
    name = f"{first} {last}" if rng.random() < 0.8 else f"{first_roman.title()} {last_roman.title()}"
    province, district, subdistrict, postcode, streets, _ = rng.choices(
        _TH_ADDRESSES, weights=[a[-1] for a in _TH_ADDRESSES]
    )[0]
    house = f"{rng.randint(1, 299)}/{rng.randint(1, 80)}" if rng.random() < 0.7 else str(rng.randint(1, 999))
    return Buyer(
        name=name,
        platform_id=f"{first_roman}{rng.choice(('.', '_', ''))}{last_roman[:4]}{rng.randint(1, 999)}",
        email=f"{first_roman}.{last_roman[:4]}{rng.randint(1, 99)}@{_email_domain(rng)}",
        phone=f"+66{rng.choice('689')}{_digits(rng, 8)}",
        language=rng.choices(("th", "en"), weights=(95, 5))[0],
        province=province,
        city=district,
        district=subdistrict,
        street=f"{house} {rng.choice(streets)}",
        postal_code=postcode,
    )


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.digits, k=n))


def _email_domain(rng: random.Random) -> str:
    return rng.choices(("gmail.com", "yahoo.com", "hotmail.com", "icloud.com"), weights=(70, 12, 10, 8))[0]


def _lines(rng: random.Random, store: StoreSpec, *, live: bool) -> tuple[LinePlan, ...]:
    catalogue = SKUS[store.code]
    count = 2 if rng.random() < 0.3 else 1
    chosen: list[SkuSpec] = []
    while len(chosen) < count:
        sku = rng.choices(catalogue, weights=[s.weight for s in catalogue])[0]
        if sku not in chosen:
            chosen.append(sku)
    lines = []
    for sku in chosen:
        quantity = rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
        lot = sku.lots[-1] if rng.random() < 0.75 else rng.choice(sku.lots)
        price = sku.live_price if live and sku.live_price is not None else sku.price
        lines.append(LinePlan(sku.code, sku.name, lot, quantity, price))
    return tuple(lines)


def _live_orders(rng: random.Random, *, count: int, started_at: datetime) -> list[OrderPlan]:
    orders = []
    for _ in range(count):
        if rng.random() < 0.8:
            # The burst: flash deals in the first minutes take most of the session's orders.
            minutes = 20 * rng.betavariate(1.3, 3.0)
        else:
            minutes = min(20 + rng.expovariate(1 / 45), LIVE_LENGTH.total_seconds() / 60 - 0.5)
        orders.append(
            OrderPlan(
                store=TTS_MY,
                platform_order_id="",
                buyer=_my_buyer(rng),
                placed_at=started_at + timedelta(seconds=round(minutes * 60)),
                lines=_lines(rng, TTS_MY, live=True),
                live=True,
            )
        )
    orders.sort(key=lambda o: o.placed_at)
    # TikTok Shop order ids are 18 digits and grow with time.
    next_id = 576_900_000_000_000_000 + rng.randint(10**12, 9 * 10**12)
    for order in orders:
        next_id += rng.randint(20_000, 4_000_000)
        order.platform_order_id = str(next_id)

    # A few buyers order several times to the same address during the live: order-review material.
    for _ in range(max(1, count // 400)):
        first, *repeats = rng.sample(orders, k=min(len(orders), rng.randint(3, 4)))
        for order in repeats:
            order.buyer = first.buyer
    for order in rng.sample(orders, k=min(len(orders), max(1, count // 250))):
        order.buyer = _vague(order.buyer)
    for order in rng.sample(orders, k=min(len(orders), max(1, count // 800))):
        order.payment_flagged = True
    return orders


def _vague(buyer: Buyer) -> Buyer:
    return Buyer(**{**buyer.__dict__, "district": "", "street": ""})


def _regular_orders(rng: random.Random, *, count: int, now: datetime) -> list[OrderPlan]:
    tz = ZoneInfo(SHOPEE_TH.timezone)
    today = now.astimezone(tz).date()
    orders = []
    for _ in range(count):
        day = today - timedelta(days=rng.randrange(3))
        hour = rng.choices(range(24), weights=_TH_HOUR_WEIGHTS)[0]
        placed = datetime.combine(day, time(hour), tzinfo=tz) + timedelta(seconds=rng.randrange(3600))
        if placed > now - timedelta(minutes=10):
            placed -= REGULAR_SPAN  # later today has not happened yet: the same hour three days ago
        placed = placed.astimezone(now.tzinfo)
        suffix = "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        orders.append(
            OrderPlan(
                store=SHOPEE_TH,
                # Shopee order numbers start with the local order date.
                platform_order_id=f"{placed.astimezone(tz):%y%m%d}{suffix}",
                buyer=_th_buyer(rng),
                placed_at=placed,
                lines=_lines(rng, SHOPEE_TH, live=False),
                live=False,
            )
        )
    orders.sort(key=lambda o: o.placed_at)
    for order in rng.sample(orders, k=min(len(orders), max(1, count // 60))):
        order.buyer = _vague(order.buyer)
    return orders


def _oversell(live: list[OrderPlan], *, orders: int) -> dict[str, int]:
    """Mark the flash-deal orders beyond its allocation (latest first) and return the live allocations."""
    units_sold: Counter[str] = Counter()
    for order in live:
        for line in order.lines:
            units_sold[line.sku_code] += line.quantity
    deal_orders = [o for o in live if any(line.sku_code == FLASH_DEAL_SKU for line in o.lines)]
    deal_units = [
        sum(line.quantity for line in o.lines if line.sku_code == FLASH_DEAL_SKU) for o in deal_orders
    ]
    tail = min(max(2, round(orders * OVERSOLD_SHARE)), len(deal_orders) // 2)
    running = list(accumulate(deal_units))
    allocation = running[len(running) - tail - 1] if len(running) > tail else 0
    if allocation >= 200:
        allocation -= allocation % 10  # the host announced a round number
    for order, total in zip(deal_orders, running, strict=True):
        order.oversold = total > allocation
    allocations = {}
    for spec in SKUS[TTS_MY.code]:
        if spec.code == FLASH_DEAL_SKU:
            allocations[spec.code] = allocation
        elif units_sold[spec.code]:
            # Stock set aside before the live, with headroom: only the flash deal ran out.
            headroom = units_sold[spec.code] * 1.2
            allocations[spec.code] = int(-(-headroom // 50) * 50)
    return allocations


def _age_hours(plan: DemoPlan, at: datetime) -> float:
    return (plan.now - at).total_seconds() / 3600


def _plan_shipments(rng: random.Random, plan: DemoPlan) -> None:
    """Book pickups, choose each parcel's fate and carrier, and simulate its tracking history."""
    booked: list[OrderPlan] = []
    for order in plan.orders:
        # The warehouse works through the live-session burst in waves over the following hours.
        hours = rng.uniform(1.5, 8) if order.live else rng.uniform(0.5, 5)
        booked_at = (order.placed_at + timedelta(hours=hours)).replace(microsecond=0)
        if order.oversold or booked_at > plan.now - timedelta(minutes=15):
            continue
        order.shipment = ShipmentPlan(carrier="", tracking_number="", booked_at=booked_at)
        booked.append(order)

    shuffled = booked[:]
    rng.shuffle(shuffled)
    by_min_age = sorted(EXCEPTION_SHARES, key=lambda s: (-SCENARIO_MIN_AGE[s], s))
    for scenario in by_min_age:
        count = max(1, round(len(booked) * EXCEPTION_SHARES[scenario]))
        min_age = SCENARIO_MIN_AGE[scenario]
        candidates = [
            o for o in shuffled if not o.shipment.scenario and plan.now - o.shipment.booked_at >= min_age
        ]
        if scenario == "address_issue":
            # Vague addresses are the ones couriers cannot find.
            candidates.sort(key=lambda o: bool(o.buyer.street))
        elif scenario == "damaged":
            # One leaky batch of serum bottles: complaints cluster on it (a quality_batch incident).
            candidates.sort(
                key=lambda o: (
                    not any(line.sku_code == BATCH_SKU[0] and line.lot == BATCH_SKU[1] for line in o.lines)
                )
            )
        for order in candidates[:count]:
            order.shipment.scenario = scenario
    for order in booked:
        if not order.shipment.scenario:
            # Next-day delivery is common in the Klang Valley and Bangkok; the longer ago, the likelier.
            age = _age_hours(plan, order.shipment.booked_at)
            delivered = rng.random() < min(0.9, max(0.0, (age - 10) / 30))
            order.shipment.scenario = "delivered" if delivered else "in_transit"

    used: set[str] = set()
    for order in booked:
        shipment = order.shipment
        carriers = order.store.carriers
        if shipment.scenario == "customs_hold":
            carriers = tuple(c for c in carriers if c[0] in CROSS_BORDER_CARRIERS)
        shipment.carrier = rng.choices([c for c, _ in carriers], weights=[w for _, w in carriers])[0]
        number = make_tracking_number(rng=rng, carrier=shipment.carrier)
        while number in used:
            number = make_tracking_number(rng=rng, carrier=shipment.carrier)
        used.add(number)
        shipment.tracking_number = number
        events = simulate_history(
            rng=random.Random(f"{plan.seed}:{shipment.carrier}:{number}"),
            carrier=shipment.carrier,
            scenario=shipment.scenario,
            booked_at=shipment.booked_at,
            now=plan.now,
            destination_state=order.buyer.province,
            destination_city=order.buyer.city,
            horizon=plan.now + ONWARD_HORIZON,
        )
        shipment.events = [e for e in events if e.checkpoint_at <= plan.now]
        shipment.onward = events[len(shipment.events) :]
        if shipment.onward and shipment.onward[-1].tag in DOOR_TAGS:
            door = shipment.onward[-1].checkpoint_at.astimezone(ZoneInfo(order.store.timezone))
            shipment.expected_delivery = door.date()


def _plan_cases(rng: random.Random, plan: DemoPlan) -> None:
    """The cases the exception rules would have raised by now, each at the moment its rule fired."""
    for order in plan.orders:
        if order.oversold:
            order.case = _oversold_case(rng, plan, order)
        elif order.shipment is not None and order.shipment.scenario in SCENARIO_CASE:
            order.case = _shipment_case(rng, plan, order)
    cases = [o.case for o in plan.orders if o.case is not None]
    for case in cases:
        # A few cases already picked up by the agent; most wait, unassigned, in the queues.
        if rng.random() < 0.12:
            _assign(rng, plan, case)
    if cases and not any(c.assigned_at for c in cases):
        _assign(rng, plan, min(cases, key=lambda c: c.opened_at))


def _assign(rng: random.Random, plan: DemoPlan, case: CasePlan) -> None:
    assigned_at = (case.opened_at + timedelta(minutes=rng.uniform(20, 240))).replace(microsecond=0)
    if assigned_at >= plan.now:
        return
    case.assigned_at = assigned_at
    if rng.random() < 0.5:
        started_at = (assigned_at + timedelta(minutes=rng.uniform(5, 90))).replace(microsecond=0)
        case.started_at = started_at if started_at < plan.now else None


def _priority(order: OrderPlan, base: str) -> str:
    return _PRIORITY_BUMP[base] if order.amount >= order.store.large_amount else base


def _oversold_case(rng: random.Random, plan: DemoPlan, order: OrderPlan) -> CasePlan:
    deal = next(line for line in order.lines if line.sku_code == FLASH_DEAL_SKU)
    allocation = plan.live_allocations[FLASH_DEAL_SKU]
    return CasePlan(
        type="oversold",
        priority=_priority(order, "high"),
        summary=f"{deal.sku_name} sold past its live-session allocation of {allocation} units; not shipped.",
        facts={
            "scenario": "oversold",
            "sku_code": deal.sku_code,
            "quantity": deal.quantity,
            "live_session": LIVE_TITLE,
            "allocation": allocation,
            "placed_at": order.placed_at.isoformat(),
        },
        opened_at=min(plan.now, order.placed_at + timedelta(seconds=rng.randint(30, 300))),
    )


def _shipment_case(rng: random.Random, plan: DemoPlan, order: OrderPlan) -> CasePlan:
    shipment = order.shipment
    assert shipment is not None
    case_type, base_priority = SCENARIO_CASE[shipment.scenario]
    carrier = CARRIERS[shipment.carrier].name
    number = shipment.tracking_number
    last = shipment.events[-1] if shipment.events else None
    facts: dict[str, Any] = {
        "scenario": shipment.scenario,
        "carrier": shipment.carrier,
        "tracking_number": number,
        "booked_at": shipment.booked_at.isoformat(),
        "last_event_at": last.checkpoint_at.isoformat() if last else None,
    }
    if last is not None:
        facts.update(
            subtag=last.subtag, raw_code=last.raw_code, raw_text=last.raw_text, location=last.location
        )
    sweep_delay = timedelta(seconds=rng.randint(60, 600))  # the rule sweeper runs every minute or so
    if shipment.scenario == "not_picked_up":
        deadline = shipment.booked_at + PICKUP_DEADLINE
        facts["deadline_at"] = deadline.isoformat()
        opened_at = deadline + sweep_delay
        summary = f"{carrier} has not scanned parcel {number} 24 h after pickup was booked."
    elif shipment.scenario == "stalled":
        assert last is not None
        deadline = last.checkpoint_at + PROGRESS_DEADLINE
        facts["deadline_at"] = deadline.isoformat()
        opened_at = deadline + sweep_delay
        summary = f"Parcel {number} has not moved for 12 h; last scanned at {last.location} ({carrier})."
    else:
        assert last is not None
        opened_at = last.checkpoint_at + sweep_delay
        summary = {
            "failed_delivery": f"{carrier} could not deliver parcel {number}: {last.raw_text}",
            "customs_hold": f"Parcel {number} is held by customs at {last.location} ({carrier}).",
            "lost": f"{carrier} has declared parcel {number} lost after days without a scan.",
            "damaged": f"{carrier} reports parcel {number} damaged at {last.location}.",
            "address_issue": f"{carrier} cannot deliver parcel {number}: the address is incorrect or incomplete.",
            "returned_to_sender": f"{carrier} is returning parcel {number} to the warehouse after failed deliveries.",
        }[shipment.scenario]
    return CasePlan(
        type=case_type,
        priority=_priority(order, base_priority),
        summary=summary,
        facts=facts,
        opened_at=min(plan.now, opened_at),
    )


def _stock(plan: DemoPlan) -> dict[tuple[str, str], StockRow]:
    """Stock after the live. `on_hand` is physical stock, so it still holds the units of orders not yet
    handed to a carrier; `allocated` is the part reserved for the live session's unshipped orders. A SKU
    sold out with a restock date (on_hand 0 in the catalogue) leaves its waiting regular orders short."""
    components = {(s, spec.code): spec.components for s, specs in SKUS.items() for spec in specs}
    live_demand: Counter[tuple[str, str]] = Counter()
    regular_demand: Counter[tuple[str, str]] = Counter()
    for order in plan.orders:
        if order.oversold or order.shipment is not None:
            continue
        demand = live_demand if order.live else regular_demand
        for line in order.lines:
            for code in components[(order.store.code, line.sku_code)] or (line.sku_code,):
                demand[(order.store.code, code)] += line.quantity
    today = plan.now.date()
    stock = {}
    for store_code, specs in SKUS.items():
        for spec in specs:
            if spec.components:
                continue  # a combo's stock is its components'
            key = (store_code, spec.code)
            restock = today + timedelta(days=spec.restock_in_days) if spec.restock_in_days else None
            sold_out = spec.on_hand == 0 and restock is not None
            free = 0 if sold_out else max(spec.on_hand, regular_demand[key])
            stock[key] = (live_demand[key] + free, live_demand[key], restock)
    return stock


# --- writing it ---------------------------------------------------------------------------------------


@dataclass
class SeedReport:
    seed: int
    now: datetime
    orders_requested: int
    skipped: bool = False  # --if-empty found demo orders and did nothing
    anchored: bool = False  # the existing demo's time was reused, so the plan matched what is stored
    created: Counter[str] = field(default_factory=Counter)
    cases_by_type: Counter[str] = field(default_factory=Counter)
    passwords_reset: int = 0

    @property
    def created_anything(self) -> bool:
        return any(self.created.values()) or self.passwords_reset > 0


def demo_seed(
    *,
    orders: int = DEFAULT_ORDERS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    if_empty: bool = False,
) -> SeedReport:
    """Create the demo stores, users, catalogue, live session, orders, parcels, tracking and cases.

    Idempotent: rows are matched on natural keys and only missing ones are created; tracking events and
    cases are written only for parcels and orders created by this run, so a rerun neither duplicates nor
    reopens anything an agent has resolved. When the demo live session already exists its start time
    anchors the plan instead of `now`, so a rerun regenerates exactly the stored rows. All in one
    transaction: an interrupted run leaves nothing behind.
    """
    now = now or timezone.now()
    report = SeedReport(seed=seed, now=now, orders_requested=orders)
    if if_empty and Order.objects.filter(store__code__in=STORE_CODES).exists():
        report.skipped = True
        return report
    with transaction.atomic():
        default_templates_ensure()  # before any case is raised: proactive messages need templates
        stores = {spec.code: _store_ensure(spec, report) for spec in STORES}
        live_session = LiveSession.objects.filter(store=stores[TTS_MY.code], title=LIVE_TITLE).first()
        if live_session is not None:
            now = live_session.started_at + LIVE_AGE
            report.now, report.anchored = now, True
        plan = demo_plan(orders=orders, seed=seed, now=now)
        users = _users_ensure(stores, report)
        skus = _catalogue_ensure(plan, stores, report)
        if live_session is None:
            live_session = LiveSession.objects.create(
                store=stores[TTS_MY.code],
                title=LIVE_TITLE,
                host=LIVE_HOST,
                started_at=plan.live_started_at,
                ended_at=plan.live_ended_at,
            )
            report.created["live sessions"] += 1
        for code, quantity in plan.live_allocations.items():
            _, created = LiveSessionAllocation.objects.get_or_create(
                live_session=live_session, sku=skus[(TTS_MY.code, code)], defaults={"quantity": quantity}
            )
            report.created["live allocations"] += created
        new_orders = _orders_ensure(plan, stores, skus, live_session, report)
        new_shipments = _shipments_ensure(plan, stores, new_orders, report)
        _cases_raise(plan, new_orders, new_shipments, users, report)
        _evidence_ensure(stores[TTS_MY.code], report)
    return report


def _evidence_ensure(store: Store, report: SeedReport) -> None:
    """The appeal scenarios, and on the TikTok store a no-show appeal in progress: the first pickup-overdue
    cases, two of them with a photo of the booking confirmation (the carrier chat is still missing)."""
    import io

    from cases.appeals import appeal_create, appeal_scenarios_ensure
    from cases.evidence import evidence_add
    from cases.models import AppealScenario, Evidence

    report.created["appeal scenarios"] += appeal_scenarios_ensure()
    if Evidence.objects.filter(store=store).exists():
        return
    cases = list(
        Case.objects.filter(store=store, type="pickup_overdue", shipment__booked_at__isnull=False)
        .select_related("shipment", "order", "store")
        .order_by("pk")[:3]
    )
    membership = (
        Membership.objects.filter(store=store, role=Role.AGENT).select_related("user").order_by("pk").first()
    )
    if not cases or membership is None:
        return
    for case in cases[:2]:
        parcel = case.shipment
        photo = _booking_photo(
            f"{parcel.carrier} {parcel.tracking_number}", parcel.booked_at.astimezone(store.tzinfo)
        )
        evidence_add(case=case, upload=io.BytesIO(photo), name=f"booking-{parcel.tracking_number}.jpg",
                     kind="booking_confirmation", actor=membership.user)  # fmt: skip
        report.created["evidence files"] += 1
    scenario = AppealScenario.objects.get(store__isnull=True, code="tts-late-dispatch-b")
    appeal_create(store=store, scenario=scenario, cases=cases, actor=membership.user)
    report.created["appeals"] += 1


def _booking_photo(parcel: str, booked_at: datetime) -> bytes:
    """A phone screenshot of a pickup booking, with the EXIF time a phone gives it."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (540, 320), (245, 247, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 540, 64), fill=(238, 29, 82))
    draw.text((24, 24), "Pickup booked", fill=(255, 255, 255))
    for row, text in enumerate(
        (parcel, f"Slot: {booked_at:%Y-%m-%d} 14:00-18:00", f"Booked {booked_at:%Y-%m-%d %H:%M}")
    ):
        draw.text((24, 96 + 48 * row), text, fill=(30, 30, 30))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = booked_at.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif.tobytes())
    return out.getvalue()


def _store_ensure(spec: StoreSpec, report: SeedReport) -> Store:
    store, created = Store.objects.get_or_create(
        code=spec.code,
        defaults={
            "name": spec.name,
            "platform": spec.platform,
            "region": spec.region,
            "currency": spec.currency,
            "timezone": spec.timezone,
            "default_language": spec.default_language,
        },
    )
    report.created["stores"] += created
    return store


def _users_ensure(stores: dict[str, Store], report: SeedReport) -> dict[str, AbstractBaseUser]:
    user_model = get_user_model()
    users = {}
    for username, first_name, last_name, role, is_staff, is_superuser in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@lumibeauty.example",
                "is_staff": is_staff,
                "is_superuser": is_superuser,
            },
        )
        report.created["users"] += created
        changed = []
        # Only set the password when it does not already work, so a rerun leaves sessions alone.
        if created or not user.check_password(settings.DEMO_PASSWORD):
            user.set_password(settings.DEMO_PASSWORD)
            changed.append("password")
            report.passwords_reset += not created
        for flag, wanted in (("is_staff", is_staff), ("is_superuser", is_superuser)):
            if wanted and not getattr(user, flag):
                setattr(user, flag, True)
                changed.append(flag)
        if changed:
            user.save(update_fields=changed)
        for store in stores.values():
            _, created = Membership.objects.get_or_create(user=user, store=store, defaults={"role": role})
            report.created["memberships"] += created
        users[username] = user
    return users


def _catalogue_ensure(
    plan: DemoPlan, stores: dict[str, Store], report: SeedReport
) -> dict[tuple[str, str], SKU]:
    skus: dict[tuple[str, str], SKU] = {}
    for store_code, specs in SKUS.items():
        store = stores[store_code]
        for spec in specs:
            sku, created = SKU.objects.get_or_create(
                store=store,
                code=spec.code,
                defaults={"name": spec.name, "unit_price": spec.price, "is_combo": bool(spec.components)},
            )
            report.created["SKUs"] += created
            skus[(store_code, spec.code)] = sku
        for spec in specs:
            for component in spec.components:
                _, created = SKUComponent.objects.get_or_create(
                    combo=skus[(store_code, spec.code)], component=skus[(store_code, component)]
                )
                report.created["SKU components"] += created
    for (store_code, code), (on_hand, allocated, restock_eta) in plan.stock.items():
        _, created = StockLevel.objects.get_or_create(
            sku=skus[(store_code, code)],
            defaults={"on_hand": on_hand, "allocated": allocated, "restock_eta": restock_eta},
        )
        report.created["stock levels"] += created
    return skus


def _orders_ensure(
    plan: DemoPlan,
    stores: dict[str, Store],
    skus: dict[tuple[str, str], SKU],
    live_session: LiveSession,
    report: SeedReport,
) -> dict[tuple[str, str], Order]:
    """Create the planned orders that do not exist yet; returns every planned order, old or new, by key."""
    existing = {
        (order.store.code, order.platform_order_id): order
        for order in Order.objects.filter(store__in=stores.values()).select_related("store")
    }
    new_rows = []
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if key in existing:
            continue
        buyer = planned.buyer
        new_rows.append(
            Order(
                store=stores[planned.store.code],
                platform_order_id=planned.platform_order_id,
                buyer_name=buyer.name,
                buyer_platform_id=buyer.platform_id,
                buyer_email=buyer.email,
                buyer_phone=buyer.phone,
                buyer_language=buyer.language,
                country=planned.store.region,
                province=buyer.province,
                city=buyer.city,
                district=buyer.district,
                street=buyer.street,
                postal_code=buyer.postal_code,
                placed_at=planned.placed_at,
                ship_by=planned.ship_by,
                live_session=live_session if planned.live else None,
                amount=planned.amount,
                currency=planned.store.currency,
                status=planned.status,
                payment_flagged=planned.payment_flagged,
            )
        )
    created = Order.objects.bulk_create(new_rows, batch_size=500)
    report.created["orders"] += len(created)
    new_keys = set()
    for order in created:
        key = (order.store.code, order.platform_order_id)
        existing[key] = order
        new_keys.add(key)
    lines = [
        OrderLine(
            order=existing[(planned.store.code, planned.platform_order_id)],
            sku=skus[(planned.store.code, line.sku_code)],
            sku_code=line.sku_code,
            sku_name=line.sku_name,
            lot=line.lot,
            quantity=line.quantity,
            unit_price=line.unit_price,
        )
        for planned in plan.orders
        if (planned.store.code, planned.platform_order_id) in new_keys
        for line in planned.lines
    ]
    report.created["order lines"] += len(OrderLine.objects.bulk_create(lines, batch_size=1000))
    return {key: existing[key] for key in new_keys}


def _shipments_ensure(
    plan: DemoPlan, stores: dict[str, Store], new_orders: dict[tuple[str, str], Order], report: SeedReport
) -> dict[tuple[str, str], Shipment]:
    """Create the missing parcels of new orders and ingest their tracking through the real pipeline."""
    existing = set(
        Shipment.objects.filter(store__in=stores.values()).values_list(
            "store__code", "carrier", "tracking_number"
        )
    )
    created: dict[tuple[str, str], Shipment] = {}
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        shipment = planned.shipment
        if key not in new_orders or shipment is None:
            continue
        if (planned.store.code, shipment.carrier, shipment.tracking_number) in existing:
            continue
        created[key] = Shipment(
            store=stores[planned.store.code],
            order=new_orders[key],
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            booked_at=shipment.booked_at,
            label_created_at=shipment.booked_at,
        )
    Shipment.objects.bulk_create(created.values(), batch_size=500)
    # The demo's shop has used Afterdesk all along: each parcel was known from its booking, so its
    # deadlines are judged at once (a parcel first heard of late waits for its history: cases.rules).
    for shipment in created.values():
        shipment.created_at = shipment.booked_at or shipment.created_at
    Shipment.objects.bulk_update(created.values(), ["created_at"], batch_size=500)
    report.created["shipments"] += len(created)
    _tracking_push(plan, stores, created, report)
    return created


def _tracking_push(
    plan: DemoPlan, stores: dict[str, Store], created: dict[tuple[str, str], Shipment], report: SeedReport
) -> None:
    """The new parcels' histories arrive as the carriers' pushes would: each store has a simulator tracking
    connection, and each parcel's trace is one signed push to it, stored as a raw webhook delivery and
    processed by the worker's own step (as of the demo's `now`). So the admin shows the connection, its
    counters and the raw deliveries, as in production."""
    connections = {code: _connection_ensure(store, report) for code, store in stores.items()}
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if key not in created or planned.shipment is None:
            continue
        connection = connections[planned.store.code]
        number, carrier = planned.shipment.tracking_number, planned.shipment.carrier
        body = simulator_push_body(
            [ParsedTracking(number, carrier, planned.shipment.events, planned.shipment.expected_delivery)]
        )
        simulator_push_receive(connection=connection, body=body)
        report.created["webhook deliveries"] += 1
        # What the carrier scans after the demo's now arrives later, each push when it is due.
        report.created["scheduled pushes"] += scheduled_pushes_add(
            connection=connection, trackings=[ParsedTracking(number, carrier, planned.shipment.onward)]
        )
    while True:
        result = deliveries_process(now=plan.now)
        if result.failed:
            raise RuntimeError(f"The demo's own tracking pushes failed to process: {result}")
        if not result.deliveries:
            break
        report.created["tracking events"] += result.ingest.new


def _connection_ensure(store: Store, report: SeedReport) -> TrackingConnection:
    connection, made = TrackingConnection.objects.get_or_create(
        store=store,
        provider=ProviderName.SIMULATOR,
        # Push only: the simulator's pull would invent histories of its own for the demo's parcels.
        defaults={
            "webhook_secret": secrets.token_urlsafe(24),
            "pull_enabled": False,
            "register_parcels": False,
        },
    )
    report.created["tracking connections"] += made
    return connection


def _cases_raise(
    plan: DemoPlan,
    new_orders: dict[tuple[str, str], Order],
    new_shipments: dict[tuple[str, str], Shipment],
    users: dict[str, AbstractBaseUser],
    report: SeedReport,
) -> None:
    # Parcel cases come from the exception engine itself, sweeping the freshly ingested parcels as the
    # demo's worker would; the stock side is raised here from the plan.
    swept = exceptions_sweep(now=plan.now)
    # The store-wide rules ran as the orders came in: for the live store, as the live session closed.
    for store in Store.objects.filter(pk__in={order.store_id for order in new_orders.values()}):
        at = min(plan.now, plan.live_ended_at) if store.code == TTS_MY.code else plan.now
        swept += stock_evaluate(store=store, now=at)
        swept += order_review_evaluate(store=store, now=at)
    for type, count in swept.raised_by_type.items():
        report.created["cases"] += count
        report.cases_by_type[type] += count
    batches = Case.objects.filter(type="quality_batch", opened_at__lte=plan.now).count()
    report.cases_by_type["quality_batch"] = batches
    for planned in plan.orders:
        key = (planned.store.code, planned.platform_order_id)
        if planned.case is None or key not in new_orders:
            continue
        spec = planned.case
        if spec.type == "oversold":
            case = Case.objects.filter(OPEN_CASE, order=new_orders[key], type=spec.type).first()
            if case is None:
                continue
        else:
            if key not in new_shipments:
                continue
            case = Case.objects.filter(OPEN_CASE, shipment=new_shipments[key], type=spec.type).first()
            if case is None:
                continue
        if spec.assigned_at is None:
            continue
        # The supervisor hands a few cases to the agent, who starts some: through the workspace's services.
        case_assign(case=case, assignee=users["agent"], actor=users["supervisor"], now=spec.assigned_at)
        report.created["cases assigned"] += 1
        if spec.started_at is not None:
            case_transition(
                case=case, to_status=CaseStatus.IN_PROGRESS, actor=users["agent"], now=spec.started_at
            )
            report.created["cases in progress"] += 1
