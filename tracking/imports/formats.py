"""The Seller Center order exports Afterdesk reads, as data: each platform's column names (in the languages
its Seller Center exports in), its order statuses and its date conventions. A new column name or a new
platform is an entry here, not a code path; a file whose columns match no entry goes to the mapping step,
and the store's answer is remembered (`tracking.models.ImportMapping`).

Sources (what the formats were built from):
- TikTok Shop Seller Center, Orders > Manage orders > Export ("order list", one row per SKU line). The
  export's second row repeats each column as a sentence ("Platform unique order ID.", ...): it is skipped.
  Columns as listed by the Seller Center's own export and the partner guides that reproduce it (Order ID,
  Order Status, Order Substatus, ..., Seller SKU, Product Name, Variation, Quantity, SKU Unit Original
  Price, ..., Order Amount, Created Time, Paid Time, RTS Time, Shipped Time, Delivered Time, Cancelled
  Time, ..., Tracking ID, Delivery Option, Shipping Provider Name, Buyer Message, Buyer Username,
  Recipient, Phone #, Zipcode, Country, Province/State, District/City, Detail Address, ..., Package ID).
  TikTok Shop gives sellers a dispatch deadline of three days from payment unless a listing says otherwise;
  the export carries no ship-by column, so ship-by is paid time + `dispatch_days`.
- Shopee Seller Centre, My Orders > Export (one row per product line): Order ID, Order Status, Return /
  Refund Status, Tracking Number*, Shipping Option, Shipment Method, Estimated Ship Out Date, Ship Time,
  Order Creation Date, Order Paid Time, Parent SKU Reference No., Product Name, SKU Reference No.,
  Variation Name, Original Price, Deal Price, Quantity, ..., Grand Total, ..., Username (Buyer), Receiver
  Name, Phone Number, Delivery Address, Town, District, Province, City, Country, Zip Code, Remark from
  buyer, Order Complete Time, Note. The Chinese-language Seller Centre (Taiwan, and the cross-border
  centre in Simplified Chinese) names the same columns 訂單編號 / 订单编号, 包裹查詢號碼, 寄送方式,
  最晚出貨日期, 實際出貨時間, 訂單成立日期, 商品選項貨號, 商品選項名稱, 商品活動價格, 數量, 買家帳號,
  收件者姓名, 電話號碼, 收件地址 ...
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# The fields an import understands. Each platform's columns map onto these; the mapping step names them.
FIELDS: dict[str, Promise] = {
    "order_id": _("Order ID"),
    "status": _("Order status"),
    "sku": _("Seller SKU"),
    "product_name": _("Product name"),
    "variation": _("Variation"),
    "quantity": _("Quantity"),
    "unit_price": _("Unit price"),
    "order_amount": _("Order amount"),
    "created_at": _("Order created"),
    "paid_at": _("Paid"),
    "ship_by": _("Ship by (dispatch deadline)"),
    "shipped_at": _("Shipped"),
    "delivered_at": _("Delivered"),
    "tracking_number": _("Tracking number"),
    "carrier": _("Shipping provider"),
    "buyer_username": _("Buyer username"),
    "recipient": _("Recipient"),
    "phone": _("Phone"),
    "country": _("Country"),
    "province": _("Province / state"),
    "city": _("City"),
    "district": _("District"),
    "address": _("Detail address"),
    "postal_code": _("Postal code"),
    "shop_id": _("Shop ID"),
    "rts_at": _("Ready to ship (pickup booked)"),
    "platform_sku": _("Platform SKU ID (when the seller SKU is empty)"),
}
# Without these no order can be made; a file (or a mapping) that lacks one is refused or asked about.
REQUIRED = ("order_id", "sku", "quantity", "created_at")
# One of these names the buyer.
BUYER_FIELDS = ("recipient", "buyer_username")


@dataclass(frozen=True)
class ExportFormat:
    """One platform's export: its columns (field -> the names it goes by), what its statuses mean, and how
    its times are written."""

    key: str
    platform: str  # portal.choices.Platform value
    name: str
    columns: Mapping[str, Sequence[str]]
    statuses: Mapping[str, str]  # normalized status text -> awaiting_shipment / shipped / delivered /
    # cancelled / unpaid (unpaid orders are skipped: nothing to ship yet)
    # A row whose order id cell says this is the export's description row, not an order.
    description_markers: Sequence[str] = ()
    # Ship-by when the file has no such column: paid (else created) + this many days.
    dispatch_days: int = 3
    # "Standard Delivery - J&T Express" -> "J&T Express": the text after this separator names the carrier.
    carrier_separator: str = ""
    day_first: bool = True  # 04/11/2026 is 4 November unless the file proves otherwise
    aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)


_STATUS_COMMON = {
    "unpaid": "unpaid", "awaiting payment": "unpaid", "pending payment": "unpaid", "待付款": "unpaid",
    "未付款": "unpaid",
    "cancelled": "cancelled", "canceled": "cancelled", "已取消": "cancelled", "取消": "cancelled",
    "不成立": "cancelled", "已取消訂單": "cancelled",
    "completed": "delivered", "delivered": "delivered", "已完成": "delivered", "已送达": "delivered",
    "已送達": "delivered", "已签收": "delivered", "完成": "delivered",
}  # fmt: skip

_TIKTOK_STATUSES = {
    **_STATUS_COMMON,
    "awaiting shipment": "awaiting_shipment", "to ship": "awaiting_shipment",
    "awaiting collection": "awaiting_shipment", "ready to ship": "awaiting_shipment",
    "待发货": "awaiting_shipment", "待揽收": "awaiting_shipment", "待出貨": "awaiting_shipment",
    "in transit": "shipped", "shipped": "shipped", "shipping": "shipped", "运输中": "shipped",
    "已发货": "shipped", "配送中": "shipped", "運送中": "shipped",
}  # fmt: skip

TIKTOK_SHOP = ExportFormat(
    key="tiktok_shop",
    platform="tiktok_shop",
    name="TikTok Shop Seller Center",
    columns={
        "order_id": ["Order ID", "订单ID", "订单号", "訂單ID", "訂單編號"],
        "status": ["Order Status", "订单状态", "訂單狀態"],
        "sku": ["Seller SKU", "卖家SKU", "賣家SKU", "商家SKU"],
        "product_name": ["Product Name", "商品名称", "商品名稱"],
        "variation": ["Variation", "规格", "商品规格", "規格"],
        "quantity": ["Quantity", "数量", "數量"],
        "unit_price": ["SKU Unit Original Price", "SKU单价", "SKU原价", "SKU單價"],
        "order_amount": ["Order Amount", "订单金额", "訂單金額"],
        "created_at": ["Created Time", "创建时间", "下单时间", "建立時間"],
        "paid_at": ["Paid Time", "付款时间", "支付时间", "付款時間"],
        "shipped_at": ["Shipped Time", "发货时间", "出貨時間"],
        "delivered_at": ["Delivered Time", "送达时间", "签收时间", "送達時間"],
        "tracking_number": ["Tracking ID", "物流单号", "运单号", "追踪号", "物流單號"],
        "carrier": ["Shipping Provider Name", "物流服务商名称", "物流商名称", "物流商名稱", "承运商"],
        "buyer_username": ["Buyer Username", "买家用户名", "買家用戶名"],
        "recipient": ["Recipient", "收件人", "收件人姓名"],
        "phone": ["Phone #", "Phone", "手机号", "联系电话", "收件人电话", "電話"],
        "country": ["Country", "国家", "國家"],
        "province": ["Province", "State", "省", "省份", "州"],
        "city": ["City", "Districts", "城市", "市"],
        "district": ["District", "区", "区县", "區"],
        "address": ["Detail Address", "详细地址", "詳細地址"],
        "postal_code": ["Zipcode", "Zip Code", "邮编", "郵遞區號"],
        "shop_id": ["Shop ID", "店铺ID", "商店ID"],
        "rts_at": ["RTS Time", "RTS时间", "备货完成时间"],
        "platform_sku": ["SKU ID", "平台SKU ID"],
    },
    statuses=_TIKTOK_STATUSES,
    description_markers=("Platform unique order ID.", "Platform unique order ID"),
    dispatch_days=3,
)

_SHOPEE_STATUSES = {
    **_STATUS_COMMON,
    "to ship": "awaiting_shipment", "ready to ship": "awaiting_shipment", "processed": "awaiting_shipment",
    "待出貨": "awaiting_shipment", "待发货": "awaiting_shipment", "待出货": "awaiting_shipment",
    "shipping": "shipped", "to receive": "shipped", "shipped": "shipped", "運送中": "shipped",
    "运送中": "shipped", "待收貨": "shipped", "待收货": "shipped",
    "return/refund": "delivered", "退貨/退款": "delivered", "退货/退款": "delivered",

}  # fmt: skip

SHOPEE = ExportFormat(
    key="shopee",
    platform="shopee",
    name="Shopee Seller Centre",
    columns={
        "order_id": ["Order ID", "訂單編號", "订单编号", "订单号"],
        "status": ["Order Status", "訂單狀態", "订单状态"],
        "sku": ["SKU Reference No.", "商品選項貨號", "商品选项货号", "SKU参考号"],
        "product_name": ["Product Name", "商品名稱", "商品名称"],
        "variation": ["Variation Name", "商品選項名稱", "商品选项名称", "规格名称"],
        "quantity": ["Quantity", "數量", "数量"],
        "unit_price": ["Deal Price", "商品活動價格", "商品活动价格", "成交价"],
        "order_amount": ["Grand Total", "Total Amount", "買家總支付金額", "订单总金额", "訂單總金額"],
        "created_at": ["Order Creation Date", "訂單成立日期", "訂單成立時間", "订单创建时间", "订单成立时间"],
        "paid_at": ["Order Paid Time", "買家完成付款時間", "买家付款时间"],
        "ship_by": ["Estimated Ship Out Date", "最晚出貨日期", "最晚发货日期", "预计出货日期"],
        "shipped_at": ["Ship Time", "實際出貨時間", "实际出货时间", "发货时间"],
        "delivered_at": ["Order Complete Time", "訂單完成時間", "订单完成时间"],
        "tracking_number": ["Tracking Number", "包裹查詢號碼", "包裹查询号码", "物流单号", "追踪号码"],
        "carrier": ["Shipping Option", "寄送方式", "物流方式", "运送方式"],
        "buyer_username": ["Username (Buyer)", "買家帳號", "买家账号", "买家用户名"],
        "recipient": ["Receiver Name", "收件者姓名", "收件人姓名", "收件人"],
        "phone": ["Phone Number", "電話號碼", "电话号码", "收件人电话"],
        "country": ["Country", "國家", "国家"],
        "province": ["Province", "State", "省", "省份"],
        "city": ["City", "城市"],
        "district": ["District", "Town", "行政區", "区"],
        "address": ["Delivery Address", "收件地址", "收货地址"],
        "postal_code": ["Zip Code", "Postcode", "郵遞區號", "邮编"],
        "shop_id": ["Shop ID", "店鋪ID", "店铺ID"],
        "platform_sku": ["Parent SKU Reference No.", "主商品貨號", "主商品货号"],
    },
    statuses=_SHOPEE_STATUSES,
    dispatch_days=2,
    carrier_separator=" - ",
)

FORMATS: dict[str, ExportFormat] = {f.key: f for f in (TIKTOK_SHOP, SHOPEE)}
CUSTOM = "custom"  # a file mapped by hand: no platform's statuses or conventions beyond the common ones
CUSTOM_STATUSES = {
    **_STATUS_COMMON,
    "awaiting shipment": "awaiting_shipment", "to ship": "awaiting_shipment", "pending": "awaiting_shipment",
    "paid": "awaiting_shipment", "待发货": "awaiting_shipment", "待出貨": "awaiting_shipment",
    "shipped": "shipped", "in transit": "shipped", "shipping": "shipped", "已发货": "shipped",
    "运输中": "shipped", "運送中": "shipped",
}  # fmt: skip


def header_key(text: object) -> str:
    """A column name as compared: Unicode NFKC (full-width letters fold), no BOM or zero-width characters,
    case-folded, whitespace collapsed, a trailing required-marker `*` dropped."""
    value = unicodedata.normalize("NFKC", str(text or ""))
    value = re.sub(r"[\ufeff\u200b\u200c\u200d\u2060]", "", value)
    value = re.sub(r"\s+", " ", value).strip().casefold()
    return value.rstrip("*").strip()


def status_key(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


@dataclass(frozen=True)
class Detection:
    """Which format a header row is, and which column index each field reads (absent: not in the file)."""

    format: ExportFormat | None
    columns: dict[str, int]
    missing: tuple[str, ...]  # required fields with no column

    @property
    def complete(self) -> bool:
        return self.format is not None and not self.missing


def columns_match(headers: Sequence[str], columns: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """field -> index of the first header that is one of the field's names."""
    by_key: dict[str, int] = {}
    for index, header in enumerate(headers):
        by_key.setdefault(header_key(header), index)
    found: dict[str, int] = {}
    for name, aliases in columns.items():
        for alias in aliases:
            index = by_key.get(header_key(alias))
            if index is not None:
                found[name] = index
                break
    return found


