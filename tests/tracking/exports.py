"""Seller Center order exports for tests, in each platform's own layout and header language: a few hundred
rows of orders with one or several lines, split packages, every status, the platforms' time formats.

Deterministic (seeded), so a test can compute what each file must import to."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

TIKTOK_EN = [
    "Order ID", "Order Status", "Order Substatus", "Cancelation/Return Type", "Normal or Pre-order", "SKU ID",
    "Seller SKU", "Product Name", "Variation", "Quantity", "Sku Quantity of return", "SKU Unit Original Price",
    "SKU Subtotal Before Discount", "SKU Platform Discount", "SKU Seller Discount", "SKU Subtotal After Discount",
    "Shipping Fee After Discount", "Original Shipping Fee", "Order Amount", "Order Refund Amount",
    "Created Time", "Paid Time", "RTS Time", "Shipped Time", "Delivered Time", "Cancelled Time", "Cancel By",
    "Cancel Reason", "Fulfillment Type", "Warehouse Name", "Tracking ID", "Delivery Option",
    "Shipping Provider Name", "Buyer Message", "Buyer Username", "Recipient", "Phone #", "Zipcode", "Country",
    "Province", "District", "Detail Address", "Additional address information", "Payment Method",
    "Weight(kg)", "Product Category", "Package ID", "Seller Note",
]  # fmt: skip
TIKTOK_DESCRIPTION = ["Platform unique order ID.", "Current order status."] + [""] * (len(TIKTOK_EN) - 2)
TIKTOK_ZH = {
    "Order ID": "订单ID", "Order Status": "订单状态", "Seller SKU": "卖家SKU", "Product Name": "商品名称",
    "Variation": "规格", "Quantity": "数量", "SKU Unit Original Price": "SKU单价", "Order Amount": "订单金额",
    "Created Time": "创建时间", "Paid Time": "付款时间", "RTS Time": "RTS时间", "Shipped Time": "发货时间",
    "Delivered Time": "送达时间", "Tracking ID": "物流单号", "Shipping Provider Name": "物流服务商名称",
    "Buyer Username": "买家用户名", "Recipient": "收件人", "Phone #": "手机号", "Country": "国家",
    "Province": "省", "District": "区", "Detail Address": "详细地址", "Zipcode": "邮编",
}  # fmt: skip
SHOPEE_EN = [
    "Order ID", "Order Status", "Return / Refund Status", "Tracking Number*", "Shipping Option",
    "Shipment Method", "Estimated Ship Out Date", "Ship Time", "Order Creation Date", "Order Paid Time",
    "Parent SKU Reference No.", "Product Name", "SKU Reference No.", "Variation Name", "Original Price",
    "Deal Price", "Quantity", "Returned quantity", "Product Subtotal", "Total Discount(Seller)",
    "Grand Total", "Username (Buyer)", "Receiver Name", "Phone Number", "Delivery Address", "Town",
    "District", "Province", "City", "Country", "Zip Code", "Remark from buyer", "Order Complete Time", "Note",
]  # fmt: skip
SHOPEE_ZH = {
    "Order ID": "訂單編號", "Order Status": "訂單狀態", "Tracking Number*": "包裹查詢號碼",
    "Shipping Option": "寄送方式", "Estimated Ship Out Date": "最晚出貨日期", "Ship Time": "實際出貨時間",
    "Order Creation Date": "訂單成立日期", "Order Paid Time": "買家完成付款時間",
    "SKU Reference No.": "商品選項貨號", "Product Name": "商品名稱", "Variation Name": "商品選項名稱",
    "Deal Price": "商品活動價格", "Quantity": "數量", "Grand Total": "買家總支付金額",
    "Username (Buyer)": "買家帳號", "Receiver Name": "收件者姓名", "Phone Number": "電話號碼",
    "Delivery Address": "收件地址", "District": "行政區", "City": "城市", "Country": "國家",
    "Zip Code": "郵遞區號", "Order Complete Time": "訂單完成時間",
}  # fmt: skip

PRODUCTS = [
    ("RICE-5KG", "Sunwhite Fragrant Rice 5kg", "5kg bag", Decimal("32.90")),
    ("OIL-1L8", "Golden Palm Cooking Oil", "1.8 L bottle", Decimal("18.50")),
    ("OIL-5L", "Golden Palm Cooking Oil", "5 L tin", Decimal("44.00")),
    ("NOODLE-30", "Mee Kari Instant Noodles", "Box of 30", Decimal("27.60")),
    ("SAUCE-SOY", "Kicap Manis Sweet Soy Sauce 640ml", "", Decimal("6.90")),
    ("TEA-100", "BOH Cameron Highlands Tea 100 bags", "", Decimal("14.20")),
    ("GLASS-JAR", "Glass storage jar set", "Set of 3 / clear", Decimal("39.00")),
    ("炒锅-32", "不粘炒锅 32cm", "深灰色", Decimal("89.00")),
]
BUYERS = [
    ("Nur Aisyah binti Ahmad", "aisyah_shop88", "Selangor", "Shah Alam", "No. 12, Jalan Kenari 5, Seksyen 7"),
    ("Tan Wei Ming", "weiming.tan", "Kuala Lumpur", "Cheras", "23-1 Jalan Manis 3, Taman Segar"),
    ("Siti Rahmah", "sitirahmah_", "Johor", "Johor Bahru", "8 Jalan Harmonium 24/3, Taman Desa Tebrau"),
    ("李秀英", "xiuying_li", "Pulau Pinang", "George Town", "88 Lebuh Chulia"),
    ("Rajesh a/l Kumar", "rajesh_k", "Perak", "Ipoh", "41 Jalan Sultan Idris Shah"),
    ("Lim Mei Ling", "meiling.lim", "Sabah", "Kota Kinabalu", "Lot 5, Lorong Api-Api 2, Centre Point"),
    ("Muhammad Hafiz", "hafiz_mhd", "Kedah", "Alor Setar", "1254 Taman Aman, Jalan Langgar"),
    ("Wong Kar Yan", "karyan_w", "Sarawak", "Kuching", "Lot 2301, Jalan Song"),
]
CARRIERS = ["J&T Express", "Ninja Van", "Flash Express", "SPX Express", "Pos Laju"]


@dataclass
class ExportOrder:
    order_id: str
    status: str  # awaiting_shipment / shipped / delivered / cancelled / unpaid
    created: datetime
    lines: list[tuple[str, str, str, Decimal, int]]  # sku, name, variation, price, quantity
    buyer: tuple[str, str, str, str, str]
    tracking: list[str] = field(default_factory=list)
    carrier: str = ""
    rts: datetime | None = None
    delivered: datetime | None = None

    @property
    def amount(self) -> Decimal:
        return sum((price * qty for _s, _n, _v, price, qty in self.lines), Decimal("0"))


def orders(
    count: int, *, seed: int = 1, start: datetime | None = None, prefix: str = "57"
) -> list[ExportOrder]:
    rng = random.Random(seed)
    start = start or datetime(2026, 11, 1, 9, 0)
    out = []
    for i in range(count):
        created = start + timedelta(minutes=37 * i + rng.randint(0, 30))
        status = rng.choices(
            ["awaiting_shipment", "shipped", "delivered", "cancelled", "unpaid"], [3, 5, 6, 1, 1]
        )[0]
        lines = [
            (sku, name, variation, price, rng.randint(1, 3))
            for sku, name, variation, price in rng.sample(PRODUCTS, rng.choice([1, 1, 1, 2, 3]))
        ]
        order = ExportOrder(f"{prefix}{7700000000000000 + i * 7919:016d}", status, created, lines,
                            rng.choice(BUYERS))  # fmt: skip
        if status in ("shipped", "delivered"):
            packages = 2 if len(lines) > 2 else 1
            order.tracking = [f"6{rng.randint(10**10, 10**11 - 1)}{p}" for p in range(packages)]
            order.carrier = rng.choice(CARRIERS)
            order.rts = created + timedelta(hours=rng.randint(2, 30))
            if status == "delivered":
                order.delivered = order.rts + timedelta(days=rng.randint(2, 5))
        out.append(order)
    return out


_TIKTOK_STATUS = {"awaiting_shipment": "To ship", "shipped": "Shipped", "delivered": "Completed",
                  "cancelled": "Cancelled", "unpaid": "Unpaid"}  # fmt: skip
_SHOPEE_STATUS = {"awaiting_shipment": "To ship", "shipped": "Shipping", "delivered": "Completed",
                  "cancelled": "Cancelled", "unpaid": "Unpaid"}  # fmt: skip
_SHOPEE_STATUS_ZH = {"awaiting_shipment": "待出貨", "shipped": "運送中", "delivered": "已完成",
                     "cancelled": "不成立", "unpaid": "待付款"}  # fmt: skip


def _us(value: datetime | None) -> str:
    """TikTok Shop's export time: 11/04/2026 8:05:12 PM (month first)."""
    return value.strftime("%m/%d/%Y %I:%M:%S %p") if value else ""


