"""An appeal's packet: one ZIP a platform reviewer reads at a glance, streamed as it is made.

    manifest.json              the store, platform, scenario, cases (order and tracking ids, deadlines), every
                               file with its kind, SHA-256, size, capture time and who added it, the export
                               time and the exporter
    summary.pdf                the story on one page, in the store's language, files referenced by number
    system/tracking.csv        every checkpoint of every parcel, with the carrier's raw code and text
    system/messages.csv        every message to a buyer, with its send time
    system/timeline.csv        every case's timeline
    system/compensation.csv    what was given
    files/<order>_<nn>_<kind>.<ext>

The same inputs (the appeal's data, the export time, the exporter) give the same bytes: entries in a fixed
order with fixed timestamps, stored (not deflated: photos and PDFs are compressed already, and zlib versions
differ), the PDF made invariant. Streamed: files are read and sent in 1 MB chunks, so a 1 GB packet never
sits in memory.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.files.storage import default_storage
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from cases.appeals import Checklist, appeal_checklist, item_label
from cases.choices import CustodyAction, StorefrontEventType
from cases.models import (
    Appeal,
    BuyerMessage,
    Case,
    CaseEvent,
    Compensation,
    CustodyEntry,
    Evidence,
    StorefrontEvent,
)
from cases.texts import event_message
from tracking.imports.service import csv_safe
from tracking.models import TrackingEvent

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1024 * 1024
SUMMARY_ORDERS = 40  # orders named on the summary page; the manifest lists them all


class _Sink:
    """A write-only stream for zipfile (no tell, no seek: it writes data descriptors), drained as it fills."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        chunks, self.chunks = self.chunks, []
        yield from chunks


@dataclass(frozen=True)
class _File:
    number: int
    evidence: Evidence
    order_id: str
    name: str


def packet_name(appeal: Appeal) -> str:
    return f"appeal-{appeal.store.code}-{appeal.pk}.zip"


def packet_stream(
    appeal: Appeal, *, exporter, now: datetime | None = None, checklist: Checklist | None = None
) -> Iterator[bytes]:
    """The packet's bytes, in chunks. Logs the export (custody of each file and of the appeal) before the
    first byte: a packet that was sent is a packet that was recorded."""
    now = now or timezone.now()
    checklist = checklist or appeal_checklist(appeal)
    cases = list(appeal.cases.select_related("order", "shipment", "store").order_by("pk"))
    files = _files(cases)
    manifest = _manifest(appeal, cases, files, checklist, exporter=exporter, now=now)
    CustodyEntry.objects.bulk_create(
        [
            *(CustodyEntry(evidence=item.evidence, appeal=appeal, action=CustodyAction.EXPORT, actor=exporter,
                           at=now, detail=item.name) for item in files),
            CustodyEntry(appeal=appeal, action=CustodyAction.EXPORT, actor=exporter, at=now, detail=packet_name(appeal)),
        ],
        batch_size=1000,
    )  # fmt: skip
    moved = {"status": "exported"} if appeal.status == "draft" else {}
    Appeal.objects.filter(pk=appeal.pk).update(exported_at=now, exported_by=exporter, **moved)
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        entries: list[tuple[str, Iterator[bytes]]] = [
            (
                "manifest.json",
                iter([json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()]),
            ),
            ("summary.pdf", iter([_summary_pdf(appeal, cases, files, checklist, now)])),
            ("system/tracking.csv", _tracking_csv(cases)),
            ("system/messages.csv", _messages_csv(cases)),
            ("system/timeline.csv", _timeline_csv(cases)),
            ("system/compensation.csv", _compensation_csv(cases)),
            *((f"files/{item.name}", _file_chunks(item.evidence)) for item in files),
        ]
        for name, chunks in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            with archive.open(info, "w", force_zip64=True) as out:
                for chunk in chunks:
                    out.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _files(cases: list[Case]) -> list[_File]:
    orders = {case.pk: case.order.platform_order_id if case.order_id else f"case{case.pk}" for case in cases}
    evidence = (
        Evidence.objects.filter(case__in=cases, tombstoned_at__isnull=True)
        .select_related("uploaded_by")
        .order_by("case_id", "uploaded_at", "pk")
    )
    out, seen = [], {}
    for number, item in enumerate(evidence, start=1):
        order = orders[item.case_id]
        seen[order] = seen.get(order, 0) + 1
        extension = item.file.name.rsplit(".", 1)[-1]
        out.append(_File(number, item, order, f"{_safe(order)}_{seen[order]:02d}_{item.kind}.{extension}"))
    return out


