"""Carrier display names: what agents and buyers read instead of a provider's carrier code.

Shipments keep the code they were booked with (an AfterShip slug such as `ninjavan-my`, a Kdniao
`ShipperCode` such as `ZTO`, a 17TRACK carrier number), unless a tracking provider corrects the carrier
(Kuaidi100's `comNew`; the booked code is kept in `carrier_booked`). A code is matched case-insensitively; one we do not
know is shown as it is. Brand names are translated where the brand has a name of its own in Chinese.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

_NAMES: dict[str, str | Promise] = {}


def _brand(name: str | Promise, *codes: str) -> None:
    for code in codes:
        _NAMES[code.lower()] = name


# South-East Asia (AfterShip slugs, and the codes of the demo's simulator)
_brand(_("J&T Express"), "jtexpress", "jtexpress-my", "jt-express-my", "jtexpress-th", "jtexpress-vn",
       "jtexpress-ph", "jtexpress-sg", "jet", "jtsd")  # fmt: skip
_brand("Ninja Van", "ninjavan", "ninjavan-my", "ninjavan-sg", "ninjavan-th", "ninjavan-vn", "ninjavan-id",
       "ninjavan-ph")  # fmt: skip
_brand("Pos Laju", "poslaju", "pos-laju", "malaysia-post-posdaftar", "malaysia-post")
_brand("City-Link Express", "citylink", "citylinkexpress", "city-link")
_brand("Flash Express", "flash-express", "flashexpress", "flash")
_brand("Kerry Express", "kerry-express-th", "kerryexpress-th", "kerry-express", "kerry-logistics")
_brand("Thailand Post", "thailand-post", "thaipost")
_brand("Shopee Xpress", "spx", "spx-my", "spx-th", "spx-vn", "spx-id", "spx-ph", "shopee-express")
_brand("LEX (Lazada Logistics)", "lex", "lazada-express", "lel-express", "lgs")
_brand("GHN", "ghn", "giaohangnhanh")
_brand("GHTK", "ghtk", "giao-hang-tiet-kiem")
_brand("Viettel Post", "viettelpost", "viettel-post")
_brand("JNE", "jne")
_brand("SiCepat", "sicepat")
_brand("LBC Express", "lbcexpress", "lbc")
_brand("DHL eCommerce", "dhl-ecommerce-asia", "dhlglobalmail", "dhl-ecommerce")
_brand("DHL Express", "dhl")
# Mainland China (Kdniao ShipperCode and AfterShip slugs)
_brand(_("SF Express"), "sf", "sf-express", "sfexpress", "shunfeng")
_brand(_("ZTO Express"), "zto", "zto-express", "zhongtong")
_brand(_("YTO Express"), "yto", "yto-express", "yuantong")
_brand(_("Yunda Express"), "yd", "yunda", "yunda-express")
_brand(_("STO Express"), "sto", "sto-express", "shentong")
_brand(_("JD Logistics"), "jd", "jd-logistics", "jdl", "jingdong")
_brand(_("China Post EMS"), "ems", "china-ems", "china-post", "chinapost")
_brand(_("Deppon"), "dbl", "deppon", "debang")
_brand(_("Best Express"), "htky", "best-express", "bestex")


def carrier_name(code: str | None, *, language: str | None = None) -> str:
    """The carrier's display name in `language` (default: the active one); the code itself when the carrier
    is not known."""
    if not code:
        return ""
    name = _NAMES.get(code.strip().lower())
    if name is None:
        return code
    if language is None:
        return str(name)
    with translation.override(language):
        return str(name)