def tiktok_rows(export: list[ExportOrder], *, chinese: bool = False) -> list[list[str]]:
    headers = [TIKTOK_ZH.get(h, h) if chinese else h for h in TIKTOK_EN]
    rows = [headers, TIKTOK_DESCRIPTION]
    for order in export:
        for index, (sku, name, variation, price, qty) in enumerate(order.lines):
            package = order.tracking[min(index, len(order.tracking) - 1)] if order.tracking else ""
            values = {
                "Order ID": order.order_id, "Order Status": _TIKTOK_STATUS[order.status], "SKU ID": f"17{index}",
                "Seller SKU": sku, "Product Name": name, "Variation": variation, "Quantity": str(qty),
                "SKU Unit Original Price": f"RM {price:.2f}", "Order Amount": f"RM {order.amount:.2f}",
                "Created Time": _us(order.created), "Paid Time": _us(order.created + timedelta(minutes=2)),
                "RTS Time": _us(order.rts), "Delivered Time": _us(order.delivered),
                "Tracking ID": package, "Shipping Provider Name": order.carrier if package else "",
                "Buyer Username": order.buyer[1], "Recipient": order.buyer[0], "Phone #": "(+60)1*******89",
                "Zipcode": "40000", "Country": "Malaysia", "Province": order.buyer[2], "District": order.buyer[3],
                "Detail Address": order.buyer[4], "Package ID": f"PKG{package}",
            }  # fmt: skip
            rows.append([values.get(h, "") for h in TIKTOK_EN])
    return rows


