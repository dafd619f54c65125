"""The post-live review as a PDF: the same rows as its page, in the reader's language.

Drawn with reportlab's canvas as the appeal packet's summary is (cases.packet): Helvetica for Latin text, the
STSong-Light CID font (which every PDF reader has, so nothing is embedded) when the reader reads Chinese or
any text (a session's title, a SKU's name) is outside what the standard fonts draw (cp1252).
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from cases.packet import pdf_font
from cases.reporting.models import LiveReview
from cases.reporting.review import problem_label, recommendation_text, review_sections
from tracking.models import LiveSession

MARGIN = 48
PROBLEM_IDS_SHOWN = 20


def review_pdf(review: LiveReview, *, session: LiveSession) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfgen import canvas

    figures = review.figures
    sections = review_sections(figures)
    recommendations = [text for text in map(recommendation_text, review.recommendations) if text]
    problems = figures.get("problems", [])
    zone = session.store.tzinfo
    title = _("Post-live review: %(title)s") % {"title": session.title}
    texts = [title, session.store.name, session.host, *recommendations, *(problem_label(p) for p in problems)]
    texts += [row.label + row.value for section in sections for row in section.rows]
    font = pdf_font(cjk=(translation.get_language() or "").startswith("zh") or not _helvetica_can(texts))

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=0)
    pdf.setTitle(title)
    width, height = A4
    y = height - MARGIN

    def room(needed: float) -> None:
        nonlocal y
        if y - needed < MARGIN:
            pdf.showPage()
            y = height - MARGIN

    def line(text: str, size: int = 10, gap: int = 15, indent: int = 0) -> None:
        nonlocal y
        for part in _wrap(text, font, size, width - 2 * MARGIN - indent, pdfmetrics) or [""]:
            room(gap)
            pdf.setFont(font, size)
            pdf.drawString(MARGIN + indent, y, part)
            y -= gap

    def pair(label: str, value: str) -> None:
        nonlocal y
        room(13)
        pdf.setFont(font, 9)
        pdf.drawString(MARGIN + 8, y, label[:70])
        pdf.drawRightString(width - MARGIN, y, value[:60])
        y -= 13

    def at(value: str | None) -> str:
        moment = parse_datetime(value) if value else None
        return timezone.localtime(moment, zone).strftime("%Y-%m-%d %H:%M") if moment else "—"

    meta = figures.get("session", {})
    line(title, 15, 22)
    line(
        _("%(store)s · host %(host)s · %(start)s to %(end)s (%(zone)s)")
        % {
            "store": session.store.name, "host": session.host, "start": at(meta.get("started_at")),
            "end": at(meta.get("ended_at")), "zone": session.store.timezone,
        },
        9,
    )  # fmt: skip
    line(_("Figures as of %(at)s.") % {"at": at(meta.get("computed_at"))}, 9, 20)

    line(_("Recommendations"), 12, 18)
    for text in recommendations or [_("Nothing stood out: no figure passed a recommendation's threshold.")]:
        line(f"• {text}", 9, 13, indent=8)
    y -= 6
    for section in sections:
        if not section.rows:
            continue
        room(40)
        line(section.title, 12, 18)
        for row in section.rows:
            pair(row.label, row.value)
        y -= 6
    if problems:
        room(40)
        line(_("Top problems"), 12, 18)
        for problem in problems:
            line(f"{problem_label(problem)}: {problem['count']}", 9, 13, indent=8)
            ids = ", ".join(f"#{pk}" for pk in problem["case_ids"][:PROBLEM_IDS_SHOWN])
            more = problem["count"] - min(len(problem["case_ids"]), PROBLEM_IDS_SHOWN)
            line(_("Cases %(ids)s") % {"ids": ids} + (f" (+{more})" if more > 0 else ""), 8, 12, indent=16)
    if figures.get("usual_source") == "raw":
        y -= 6
        line(_("The usual rates were counted from the parcels themselves: the report tables had no rows for those days."), 8, 12)  # fmt: skip
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _helvetica_can(texts: Iterable[str]) -> bool:
    """Whether the standard fonts can draw every text: reportlab draws them in WinAnsi (cp1252)."""
    try:
        for text in texts:
            str(text).encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _wrap(text: str, font: str, size: int, width: float, pdfmetrics) -> list[str]:
    """Lines of `text` no wider than `width`: broken at a space when there is one (Latin), anywhere else
    (Chinese has no spaces to break at)."""
    lines: list[str] = []
    current = ""
    for char in str(text):
        if pdfmetrics.stringWidth(current + char, font, size) <= width:
            current += char
            continue
        cut = current.rfind(" ")
        if cut > 0 and char != " ":
            lines.append(current[:cut])
            current = current[cut + 1 :] + char
        else:
            lines.append(current)
            current = char.lstrip()
    if current:
        lines.append(current)
    return lines
