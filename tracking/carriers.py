"""Carrier display names: what agents and buyers read instead of a provider's carrier code.

Shipments keep the code they were booked with (an AfterShip slug such as `ninjavan-my`, a Kdniao
`ShipperCode` such as `ZTO`, a 17TRACK carrier number), unless a tracking provider corrects the carrier
(Kuaidi100's `comNew`; the booked code is kept in `carrier_booked`). A code is matched case-insensitively; one we do not
know is shown as it is. Brand names are translated where the brand has a name of its own in Chinese.
"""

from __future__ import annotations

import unicodedata

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

_NAMES: dict[str, str | Promise] = {}
# Each brand's name, codes (the general one first) and other names: a name read from a Seller Center export
# ("J&T Express", "中通快递") becomes the code of the store's region when the brand has one ("jtexpress-my").
_BRAND_LIST: list[tuple[str | Promise, tuple[str, ...], tuple[str, ...]]] = []
_BRANDS: dict[str, list[str]] = {}


def _brand(name: str | Promise, *codes: str, aliases: tuple[str, ...] = ()) -> None:
    for code in codes:
        _NAMES[code.lower()] = name
    _BRAND_LIST.append((name, codes, aliases))


def _brands() -> dict[str, list[str]]:
    """Name key -> codes, built on first use (translations are not loaded while the apps load)."""
    if not _BRANDS:
        for name, codes, aliases in _BRAND_LIST:
            labels = [*aliases, *codes]
            for language in ("en", "zh-hans"):
                with translation.override(language):
                    labels.append(str(name))
            for label in labels:
                _BRANDS.setdefault(_name_key(label), list(codes))
    return _BRANDS


def _name_key(text: str) -> str:
    """A carrier's name as compared: letters and digits only, case-folded ("J&T Express" -> "jtexpress")."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


# South-East Asia (AfterShip slugs, and the codes of the demo's simulator)
_brand(_("J&T Express"), "jtexpress", "jtexpress-my", "jt-express-my", "jtexpress-th", "jtexpress-vn",
       "jtexpress-ph", "jtexpress-sg", "jet", "jtsd", aliases=("J&T", "J&T Express Malaysia"))  # fmt: skip
_brand("Ninja Van", "ninjavan", "ninjavan-my", "ninjavan-sg", "ninjavan-th", "ninjavan-vn", "ninjavan-id",
       "ninjavan-ph")  # fmt: skip
_brand("Pos Laju", "poslaju", "pos-laju", "malaysia-post-posdaftar", "malaysia-post")
_brand("City-Link Express", "citylink", "citylinkexpress", "city-link")
_brand("Flash Express", "flash-express", "flashexpress", "flash", aliases=("Flash",))
_brand("Kerry Express", "kerry-express", "kerry-express-th", "kerryexpress-th", "kerry-logistics",
       aliases=("Kerry",))  # fmt: skip
_brand("Thailand Post", "thailand-post", "thaipost")
_brand("Shopee Xpress", "spx", "spx-my", "spx-th", "spx-vn", "spx-id", "spx-ph", "shopee-express",
       aliases=("SPX Express", "SPX", "Shopee Express", "蝦皮店到店", "虾皮快递"))  # fmt: skip
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


def carrier_code_for(name: str, *, region: str = "") -> str | None:
    """The carrier code for a carrier's name as a Seller Center writes it ("J&T Express", "Ninja Van",
    "SPX Express", "中通快递"), preferring the code of `region` (an ISO country) when the brand has one; None
    when the name is not a carrier we know."""
    brands = _brands()
    key = _name_key(name)
    codes = brands.get(key)
    if codes is None:  # "Ninja Van Express", "中通" ...: the brand with or without a generic word
        for suffix in ("express", "expressdelivery", "快递", "速递", "速运", "物流", "logistics", "delivery"):
            if key.endswith(suffix) and key[: -len(suffix)] in brands:
                codes = brands[key[: -len(suffix)]]
                break
            if key + suffix in brands:
                codes = brands[key + suffix]
                break
    if codes is None:
        return None
    regional = f"-{region.lower()}"
    return next((code for code in codes if region and code.endswith(regional)), codes[0])
