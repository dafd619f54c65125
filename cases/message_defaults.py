# ruff: noqa: RUF001  (full-width punctuation is correct in the Chinese texts)
"""The global default buyer message templates: Chinese and English for every case type, plus Malay, Thai,
Vietnamese and Indonesian for the commonest proactive cases (Shopee and Lazada stores in South-East Asia).

Stores override them with their own templates (same case type, language and channel) in the admin.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from cases.choices import CaseType, MessageChannel
from cases.models import MessageTemplate
from cases.validators import template_validate

DEFAULT_NAME = "Default"

T = CaseType
# {case type: {language: (email subject, body)}}
DEFAULT_TEMPLATES: Mapping[str, Mapping[str, tuple[str, str]]] = {
    T.OVERSOLD: {
        "en": (
            "About your order {order_id}: please choose how we continue",
            "Hi {buyer_name}, we are sorry: the item in your order {order_id} sold out faster than we could "
            "pack it, and we do not want to keep you waiting without a word. Please reply with the option you "
            "prefer:\nA) {option_a}\nB) {option_b}\nC) {option_c}\nIf we do not hear from you within 48 hours "
            "we will go with A when a date is shown, otherwise C. Thank you for your patience. {store_name}",
        ),
        "zh-hans": (
            "关于您的订单 {order_id}：请选择处理方式",
            "{buyer_name} 您好，非常抱歉：您订单 {order_id} 中的商品在直播中售出过快，暂时缺货。我们希望第一时间"
            "告知您，请回复您希望的处理方式：\nA）{option_a}\nB）{option_b}\nC）{option_c}\n如 48 小时内未收到"
            "回复，有到货日期时我们将按 A 处理，否则按 C 处理。感谢您的理解与耐心！{store_name}",
        ),
        "ms": (
            "Mengenai pesanan {order_id}: sila pilih cara kami teruskan",
            "Hai {buyer_name}, kami mohon maaf: item dalam pesanan {order_id} habis dijual lebih cepat daripada "
            "jangkaan. Sila balas dengan pilihan anda:\nA) {option_a}\nB) {option_b}\nC) {option_c}\n"
            "Terima kasih atas kesabaran anda. {store_name}",
        ),
        "th": (
            "เกี่ยวกับคำสั่งซื้อ {order_id}: กรุณาเลือกวิธีดำเนินการ",
            "สวัสดีค่ะคุณ {buyer_name} ขออภัยเป็นอย่างยิ่ง สินค้าในคำสั่งซื้อ {order_id} ขายหมดเร็วกว่าที่คาดไว้ "
            "กรุณาตอบกลับพร้อมตัวเลือกที่คุณต้องการ:\nA) {option_a}\nB) {option_b}\nC) {option_c}\n"
            "ขอบคุณที่อดทนรอค่ะ {store_name}",
        ),
        "vi": (
            "Về đơn hàng {order_id}: vui lòng chọn cách xử lý",
            "Chào {buyer_name}, chúng tôi rất xin lỗi: sản phẩm trong đơn hàng {order_id} đã bán hết nhanh hơn "
            "dự kiến. Vui lòng trả lời với lựa chọn bạn muốn:\nA) {option_a}\nB) {option_b}\nC) {option_c}\n"
            "Cảm ơn bạn đã kiên nhẫn. {store_name}",
        ),
        "id": (
            "Tentang pesanan {order_id}: mohon pilih cara kami melanjutkan",
            "Halo {buyer_name}, kami mohon maaf: barang di pesanan {order_id} terjual habis lebih cepat dari "
            "perkiraan. Mohon balas dengan pilihan Anda:\nA) {option_a}\nB) {option_b}\nC) {option_c}\n"
            "Terima kasih atas kesabaran Anda. {store_name}",
        ),
    },
    T.OUT_OF_STOCK: {
        "en": (
            "Your order {order_id} is waiting for a restock",
            "Hi {buyer_name}, the item in your order {order_id} is out of stock; the restock is expected on "
            "{restock_date}. You can wait and we ship it the day it arrives, or we refund you in full right "
            "away: just reply and tell us which you prefer. {store_name}",
        ),
        "zh-hans": (
            "您的订单 {order_id} 正在等待补货",
            "{buyer_name} 您好，您订单 {order_id} 中的商品暂时缺货，预计 {restock_date} 补货。您可以选择等待，"
            "到货当天我们立即为您发出；也可以选择立即全额退款。请回复告诉我们您的选择。{store_name}",
        ),
    },
    T.PICKUP_OVERDUE: {
        "en": (
            "Your order {order_id} is packed and waiting for the courier",
            "Hi {buyer_name}, your order {order_id} is packed, but {carrier} has not collected it on time. "
            "We are chasing them and will send you the tracking update ({tracking_number}) as soon as the "
            "parcel is scanned. Sorry for the delay. {store_name}",
        ),
        "zh-hans": (
            "您的订单 {order_id} 已打包，正在等待快递揽收",
            "{buyer_name} 您好，您的订单 {order_id} 已打包完毕，但 {carrier} 未能按时揽收。我们正在催促快递，"
            "包裹扫描后会第一时间告知您物流进度（运单号 {tracking_number}）。给您带来不便，非常抱歉。{store_name}",
        ),
    },
    T.STALLED_IN_TRANSIT: {
        "en": (
            "An update on your parcel {tracking_number}",
            "Hi {buyer_name}, we noticed your parcel for order {order_id} has not moved for a while. Latest "
            "from {carrier}: {latest_checkpoint}. We have asked the carrier to check on it; the new expected "
            "delivery date is {new_eta}. Sorry for the wait, and thank you for your patience. {store_name}",
        ),
        "zh-hans": (
            "您的包裹 {tracking_number} 物流进展",
            "{buyer_name} 您好，我们注意到您订单 {order_id} 的包裹近期物流没有更新。{carrier} 最新信息："
            "{latest_checkpoint}。我们已联系快递核查，预计送达时间为 {new_eta}。让您久等了，非常抱歉，"
            "感谢您的耐心！{store_name}",
        ),
        "ms": (
            "Kemas kini tentang bungkusan {tracking_number}",
            "Hai {buyer_name}, kami dapati bungkusan untuk pesanan {order_id} belum bergerak sejak beberapa "
            "waktu. Status terkini daripada {carrier}: {latest_checkpoint}. Kami telah meminta kurier "
            "menyemaknya; anggaran penghantaran baharu ialah {new_eta}. Maaf atas kelewatan ini. {store_name}",
        ),
        "th": (
            "อัปเดตพัสดุ {tracking_number} ของคุณ",
            "สวัสดีค่ะคุณ {buyer_name} เราพบว่าพัสดุของคำสั่งซื้อ {order_id} ไม่มีความเคลื่อนไหวมาระยะหนึ่ง "
            "สถานะล่าสุดจาก {carrier}: {latest_checkpoint} เราได้ติดต่อขนส่งให้ตรวจสอบแล้ว "
            "คาดว่าจะได้รับภายในวันที่ {new_eta} ขออภัยในความล่าช้าค่ะ {store_name}",
        ),
        "vi": (
            "Cập nhật về kiện hàng {tracking_number}",
            "Chào {buyer_name}, chúng tôi thấy kiện hàng của đơn {order_id} chưa di chuyển trong một thời gian. "
            "Cập nhật mới nhất từ {carrier}: {latest_checkpoint}. Chúng tôi đã yêu cầu đơn vị vận chuyển kiểm "
            "tra; ngày giao dự kiến mới là {new_eta}. Xin lỗi vì sự chậm trễ. {store_name}",
        ),
        "id": (
            "Kabar terbaru paket {tracking_number}",
            "Halo {buyer_name}, kami melihat paket untuk pesanan {order_id} belum bergerak beberapa waktu. "
            "Status terakhir dari {carrier}: {latest_checkpoint}. Kami sudah meminta kurir memeriksanya; "
            "perkiraan tiba yang baru adalah {new_eta}. Mohon maaf atas keterlambatannya. {store_name}",
        ),
    },
    T.NO_UPDATE: {
        "en": (
            "We are checking on your parcel {tracking_number}",
            "Hi {buyer_name}, the tracking for your order {order_id} ({carrier} {tracking_number}) has not "
            "updated recently. Last update: {latest_checkpoint}. We have contacted the carrier and will let "
            "you know what they find. {store_name}",
        ),
        "zh-hans": (
            "我们正在核查您的包裹 {tracking_number}",
            "{buyer_name} 您好，您订单 {order_id} 的物流（{carrier} {tracking_number}）近期没有更新，最后一条"
            "信息：{latest_checkpoint}。我们已联系快递公司核查，有结果会第一时间通知您。{store_name}",
        ),
    },
    T.DELIVERY_FAILED: {
        "en": (
            "Delivery attempt failed for your order {order_id}",
            "Hi {buyer_name}, {carrier} tried to deliver your order {order_id} but could not complete the "
            "delivery ({latest_checkpoint}). Please reply to confirm your address and a phone number the "
            "courier can reach, and a good time to deliver, so we can arrange another attempt. {store_name}",
        ),
        "zh-hans": (
            "您的订单 {order_id} 派送未成功",
            "{buyer_name} 您好，{carrier} 派送您的订单 {order_id} 时未能成功（{latest_checkpoint}）。请回复确认"
            "您的收货地址、可联系的电话以及方便收货的时间，我们将安排再次派送。{store_name}",
        ),
        "ms": (
            "Penghantaran pesanan {order_id} tidak berjaya",
            "Hai {buyer_name}, {carrier} telah cuba menghantar pesanan {order_id} tetapi tidak berjaya "
            "({latest_checkpoint}). Sila balas untuk mengesahkan alamat, nombor telefon dan masa yang sesuai "
            "supaya kami dapat mengatur penghantaran semula. {store_name}",
        ),
        "th": (
            "การจัดส่งคำสั่งซื้อ {order_id} ไม่สำเร็จ",
            "สวัสดีค่ะคุณ {buyer_name} {carrier} พยายามจัดส่งคำสั่งซื้อ {order_id} แต่ไม่สำเร็จ "
            "({latest_checkpoint}) กรุณาตอบกลับเพื่อยืนยันที่อยู่ เบอร์โทรศัพท์ และเวลาที่สะดวกรับสินค้า "
            "เพื่อให้เราจัดส่งใหม่ค่ะ {store_name}",
        ),
        "vi": (
            "Giao đơn hàng {order_id} không thành công",
            "Chào {buyer_name}, {carrier} đã cố gắng giao đơn hàng {order_id} nhưng không thành công "
            "({latest_checkpoint}). Vui lòng trả lời để xác nhận địa chỉ, số điện thoại và thời gian thuận "
            "tiện để chúng tôi sắp xếp giao lại. {store_name}",
        ),
        "id": (
            "Pengiriman pesanan {order_id} gagal",
            "Halo {buyer_name}, {carrier} sudah mencoba mengantar pesanan {order_id} tetapi gagal "
            "({latest_checkpoint}). Mohon balas untuk mengonfirmasi alamat, nomor telepon, dan waktu yang "
            "tepat agar kami dapat mengatur pengiriman ulang. {store_name}",
        ),
    },
    T.ADDRESS_ISSUE: {
        "en": (
            "Please confirm the delivery address for order {order_id}",
            "Hi {buyer_name}, {carrier} reports a problem with the delivery address of your order {order_id} "
            "({latest_checkpoint}). Please reply with your full address, including unit number and postcode, "
            "and a phone number, so the parcel can reach you. {store_name}",
        ),
        "zh-hans": (
            "请确认订单 {order_id} 的收货地址",
            "{buyer_name} 您好，{carrier} 反馈您订单 {order_id} 的收货地址有问题（{latest_checkpoint}）。请回复"
            "完整的收货地址（含门牌号和邮编）及联系电话，以便包裹顺利送达。{store_name}",
        ),
    },
    T.CUSTOMS_HOLD: {
        "en": (
            "Your parcel {tracking_number} is in customs clearance",
            "Hi {buyer_name}, your parcel for order {order_id} is being held in customs clearance "
            "({latest_checkpoint}). We are providing the documents customs asked for; if anything is needed "
            "from you, we will tell you exactly what. Expected delivery: {new_eta}. {store_name}",
        ),
        "zh-hans": (
            "您的包裹 {tracking_number} 正在清关",
            "{buyer_name} 您好，您订单 {order_id} 的包裹目前在海关清关中（{latest_checkpoint}）。我们正在提交海关"
            "要求的资料，如需您提供任何材料，会明确告知您。预计送达时间：{new_eta}。{store_name}",
        ),
    },
    T.LOST: {
        "en": (
            "Your parcel for order {order_id}: we are making it right",
            "Hi {buyer_name}, we are very sorry: {carrier} has reported the parcel for your order {order_id} "
            "({tracking_number}) as lost. You will not be left out of pocket: reply to choose a free "
            "replacement shipped right away or a full refund. {store_name}",
        ),
        "zh-hans": (
            "关于订单 {order_id} 的包裹：我们会为您妥善处理",
            "{buyer_name} 您好，非常抱歉：{carrier} 反馈您订单 {order_id} 的包裹（{tracking_number}）已丢失。"
            "您不会因此承担任何损失，请回复选择：立即免费补发，或全额退款。{store_name}",
        ),
    },
    T.DAMAGED: {
        "en": (
            "Sorry your order {order_id} arrived damaged",
            "Hi {buyer_name}, we are sorry the item in your order {order_id} arrived damaged. Could you reply "
            "with a photo of the item and the parcel? We will then send a replacement or refund you, "
            "whichever you prefer. {store_name}",
        ),
        "zh-hans": (
            "很抱歉您的订单 {order_id} 商品有破损",
            "{buyer_name} 您好，很抱歉您订单 {order_id} 的商品送达时有破损。请回复商品及外包装的照片，我们将按"
            "您的意愿为您补发或退款。{store_name}",
        ),
    },
    T.RETURNED_TO_SENDER: {
        "en": (
            "Your parcel for order {order_id} is coming back to us",
            "Hi {buyer_name}, {carrier} is returning the parcel for your order {order_id} to us "
            "({latest_checkpoint}). Would you like us to ship it again (please confirm your address and "
            "phone number) or to refund you? {store_name}",
        ),
        "zh-hans": (
            "您订单 {order_id} 的包裹正在退回",
            "{buyer_name} 您好，{carrier} 正在将您订单 {order_id} 的包裹退回给我们（{latest_checkpoint}）。请问您"
            "希望我们重新发货（请确认地址和电话），还是为您退款？{store_name}",
        ),
    },
    T.ORDER_REVIEW: {
        "en": (
            "A quick check on your order {order_id}",
            "Hi {buyer_name}, before we ship your order {order_id} we need to confirm a few details. Please "
            "reply to confirm your delivery address and phone number; we will ship as soon as we hear from "
            "you. {store_name}",
        ),
        "zh-hans": (
            "关于您订单 {order_id} 的信息确认",
            "{buyer_name} 您好，在为您发出订单 {order_id} 之前，我们需要核实一些信息。请回复确认您的收货地址和"
            "联系电话，收到回复后我们会尽快发货。{store_name}",
        ),
    },
    T.QUALITY_BATCH: {
        "en": (
            "About the item in your order {order_id}",
            "Hi {buyer_name}, we have found a quality problem with one production batch of an item in your "
            "order {order_id}. We are contacting everyone who received it: please reply and we will send a "
            "replacement or a refund, whichever you prefer. {store_name}",
        ),
        "zh-hans": (
            "关于您订单 {order_id} 中的商品",
            "{buyer_name} 您好，我们发现您订单 {order_id} 中某件商品的一个生产批次存在质量问题，正在联系所有收到"
            "该批次商品的顾客。请回复，我们将按您的意愿为您补发或退款。{store_name}",
        ),
    },
    T.NOT_RECEIVED: {
        "en": (
            "About your order {order_id}: we are on it",
            "Hi {buyer_name}, thank you for letting us know your order {order_id} has not reached you. We are "
            "checking with the carrier now and will come back to you within 24 hours with where it is, or with "
            "a new parcel or a refund if it cannot be found. {store_name}",
        ),
        "zh-hans": (
            "关于您的订单 {order_id}：我们正在处理",
            "{buyer_name} 您好，感谢告知您的订单 {order_id} 尚未收到。我们正在与快递公司核实，24 小时内会回复您"
            "包裹的位置；如果找不到，我们将为您补发或退款。{store_name}",
        ),
    },
    T.WRONG_ITEM: {
        "en": (
            "Sorry, we sent the wrong item for order {order_id}",
            "Hi {buyer_name}, we are sorry you received the wrong item in your order {order_id}. Could you reply "
            "with a photo of what arrived? We will send the right one at our cost and tell you how to return "
            "the other, or refund you if you prefer. {store_name}",
        ),
        "zh-hans": (
            "很抱歉，您订单 {order_id} 的商品发错了",
            "{buyer_name} 您好，很抱歉您订单 {order_id} 收到的商品有误。请回复收到商品的照片，我们将承担运费为您"
            "补发正确的商品并告知退回方式；如您希望退款，我们也会为您办理。{store_name}",
        ),
    },
    T.MISSING_ITEM: {
        "en": (
            "Sorry, something is missing from order {order_id}",
            "Hi {buyer_name}, we are sorry part of your order {order_id} was not in the parcel. Could you reply "
            "with a photo of what you received? We will send what is missing, or refund it, whichever you "
            "prefer. {store_name}",
        ),
        "zh-hans": (
            "很抱歉，您订单 {order_id} 的商品少发了",
            "{buyer_name} 您好，很抱歉您订单 {order_id} 的包裹中少了商品。请回复收到商品的照片，我们将按您的意愿"
            "为您补发缺少的商品或退款。{store_name}",
        ),
    },
    T.QUALITY: {
        "en": (
            "About the item in your order {order_id}",
            "Hi {buyer_name}, we are sorry the item in your order {order_id} is not as it should be. Could you "
            "reply with a photo (and the batch or expiry date on the pack, if there is one)? We will send a "
            "replacement or refund you, whichever you prefer. {store_name}",
        ),
        "zh-hans": (
            "关于您订单 {order_id} 中的商品",
            "{buyer_name} 您好，很抱歉您订单 {order_id} 中的商品有质量问题。请回复商品照片（如包装上有批号或保质期，"
            "也请一并拍下），我们将按您的意愿为您补发或退款。{store_name}",
        ),
    },
    T.ENQUIRY: {
        "en": (
            "About your order {order_id}",
            "Hi {buyer_name}, thank you for your message about your order {order_id}. We will answer you within "
            "24 hours. {store_name}",
        ),
        "zh-hans": (
            "关于您的订单 {order_id}",
            "{buyer_name} 您好，感谢您关于订单 {order_id} 的留言，我们会在 24 小时内回复您。{store_name}",
        ),
    },
}


def default_templates_ensure() -> int:
    """Create the global default templates that do not exist yet, for both channels; never overwrites one
    (an administrator may have edited it). Idempotent. Returns how many were created."""
    created = 0
    with transaction.atomic():
        existing = set(
            MessageTemplate.objects.filter(store__isnull=True, name=DEFAULT_NAME).values_list(
                "case_type", "language", "channel"
            )
        )
        new = []
        for case_type, languages in DEFAULT_TEMPLATES.items():
            for language, (subject, body) in languages.items():
                template_validate(subject=subject, body=body)
                for channel in MessageChannel.values:
                    if (case_type, language, channel) in existing:
                        continue
                    new.append(
                        MessageTemplate(
                            store=None,
                            case_type=case_type,
                            language=language,
                            channel=channel,
                            name=DEFAULT_NAME,
                            subject=subject if channel == MessageChannel.EMAIL else "",
                            body=body,
                        )
                    )
        MessageTemplate.objects.bulk_create(new, ignore_conflicts=True)
        created = len(new)
    return created
