"""This dashboard as a registry at /v2/, driven by real clients against a live server (gunicorn and
a Celery worker): what they push is an Image here, what they pull is byte for byte what was pushed."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from imagestore.models import Image, RepoDigest, Tag
from tests.integration.registry import build_busybox_layout, require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _layout_manifest(layout: Path) -> tuple[str, bytes]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    return digest, (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


@pytest.fixture
def dashboard(start_dashboard) -> str:  # type: ignore[no-untyped-def]
    url: str = start_dashboard()
    return url


def test_skopeo_copy_to_and_from_the_dashboard_keeps_digests(dashboard: str, operator, member,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    host = dashboard.split("://", 1)[1]
    layout = build_busybox_layout(tmp_path / "umoci")
    source_digest, source_manifest = _layout_manifest(layout)
    subprocess.run([skopeo, "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "olive:pw-operator",
                    f"oci:{layout}:busybox", f"docker://{host}/team/app:1"], check=True, capture_output=True)
    # The pushed manifest is an image of the store, with its tag and digest.
    config = json.loads(source_manifest)["config"]["digest"]
    image = Image.objects.get(pk=config)
    assert Tag.objects.filter(image=image, name="1", repository__registry=host, repository__path="team/app").exists()
    assert RepoDigest.objects.filter(image=image, digest=source_digest).exists()

    # A member pulls it (through the token flow), getting the same manifest bytes and blobs.
    raw = subprocess.run([skopeo, "inspect", "--raw", "--tls-verify=false", "--creds", "mia:pw-member",
                          f"docker://{host}/team/app:1"], check=True, capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == source_digest
    out = tmp_path / "out"
    subprocess.run([skopeo, "copy", "-q", "--src-tls-verify=false", "--src-creds", "mia:pw-member",
                    f"docker://{host}/team/app:1", f"oci:{out}:copy"], check=True, capture_output=True)
    copied_digest, copied = _layout_manifest(out)
    assert copied_digest == source_digest and copied == source_manifest

    # A member may not push; anonymous may not pull a repository that is not public.
    refused = subprocess.run([skopeo, "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "mia:pw-member",
                              f"oci:{layout}:busybox", f"docker://{host}/team/other:1"], capture_output=True)
    assert refused.returncode != 0
    anonymous = subprocess.run([skopeo, "inspect", "--raw", "--tls-verify=false", "--no-creds",
                                f"docker://{host}/team/app:1"], capture_output=True)
    assert anonymous.returncode != 0