def _safe(value: str) -> str:
    return "".join(char if char.isalnum() or char in "-_" else "-" for char in value)[:64]


def _file_chunks(evidence: Evidence) -> Iterator[bytes]:
    with default_storage.open(evidence.file.name, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _manifest(
    appeal: Appeal, cases: list[Case], files: list[_File], checklist: Checklist, *, exporter, now
) -> dict:
    scenario = appeal.scenario
    return {
        "format": "afterdesk-appeal-packet/1",
        "store": {"code": appeal.store.code, "name": appeal.store.name, "platform": appeal.store.platform},
        "appeal": {"id": appeal.pk, "scenario": scenario.code, "scenario_name": scenario.name,
                   "deadline": _iso(appeal.deadline), "penalty_date": _iso(appeal.penalty_date),
                   "complete": checklist.complete, "exported_incomplete_because": appeal.override_reason or None},
        "checklist": [{"item": item.code, "required": item.required, "met": item.met} for item in checklist.items],
        "cases": [
            {"case_id": case.pk, "type": case.type, "order_id": case.order.platform_order_id if case.order_id else None,
             "placed_at": _iso(case.order.placed_at) if case.order_id else None,
             "ship_by": _iso(case.order.ship_by) if case.order_id else None,
             "carrier": case.shipment.carrier if case.shipment_id else None,
             "tracking_number": case.shipment.tracking_number if case.shipment_id else None,
             "booked_at": _iso(case.shipment.booked_at) if case.shipment_id else None,
             "first_acceptance_scan": _iso(case.shipment.accepted_at) if case.shipment_id else None,
             "first_contact_due_at": _iso(case.first_contact_due_at), "first_contact_at": _iso(case.first_contact_at)}
            for case in cases
        ],
        "files": [
            {"number": item.number, "path": f"files/{item.name}", "kind": item.evidence.kind,
             "sha256": item.evidence.sha256, "size": item.evidence.size, "content_type": item.evidence.content_type,
             "original_name": item.evidence.original_name, "captured_at": _iso(item.evidence.captured_at),
             "capture_time_from": item.evidence.capture_source, "uploaded_at": _iso(item.evidence.uploaded_at),
             "uploaded_by": item.evidence.uploaded_by.get_username() if item.evidence.uploaded_by_id else item.evidence.uploaded_via or None,
             "case_id": item.evidence.case_id, "order_id": item.order_id}
            for item in files
        ],
        "exported_at": now.isoformat(),
        "exported_by": exporter.get_username() if exporter is not None else None,
    }  # fmt: skip


def _csv(header: list[str], rows) -> Iterator[bytes]:
    """The rows as CSV, every cell through csv_safe: carriers' texts, buyers' messages and notes are written
    by others, and a reviewer opens these files in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield ("\ufeff" + buffer.getvalue()).encode()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(cell) for cell in row])
        yield buffer.getvalue().encode()


def _tracking_csv(cases: list[Case]) -> Iterator[bytes]:
    parcels = {case.shipment_id: case for case in cases if case.shipment_id}
    orders = {pk: case.order.platform_order_id for pk, case in parcels.items()}
    events = (
        TrackingEvent.objects.filter(shipment_id__in=list(parcels))
        .select_related("shipment")
        .order_by("shipment_id", "checkpoint_at", "pk")
    )
    return _csv(
        ["order_id", "carrier", "tracking_number", "checkpoint_at", "tag", "subtag", "carrier_code", "carrier_text",
         "location", "source", "provider_event_key", "received_at"],
        ([orders[e.shipment_id], e.shipment.carrier, e.shipment.tracking_number, e.checkpoint_at.isoformat(), e.tag,
          e.subtag, e.raw_code, e.raw_text, e.location, e.source, e.dedupe_key, e.received_at.isoformat()]
         for e in events.iterator(chunk_size=2000)),
    )  # fmt: skip


def _messages_csv(cases: list[Case]) -> Iterator[bytes]:
    """Every buyer message: queued, sent (handed to the mail server or the storefront) and, for the
    storefront's, when the storefront said it was posted to the buyer (its event's acknowledgement)."""
    messages = (
        BuyerMessage.objects.filter(case__in=cases)
        .select_related("case__order")
        .order_by("case_id", "created_at", "pk")
    )
    posted = {}
    for payload, at in StorefrontEvent.objects.filter(
        case__in=cases, kind=StorefrontEventType.MESSAGE_REQUESTED, delivered_at__isnull=False
    ).values_list("payload", "delivered_at"):
        message = payload.get("message") if isinstance(payload, dict) else None
        if isinstance(message, dict) and isinstance(message.get("id"), int):
            posted[message["id"]] = at
    return _csv(
        ["case_id", "order_id", "channel", "language", "status", "queued_at", "sent_at", "posted_to_buyer_at",
         "recipient", "body"],
        ([m.case_id, m.case.order.platform_order_id if m.case.order_id else "", m.channel, m.language, m.status,
          m.created_at.isoformat(), _iso(m.sent_at) or "", _iso(posted.get(m.pk)) or "", m.recipient, m.body]
         for m in messages.iterator(chunk_size=2000)),
    )  # fmt: skip


def _timeline_csv(cases: list[Case]) -> Iterator[bytes]:
    events = (
        CaseEvent.objects.filter(case__in=cases)
        .select_related("actor")
        .order_by("case_id", "created_at", "pk")
    )
    with translation.override("en"):
        rows = [
            [e.case_id, e.created_at.isoformat(), e.kind, e.actor.get_username() if e.actor_id else "system",
             event_message(e)]
            for e in events.iterator(chunk_size=2000)
        ]  # fmt: skip
    return _csv(["case_id", "at", "kind", "actor", "message"], iter(rows))


def _compensation_csv(cases: list[Case]) -> Iterator[bytes]:
    rows = Compensation.objects.filter(case__in=cases).order_by("case_id", "proposed_at", "pk")
    return _csv(
        ["case_id", "kind", "status", "amount", "currency", "proposed_at", "executed_at", "platform_reference"],
        ([c.case_id, c.kind, c.status, f"{c.amount:.2f}", c.currency, c.proposed_at.isoformat(), _iso(c.executed_at) or "",
          c.platform_reference] for c in rows),
    )  # fmt: skip


# --- the summary page ------------------------------------------------------------------------------------


CJK_FONT = "STSong-Light"  # a CID font every PDF reader has: nothing is embedded


def pdf_font(*, cjk: bool) -> str:
    """The font a PDF draws its text in: Helvetica, or the CID font for Chinese (registered once)."""
    if not cjk:
        return "Helvetica"
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def _summary_pdf(
    appeal: Appeal, cases: list[Case], files: list[_File], checklist: Checklist, now: datetime
) -> bytes:
    """One page (two at most for a long appeal): what was booked when, what the carrier did and did not do,
    what the seller did, the evidence by number. In the store's language: Chinese when it is Chinese (a CID
    font every PDF reader has), English otherwise."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    language = "zh-hans" if (appeal.store.default_language or "").lower().startswith("zh") else "en"
    font = pdf_font(cjk=language == "zh-hans")
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    _width, height = A4
    y = height - 56

    def line(text: str, size: int = 10, gap: int = 15) -> None:
        nonlocal y
        if y < 56:
            pdf.showPage()
            y = height - 56
        pdf.setFont(font, size)
        shown = text if font != "Helvetica" else text.encode("latin-1", "replace").decode("latin-1")
        pdf.drawString(48, y, shown[:110])
        y -= gap

    zone = appeal.store.tzinfo

    def at(value) -> str:
        return timezone.localtime(value, zone).strftime("%Y-%m-%d %H:%M") if value else "—"

    with translation.override(language):
        line(_("Appeal: %(scenario)s") % {"scenario": appeal.scenario.name}, 14, 22)
        line(
            _("%(store)s (%(platform)s), %(count)d orders; exported %(at)s")
            % {
                "store": appeal.store.name,
                "platform": appeal.store.get_platform_display(),
                "count": len(cases),
                "at": at(now),
            }
        )
        if appeal.deadline:
            line(_("The platform's deadline: %(at)s") % {"at": at(appeal.deadline)})
        line("", gap=8)
        line(_("What happened"), 12, 18)
        for case in cases[:SUMMARY_ORDERS]:
            parcel = case.shipment if case.shipment_id else None
            order = case.order
            if parcel is not None:
                line(
                    _(
                        "%(order)s: booked %(booked)s, ship by %(ship_by)s, carrier's first scan %(scan)s%(gap)s (%(carrier)s %(number)s)"
                    )
                    % {
                        "order": order.platform_order_id,
                        "booked": at(parcel.booked_at),
                        "ship_by": at(order.ship_by),
                        "scan": at(parcel.accepted_at) if parcel.accepted_at else _("never"),
                        "gap": _gap(parcel.booked_at, parcel.accepted_at),
                        "carrier": parcel.carrier,
                        "number": parcel.tracking_number,
                    },
                    9,
                    13,
                )
            else:
                line(
                    _("%(order)s: placed %(placed)s, ship by %(ship_by)s")
                    % {
                        "order": order.platform_order_id,
                        "placed": at(order.placed_at),
                        "ship_by": at(order.ship_by),
                    },
                    9,
                    13,
                )
        if len(cases) > SUMMARY_ORDERS:
            line(
                _("… and %(more)d more orders: see manifest.json.") % {"more": len(cases) - SUMMARY_ORDERS},
                9,
                13,
            )
        line("", gap=8)
        line(_("What the seller did"), 12, 18)
        contacted = sum(1 for item in checklist.items if item.code == "buyer_contacted" and item.met)
        line(
            _("Buyers contacted: %(state)s. Evidence attached: %(count)d files.")
            % {"state": _("yes") if contacted else _("see system/messages.csv"), "count": len(files)},
            9,
            13,
        )
        line("", gap=8)
        line(_("Evidence"), 12, 18)
        for item in files[:60]:
            line(
                f"[{item.number}] {item.name}  sha256 {item.evidence.sha256[:16]}…  {at(item.evidence.captured_at)}",
                8,
                11,
            )
        if len(files) > 60:
            line(_("… and %(more)d more files: see manifest.json.") % {"more": len(files) - 60}, 8, 11)
        line("", gap=8)
        line(_("Checklist: %(percent)d%% of the required items.") % {"percent": checklist.percent}, 10)
        for item in checklist.items:
            mark = "[x]" if item.met else "[ ]"
            line(f"{mark} {item_label(item.code)}" + ("" if item.required else _(" (optional)")), 9, 13)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _gap(booked, accepted) -> str:
    """`, 31 h after the booking`: the number a reviewer looks for first."""
    if not booked or not accepted:
        return ""
    hours = (accepted - booked).total_seconds() / 3600
    return _(", %(hours).1f h after the booking") % {"hours": hours}
