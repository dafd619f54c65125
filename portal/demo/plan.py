"""The demo shop's plan: two beauty stores the day after a big livestream, with orders, parcels, tracking and
cases, and four weeks of history behind it for the reports: everyday orders in both stores, a past live session
whose post-live review is written, cases raised, worked and resolved in the past, one lane getting worse this
week.

`demo_plan` decides every row from the seed and a point in time without touching the database, so the plan can
be tested (and reasoned about) on its own; `portal.demo.seed` writes it.
"""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_noop

from cases.choices import (
    DEFAULT_PROACTIVE_TYPES,
    CaseType,
    FaultParty,
    Resolution,
)
from cases.compensation import SUGGESTED_FAULT
from cases.policy import DEFAULTS
from cases.rules import parcel_evaluate
from cases.texts import Text
from portal.choices import Platform, Role
from tracking.choices import OrderStatus
from tracking.models import (
    Shipment,
)
from tracking.services import ACCEPTANCE_SUBTAG, PROGRESS_TAGS, EventData
from tracking.simulator import CARRIERS, SCENARIO_MIN_AGE, make_tracking_number, simulate_history

DEFAULT_ORDERS = 2000
DEFAULT_SEED = 1111
AGENT_CASE_LIMIT = Decimal("50")  # StorePolicy.agent_case_limit's default: above it a supervisor approves

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

# --- four weeks of history ---
# Regular orders come in every day of the HISTORY_DAYS before today (and today so far) in both stores, about
# REGULAR_PER_DAY a day per live-session order asked for. Those placed more than SETTLED_AFTER ago have
# finished their story by the demo's now: delivered, or their exception raised, worked and resolved in the
# past (cases with first contact, resolution, some reopened, compensation, carrier claims). The newer ones
# are still on their way and go through the exception engine like the live session's.
HISTORY_DAYS = 28
SETTLED_AFTER = REGULAR_SPAN
REGULAR_PER_DAY = 0.008
HISTORY_PUSH_BATCH = 100  # settled parcels per simulator push: their histories come as batch pushes
REGULAR_CANCELLED = 0.012  # regular orders the buyer cancelled before they shipped
# The Thai store's sunscreen ran out STOCKOUT[2] days ago (its stock is 0, a restock is due): the seller
# cancelled some of the orders for it since (STOCKOUT_CANCELLED), so its non-fulfilment rate shows them.
STOCKOUT = ("shopee-th", "LUMI-UV-SPF50", 6)
STOCKOUT_CANCELLED = 0.3
# Share of settled parcels per episode on an ordinary day: a few percent in all.
SETTLED_SHARES: dict[str, float] = {
    "late_pickup": 0.010,  # the courier came a day late: pickup_overdue, cleared by the first scan
    "stalled": 0.012,  # stuck at a hub, then moved on and was delivered
    "failed_delivery": 0.010,  # nobody home, delivered at the second attempt
    "damaged": 0.005,
    "lost": 0.003,
    "returned_to_sender": 0.002,
}
# The open exceptions of the newer regular parcels (the live session's follow EXCEPTION_SHARES).
REGULAR_OPEN_SHARES: dict[str, float] = {
    "not_picked_up": 0.008,
    "stalled": 0.012,
    "failed_delivery": 0.010,
    "damaged": 0.004,
    "address_issue": 0.003,
}
# One lane getting worse this week: Flash Express in Bangkok over the last WORSE_DAYS days (a hub short of
# riders: parcels stuck and failed at the door; its pickups from the warehouse come days late on every lane,
# past the orders' ship-by), so "getting worse week over week" has something to show on the Thai store.
WORSE_LANE = ("shopee-th", "flash-express", "Bangkok")
WORSE_DAYS = 7
WORSE_SETTLED_SHARES = {"late_pickup": 0.08, "stalled": 0.10, "failed_delivery": 0.08, "lost": 0.01}
WORSE_LATE_PICKUPS = (
    0.12  # of its parcels of the week booked long enough ago to have been picked up days late
)
WORSE_OPEN_SHARES = {"not_picked_up": 0.04, "stalled": 0.10, "failed_delivery": 0.08}
# The earliest a settled episode can be told truthfully: its parcel booked at least this long before now.
SETTLED_MIN_AGE: dict[str, timedelta] = {
    "late_pickup": timedelta(days=3),
    "stalled": timedelta(days=3),
    "failed_delivery": timedelta(days=3),
    "damaged": timedelta(days=3),
    "returned_to_sender": timedelta(days=5),
    "lost": timedelta(days=8),
}
# Settled episode -> (case type, base priority).
EPISODE_CASE: dict[str, tuple[str, str]] = {
    "late_pickup": ("pickup_overdue", "high"),
    "stalled": ("stalled_in_transit", "normal"),
    "failed_delivery": ("delivery_failed", "high"),
    "damaged": ("damaged", "normal"),
    "lost": ("lost", "urgent"),
    "returned_to_sender": ("returned_to_sender", "normal"),
}
# The episodes whose parcel ends in its trouble (the simulator's scenario); the others end delivered.
EPISODE_END = {"damaged": "damaged", "lost": "lost", "returned_to_sender": "returned_to_sender"}
REOPENED_SHARE = 0.07  # resolved cases the buyer came back on
CLAIMED_SHARE = {"lost": 0.85, "damaged": 0.6}  # carrier-fault cases claimed from the carrier