def shopee_rows(export: list[ExportOrder], *, chinese: bool = False) -> list[list[str]]:
    headers = [SHOPEE_ZH.get(h, h) if chinese else h for h in SHOPEE_EN]
    statuses = _SHOPEE_STATUS_ZH if chinese else _SHOPEE_STATUS
    rows = [headers]
    for order in export:
        for sku, name, variation, price, qty in order.lines:
            values = {
                "Order ID": order.order_id, "Order Status": statuses[order.status],
                "Tracking Number*": order.tracking[0] if order.tracking else "",
                "Shipping Option": f"Standard Delivery - {order.carrier}" if order.carrier else "Standard Delivery",
                "Estimated Ship Out Date": (order.created + timedelta(days=2)).strftime("%Y-%m-%d %H:%M"),
                "Ship Time": order.rts.strftime("%Y-%m-%d %H:%M") if order.rts else "",
                "Order Creation Date": order.created.strftime("%Y-%m-%d %H:%M"),
                "SKU Reference No.": sku, "Product Name": name, "Variation Name": variation,
                "Deal Price": f"{price:.2f}", "Quantity": str(qty), "Grand Total": f"{order.amount:.2f}",
                "Username (Buyer)": order.buyer[1], "Receiver Name": order.buyer[0], "Phone Number": "60123456789",
                "Delivery Address": order.buyer[4], "City": order.buyer[3], "Province": order.buyer[2],
                "Country": "MY", "Zip Code": "40000",
                "Order Complete Time": order.delivered.strftime("%Y-%m-%d %H:%M") if order.delivered else "",
            }  # fmt: skip
            rows.append([values.get(h, "") for h in SHOPEE_EN])
    return rows


def as_csv(rows: list[list[str]], *, encoding: str = "utf-8-sig", delimiter: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def as_xlsx(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("orders")
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
