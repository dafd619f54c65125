"""Evidence files on a case: checked from their bytes, stored once, never changed, every use logged.

An upload is refused, with a message naming why, unless its content is a kind of file an appeal reviewer
opens (a photo, a PDF, a video, a recording, a plain-text chat log) and its bytes say what its name says:
no HTML, SVG, scripts, executables or archives, no PDF that runs JavaScript, no image that is also a ZIP or a
page, no name with a path or a control character, nothing empty or over the limits (per file and per case).
The type is read from the content (its signature), never from the name or the browser's word.

At upload the SHA-256, the size, the detected type and the capture time are computed once, from the bytes:
an image's EXIF DateTimeOriginal when it has one, else the time the uploader entered, else the upload time,
and which of the three it was. The stored name is ours (a UUID), the original name is kept for display.
Files are immutable: there is no update path; removal is a tombstone with a reason and the bytes stay for
the retention period. Every view, download and export is a line of the custody log.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import unicodedata
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

import filetype
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image, UnidentifiedImageError

from cases.choices import CaptureSource, CaseEventKind, CustodyAction, EvidenceKind
from cases.models import Case, CaseEvent, CustodyEntry, Evidence
from cases.texts import Text, event_data
from cases.workflow import CaseWorkflowError, actor_role_require
from portal.models import ApiKey

log = logging.getLogger(__name__)

NAME_MAX = 200
THUMBNAIL_SIZE = (320, 320)
PIXELS_MAX = 60_000_000  # a 60-megapixel photo: anything bigger is a decompression bomb, not a photo
READ_CHUNK = 1024 * 1024

# Detected type -> the extensions a file of that type may carry.
ALLOWED: dict[str, tuple[str, ...]] = {
    "image/jpeg": ("jpg", "jpeg", "jpe"),
    "image/png": ("png",),
    "image/webp": ("webp",),
    "image/gif": ("gif",),
    "image/heic": ("heic", "heif"),
    "image/heif": ("heif", "heic"),
    "application/pdf": ("pdf",),
    "video/mp4": ("mp4", "m4v"),
    "video/quicktime": ("mov", "qt"),
    "audio/mpeg": ("mp3",),
    "audio/mp4": ("m4a", "mp4"),
    "audio/x-wav": ("wav",),
    "audio/ogg": ("ogg", "oga", "opus"),
    "text/plain": ("txt", "csv", "log", "text"),
}
IMAGES = {"image/jpeg", "image/png", "image/webp", "image/gif"}  # the ones we read (EXIF) and thumbnail
# Shown inline in the browser; every other type is served as an attachment.
INLINE = IMAGES | {"application/pdf"}
_MARKUP = re.compile(
    rb"<\s*(script|html|svg|iframe|object|embed|!doctype|\?xml|body|meta)\b|javascript:", re.I
)
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|EmbeddedFile|RichMedia|XFA)\b")
_EXIF_TIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")


class EvidenceRefused(CaseWorkflowError):
    """An upload refused, with the reason to show; nothing was stored."""


@dataclass(frozen=True)
class Checked:
    content_type: str
    extension: str
    sha256: str
    size: int
    captured_at: datetime | None  # from EXIF, when the file said
    exif_offset: bool  # the EXIF time carried its own offset


def name_check(name: str) -> str:
    """The original name, or EvidenceRefused: no path, no control characters, not empty or too long."""
    name = unicodedata.normalize("NFC", name or "")
    if not name.strip() or name.strip(".") == "":
        raise EvidenceRefused(_("The file has no name."))
    if len(name) > NAME_MAX:
        raise EvidenceRefused(_("A file name is at most %(max)d characters.") % {"max": NAME_MAX})
    if "/" in name or "\\" in name:
        raise EvidenceRefused(_("A file name may not contain a path (/ or \\)."))
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        raise EvidenceRefused(_("A file name may not contain control or invisible characters."))
    return name.strip()


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") else ""


def content_check(name: str, data: bytes) -> Checked:
    """What the bytes are, checked against what the name says and against everything an attacker hides in
    a file. EvidenceRefused names the problem."""
    size = len(data)
    if size == 0:
        raise EvidenceRefused(_("The file is empty."))
    if size > settings.EVIDENCE_MAX_BYTES:
        raise EvidenceRefused(
            _("The file is %(size)s; the limit is %(max)s per file.")
            % {"size": _mb(size), "max": _mb(settings.EVIDENCE_MAX_BYTES)}
        )
    kind = filetype.guess(data[:8192])
    mime = kind.mime if kind is not None else _text_or_none(data)
    if mime is None:
        raise EvidenceRefused(
            _(
                "This kind of file is not kept as evidence: send a photo, a PDF, a video, a recording or a text file."
            )
        )
    if mime not in ALLOWED:
        raise EvidenceRefused(_refusal_for(mime))
    extension = _extension(name)
    if extension not in ALLOWED[mime]:
        raise EvidenceRefused(
            _("The content is %(type)s but the name says .%(ext)s: rename it or send the right file.")
            % {"type": mime, "ext": extension or "(none)"}
        )
    if mime != "text/plain" and _MARKUP.search(data):
        raise EvidenceRefused(
            _("The file hides web page or script content in a %(type)s: refused.") % {"type": mime}
        )
    tail = data[-66_000:]
    if b"PK\x05\x06" in tail and b"PK\x03\x04" in data:
        raise EvidenceRefused(_("The file is also a ZIP archive (a polyglot): refused."))
    if mime == "application/pdf" and _PDF_ACTIVE.search(data):
        raise EvidenceRefused(
            _("The PDF contains scripts, launch actions or embedded files: print it to a plain PDF.")
        )
    captured, offset = (None, False)
    if mime in IMAGES:
        captured, offset = _image_check(data)
    return Checked(
        content_type=mime, extension=ALLOWED[mime][0] if extension not in ALLOWED[mime] else extension,
        sha256=hashlib.sha256(data).hexdigest(), size=size, captured_at=captured, exif_offset=offset,
    )  # fmt: skip


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _text_or_none(data: bytes) -> str | None:
    """Plain UTF-8 text without markup (a chat log, a CSV), or None."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if _MARKUP.search(data) or text.lstrip().startswith("<"):
        return "text/html"
    return "text/plain"