# The live session before this one: ended well over 48 h ago, so its post-live review is already written.
PAST_LIVE_TITLE = "Payday Glow Live"
PAST_LIVE_BEFORE = timedelta(days=10)  # started this long before the current live session
PAST_LIVE_SHARE = 0.2  # its orders, per order of the current live session
PAST_LIVE_DEAL_SKU = "LUMI-UV-SPF50"  # the sunscreen deal that sold past its allocation
PAST_LIVE_SWAP_SKU = "LUMI-CER-CRM50"  # what swapping buyers took instead
PAST_LIVE_RESTOCK = timedelta(days=4)  # after the session's end: buyers who waited shipped then
# Past live session's episodes: its volume strained pickups and hubs.
PAST_LIVE_SHARES: dict[str, float] = {
    "late_pickup": 0.03,
    "stalled": 0.02,
    "failed_delivery": 0.015,
    "damaged": 0.004,
    "lost": 0.004,
    "returned_to_sender": 0.003,
}
# Its damaged parcels cluster on one carrier and one SKU (glass serum bottles), on that SKU's busiest lane:
# what the review's packaging recommendation reads.
DAMAGE_CLUSTER = ("ninjavan-my", "LUMI-VC-SER30")
DAMAGE_CLUSTER_SHARE = 0.3
# How the oversold buyers chose (weights); "" is no answer (the store went with waiting after 48 h).
PAST_LIVE_CHOICES = {"wait": 40, "swap": 22, "refund": 30, "": 8}


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
    ship_from: str  # the province its parcels start from: the origin of every route in the reports
    agents: tuple[str, ...]  # the demo agents who work its cases, most of them first


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
    ship_from="Selangor",
    agents=("agent", "jun"),
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
    ship_from="Bangkok",
    agents=("pim", "agent"),
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
    ("jun", "Jun Hao", "Lim", Role.AGENT, False, False),
    ("pim", "Pimchanok", "Srisuk", Role.AGENT, False, False),
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
    episode: str = ""  # a settled parcel's trouble on the way (SETTLED_SHARES), whatever its end
    events: list[EventData] = field(default_factory=list)
    # Checkpoints after the demo's `now` (parcels whose story is not over): sent as the carrier's pushes when due.
    onward: list[EventData] = field(default_factory=list)
    # The carrier's expected delivery date: the day the onward scans reach the door, when they do.
    expected_delivery: date | None = None


@dataclass
class CompensationPlan:
    kind: str  # cases.choices.CompensationKind
    amount: Decimal
    proposed_at: datetime
    approved_at: datetime
    executed_at: datetime
    proposer: str | None  # a demo username; None: the system (the automatic small-damage coupon)
    approver: str | None
    origin: str = "agent"
    sku_code: str = ""  # swapped to
    replaces_parcel: bool = False  # a reship of the case's parcel


@dataclass
class ClaimPlan:
    amount: Decimal
    created_at: datetime
    submitted_at: datetime
    status: str  # cases.choices.ClaimStatus
    decided_at: datetime | None = None
    paid_at: datetime | None = None
    recovered: Decimal = Decimal("0")


@dataclass
class Outcome:
    """How a case of the history went, from the rule firing to its resolution, all before the demo's now."""

    resolution: str  # cases.choices.Resolution
    resolved_at: datetime
    resolved_by: str | None  # a demo username; None: the condition cleared by itself (CONDITION_CLEARED)
    # When the carrier's scans took the problem away (on a case an agent had taken over too).
    cleared_at: datetime | None = None
    assignee: str | None = None
    assigned_at: datetime | None = None
    started_at: datetime | None = None
    contact_at: datetime | None = None
    contact_by: str | None = None  # None: the rule's own proactive message
    checkpoint: str = ""  # the parcel's latest checkpoint when the buyer was contacted
    complaint_at: datetime | None = None
    complaint_category: str = ""
    choice: str = ""  # what an oversold buyer chose
    choice_at: datetime | None = None
    reopened_at: datetime | None = None
    first_resolved_at: datetime | None = None  # the resolution before the reopening
    fault: str = "unknown"
    compensations: list[CompensationPlan] = field(default_factory=list)
    claim: ClaimPlan | None = None


@dataclass
class CasePlan:
    type: str
    priority: str  # "normal", "high", "urgent": cases.choices.Priority by name
    summary: str | Text
    facts: dict[str, Any]
    opened_at: datetime
    assigned_at: datetime | None = None  # the supervisor handed it to the agent
    started_at: datetime | None = None  # the agent started working it
    outcome: Outcome | None = None  # history: raised, worked and resolved before the demo's now


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
    past_live: bool = False  # an order of the past live session (PAST_LIVE_TITLE)
    settled: bool = False  # its story ended before the demo's now: history, written as it happened
    cancelled: bool = False  # cancelled before it shipped (by the buyer, or refunded when oversold)

    @property
    def amount(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))

    @property
    def ship_by(self) -> datetime:
        return self.placed_at + self.store.ship_by

    @property
    def status(self) -> str:
        if self.cancelled:
            return OrderStatus.CANCELLED
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
    past_started_at: datetime | None = None  # the past live session (PAST_LIVE_TITLE)
    past_ended_at: datetime | None = None
    past_allocations: dict[str, int] = field(default_factory=dict)

    @property
    def settled_cases(self) -> list[CasePlan]:
        return [o.case for o in self.orders if o.case is not None and o.case.outcome is not None]


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
    past_started_at = live_started_at - PAST_LIVE_BEFORE

    live = _live_orders(random.Random(f"{seed}:live"), count=orders, started_at=live_started_at)
    per_day = max(2, round(orders * REGULAR_PER_DAY))
    regular = [
        order
        for spec in STORES
        for order in _regular_orders(
            random.Random(f"{seed}:regular:{spec.code}"), store=spec, per_day=per_day, now=now,
            # The live store's rules ran as the session closed: what it sold out of is off sale since.
            sold_out_from=live_started_at if spec is TTS_MY else None,
        )
    ]  # fmt: skip
    past = _past_live_orders(
        random.Random(f"{seed}:past-live"), count=max(12, round(orders * PAST_LIVE_SHARE)), started_at=past_started_at
    )  # fmt: skip
    allocations = _oversell(live, orders=orders, sku_code=FLASH_DEAL_SKU)
    past_allocations = _oversell(past, orders=len(past), sku_code=PAST_LIVE_DEAL_SKU)
    for order in regular:
        order.settled = order.placed_at < now - SETTLED_AFTER
    plan = DemoPlan(
        seed=seed,
        now=now,
        live_started_at=live_started_at,
        live_ended_at=live_ended_at,
        orders=sorted(past + regular + live, key=lambda o: o.placed_at),
        live_allocations=allocations,
        stock={},
        past_started_at=past_started_at,
        past_ended_at=past_started_at + LIVE_LENGTH,
        past_allocations=past_allocations,
    )
    used = _plan_shipments(random.Random(f"{seed}:shipments"), plan)
    _plan_cases(random.Random(f"{seed}:cases"), plan)
    _plan_history(random.Random(f"{seed}:history"), plan, used=used)
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


