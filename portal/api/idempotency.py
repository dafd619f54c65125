"""`Idempotency-Key` on POST: a retried request with the same key and body gets the first response again,
marked `Idempotent-Replayed: true`, and nothing is done twice.

The key is claimed (a row, committed) before the work starts; the response is stored in the work's own
transaction, so the two are one fact: either the work committed with its response, or neither did and the
key is free again. A second request while the first still runs is a 409 (retry shortly); the same key with
another body, or on another endpoint, is a 422. Only successful (2xx) responses are kept: a refused request
writes nothing, so its retry is simply run again. Keys are per store and kept 24 h (`idempotency_prune`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

import orjson
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from portal.api.problems import ApiError
from portal.models import IdempotencyKey, Store

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
TTL = timedelta(hours=24)
# A claim older than this whose request never finished belongs to a process that died: it may be taken over.
ABANDONED_AFTER = timedelta(minutes=2)
KEY_MAX_LENGTH = 255
_KEPT_HEADERS = ("Content-Type", "Location")


def fingerprint(*, method: str, path: str, body: bytes, content_type: str = "") -> str:
    """What makes two requests the same request: method, path and body (JSON compared by value, so key
    order and spacing do not matter; a multipart body without its boundary, which a client draws anew for
    every send of the same upload)."""
    boundary = (
        re.search(r"boundary=\"?([^\";]+)", content_type) if content_type.startswith("multipart/") else None
    )
    if boundary:
        body = body.replace(boundary.group(1).encode("latin-1", "replace"), b"")
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body.strip() else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def key_validate(key: str) -> str:
    key = key.strip()
    if not key or len(key) > KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            f"{HEADER} must be 1 to {KEY_MAX_LENGTH} printable ASCII characters (a UUID is a good one).",
            status=400,
            code="invalid_idempotency_key",
        )
    return key


def idempotency_claim(
    *,
    store: Store,
    key: str,
    method: str,
    path: str,
    body: bytes,
    content_type: str = "",
    now: datetime | None = None,
) -> IdempotencyKey | HttpResponse:
    """Claim `key` for this request (the returned row), or answer it: the stored response of the first
    request with this key and body. Raises ApiError 422 for the key reused with another request, 409 while
    the first is still running."""
    now = now or timezone.now()
    key = key_validate(key)
    digest = fingerprint(method=method, path=path, body=body, content_type=content_type)
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                store=store, key=key, fingerprint=digest, method=method, path=path[:500], created_at=now
            )
    except IntegrityError:
        pass
    record = IdempotencyKey.objects.filter(store=store, key=key).first()
    if record is None:  # released between our insert and our read: try once more
        return idempotency_claim(store=store, key=key, method=method, path=path, body=body, now=now)
    expired = record.created_at < now - TTL
    abandoned = record.status_code is None and record.created_at < now - ABANDONED_AFTER
    if expired or (abandoned and record.fingerprint == digest):
        taken = IdempotencyKey.objects.filter(pk=record.pk, created_at=record.created_at).update(
            fingerprint=digest, method=method, path=path[:500], created_at=now, status_code=None,
            response_body=b"", response_headers={}, completed_at=None,
        )  # fmt: skip
        if taken:
            record.refresh_from_db()
            return record
        raise _in_progress()
    if record.fingerprint != digest:
        raise ApiError(
            f"This {HEADER} was used for another request in the last 24 hours ({record.method} "
            f"{record.path}, with another body). Use a new key for a new request.",
            status=422,
            code="idempotency_key_reused",
        )
    if record.status_code is None:
        raise _in_progress()
    response = HttpResponse(bytes(record.response_body), status=record.status_code)
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED] = "true"
    response[HEADER] = key
    return response


def _in_progress() -> ApiError:
    return ApiError(
        f"A request with this {HEADER} is still being processed; retry in a moment.",
        status=409,
        code="idempotency_in_progress",
        headers={"Retry-After": "1"},
    )


def idempotency_complete(
    record: IdempotencyKey, response: HttpResponse, *, now: datetime | None = None
) -> None:
    """Keep a 2xx response for replays; release the key after any other. Call it inside the work's
    transaction, so the response is stored if and only if the work committed."""
    if 200 <= response.status_code < 300:
        record.status_code = response.status_code
        record.response_body = bytes(response.content)
        record.response_headers = {
            name: response[name] for name in _KEPT_HEADERS if response.has_header(name)
        }
        record.completed_at = now or timezone.now()
        record.save(update_fields=["status_code", "response_body", "response_headers", "completed_at"])
    else:
        idempotency_release(record)


def idempotency_release(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk, status_code__isnull=True).delete()


def idempotency_prune(*, now: datetime | None = None) -> int:
    """Forget keys older than 24 h. Returns how many."""
    now = now or timezone.now()
    return IdempotencyKey.objects.filter(created_at__lt=now - TTL).delete()[0]
