"""Evidence files on a case: what is recorded at upload, that they never change, that every use is in the
custody log, that hostile files are refused with their reason, and that they are served safely and only to
their store."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cases.choices import CaseEventKind
from cases.evidence import EvidenceRefused, evidence_add, evidence_tombstone
from cases.models import CaseEvent, CustodyEntry, Evidence
from tests.api import Api, fields
from tests.evidence_files import HOSTILE, jpeg, pdf, png
from tests.factories import make_case, make_membership, make_user


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()]


def add(case, data: bytes, name: str, *, kind="other", actor=None, **kwargs) -> Evidence:
    return evidence_add(case=case, upload=io.BytesIO(data), name=name, kind=kind, actor=actor, **kwargs)


def upload(client: Client, case, *files: tuple[str, bytes], kind: str = "other", **data):
    headers = {name: data.pop(name) for name in list(data) if name.startswith("HTTP_")}
    body = {"file": [SimpleUploadedFile(name, content) for name, content in files], "kind": kind, **data}
    return client.post(reverse("cases:evidence_upload", args=[case.pk]), body, **headers)


# --- what an upload records ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_photo_keeps_its_hash_size_type_and_exif_capture_time_in_the_stores_zone(store, agent):
    case = make_case(store=store, type="pickup_overdue")
    photo = jpeg(taken="2026:11:12 09:15:00")

    evidence = add(case, photo, "door.jpg", kind="cctv_still", actor=agent)

    assert evidence.sha256 == hashlib.sha256(photo).hexdigest()
    assert (evidence.size, evidence.content_type, evidence.capture_source) == (
        len(photo),
        "image/jpeg",
        "exif",
    )
    # the camera's clock had no zone: the store's (Kuala Lumpur, +08:00) is the one it kept
    assert evidence.captured_at == datetime(2026, 11, 12, 1, 15, tzinfo=UTC)
    assert evidence.uploaded_by == agent and evidence.original_name == "door.jpg"
    with default_storage.open(evidence.file.name, "rb") as handle:
        assert handle.read() == photo
    assert evidence.file.name.startswith(f"evidence/{store.pk}/") and "door" not in evidence.file.name
    assert evidence.thumbnail and default_storage.exists(evidence.thumbnail.name)
    assert CustodyEntry.objects.get(evidence=evidence).action == "upload"
    event = CaseEvent.objects.get(case=case, kind=CaseEventKind.EVIDENCE)
    assert "door.jpg" in event.message and "CCTV still" in event.message


@pytest.mark.django_db
def test_an_exif_offset_is_honoured(store, agent):
    case = make_case(store=store)
    evidence = add(case, jpeg(taken="2026:11:12 09:15:00", offset="+07:00"), "a.jpg", actor=agent)
    assert evidence.captured_at == datetime(2026, 11, 12, 2, 15, tzinfo=UTC)


@pytest.mark.django_db
def test_without_exif_the_entered_time_is_used_and_said(store, agent):
    case = make_case(store=store)
    entered = timezone.now() - timedelta(hours=5)

    with_entered = add(case, png(), "screen.png", actor=agent, captured_at=entered)
    neither = add(case, b"10:02 carrier: no truck today\n", "chat.txt", kind="carrier_chat", actor=agent)

    assert (with_entered.capture_source, with_entered.captured_at) == ("entered", entered)
    assert neither.capture_source == "upload" and neither.captured_at == neither.uploaded_at
    assert neither.content_type == "text/plain" and not neither.thumbnail


@pytest.mark.django_db
def test_a_capture_time_in_the_future_is_refused(store, agent):
    case = make_case(store=store)
    with pytest.raises(EvidenceRefused, match="future"):
        add(case, png(), "a.png", actor=agent, captured_at=timezone.now() + timedelta(days=1))
    assert not Evidence.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_the_page_accepts_several_files_at_once_with_an_entered_capture_time(agent_client, store):
    case = make_case(store=store, type="pickup_overdue")

    response = upload(
        agent_client, case, ("one.jpg", jpeg(taken=None)), ("two.png", png()),
        kind="handover_photo", captured_at="2026-11-12T10:00",
    )  # fmt: skip

    assert response.status_code == 302
    evidence = list(Evidence.objects.filter(case=case))
    assert [e.original_name for e in evidence] == ["one.jpg", "two.png"]
    # entered without a zone: the store's
    assert {e.captured_at for e in evidence} == {datetime(2026, 11, 12, 2, 0, tzinfo=UTC)}
    assert {e.capture_source for e in evidence} == {"entered"}
    page = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "one.jpg" in page and "two.png" in page


@pytest.mark.django_db
def test_the_page_refuses_an_upload_without_a_file_or_with_a_bad_time(agent_client, store):
    case = make_case(store=store)
    url = reverse("cases:evidence_upload", args=[case.pk])
    assert agent_client.post(url, {"kind": "other"}, HTTP_HX_REQUEST="true").status_code == 400
    bad = upload(agent_client, case, ("a.png", png()), captured_at="yesterday", HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "not a date" in bad.content.decode()
    unknown = upload(agent_client, case, ("a.png", png()), kind="selfie", HTTP_HX_REQUEST="true")
    assert unknown.status_code == 400 and "Unknown kind" in unknown.content.decode()
    assert not Evidence.objects.exists() and stored_files() == []


# --- immutable; withdrawn by a tombstone --------------------------------------------------------------------


@pytest.mark.django_db
def test_evidence_has_no_update_or_delete_path(store, agent):
    evidence = add(make_case(store=store), png(), "a.png", actor=agent)

    evidence.original_name = "renamed.png"
    with pytest.raises(ValueError, match="immutable"):
        evidence.save()
    with pytest.raises(ValueError, match="immutable"):
        evidence.save(update_fields=["sha256"])
    with pytest.raises(ValueError, match="never deleted"):
        evidence.delete()
    evidence.refresh_from_db()
    assert evidence.original_name == "a.png"


@pytest.mark.django_db
def test_withdrawing_needs_a_reason_keeps_the_bytes_and_logs_it(agent_client, store, agent):
    case = make_case(store=store)
    evidence = add(case, png(), "wrong-order.png", actor=agent)
    url = reverse("cases:evidence_withdraw", args=[evidence.pk])

    refused = agent_client.post(url, {"reason": "  "}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 400 and "Say why" in refused.content.decode()

    assert agent_client.post(url, {"reason": "Photo of another order"}).status_code == 302
    evidence.refresh_from_db()
    assert evidence.tombstoned_at and evidence.tombstoned_by == agent
    assert evidence.tombstone_reason == "Photo of another order"
    assert default_storage.exists(evidence.file.name)  # the bytes stay for the retention period
    again = evidence_tombstone(evidence=evidence, actor=agent, reason="twice")
    assert again.tombstone_reason == "Photo of another order"  # idempotent
    assert list(evidence.custody.values_list("action", flat=True)) == ["upload", "tombstone"]
    page = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Photo of another order" in page


# --- hostile files ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "data", "words"), HOSTILE, ids=[repr(entry[0])[:40] for entry in HOSTILE])
def test_a_hostile_file_is_refused_with_its_reason_and_nothing_is_stored(
    agent_client, store, name, data, words
):
    case = make_case(store=store)
    events = CaseEvent.objects.filter(case=case).count()

    response = _raw_upload(agent_client, case, name, data)
    if name == "":  # a part without a file name is what a browser sends for "no file chosen"
        words = "Choose a file"

    assert response.status_code == 400, response.content[:300]
    assert words in response.content.decode()
    assert not Evidence.objects.exists() and not CustodyEntry.objects.exists()
    assert CaseEvent.objects.filter(case=case).count() == events
    assert stored_files() == []


def test_the_hostile_corpus_is_large_and_varied():
    assert len(HOSTILE) >= 50
    assert len({name for name, _, _ in HOSTILE}) == len(HOSTILE)


def _raw_upload(client: Client, case, name: str, data: bytes, kind: str = "other"):
    """A multipart body written by hand, so the file name goes out exactly as a hostile client sends it
    (a browser would strip a path; an attacker does not)."""
    boundary = "----afterdesk-test-boundary"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.generic(
        "POST", reverse("cases:evidence_upload", args=[case.pk]), body,
        content_type=f"multipart/form-data; boundary={boundary}", HTTP_HX_REQUEST="true",
    )  # fmt: skip


@pytest.mark.django_db
def test_over_the_per_file_limit_is_refused_and_the_body_is_not_kept(agent_client, store, settings):
    settings.EVIDENCE_MAX_BYTES = 2_000
    case = make_case(store=store)
    response = _raw_upload(agent_client, case, "chat.txt", b"carrier: not today\n" * 200)
    assert response.status_code == 400 and "limit is" in response.content.decode()
    assert not Evidence.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_over_the_per_case_limit_is_refused(agent, store, settings):
    case = make_case(store=store)
    first = jpeg()
    settings.EVIDENCE_CASE_MAX_BYTES = len(first) + 10
    add(case, first, "one.jpg", actor=agent)
    with pytest.raises(EvidenceRefused, match="limit per case"):
        add(case, jpeg(color=(0, 0, 0)), "two.jpg", actor=agent)
    assert Evidence.objects.count() == 1
    assert len(stored_files()) == 2  # the first file and its thumbnail; nothing of the second


@pytest.mark.django_db
def test_a_pdf_and_an_mp4_and_a_text_log_are_accepted(agent, store):
    case = make_case(store=store)
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    kinds = [
        add(case, pdf(), "booking.pdf", kind="booking_confirmation", actor=agent).content_type,
        add(case, mp4, "handover.mp4", kind="handover_video", actor=agent).content_type,
        add(case, "司机说今天不来\n".encode(), "chat.txt", kind="carrier_chat", actor=agent).content_type,
    ]
    assert kinds == ["application/pdf", "video/mp4", "text/plain"]


# --- serving -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_is_shown_inline_sandboxed_and_the_view_is_logged(agent_client, store, agent):
    evidence = add(make_case(store=store), jpeg(), "door.jpg", actor=agent)

    response = agent_client.get(reverse("cases:evidence_file", args=[evidence.pk]))

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Content-Disposition"].startswith("inline")
    assert b"".join(response.streaming_content) == default_storage.open(evidence.file.name).read()
    thumb = agent_client.get(reverse("cases:evidence_thumbnail", args=[evidence.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert thumb["X-Content-Type-Options"] == "nosniff"
    entry = evidence.custody.get(action="view")
    assert entry.actor == agent


@pytest.mark.django_db
def test_anything_but_an_image_or_a_pdf_is_an_attachment_and_downloads_are_logged(agent_client, store, agent):
    case = make_case(store=store)
    log = add(case, b"carrier: sorry, tomorrow\n", "chat.txt", kind="carrier_chat", actor=agent)
    photo = add(case, png(), "p.png", actor=agent)

    text = agent_client.get(reverse("cases:evidence_file", args=[log.pk]))
    forced = agent_client.get(reverse("cases:evidence_file", args=[photo.pk]), {"download": "1"})

    assert (
        text["Content-Disposition"].startswith("attachment")
        and 'filename="chat.txt"' in text["Content-Disposition"]
    )
    assert text["X-Content-Type-Options"] == "nosniff"
    assert forced["Content-Disposition"].startswith("attachment")
    assert log.custody.filter(action="download", actor=agent).count() == 1
    assert photo.custody.filter(action="download", actor=agent).count() == 1
    custody = agent_client.get(reverse("cases:evidence_custody", args=[log.pk])).content.decode()
    assert "Downloaded" in custody and "Uploaded" in custody and agent.username in custody


@pytest.mark.django_db
def test_a_file_is_never_at_a_public_media_url(client, store, agent):
    evidence = add(make_case(store=store), png(), "a.png", actor=agent)
    assert client.get(reverse("cases:evidence_file", args=[evidence.pk])).status_code == 302  # to log in
    assert client.get(f"/media/{evidence.file.name}").status_code == 404
    assert client.get(f"{settings.MEDIA_URL}{evidence.file.name}").status_code == 404


# --- another store's evidence ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_stores_files_are_404_everywhere(agent_client, store, other_store):
    owner = make_user("bob")
    make_membership(user=owner, store=other_store)
    theirs_case = make_case(store=other_store)
    theirs = add(theirs_case, jpeg(), "theirs.jpg", actor=owner)

    for name in ("evidence_file", "evidence_thumbnail", "evidence_custody"):
        assert agent_client.get(reverse(f"cases:{name}", args=[theirs.pk])).status_code == 404, name
    withdraw = agent_client.post(reverse("cases:evidence_withdraw", args=[theirs.pk]), {"reason": "mine now"})
    assert withdraw.status_code == 404
    assert _raw_upload(agent_client, theirs_case, "x.png", png()).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_live and Evidence.objects.filter(case=theirs_case).count() == 1
    assert not theirs.custody.exclude(action="upload").exists()  # nothing of ours in their log


# --- the API ---------------------------------------------------------------------------------------------


def _api_upload(api: Api, case_id: int, name: str, data: bytes, **extra):
    body = {
        "file": SimpleUploadedFile(name, data),
        "kind": extra.pop("kind", "booking_confirmation"),
        **extra,
    }
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in extra.pop("headers", {}).items()}
    return api.client.post(f"/api/v1/cases/{case_id}/evidence", body, **headers)


@pytest.mark.django_db
def test_the_api_takes_a_file_and_answers_what_was_stored(store):
    api = Api(store)
    case = make_case(store=store, type="pickup_overdue")
    photo = jpeg()

    response = _api_upload(api, case.pk, "booking.jpg", photo, captured_at="2026-11-12T09:00:00+08:00")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(photo).hexdigest() and body["size"] == len(photo)
    assert (body["kind"], body["content_type"], body["capture_time_from"]) == (
        "booking_confirmation",
        "image/jpeg",
        "exif",
    )
    evidence = Evidence.objects.get()
    assert evidence.uploaded_via == api.key.name and evidence.uploaded_by is None
    assert evidence.custody.get().api_key == api.key.name
    listed = api.get(f"cases/{case.pk}/evidence").json()["results"]
    assert [(e["id"], e["sha256"], e["withdrawn_at"]) for e in listed] == [(body["id"], body["sha256"], None)]


@pytest.mark.django_db
def test_the_api_refuses_bad_uploads_with_a_problem_and_stores_nothing(store, other_store):
    api = Api(store)
    case = make_case(store=store)
    theirs = make_case(store=other_store)

    assert "file" in fields(_api_upload(api, case.pk, "x.html", b"<html><script>1</script></html>"))
    assert "kind" in fields(_api_upload(api, case.pk, "a.png", png(), kind="selfie"))
    assert "captured_at" in fields(_api_upload(api, case.pk, "a.png", png(), captured_at="2026-11-12 09:00"))
    assert "file" in fields(api.client.post(f"/api/v1/cases/{case.pk}/evidence", {"kind": "other"}))
    traversal = _raw_api_upload(api, case.pk, "../../../etc/passwd.txt", b"root:x:0:0\n")
    assert "path" in fields(traversal)["file"]
    assert _api_upload(api, theirs.pk, "a.png", png()).status_code == 404
    assert not Evidence.objects.exists() and stored_files() == []


def _raw_api_upload(api: Api, case_id: int, name: str, data: bytes, *, boundary="b0undary", **headers):
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\nother\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return api.client.generic(
        "POST", f"/api/v1/cases/{case_id}/evidence", body,
        content_type=f"multipart/form-data; boundary={boundary}", **headers,
    )  # fmt: skip


@pytest.mark.django_db
def test_an_api_upload_retried_with_its_idempotency_key_is_stored_once(store):
    api = Api(store)
    case = make_case(store=store)
    photo = png()
    first = _raw_api_upload(api, case.pk, "a.png", photo, boundary="first-7d2a", HTTP_IDEMPOTENCY_KEY="up-1")
    # a client draws a new multipart boundary on every send: still the same request
    again = _raw_api_upload(api, case.pk, "a.png", photo, boundary="second-91fe", HTTP_IDEMPOTENCY_KEY="up-1")
    assert first.status_code == again.status_code == 201, first.content
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    other = _raw_api_upload(api, case.pk, "b.png", photo, boundary="third-0000", HTTP_IDEMPOTENCY_KEY="up-1")
    assert other.status_code == 422  # the same key for another file
    assert Evidence.objects.count() == 1


@pytest.mark.django_db
def test_an_api_upload_over_the_limit_is_a_413_before_it_is_read(store, settings):
    settings.EVIDENCE_MAX_BYTES = 1_000
    api = Api(store)
    case = make_case(store=store)
    response = _api_upload(api, case.pk, "big.jpg", os.urandom(1_100_000))
    assert response.status_code == 413
    assert not Evidence.objects.exists()


@pytest.mark.django_db
def test_a_withdrawn_files_bytes_are_deleted_after_the_retention_and_its_record_stays(
    agent_client, store, agent, settings
):
    from cases.evidence import evidence_withdrawn_prune

    settings.EVIDENCE_WITHDRAWN_RETENTION_DAYS = 30
    case = make_case(store=store)
    old = add(case, jpeg(), "wrong.jpg", actor=agent)
    recent = add(case, png(), "recent.png", actor=agent)
    live = add(case, b"chat\n", "chat.txt", actor=agent)
    evidence_tombstone(
        evidence=old, actor=agent, reason="Other order", now=timezone.now() - timedelta(days=31)
    )
    evidence_tombstone(evidence=recent, actor=agent, reason="Blurry", now=timezone.now() - timedelta(days=29))

    assert evidence_withdrawn_prune() == 1
    assert evidence_withdrawn_prune() == 0  # done once

    old.refresh_from_db()
    assert old.bytes_deleted_at and old.sha256 and not default_storage.exists(old.file.name)
    assert not default_storage.exists(old.thumbnail.name)
    assert default_storage.exists(recent.file.name) and default_storage.exists(live.file.name)
    assert list(old.custody.order_by("pk").values_list("action", flat=True)) == [
        "upload",
        "tombstone",
        "purge",
    ]
    gone = agent_client.get(reverse("cases:evidence_file", args=[old.pk]))
    assert gone.status_code == 410 and old.sha256 in gone.content.decode()
    page = agent_client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "file deleted after the retention period" in page
    settings.EVIDENCE_WITHDRAWN_RETENTION_DAYS = 0
    evidence_tombstone(evidence=live, actor=agent, reason="x", now=timezone.now() - timedelta(days=900))
    assert evidence_withdrawn_prune() == 0  # 0 keeps them for ever


@pytest.mark.django_db
def test_an_upload_larger_than_a_case_holds_is_refused_before_it_is_parsed(agent_client, store, settings):
    settings.EVIDENCE_CASE_MAX_BYTES = 1024 * 1024
    case = make_case(store=store)
    response = _raw_upload(agent_client, case, "huge.txt", b"x" * (2 * 1024 * 1024 + 10))
    assert response.status_code == 413 and "larger than a case holds" in response.content.decode()
    assert not Evidence.objects.exists() and stored_files() == []