def detect(headers: Sequence[str], formats: Iterable[ExportFormat] | None = None) -> Detection:
    """The format whose columns the header row matches best (most required fields, then most fields)."""
    best: Detection = Detection(None, {}, REQUIRED)
    best_score = (0, 0)
    for export in formats if formats is not None else FORMATS.values():
        found = columns_match(headers, export.columns)
        required = sum(1 for name in REQUIRED if name in found or (name == "sku" and "platform_sku" in found))
        score = (required, len(found))
        if score > best_score and required >= 2:
            missing = mapping_missing(found)
            best, best_score = Detection(export, found, missing), score
    return best


def mapping_missing(found: Mapping[str, int]) -> tuple[str, ...]:
    """The required fields a column mapping lacks (a SKU may come from the platform's SKU id; the buyer from
    the recipient or the username)."""
    missing = [
        name for name in REQUIRED if name not in found and not (name == "sku" and "platform_sku" in found)
    ]
    if not any(name in found for name in BUYER_FIELDS):
        missing.append("recipient")
    return tuple(missing)


def signature(headers: Sequence[str]) -> str:
    """What identifies a file layout for remembering its mapping: its column names, normalized, in order."""
    import hashlib

    return hashlib.sha256("\x1f".join(header_key(h) for h in headers).encode()).hexdigest()