def _refusal_for(mime: str) -> str:
    if mime in ("text/html", "image/svg+xml", "application/xml", "text/xml"):
        return _("Web pages and SVG images can carry scripts and are not kept: send a photo or a PDF of it.")
    if mime.startswith(("application/vnd.openxmlformats", "application/vnd.ms-", "application/vnd.oasis",
                        "application/msword", "application/rtf")):  # fmt: skip
        return _(
            "Office documents can carry macros and links and are not kept: save it as a PDF and send that."
        )
    if mime.startswith(("application/x-", "application/vnd.microsoft")) or mime in (
        "application/zip", "application/gzip", "application/x-tar", "application/x-7z-compressed",
        "application/x-rar-compressed", "application/x-bzip2", "application/x-xz", "application/zstd",
    ):  # fmt: skip
        return _("Archives and programs are not kept as evidence (%(type)s): send each file by itself.") % {
            "type": mime
        }
    return _(
        "%(type)s files are not kept as evidence: send a photo, a PDF, a video, a recording or a text file."
    ) % {"type": mime}


def _image_check(data: bytes) -> tuple[datetime | None, bool]:
    """Open the image for real (a truncated or hostile one fails here) and read its EXIF capture time."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > PIXELS_MAX:
                    raise EvidenceRefused(
                        _("The image is larger than any photo (%(w)d x %(h)d): refused.")
                        % {"w": image.width, "h": image.height}
                    )
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                exif = image.getexif().get_ifd(0x8769)
        except EvidenceRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise EvidenceRefused(
                _("The image is larger than any photo (a decompression bomb): refused.")
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise EvidenceRefused(
                _("The image cannot be read (%(error)s): send the original photo.")
                % {"error": type(exc).__name__}
            ) from None
    return _exif_time(exif.get(36867), exif.get(36881))


def _exif_time(original: object, offset: object) -> tuple[datetime | None, bool]:
    match = _EXIF_TIME.match(original) if isinstance(original, str) else None
    if match is None:
        return None, False
    try:
        value = datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None, False
    if isinstance(offset, str) and re.match(r"^[+-]\d{2}:\d{2}$", offset.strip()):
        sign = 1 if offset.strip()[0] == "+" else -1
        hours, minutes = offset.strip()[1:].split(":")
        from datetime import timezone as tz

        return value.replace(tzinfo=tz(sign * timedelta(hours=int(hours), minutes=int(minutes)))), True
    return value, False  # naive: the store's time zone decides (the camera's clock had no zone)


def _read(upload: BinaryIO, limit: int) -> bytes:
    """Read at most limit + 1 bytes (so an oversize file is known without holding all of it)."""
    chunks, total = [], 0
    while total <= limit:
        chunk = upload.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def evidence_add(
    *,
    case: Case,
    upload: BinaryIO,
    name: str,
    kind: str,
    actor: AbstractBaseUser | None = None,
    key: ApiKey | None = None,
    captured_at: datetime | None = None,
    description: str = "",
    now: datetime | None = None,
) -> Evidence:
    """Check and store one file as evidence on `case`. `captured_at` is the time the uploader entered (used
    when the file has no EXIF time). Writes the file, its row, a custody line and a timeline entry, or
    nothing: a refusal stores no byte (a file written before a failing commit is deleted)."""
    now = now or timezone.now()
    if actor is not None:
        actor_role_require(actor, case.store_id)
    if kind not in EvidenceKind.values:
        raise EvidenceRefused(_("Unknown kind of evidence: %(kind)s.") % {"kind": kind})
    if len(description) > 2000:
        raise EvidenceRefused(_("A description is at most 2,000 characters."))
    original = name_check(name)
    data = _read(upload, settings.EVIDENCE_MAX_BYTES)
    checked = content_check(original, data)
    if captured_at is not None and captured_at > now + timedelta(minutes=5):
        raise EvidenceRefused(_("The capture time is in the future."))
    if checked.captured_at is not None:
        moment = checked.captured_at
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=case.store.tzinfo)
        source, captured = CaptureSource.EXIF, moment
    elif captured_at is not None:
        source, captured = CaptureSource.ENTERED, captured_at
    else:
        source, captured = CaptureSource.UPLOAD, now
    stored = default_storage.save(
        f"evidence/{case.store_id}/{uuid.uuid4().hex}.{checked.extension}", ContentFile(data)
    )
    thumbnail = _thumbnail(case.store_id, data) if checked.content_type in IMAGES else ""
    try:
        with transaction.atomic():
            used = Evidence.objects.filter(case=case).aggregate(total=Sum("size"))["total"] or 0
            if used + checked.size > settings.EVIDENCE_CASE_MAX_BYTES:
                raise EvidenceRefused(
                    _("This case already holds %(used)s of evidence; %(max)s is the limit per case.")
                    % {"used": _mb(used), "max": _mb(settings.EVIDENCE_CASE_MAX_BYTES)}
                )
            evidence = Evidence.objects.create(
                store_id=case.store_id, case=case, kind=kind, file=stored, thumbnail=thumbnail,
                original_name=original, sha256=checked.sha256, size=checked.size,
                content_type=checked.content_type, captured_at=captured, capture_source=source,
                uploaded_by=actor, uploaded_via=key.name if key else "", uploaded_at=now,
                description=description.strip(),
            )  # fmt: skip
            custody_log(evidence=evidence, action=CustodyAction.UPLOAD, actor=actor, key=key, now=now)
            text = Text(
                gettext_noop("Evidence added: %(kind)s, %(name)s."), kind=_kind_text(kind), name=original
            )
            CaseEvent.objects.create(
                case=case, kind=CaseEventKind.EVIDENCE, actor=actor, created_at=now, message=str(text),
                data=event_data(text, {"evidence_id": evidence.pk, "sha256": checked.sha256, "size": checked.size}),
            )  # fmt: skip
    except BaseException:
        default_storage.delete(stored)
        if thumbnail:
            default_storage.delete(thumbnail)
        raise
    return evidence


def _kind_text(kind: str) -> Text:
    from django.utils import translation

    with translation.override("en"):
        return Text(str(dict(EvidenceKind.choices).get(kind, kind)))


def _thumbnail(store_id: int, data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail(THUMBNAIL_SIZE)
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
    except Exception:  # a thumbnail is a convenience: the evidence is the original
        log.warning("no thumbnail for an evidence image", exc_info=True)
        return ""
    return default_storage.save(
        f"evidence/{store_id}/thumbs/{uuid.uuid4().hex}.jpg", ContentFile(out.getvalue())
    )


def evidence_tombstone(
    *, evidence: Evidence, actor: AbstractBaseUser, reason: str, now: datetime | None = None
) -> Evidence:
    """Withdraw a file from the case and its appeals, with a reason. The bytes stay (retention), the row
    and its custody log stay; only the tombstone marks it. Idempotent."""
    now = now or timezone.now()
    actor_role_require(actor, evidence.store_id)
    reason = (reason or "").strip()
    if not reason:
        raise EvidenceRefused(_("Say why the file is withdrawn: the custody log keeps it."))
    with transaction.atomic():
        locked = Evidence.objects.select_for_update().get(pk=evidence.pk)
        if locked.tombstoned_at is not None:
            return locked
        locked.tombstoned_at, locked.tombstoned_by, locked.tombstone_reason = now, actor, reason[:1000]
        locked.save(update_fields=["tombstoned_at", "tombstoned_by", "tombstone_reason"])
        custody_log(
            evidence=locked, action=CustodyAction.TOMBSTONE, actor=actor, now=now, detail=reason[:500]
        )
        text = Text(
            gettext_noop("Evidence withdrawn: %(name)s (%(reason)s)."),
            name=locked.original_name,
            reason=reason,
        )
        CaseEvent.objects.create(case_id=locked.case_id, kind=CaseEventKind.EVIDENCE, actor=actor, created_at=now,
                                 message=str(text), data=event_data(text, {"evidence_id": locked.pk}))  # fmt: skip
    return locked


def custody_log(
    *,
    action: str,
    evidence: Evidence | None = None,
    appeal=None,
    actor: AbstractBaseUser | None = None,
    key: ApiKey | None = None,
    now: datetime | None = None,
    detail: str = "",
) -> CustodyEntry:
    """One line of the custody log: who did what with a file (or an appeal's packet), when."""
    return CustodyEntry.objects.create(
        evidence=evidence, appeal=appeal, action=action, actor=actor, api_key=key.name if key else "",
        at=now or timezone.now(), detail=detail,
    )  # fmt: skip


def evidence_withdrawn_prune(*, now: datetime | None = None, batch: int = 500) -> int:
    """Delete the bytes (and thumbnails) of files withdrawn more than EVIDENCE_WITHDRAWN_RETENTION_DAYS ago.
    The row, its hash and its custody log stay, with a custody line for the deletion. Safe to repeat after a
    crash: a file already gone is simply gone (the storage's delete of a missing name is a no-op)."""
    days = settings.EVIDENCE_WITHDRAWN_RETENTION_DAYS
    if days == 0:
        return 0
    now = now or timezone.now()
    due = Evidence.objects.filter(
        tombstoned_at__lt=now - timedelta(days=days), bytes_deleted_at__isnull=True
    ).order_by("pk")
    done = 0
    while rows := list(due[:batch]):
        for evidence in rows:
            default_storage.delete(evidence.file.name)
            if evidence.thumbnail:
                default_storage.delete(evidence.thumbnail.name)
            with transaction.atomic():
                evidence.bytes_deleted_at = now
                evidence.save(update_fields=["bytes_deleted_at"])
                custody_log(evidence=evidence, action=CustodyAction.PURGE, now=now,
                            detail=f"{days} days after the withdrawal")  # fmt: skip
            done += 1
    return done
