"""Multipart uploads that keep the file name as the client sent it.

Django quietly cuts a path off an uploaded file's name and drops its control characters, so
`../../etc/passwd.txt` arrives as `passwd.txt` and `evil\\x00.jpg` as `evil.jpg`. That is safe for a
name used as a path; evidence never uses it as one (it is stored under a random name), and it would rather
refuse such a name with its reason than keep an upload whose sender tried something. These parsers
behave as Django's and DRF's, and give every uploaded file a `sent_name`: the name before Django's
clean-up. `sent_name(upload)` reads it (the cleaned name when the file came another way).
"""

from __future__ import annotations

import html
from io import BytesIO
from typing import Any

from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.encoding import force_str
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser
from rest_framework.request import Request


class NameKeepingMultiPartParser(MultiPartParser):
    _sent: str = ""

    def sanitize_file_name(self, file_name: str) -> str | None:
        self._sent = html.unescape(file_name)
        return super().sanitize_file_name(file_name) or ("unnamed" if self._sent else None)

    def handle_file_complete(self, old_field_name: Any, counters: list[int]) -> None:
        field = force_str(old_field_name, self._encoding, errors="replace")
        before = len(self._files.getlist(field))
        super().handle_file_complete(old_field_name, counters)
        uploads = self._files.getlist(field)
        if len(uploads) > before:
            uploads[-1].sent_name = self._sent


class NameKeepingDRFParser(DRFMultiPartParser):
    """DRF's multipart parser on NameKeepingMultiPartParser."""

    def parse(self, stream, media_type=None, parser_context=None) -> DataAndFiles:
        request: Request = (parser_context or {})["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            data, files = NameKeepingMultiPartParser(meta, stream, request.upload_handlers, encoding).parse()
        except MultiPartParserError as exc:
            raise ParseError(f"The multipart body cannot be read: {exc}") from None
        return DataAndFiles(data, files)


def form_parse_keeping_names(request: HttpRequest):
    """Parse a multipart form POST with NameKeepingMultiPartParser (into request.POST and request.FILES),
    then run the CSRF check Django would have run: for a view marked csrf_exempt only so that the CSRF
    middleware does not parse the body first. Returns the CSRF refusal (a 403 response) or None."""
    if request.content_type == "multipart/form-data" and not hasattr(request, "_files"):
        data = BytesIO(request._body) if hasattr(request, "_body") else request
        try:
            request._post, request._files = NameKeepingMultiPartParser(
                request.META, data, request.upload_handlers, request.encoding
            ).parse()
        except MultiPartParserError:
            request._mark_post_parse_error()
            raise
    return CsrfViewMiddleware(lambda _: None).process_view(request, None, (), {})


def sent_name(upload) -> str:
    return getattr(upload, "sent_name", None) or upload.name or ""
