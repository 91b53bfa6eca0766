"""What was pushed through /v2/ is covered by GC and fsck like everything else in the store."""

from __future__ import annotations

import json

import pytest

from imagestore.services import fsck, gc
from tests.imagestore.registryapi.test_conformance import (
    OCI_MANIFEST,
    Registry,
    digest_of,
    pushed,  # noqa: F401 - fixture
    pusher,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db


def _push_artifact(client: Registry) -> tuple[str, str]:
    empty, notes = b"{}", b"release notes"
    for blob in (empty, notes):
        assert client("POST", f"/v2/team/notes/blobs/uploads/?digest={digest_of(blob)}", blob).status_code == 201
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "text/plain",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(empty), "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": digest_of(notes), "size": len(notes)}],
    }).encode()
    assert client("PUT", "/v2/team/notes/manifests/1", manifest, content_type=OCI_MANIFEST).status_code == 201
    return digest_of(manifest), digest_of(notes)


def test_gc_keeps_what_manifests_need_and_frees_it_once_they_are_deleted(pusher: Registry, pushed) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    manifest, notes = _push_artifact(pusher)
    referenced = gc.all_referenced()
    assert {manifest, notes, pushed["digest"], digest_of(pushed["layer"])} <= referenced
    assert gc.referenced_among([notes, manifest]) == {notes, manifest}
    assert pusher("DELETE", f"/v2/team/notes/manifests/{manifest}").status_code == 202
    assert pusher("DELETE", "/v2/team/app/manifests/1").status_code == 202
    left = gc.all_referenced()
    assert not {manifest, notes, pushed["digest"], digest_of(pushed["layer"])} & left
    gc.collect_garbage(grace_seconds=0)
    assert pusher("HEAD", f"/v2/team/notes/blobs/{notes}").status_code == 404


def test_fsck_checks_manifest_blobs(pusher: Registry, pushed, store_root) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    manifest, notes = _push_artifact(pusher)
    assert fsck.check().broken == 0
    digest = notes.split(":", 1)[1]
    (store_root / "sha256" / digest[:2] / digest).write_bytes(b"tampered")
    report = fsck.check()
    assert [f.subject for f in report.findings if f.broken] == [notes]


def test_an_interrupted_upload_leaves_only_its_temporary_files_which_housekeeping_removes(pusher: Registry,  # noqa: F811
                                                                                        store_root) -> None:  # type: ignore[no-untyped-def]
    start = pusher("POST", "/v2/team/app/blobs/uploads/")
    assert pusher("PATCH", start["Location"], b"half a layer", CONTENT_RANGE="0-11").status_code == 202
    left = sorted(p.name for p in (store_root / "tmp").iterdir())
    assert len(left) == 2 and left[0].startswith("upload-") and left[1] == left[0] + ".state"  # bytes, hash state
    assert not list((store_root / "sha256").glob("*/*")) if (store_root / "sha256").exists() else True
    gc.collect_garbage(grace_seconds=0)
    assert not list((store_root / "tmp").iterdir())
    assert pusher("GET", start["Location"]).status_code == 404


def test_pushes_and_deletes_of_artifacts_are_in_the_audit_trail(pusher: Registry) -> None:  # noqa: F811
    from imagestore.models import AuditEvent

    manifest, _notes = _push_artifact(pusher)
    assert pusher("DELETE", f"/v2/team/notes/manifests/{manifest}").status_code == 202
    events = list(AuditEvent.objects.filter(object_type="manifest").order_by("time").values_list(
        "action", "username", "interface"))
    assert events == [("push", "olive", "registry"), ("delete", "olive", "registry")]