def _lines(
    rng: random.Random, store: StoreSpec, *, live: bool, sold_out: bool = False
) -> tuple[LinePlan, ...]:
    catalogue = SKUS[store.code]
    if sold_out:
        # The platform stops selling a SKU whose stock is gone: no new regular order can have it.
        catalogue = tuple(s for s in catalogue if s.components or s.on_hand or s.restock_in_days is None)
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


def _regular_orders(
    rng: random.Random, *, store: StoreSpec, per_day: int, now: datetime, sold_out_from: datetime | None
) -> list[OrderPlan]:
    """A store's everyday orders: every one of the HISTORY_DAYS local days before today, and today so far,
    more at weekends, at the hours its shoppers buy. After `sold_out_from` (the current live session) the
    SKUs it sold out of are no longer on sale."""
    tz = ZoneInfo(store.timezone)
    today = now.astimezone(tz).date()
    buyer = _my_buyer if store.region == "MY" else _th_buyer
    orders: list[OrderPlan] = []
    ids: set[str] = set()
    for back in range(HISTORY_DAYS, -1, -1):
        day = today - timedelta(days=back)
        mean = per_day * (1.3 if day.weekday() >= 5 else 1.0)
        for _ in range(max(1, round(rng.gauss(mean, mean * 0.2)))):
            hour = rng.choices(range(24), weights=_TH_HOUR_WEIGHTS)[0]
            placed = datetime.combine(day, time(hour), tzinfo=tz) + timedelta(seconds=rng.randrange(3600))
            if placed > now - timedelta(minutes=10):
                continue  # later today has not happened yet
            placed = placed.astimezone(now.tzinfo)
            while True:
                if store.platform == Platform.SHOPEE:
                    # Shopee order numbers start with the local order date.
                    suffix = "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
                    order_id = f"{placed.astimezone(tz):%y%m%d}{suffix}"
                else:
                    order_id = _tiktok_order_id(rng, placed)
                if order_id not in ids:
                    break
            ids.add(order_id)
            orders.append(
                OrderPlan(
                    store=store,
                    platform_order_id=order_id,
                    buyer=buyer(rng),
                    placed_at=placed,
                    lines=_lines(
                        rng, store, live=False, sold_out=bool(sold_out_from and placed >= sold_out_from)
                    ),
                    live=False,
                )
            )
    orders.sort(key=lambda o: o.placed_at)
    for order in rng.sample(orders, k=min(len(orders), max(1, len(orders) // 60))):
        order.buyer = _vague(order.buyer)
    return orders


def _tiktok_order_id(rng: random.Random, placed: datetime) -> str:
    """18 digits that grow with time, as TikTok Shop's do (its live-session burst has its own range)."""
    return f"57{int(placed.timestamp()):010d}{rng.randrange(10**6):06d}"


def _past_live_orders(rng: random.Random, *, count: int, started_at: datetime) -> list[OrderPlan]:
    """The past live session's orders: a burst like the current one's, its story long over."""
    orders = _live_orders(rng, count=count, started_at=started_at)
    ids: set[str] = set()
    for order in orders:
        order.live, order.past_live, order.settled = False, True, True
        order.platform_order_id = _tiktok_order_id(rng, order.placed_at)
        while order.platform_order_id in ids:
            order.platform_order_id = _tiktok_order_id(rng, order.placed_at)
        ids.add(order.platform_order_id)
    return orders


def _oversell(live: list[OrderPlan], *, orders: int, sku_code: str) -> dict[str, int]:
    """Mark the deal's orders beyond its allocation (latest first) and return the session's allocations."""
    units_sold: Counter[str] = Counter()
    for order in live:
        for line in order.lines:
            units_sold[line.sku_code] += line.quantity
    deal_orders = [o for o in live if any(line.sku_code == sku_code for line in o.lines)]
    deal_units = [sum(line.quantity for line in o.lines if line.sku_code == sku_code) for o in deal_orders]
    tail = min(max(2, round(orders * OVERSOLD_SHARE)), len(deal_orders) // 2)
    running = list(accumulate(deal_units))
    allocation = running[len(running) - tail - 1] if len(running) > tail else 0
    if allocation >= 200:
        allocation -= allocation % 10  # the host announced a round number
    for order, total in zip(deal_orders, running, strict=True):
        order.oversold = total > allocation
    allocations = {}
    for spec in SKUS[TTS_MY.code]:
        if spec.code == sku_code:
            allocations[spec.code] = allocation
        elif units_sold[spec.code]:
            # Stock set aside before the live, with headroom: only the deal ran out.
            headroom = units_sold[spec.code] * 1.2
            allocations[spec.code] = int(-(-headroom // 50) * 50)
    return allocations


def _age_hours(plan: DemoPlan, at: datetime) -> float:
    return (plan.now - at).total_seconds() / 3600


def _plan_shipments(rng: random.Random, plan: DemoPlan) -> set[str]:
    """Book the pickups of the orders whose story is still going (the live session's, the last days' regular
    ones), choose each parcel's carrier and fate, and simulate its tracking history. Returns the tracking
    numbers used."""
    booked: list[OrderPlan] = []
    for order in plan.orders:
        if order.settled:
            continue
        # The warehouse works through the live-session burst in waves over the following hours.
        hours = rng.uniform(1.5, 8) if order.live else rng.uniform(0.5, 5)
        booked_at = (order.placed_at + timedelta(hours=hours)).replace(microsecond=0)
        if order.oversold or booked_at > plan.now - timedelta(minutes=15):
            continue
        order.shipment = ShipmentPlan(carrier="", tracking_number="", booked_at=booked_at)
        booked.append(order)
    for order in booked:
        order.shipment.carrier = _carrier(rng, order.store)

    # The live session's exceptions: a share of its parcels per scenario, at least one each so even a small
    # demo fills every queue (the last days' regular parcels make up for a live session too small).
    live_parcels = sum(1 for o in booked if o.live)
    shuffled = booked[:]
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda o: not o.live)
    by_min_age = sorted(EXCEPTION_SHARES, key=lambda s: (-SCENARIO_MIN_AGE[s], s))
    for scenario in by_min_age:
        count = max(1, round(live_parcels * EXCEPTION_SHARES[scenario]))
        min_age = SCENARIO_MIN_AGE[scenario]
        candidates = [
            o for o in shuffled if not o.shipment.scenario and plan.now - o.shipment.booked_at >= min_age
        ]
        if scenario == "customs_hold":
            # Only the carriers with a China first mile hold parcels at customs.
            candidates = [o for o in candidates if o.shipment.carrier in CROSS_BORDER_CARRIERS]
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
    # The last days' regular parcels: their usual few exceptions, more on the lane getting worse.
    for order in booked:
        if order.live or order.shipment.scenario:
            continue
        scenario = _draw(rng, _shares(plan, order, usual=REGULAR_OPEN_SHARES, worse=WORSE_OPEN_SHARES))
        if scenario and plan.now - order.shipment.booked_at >= SCENARIO_MIN_AGE[scenario]:
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
        shipment.tracking_number = _tracking_number(rng, shipment.carrier, used)
        events = simulate_history(
            rng=random.Random(f"{plan.seed}:{shipment.carrier}:{shipment.tracking_number}"),
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
    return used


def _carrier(rng: random.Random, store: StoreSpec) -> str:
    return rng.choices([c for c, _ in store.carriers], weights=[w for _, w in store.carriers])[0]


def _tracking_number(rng: random.Random, carrier: str, used: set[str]) -> str:
    number = make_tracking_number(rng=rng, carrier=carrier)
    while number in used:
        number = make_tracking_number(rng=rng, carrier=carrier)
    used.add(number)
    return number


def _draw(rng: random.Random, shares: dict[str, float]) -> str:
    """One scenario drawn by its share (one draw whatever the shares), or "" for none."""
    roll = rng.random()
    for scenario, share in shares.items():
        if roll < share:
            return scenario
        roll -= share
    return ""


def _on_worse_lane(plan: DemoPlan, order: OrderPlan) -> bool:
    return _worse_pickup(plan, order) and order.buyer.province == WORSE_LANE[2]


def _worse_pickup(plan: DemoPlan, order: OrderPlan) -> bool:
    """The carrier getting worse picks up from the store's warehouse late this week, whatever the lane."""
    store, carrier, _province = WORSE_LANE
    return (
        order.store.code == store
        and order.shipment is not None
        and order.shipment.carrier == carrier
        and order.placed_at >= plan.now - timedelta(days=WORSE_DAYS)
    )


def _shares(
    plan: DemoPlan, order: OrderPlan, *, usual: dict[str, float], worse: dict[str, float]
) -> dict[str, float]:
    """An order's episode shares: `worse` on the lane getting worse, the usual ones elsewhere (with the worse
    pickups for its carrier's other parcels of the week)."""
    if _on_worse_lane(plan, order):
        return worse
    if _worse_pickup(plan, order):
        pickup = next(k for k in worse if k in ("late_pickup", "not_picked_up"))
        return {**usual, pickup: worse[pickup]}
    return usual


def _plan_cases(rng: random.Random, plan: DemoPlan) -> None:
    """The cases the exception rules would have raised by now, each at the moment its rule fired (the
    orders whose story is still going; the history's are planned by `_plan_history`)."""
    for order in plan.orders:
        if order.settled:
            continue
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
        if order.oversold or order.shipment is not None or order.settled or order.cancelled:
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


# --- the history --------------------------------------------------------------------------------------


def _plan_history(rng: random.Random, plan: DemoPlan, *, used: set[str]) -> None:
    """The settled orders (regular ones placed more than SETTLED_AFTER ago, the past live session's): a few
    cancelled before they shipped, every other one shipped and its parcel's story told to its end before the
    demo's now, with the case its trouble raised and how that case was worked and resolved."""
    restock = (plan.past_ended_at or plan.now) + PAST_LIVE_RESTOCK
    oversold = [o for o in plan.orders if o.settled and o.oversold]
    choices = dict(
        zip((o.platform_order_id for o in oversold), _buyer_choices(rng, len(oversold)), strict=True)
    )
    shipped: list[OrderPlan] = []
    for order in plan.orders:
        if not order.settled:
            continue
        if order.oversold:
            booked_at = _plan_oversold_history(
                rng, plan, order, restock=restock, choice=choices[order.platform_order_id]
            )
        elif not order.past_live and _cancelled(rng, plan, order):
            order.cancelled = True
            continue
        else:
            hours = rng.uniform(1.5, 8) if order.past_live else rng.uniform(0.5, 5)
            booked_at = (order.placed_at + timedelta(hours=hours)).replace(microsecond=0)
        if booked_at is not None:
            order.shipment = ShipmentPlan(
                carrier=_carrier(rng, order.store), tracking_number="", booked_at=booked_at
            )
            shipped.append(order)
    _damage_cluster(rng, plan, [o for o in shipped if o.past_live and not o.oversold])
    # The carrier getting worse left parcels at the warehouse for days this week: shipped past their ship-by.
    slow = [
        o for o in shipped
        if not o.past_live and _worse_pickup(plan, o) and plan.now - o.shipment.booked_at >= timedelta(hours=100)
    ]  # fmt: skip
    for order in rng.sample(slow, k=min(len(slow), max(1, round(len(slow) * WORSE_LATE_PICKUPS)))):
        order.shipment.episode = "late_pickup"
    for order in shipped:
        shipment = order.shipment
        if shipment.episode or order.oversold:
            continue
        if order.past_live:
            shares = PAST_LIVE_SHARES
        else:
            shares = _shares(plan, order, usual=SETTLED_SHARES, worse=WORSE_SETTLED_SHARES)
        episode = _draw(rng, shares)
        if episode and plan.now - shipment.booked_at >= SETTLED_MIN_AGE[episode]:
            shipment.episode = episode
    # Each kind of trouble at least once in the everyday history, so even a small demo has every case type.
    drawn = Counter(o.shipment.episode for o in shipped)
    spare = [o for o in shipped if not o.shipment.episode and not o.oversold and not o.past_live]
    rng.shuffle(spare)
    for episode in SETTLED_SHARES:
        eligible = (
            o
            for o in spare
            if not o.shipment.episode and plan.now - o.shipment.booked_at >= SETTLED_MIN_AGE[episode]
        )
        order = next(eligible, None) if not drawn[episode] else None
        if order is not None:
            order.shipment.episode = episode
    for order in shipped:
        shipment = order.shipment
        shipment.tracking_number = _tracking_number(rng, shipment.carrier, used)
        trouble = _settled_tracking(plan, order)
        if trouble is not None:
            order.case = _settled_case(rng, plan, order, trouble_at=trouble[0], cleared_at=trouble[1])


def _cancelled(rng: random.Random, plan: DemoPlan, order: OrderPlan) -> bool:
    """A regular order cancelled before it shipped: now and then by the buyer, and often by the seller for
    the SKU that ran out (on the Thai store: its non-fulfilment rate climbs)."""
    store, sku, days = STOCKOUT
    if (
        order.store.code == store
        and order.placed_at >= plan.now - timedelta(days=days)
        and any(line.sku_code == sku for line in order.lines)
    ):
        return rng.random() < STOCKOUT_CANCELLED
    return rng.random() < REGULAR_CANCELLED


def _buyer_choices(rng: random.Random, count: int) -> list[str]:
    """How `count` oversold buyers chose: PAST_LIVE_CHOICES's shares, rounded, in a random order."""
    total = sum(PAST_LIVE_CHOICES.values())
    picks = [
        choice for choice, weight in PAST_LIVE_CHOICES.items() for _ in range(round(count * weight / total))
    ]
    while len(picks) < count:
        picks.append(rng.choices(list(PAST_LIVE_CHOICES), weights=list(PAST_LIVE_CHOICES.values()))[0])
    picks = picks[:count]
    rng.shuffle(picks)
    return picks


def _damage_cluster(rng: random.Random, plan: DemoPlan, parcels: list[OrderPlan]) -> None:
    """The past live session's cracked serum bottles: DAMAGE_CLUSTER_SHARE of one carrier's parcels with the
    SKU on the SKU's busiest lane with that carrier (at least three, when there are three)."""
    carrier, sku = DAMAGE_CLUSTER
    lane = [
        o for o in parcels
        if o.shipment.carrier == carrier and any(line.sku_code == sku for line in o.lines)
        and plan.now - o.shipment.booked_at >= SETTLED_MIN_AGE["damaged"]
    ]  # fmt: skip
    if not lane:
        return
    destinations = Counter(o.buyer.province for o in lane)
    busiest = max(destinations, key=lambda d: (destinations[d], d))
    on_lane = [o for o in lane if o.buyer.province == busiest]
    count = max(min(3, len(on_lane)), round(len(on_lane) * DAMAGE_CLUSTER_SHARE))
    for order in rng.sample(on_lane, k=count):
        order.shipment.episode = "damaged"


def _settled_tracking(plan: DemoPlan, order: OrderPlan) -> tuple[datetime, datetime | None] | None:
    """A settled parcel's whole history, every scan before the demo's now. Returns when its trouble began
    (the deadline that passed, or the carrier's report) and when the scans took the trouble away (None: its
    last state is the trouble itself), or None for a parcel that had none."""
    shipment, episode = order.shipment, order.shipment.episode
    base = f"{plan.seed}:{shipment.carrier}:{shipment.tracking_number}"
    common = {
        "carrier": shipment.carrier,
        "destination_state": order.buyer.province,
        "destination_city": order.buyer.city,
    }
    if episode in ("stalled", "failed_delivery"):
        # Seen stuck (or failed at the door) at `cut`, then moving again and delivered: drawn until it is.
        end = plan.now - timedelta(hours=12)
        for attempt in range(12):
            r = random.Random(f"{base}:{attempt}")
            cut = shipment.booked_at + timedelta(
                hours=r.uniform(28, 48) if episode == "stalled" else r.uniform(20, 40)
            )
            if cut >= end:
                break
            events = simulate_history(
                rng=r, scenario=episode, booked_at=shipment.booked_at, now=cut, horizon=min(cut + timedelta(days=4), end),
                **common,
            )  # fmt: skip
            seen = [e for e in events if e.checkpoint_at <= cut]
            if not seen or len(seen) == len(events) or events[-1].tag != "Delivered":
                continue
            if episode == "stalled":
                progress = [e.checkpoint_at for e in seen if e.tag in PROGRESS_TAGS]
                trouble = progress[-1] + PROGRESS_DEADLINE if progress else None
            else:
                failed = [e.checkpoint_at for e in seen if e.tag == "AttemptFail"]
                trouble = failed[-1] if failed else None
            cleared = events[len(seen)].checkpoint_at
            if trouble is None or trouble + timedelta(minutes=15) >= cleared:
                continue
            shipment.events, shipment.scenario = events, "delivered"
            return trouble, cleared
        shipment.episode = episode = ""  # it never came right in time: an ordinary delivery instead
    r = random.Random(base)
    if episode in EPISODE_END:
        # Its last scan is the trouble; the store had at least two days to settle it.
        window = {"damaged": 3, "returned_to_sender": 5, "lost": 9}[episode]
        now = min(shipment.booked_at + timedelta(days=window), plan.now - timedelta(days=2))
        shipment.events = simulate_history(
            rng=r, scenario=episode, booked_at=shipment.booked_at, now=now, **common
        )
        shipment.scenario = EPISODE_END[episode]
        if not shipment.events or shipment.events[-1].tag != "Exception":
            shipment.episode = ""
            return None
        return shipment.events[-1].checkpoint_at, None
    start = shipment.booked_at
    if episode == "late_pickup":
        # The courier came the next day or the day after; on the lane getting worse, days late (past the
        # order's ship-by: a late shipment). Either way long enough ago for the parcel to be delivered since.
        late = timedelta(hours=r.uniform(60, 90) if _worse_pickup(plan, order) else r.uniform(26, 44))
        late = min(late, plan.now - timedelta(hours=36) - start)
        if late > PICKUP_DEADLINE + timedelta(hours=1):
            start += late
        else:
            shipment.episode = episode = ""
    now = min(start + timedelta(days=5), plan.now - timedelta(hours=6))
    shipment.events = simulate_history(rng=r, scenario="delivered", booked_at=start, now=now, **common)
    shipment.scenario = "delivered"
    if episode != "late_pickup":
        return None
    scans = [e.checkpoint_at for e in shipment.events if e.tag in PROGRESS_TAGS]
    deadline = shipment.booked_at + PICKUP_DEADLINE
    if not scans or scans[0] <= deadline + timedelta(minutes=15):
        shipment.episode = ""
        return None
    return deadline, scans[0]


def _rule_finding(order: OrderPlan, seen: list[EventData], *, at: datetime, case_type: str):
    """What the exception rules said about the parcel at `at`, from the scans seen by then: the summary and
    facts the engine would have written on the case (cases.rules.parcel_evaluate on the parcel as it stood)."""
    shipment = order.shipment
    progress = [e.checkpoint_at for e in seen if e.tag in PROGRESS_TAGS]
    accepted = next(
        (e.checkpoint_at for e in seen if e.subtag == ACCEPTANCE_SUBTAG), progress[0] if progress else None
    )
    last = seen[-1] if seen else None
    parcel = Shipment(
        carrier=shipment.carrier, tracking_number=shipment.tracking_number, booked_at=shipment.booked_at,
        created_at=shipment.booked_at, status=last.tag if last else "Pending",
        substatus=last.subtag if last else "Pending_001", last_event_at=last.checkpoint_at if last else None,
        last_progress_at=progress[-1] if progress else None, accepted_at=accepted,
    )  # fmt: skip
    parcel.latest_text = last.raw_text if last else ""
    parcel.latest_location = last.location if last else ""
    return parcel_evaluate(parcel, thresholds=DEFAULTS, now=at).findings.get(CaseType(case_type))


def _checkpoint(order: OrderPlan, at: datetime) -> str:
    """The parcel's latest checkpoint at `at`, as a message to the buyer quotes it."""
    seen = [e for e in order.shipment.events if e.checkpoint_at <= at] if order.shipment else []
    if not seen:
        return ""
    event = seen[-1]
    text = (event.raw_text or event.subtag).strip()
    if event.location and event.location not in text:
        text = f"{text}, {event.location}"
    return f"{event.checkpoint_at.astimezone(ZoneInfo(order.store.timezone)):%Y-%m-%d %H:%M} {text}"


def _settled_case(
    rng: random.Random, plan: DemoPlan, order: OrderPlan, *, trouble_at: datetime, cleared_at: datetime | None
) -> CasePlan:
    """The case the parcel's trouble raised, as the rule sweeper raised it within minutes, and how it went."""
    shipment = order.shipment
    case_type, base_priority = EPISODE_CASE[shipment.episode]
    at = trouble_at + timedelta(seconds=rng.randint(60, 600))  # the rule sweeper runs every minute or so
    finding = _rule_finding(
        order, [e for e in shipment.events if e.checkpoint_at <= at], at=at, case_type=case_type
    )
    if finding is not None:
        summary, facts, opened_at = finding.summary, dict(finding.facts), min(finding.since, at)
    else:  # pragma: no cover - the episodes are drawn so that the rule fires
        summary, facts, opened_at = f"{case_type} on parcel {shipment.tracking_number}", {}, trouble_at
    case = CasePlan(
        type=case_type,
        priority=_priority(order, base_priority),
        summary=summary,
        facts=facts,
        opened_at=opened_at,
    )
    cleared = cleared_at + timedelta(seconds=rng.randint(30, 300)) if cleared_at else None
    case.outcome = _outcome(rng, plan, order, case, cleared_at=cleared)
    return case


COMPLAINT_CATEGORY = {
    "pickup_overdue": "other", "stalled_in_transit": "not_received", "delivery_failed": "other",
    "damaged": "damaged", "lost": "not_received", "returned_to_sender": "not_received", "oversold": "other",
}  # fmt: skip


def _outcome(
    rng: random.Random, plan: DemoPlan, order: OrderPlan, case: CasePlan, *, cleared_at: datetime | None
) -> Outcome:
    """How the store worked a parcel case: who took it, when the buyer first heard (at once for the types the
    store contacts proactively), what the buyer wrote, what it cost, how it was resolved, and whether the
    buyer came back on it. Every time before the demo's now."""
    limit = plan.now - timedelta(minutes=20)
    opened = case.opened_at
    agent = rng.choices(order.store.agents, weights=(65, 35))[0]
    clears = cleared_at is not None  # the carrier's scans took the problem away (pickup, stall, failed door)
    out = Outcome(
        resolution="", resolved_at=opened, resolved_by=None, cleared_at=cleared_at,
        fault=SUGGESTED_FAULT.get(case.type, FaultParty.UNKNOWN),
    )  # fmt: skip
    # A case the carrier's scans will clear is often left to do so; any other is an agent's to work.
    if not clears or rng.random() < 0.45:
        assigned = opened + timedelta(minutes=rng.uniform(10, 180))
        if cleared_at is None or assigned + timedelta(minutes=65) < cleared_at:
            out.assignee, out.assigned_at = agent, assigned
            out.started_at = assigned + timedelta(minutes=rng.uniform(5, 60))
    if case.type in DEFAULT_PROACTIVE_TYPES:
        out.contact_at = opened + timedelta(seconds=rng.randint(40, 200))  # the rule's own message
    else:
        hours = min(60.0, rng.lognormvariate(math.log(2.5), 0.9))  # mostly within hours, now and then a day
        contact = (out.started_at or opened) + timedelta(hours=hours)
        if cleared_at is None or contact < cleared_at:
            out.contact_at, out.contact_by = contact, out.assignee or agent
    if out.contact_at is not None:
        out.checkpoint = _checkpoint(order, out.contact_at)
        if out.contact_by is not None and rng.random() < 0.35:
            # The buyer wrote before the store did: "where is my order?"
            out.complaint_at = opened + (out.contact_at - opened) * rng.uniform(0.2, 0.9)
        elif rng.random() < 0.12:
            out.complaint_at = out.contact_at + timedelta(hours=rng.uniform(0.5, 10))  # chasing after it
        if out.complaint_at is not None:
            out.complaint_category = COMPLAINT_CATEGORY.get(case.type, "other")
    if cleared_at is not None:
        if out.started_at is None:
            out.resolution, out.resolved_at = Resolution.CONDITION_CLEARED, cleared_at
        else:  # flagged for its agent, who resolves it
            done = max(cleared_at, out.started_at) + timedelta(hours=rng.lognormvariate(math.log(2), 0.8))
            if case.type in ("stalled_in_transit", "delivery_failed"):
                delivered = order.shipment.events[-1].checkpoint_at
                done = max(done, delivered + timedelta(minutes=rng.uniform(5, 240)))
                out.resolution = Resolution.DELIVERED
            else:
                out.resolution = Resolution.NO_ACTION
            out.resolved_at, out.resolved_by = done, out.assignee
    else:
        kind = "reship" if case.type == "damaged" and rng.random() < 0.55 else "full_refund"
        amount = (
            order.amount
            if kind == "full_refund"
            else (order.amount * Decimal("0.6")).quantize(Decimal("0.01"))
        )
        # The agent waits on the carrier first (a search for a lost parcel takes days; a damage report hours).
        waits = {"lost": 20.0, "returned_to_sender": 10.0}.get(case.type, 5.0)
        start = max(out.contact_at or opened, out.started_at or opened)
        start += timedelta(hours=min(150.0, rng.lognormvariate(math.log(waits), 0.9)))
        comp = _compensation_plan(rng, order, kind, amount, proposer=out.assignee or agent, at=start)
        out.compensations.append(comp)
        out.resolution = Resolution.RESHIPPED if kind == "reship" else Resolution.REFUNDED
        out.resolved_at = comp.executed_at + timedelta(minutes=rng.uniform(5, 90))
        out.resolved_by = out.assignee or agent
        if rng.random() < CLAIMED_SHARE.get(case.type, 0):
            out.claim = _claim_plan(rng, plan, amount, after=out.resolved_at)
    _reopen(rng, plan, out)
    _cap(out, limit)
    return out


def _compensation_plan(
    rng: random.Random,
    order: OrderPlan,
    kind: str,
    amount: Decimal,
    *,
    proposer: str,
    at: datetime,
    sku_code: str = "",
) -> CompensationPlan:
    """Proposed by the agent; approved by the agent within the agent's per-case limit, else by the
    supervisor; executed by the platform a little later."""
    proposed = at + timedelta(hours=rng.uniform(0.3, 6))
    within = amount <= AGENT_CASE_LIMIT
    approved = proposed if within else proposed + timedelta(hours=rng.uniform(0.2, 5))
    return CompensationPlan(
        kind=kind, amount=amount, proposed_at=proposed, approved_at=approved,
        executed_at=approved + timedelta(hours=rng.uniform(0.1, 3)), proposer=proposer,
        approver=proposer if within else "supervisor", sku_code=sku_code, replaces_parcel=kind == "reship",
    )  # fmt: skip


def _claim_plan(rng: random.Random, plan: DemoPlan, amount: Decimal, *, after: datetime) -> ClaimPlan | None:
    """A claim against the carrier for what the case cost: as far along as its age lets it be."""
    limit = plan.now - timedelta(minutes=20)
    created = after + timedelta(hours=rng.uniform(1, 30))
    submitted = created + timedelta(hours=rng.uniform(0.5, 20))
    if submitted >= limit:
        return None
    claim = ClaimPlan(amount=amount, created_at=created, submitted_at=submitted, status="submitted")
    decided = submitted + timedelta(days=rng.uniform(3, 8))
    if decided >= limit:
        return claim
    claim.decided_at = decided
    if rng.random() < 0.2:
        claim.status = "rejected"
        return claim
    claim.status = "accepted"
    paid = decided + timedelta(days=rng.uniform(1, 5))
    if paid < limit:
        claim.status, claim.paid_at = "paid", paid
        claim.recovered = (
            amount if rng.random() < 0.7 else (amount * Decimal("0.8")).quantize(Decimal("0.01"))
        )
    return claim


def _reopen(rng: random.Random, plan: DemoPlan, out: Outcome) -> None:
    """Now and then the buyer comes back on a resolved case: reopened, and resolved again."""
    if out.resolved_by is None or rng.random() >= REOPENED_SHARE:
        return
    reopened = out.resolved_at + timedelta(hours=rng.uniform(6, 60))
    again = reopened + timedelta(hours=rng.uniform(1, 30))
    if again < plan.now - timedelta(minutes=20):
        out.first_resolved_at, out.reopened_at, out.resolved_at = out.resolved_at, reopened, again


def _cap(out: Outcome, limit: datetime) -> None:
    """Nothing after the demo's now (a late history is squeezed into the time it had, keeping its order)."""
    for name in ("assigned_at", "started_at", "contact_at", "complaint_at", "choice_at", "first_resolved_at",
                 "reopened_at", "resolved_at", "cleared_at"):  # fmt: skip
        value = getattr(out, name)
        if value is not None and value > limit:
            setattr(out, name, limit)
    for comp in out.compensations:
        comp.proposed_at, comp.approved_at, comp.executed_at = (
            min(comp.proposed_at, limit),
            min(comp.approved_at, limit),
            min(comp.executed_at, limit),
        )


def _plan_oversold_history(
    rng: random.Random, plan: DemoPlan, order: OrderPlan, *, restock: datetime, choice: str
) -> datetime | None:
    """An order of the past live session sold past its allocation: the rule's message offered waiting for
    the restock, a swap or a refund; how the buyer chose decided the rest. Returns when its parcel was
    booked (None: refunded, it never shipped)."""
    deal = next(line for line in order.lines if line.sku_code == PAST_LIVE_DEAL_SKU)
    allocation = plan.past_allocations[PAST_LIVE_DEAL_SKU]
    swap_name = next(s.name for s in SKUS[TTS_MY.code] if s.code == PAST_LIVE_SWAP_SKU)
    opened = order.placed_at + timedelta(seconds=rng.randint(30, 300))
    facts = {
        "scenario": "oversold", "sku_code": deal.sku_code, "quantity": deal.quantity, "live_session": PAST_LIVE_TITLE,
        "allocation": allocation, "placed_at": order.placed_at.isoformat(), "restock_eta": restock.date().isoformat(),
        "options": [
            {"key": "A", "path": "wait", "available": True, "until": restock.date().isoformat()},
            {"key": "B", "path": "swap", "available": True,
             "swap_for": {deal.sku_code: [{"sku_code": PAST_LIVE_SWAP_SKU, "sku_name": swap_name}]}},
            {"key": "C", "path": "refund", "available": True},
        ],
    }  # fmt: skip
    summary = Text(
        gettext_noop("Oversold: %(short)s short, sold past the live-session allocation."),
        short=f"{deal.quantity} x {deal.sku_code}",
    )
    case = CasePlan(
        type="oversold", priority=_priority(order, "high"), summary=summary, facts=facts, opened_at=opened
    )
    agent = rng.choices(order.store.agents, weights=(65, 35))[0]
    out = Outcome(
        resolution="", resolved_at=opened, resolved_by=agent, fault=FaultParty.SELLER, assignee=agent
    )
    out.assigned_at = opened + timedelta(minutes=rng.uniform(10, 120))
    out.started_at = out.assigned_at + timedelta(minutes=rng.uniform(5, 45))
    out.contact_at = opened + timedelta(
        seconds=rng.randint(40, 200)
    )  # the rule's own message, with the options
    if choice:
        out.choice = choice
        answer = out.contact_at + timedelta(hours=min(40.0, rng.lognormvariate(math.log(4), 0.8)))
        # Recorded by the agent working the case (the buyer answered in the platform's chat).
        out.choice_at = max(answer, out.started_at + timedelta(minutes=rng.uniform(2, 30)))
        decided = out.choice_at
    else:
        decided = out.contact_at + timedelta(hours=48 + rng.uniform(0.5, 3))  # no answer: waiting, as it said
    booked: datetime | None = None
    if choice == "refund":
        comp = _compensation_plan(rng, order, "full_refund", order.amount, proposer=agent, at=decided)
        out.resolution = Resolution.REFUNDED
        order.cancelled = True
    elif choice == "swap":
        comp = _compensation_plan(
            rng, order, "swap", Decimal("0"), proposer=agent, at=decided, sku_code=PAST_LIVE_SWAP_SKU
        )
        out.resolution = Resolution.SWAPPED
        booked = comp.executed_at + timedelta(hours=rng.uniform(2, 20))
    else:
        comp = _compensation_plan(rng, order, "wait_bonus", Decimal("5.00"), proposer=agent, at=decided)
        out.resolution = Resolution.BUYER_WAITED
        booked = max(restock, comp.executed_at) + timedelta(hours=rng.uniform(1, 10))
    out.compensations.append(comp)
    out.resolved_at = comp.executed_at + timedelta(minutes=rng.uniform(5, 60))
    _reopen(rng, plan, out)
    _cap(out, plan.now - timedelta(minutes=20))
    case.outcome = out
    order.case = case
    return booked.replace(microsecond=0) if booked is not None else None
