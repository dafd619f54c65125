from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_url, parse_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("garbage", "must start with postgres:// or sqlite:///"),
        ("mysql://root@localhost/afterdesk", "must start with postgres:// or sqlite:///"),
        ("postgres://localhost", "names no database"),
        ("postgres://user@db:notaport/afterdesk", "malformed"),
    ],
)
def test_a_malformed_database_url_fails_loudly_with_the_reason(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        parse_database_url(url)


def test_a_database_password_never_appears_in_the_error():
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_database_url("postgres://app:s3cret-pass@db:bad/afterdesk")
    assert "s3cret-pass" not in str(caught.value)


def test_good_database_urls_parse():
    assert parse_database_url("postgres://postgres@127.0.0.1:5432/afterdesk")["NAME"] == "afterdesk"
    assert parse_database_url("sqlite:////tmp/afterdesk.sqlite3")["ENGINE"] == "django.db.backends.sqlite3"


def test_typed_helpers_refuse_bad_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be a boolean"):
        env_bool("X_FLAG", False)
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be a whole number"):
        env_int("X_NUM", 1)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "DATABASE_URL",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "PUBLIC_URL",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    clean["AFTERDESK_TESTING"] = "0"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_portal_refuses_to_start_on_a_malformed_database_url():
    result = _manage("check", DATABASE_URL="postgres//missing-colon")

    assert result.returncode != 0
    assert "DATABASE_URL must start with postgres:// or sqlite:///" in result.stderr


def test_check_deploy_is_clean_with_production_values(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="afterdesk.example.com",
        PUBLIC_URL="https://afterdesk.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("public_url", "warning"),
    [("http://127.0.0.1:8000", "afterdesk.W001"), ("http://afterdesk.example.com", "afterdesk.W002")],
)
def test_check_deploy_warns_of_a_public_url_providers_cannot_reach_safely(tmp_path, public_url, warning):
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="afterdesk.example.com", PUBLIC_URL=public_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )  # fmt: skip

    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


@pytest.mark.parametrize(
    "raw", ["desk.example.com", "ftp://desk.example.com", "https://", "https://x.com/?a=1"]
)
def test_a_public_url_that_is_not_an_absolute_http_url_fails_loudly(monkeypatch, raw):
    monkeypatch.setenv("X_URL", raw)
    with pytest.raises(ImproperlyConfigured, match="X_URL must be an absolute http:// or https:// URL"):
        env_url("X_URL", "http://127.0.0.1:8000")


def test_a_public_url_loses_its_trailing_slash_so_paths_can_follow(monkeypatch):
    monkeypatch.setenv("X_URL", " https://desk.example.com/afterdesk/ ")
    assert env_url("X_URL", "http://127.0.0.1:8000") == "https://desk.example.com/afterdesk"
    monkeypatch.delenv("X_URL")
    assert env_url("X_URL", "http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_files_go_to_the_filesystem_unless_a_bucket_is_named(monkeypatch):
    from portal.env import env_file_storage

    monkeypatch.delenv("FILES_S3_BUCKET", raising=False)
    assert env_file_storage("FILES") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_a_bucket_without_django_storages_or_with_a_bad_endpoint_fails_loudly(monkeypatch):
    import importlib.util

    from portal.env import env_file_storage

    monkeypatch.setenv("FILES_S3_BUCKET", "afterdesk-evidence")
    if importlib.util.find_spec("storages") is None:
        with pytest.raises(ImproperlyConfigured, match=r'pip install "afterdesk\[s3\]"'):
            env_file_storage("FILES")
        return
    monkeypatch.setenv("FILES_S3_ENDPOINT_URL", "minio:9000")
    with pytest.raises(ImproperlyConfigured, match="FILES_S3_ENDPOINT_URL must be an http"):
        env_file_storage("FILES")
    monkeypatch.setenv("FILES_S3_ENDPOINT_URL", "https://minio.internal:9000")
    monkeypatch.setenv("FILES_S3_PREFIX", "/evidence/")
    storage = env_file_storage("FILES")
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["location"] == "evidence" and storage["OPTIONS"]["file_overwrite"] is False
