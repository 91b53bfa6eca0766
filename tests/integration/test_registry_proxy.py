"""The pull-through cache: a /v2/ pull of a missing Docker Hub name fetches it from
REGISTRY_PROXY_REMOTE (a real docker-registry here) through the pull service, stores it and serves
it; the next pull is served from the store with the upstream stopped."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from imagestore.models import Image, Tag
from tests.imagestore.registryapi.test_conformance import OCI_MANIFEST, Registry, basic
from tests.integration.registry import allow_outbound, build_busybox_layout, skopeo_copy, start_registry

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_first_pull_fetches_upstream_the_second_is_local(member, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upstream = start_registry(tmp_path / "upstream")
    try:
        layout = build_busybox_layout(tmp_path / "umoci")
        skopeo_copy(f"oci:{layout}:busybox", f"docker://{upstream.host}/library/busybox:1.36")
        index = json.loads((layout / "index.json").read_text())
        upstream_digest = index["manifests"][0]["digest"]
        allow_outbound(upstream.host)
        settings.REGISTRY_PROXY_REMOTE = upstream.url
        client = Registry(basic("mia", "pw-member"))
        first = client("GET", "/v2/library/busybox/manifests/1.36", ACCEPT=OCI_MANIFEST)
        assert first.status_code == 200, first.content
        assert first["Docker-Content-Digest"] == upstream_digest
        assert "sha256:" + hashlib.sha256(first.content).hexdigest() == upstream_digest
        image = Image.objects.get(pk=first.json()["config"]["digest"])
        assert Tag.objects.filter(image=image, name="1.36", repository__registry="docker.io",
                                  repository__path="library/busybox").exists()
        # A name outside the proxied namespaces is not fetched; a tag upstream lacks is MANIFEST_UNKNOWN.
        assert client("GET", "/v2/someone/busybox/manifests/1.36").status_code == 404
        missing = client("GET", "/v2/library/busybox/manifests/2")
        assert (missing.status_code, missing.json()["errors"][0]["code"]) == (404, "MANIFEST_UNKNOWN")
    finally:
        upstream.stop()
    second = client("GET", "/v2/library/busybox/manifests/1.36", ACCEPT=OCI_MANIFEST)
    assert second.status_code == 200 and second.content == first.content
    for layer in first.json()["layers"]:
        response = client("GET", f"/v2/library/busybox/blobs/{layer['digest']}")
        assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == layer["digest"].split(":")[1]
