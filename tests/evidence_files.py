"""Files for the evidence tests, made here from bytes: real photos (with and without EXIF), a PDF, a text
log, and a corpus of hostile files, each with the words its refusal must say."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

from PIL import Image


def jpeg(
    *,
    taken: str | None = "2026:11:12 09:15:00",
    offset: str | None = None,
    size=(64, 48),
    color=(200, 30, 30),
) -> bytes:
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    if taken:
        ifd = exif.get_ifd(0x8769)
        ifd[36867] = taken
        if offset:
            ifd[36881] = offset
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes() if taken else b"")
    return out.getvalue()


def png(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def pdf(extra: bytes = b"") -> bytes:
    body = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R " + extra + b">> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")  # fmt: skip
    return body


def zipped(name: str = "a.txt", data: bytes = b"hello") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 20_000_000)
    return out.getvalue()


def png_bomb() -> bytes:
    """A tiny PNG that says it is 30,000 x 30,000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 30_000 * 3) * 50)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def png_with_text(text: bytes) -> bytes:
    image = png()
    chunk_data = b"Comment\0" + text
    crc = zlib.crc32(b"tEXt" + chunk_data) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(chunk_data)) + b"tEXt" + chunk_data + struct.pack(">I", crc)
    return image[:-12] + chunk + image[-12:]


SCRIPT = b"<script>alert(document.cookie)</script>"

# (name, bytes, words the refusal says)
HOSTILE: list[tuple[str, bytes, str]] = [
    ("page.html", b"<!doctype html><html><body>" + SCRIPT + b"</body></html>", "Web pages"),
    ("page.htm", b"<html>" + SCRIPT + b"</html>", "Web pages"),
    ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>", "Web pages"),
    ("photo.png", b"<html>" + SCRIPT + b"</html>", "Web pages"),
    ("photo.jpg", b"<html><img src=x onerror=alert(1)></html>", "Web pages"),
    ("notes.txt", b"meeting notes " + SCRIPT, "Web pages"),
    ("link.txt", b"click <a href='javascript:alert(1)'>here</a>", "Web pages"),
    ("data.xml", b'<?xml version="1.0"?><note>hi</note>', "Web pages"),
    ("feed.txt", b"<rss><channel></channel></rss>", "Web pages"),
    ("jpeg-with-script.jpg", jpeg() + SCRIPT, "hides web page"),
    ("png-comment-script.png", png_with_text(SCRIPT), "hides web page"),
    (
        "pdf-javascript.pdf",
        pdf(b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >>"),
        "PDF contains scripts",
    ),
    ("pdf-js.pdf", pdf(b"/AA << /O << /JS (this.print()) >> >>"), "PDF contains scripts"),
    ("pdf-launch.pdf", pdf(b"/OpenAction << /S /Launch /F (cmd.exe) >>"), "PDF contains scripts"),
    (
        "pdf-embedded.pdf",
        pdf(b"/Names << /EmbeddedFiles << >> >> /EmbeddedFile 3 0 R"),
        "PDF contains scripts",
    ),
    ("pdf-richmedia.pdf", pdf(b"/RichMedia 4 0 R"), "PDF contains scripts"),
    (
        "gifar.gif",
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"
        b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;" + zipped(),
        "polyglot",
    ),
    ("png-zip.png", png() + zipped(), "polyglot"),
    ("jpeg-zip.jpg", jpeg() + zipped("evil.jsp", b"<% code %>"), "polyglot"),
    ("bomb.zip", zip_bomb(), "Archives"),
    ("plain.zip", zipped(), "Archives"),
    ("logs.gz", gzip.compress(b"log line\n" * 100), "Archives"),
    ("backup.tar", b"x" * 257 + b"ustar\x0000" + b"\0" * 250, "Archives"),
    ("archive.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\0" * 40, "Archives"),
    ("archive.rar", b"Rar!\x1a\x07\x01\x00" + b"\0" * 40, "Archives"),
    ("report.docx", zipped("word/document.xml", b"<w:document/>"), "Office documents"),
    ("sheet.xlsx", zipped("xl/workbook.xml", b"<workbook/>"), "Office documents"),
    ("app.jar", zipped("META-INF/MANIFEST.MF", b"Main-Class: X"), "Archives"),
    ("setup.exe", b"MZ\x90\x00\x03" + b"\0" * 200, "programs"),
    ("program.elf", b"\x7fELF\x02\x01\x01" + b"\0" * 100, "programs"),
    ("photo.jpg.exe", b"MZ\x90\x00" + b"\0" * 100, "programs"),
    ("run.sh", b"#!/bin/sh\nrm -rf /\n", "name says .sh"),
    ("tool.py", b"import os\nos.system('id')\n", "name says .py"),
    ("macro.js", b"fetch('/api/v1/store')\n", "name says .js"),
    ("picture.png", jpeg(), "name says .png"),
    ("scan.jpg", pdf(), "name says .jpg"),
    ("chat.jpg", b"the buyer said hello\n", "name says .jpg"),
    ("video.mp3", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\0" * 64, "name says .mp3"),
    ("noextension", png(), "name says .(none)"),
    ("garbage.bin", bytes(range(256)) * 8, "not kept"),
    ("utf16.txt", "hello".encode("utf-16"), "not kept"),
    ("icon.ico", b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\0" * 60, "not kept"),
    ("image.bmp", b"BM" + b"\0" * 60, "not kept"),
    ("font.woff", b"wOFF" + b"\0" * 60, "not kept"),
    ("module.wasm", b"\0asm\x01\0\0\0" + b"\0" * 20, "not kept"),
    ("truncated.jpg", jpeg()[:200], "cannot be read"),
    ("bomb.png", png_bomb(), "larger than any photo"),
    ("empty.jpg", b"", "empty"),
    ("../../etc/passwd.txt", b"root:x:0:0\n", "path"),
    ("..\\..\\boot.ini.txt", b"[boot loader]\n", "path"),
    ("evil\x00.jpg", jpeg(), "control"),
    ("invoice\u202egpj.txt", b"text\n", "control"),
    ("line\nbreak.txt", b"text\n", "control"),
    ("", png(), "no name"),
    (".", png(), "no name"),
    ("x" * 250 + ".png", png(), "at most 200"),
]
