"""Typed readers for environment variables: every bad value fails loudly at startup, naming the variable."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

SUPPORTED_DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql", "pgsql"}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"{name} must be set.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str) -> str:
    """An absolute http(s) URL without a trailing slash (paths are appended to it)."""
    raw = os.environ.get(name)
    value = (default if raw is None else raw).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} must be an absolute http:// or https:// URL such as https://desk.example.com, got {raw!r}."
        )
    return value


def _redact(url: str) -> str:
    """The URL as it may appear in an error message: any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def parse_database_url(url: str) -> dict[str, Any]:
    """Turn a DATABASE_URL into Django's DATABASES entry, refusing anything we do not run on."""
    shown = _redact(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_DATABASE_SCHEMES:
        raise ImproperlyConfigured(f"DATABASE_URL must start with postgres:// or sqlite:///, got {shown!r}.")
    if scheme != "sqlite" and not (parts.hostname or parts.path.strip("/")):
        raise ImproperlyConfigured(f"DATABASE_URL {shown!r} names no host and no database.")
    if scheme != "sqlite" and not parts.path.strip("/"):
        raise ImproperlyConfigured(
            f"DATABASE_URL {shown!r} names no database (postgres://user@host:5432/NAME)."
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL {shown!r} is malformed: {exc}") from None
    return config


def env_database(name: str, default: str) -> dict[str, Any]:
    return parse_database_url(os.environ.get(name) or default)


def env_file_storage(prefix: str) -> dict[str, Any]:
    """The STORAGES entry for uploaded files: the filesystem (MEDIA_ROOT), or an S3-compatible bucket
    (AWS S3, MinIO, Cloudflare R2, Alibaba OSS ...) when `<prefix>_S3_BUCKET` is set, through django-storages
    (`pip install "afterdesk[s3]"`). Credentials come the standard AWS way (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, or the instance's role); objects are private and never overwritten."""
    bucket = os.environ.get(f"{prefix}_S3_BUCKET", "").strip()
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    try:
        import storages.backends.s3  # noqa: F401
    except ImportError:
        raise ImproperlyConfigured(
            f'{prefix}_S3_BUCKET is set but django-storages is not installed: pip install "afterdesk[s3]".'
        ) from None
    endpoint = os.environ.get(f"{prefix}_S3_ENDPOINT_URL", "").strip() or None
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ImproperlyConfigured(f"{prefix}_S3_ENDPOINT_URL must be an http:// or https:// URL.")
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": os.environ.get(f"{prefix}_S3_REGION", "").strip() or None,
            "location": os.environ.get(f"{prefix}_S3_PREFIX", "").strip().strip("/"),
            "default_acl": "private",
            "querystring_auth": True,  # never a public URL: the portal serves files through its own view
            "file_overwrite": False,
        },
    }
