"""docker pull against the real reference registry: plain, basic auth, token auth,
multi-platform indexes, mirrors, and faults (a cut download, a corrupt byte, a registry down)."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import threading
from pathlib import Path

import pytest

from imagestore.blobs import get_store
from imagestore.errors import BadRequest
from imagestore.models import Image, Layer, RegistryCredential, RepoDigest, Tag
from imagestore.oci.errors import DigestMismatch
from imagestore.oci.registry import AuthenticationRequired, RegistryError
from imagestore.secrets import encrypt
from imagestore.services.progress import RecordingProgress
from imagestore.services.pull import pull_image
from tests.integration.registry import (
    USERS,
    RegistryProxy,
    allow_outbound,
    build_busybox_layout,
    free_port,
    skopeo_copy,
    skopeo_inspect,
    start_registry,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_layout(tmp_path_factory.mktemp("umoci"))


def _seed(layout: Path, reference: str, **kwargs: str) -> tuple[str, str]:
    """Push the umoci-built image with skopeo; returns (config digest, manifest digest) per skopeo."""
    skopeo_copy(f"oci:{layout}:busybox", f"docker://{reference}", **kwargs)
    creds = kwargs.get("creds")
    config = skopeo_inspect(f"docker://{reference}", "--config", "--raw", creds=creds)
    info = json.loads(skopeo_inspect(f"docker://{reference}", creds=creds))
    return "sha256:" + hashlib.sha256(config).hexdigest(), info["Digest"]


def test_pull_gives_skopeos_config_digest_as_id_and_manifest_digest(layout: Path, registry) -> None:  # type: ignore[no-untyped-def]
    image_id, manifest_digest = _seed(layout, f"{registry.host}/tools/busybox:1")
    progress = RecordingProgress()
    result = pull_image(f"{registry.host}/tools/busybox:1", progress=progress)
    assert result.image.id == image_id
    assert str(result.manifest_digest) == manifest_digest
    assert RepoDigest.objects.get().digest == manifest_digest
    assert str(Tag.objects.select_related("repository").get()) == f"{registry.host}/tools/busybox:1"
    assert progress.lines[0] == "1: Pulling from tools/busybox"
    assert progress.lines[-1] == f"Status: Downloaded newer image for {registry.host}/tools/busybox:1"
    assert all(item["phase"] == "Pull complete" for item in progress.items.values())
    for layer in result.image.layers.all():
        assert get_store().exists(layer.digest)
    # Pulled again: nothing is downloaded.
    again = RecordingProgress()
    assert pull_image(f"{registry.host}/tools/busybox:1", progress=again).downloaded is False
    assert again.lines[-1] == f"Status: Image is up to date for {registry.host}/tools/busybox:1"
    assert again.items == {}


def test_pull_by_digest_records_no_tag(layout: Path, registry) -> None:  # type: ignore[no-untyped-def]
    image_id, manifest_digest = _seed(layout, f"{registry.host}/tools/busybox:1")
    result = pull_image(f"{registry.host}/tools/busybox@{manifest_digest}")
    assert result.image.id == image_id
    assert not Tag.objects.exists() and RepoDigest.objects.get().digest == manifest_digest


def test_second_image_sharing_layers_reports_already_exists(layout: Path, registry) -> None:  # type: ignore[no-untyped-def]
    _seed(layout, f"{registry.host}/a/busybox:1")
    _seed(layout, f"{registry.host}/b/busybox:1")
    pull_image(f"{registry.host}/a/busybox:1")
    progress = RecordingProgress()
    pull_image(f"{registry.host}/b/busybox:1", progress=progress)
    assert {item["phase"] for item in progress.items.values()} == {"Already exists"}
    assert Image.objects.count() == 1 and Tag.objects.count() == 2


def test_two_pulls_at_once_download_each_shared_blob_once(layout: Path, registry) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    _seed(layout, f"{registry.host}/a/busybox:1")
    _seed(layout, f"{registry.host}/b/busybox:1")
    results: list[object] = []

    def pull(name: str) -> None:
        try:
            results.append(pull_image(name))
        except Exception as exc:  # noqa: BLE001
            results.append(exc)
        finally:
            connection.close()

    proxy = FaultProxy(registry.host, "count")
    threads = [threading.Thread(target=pull, args=(f"{proxy.host}/{r}/busybox:1",)) for r in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proxy.stop()
    assert not [r for r in results if isinstance(r, Exception)], results
    layers = list(Image.objects.get().layers.all())
    for layer in layers:
        fetched = [p for p in proxy.blob_gets if p.endswith(layer.digest)]
        assert len(fetched) == 1, (layer.digest, proxy.blob_gets)


def test_missing_tag_is_a_clear_error(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError, match="manifest tools/none:1") as info:
        pull_image(f"{registry.host}/tools/none:1")
    assert info.value.temporary is False
    assert not Image.objects.exists()


def test_registry_down_is_a_clear_temporary_error(db) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    allow_outbound(f"127.0.0.1:{port}")  # allowed, and nothing listening there
    with pytest.raises(RegistryError, match="cannot reach") as info:
        pull_image(f"127.0.0.1:{port}/tools/busybox:1")
    assert info.value.temporary is True


def test_basic_auth_registry_needs_stored_credentials(layout: Path, tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    reg = start_registry(tmp_path / "basic", auth="htpasswd")
    try:
        image_id, _ = _seed(layout, f"{reg.host}/private/busybox:1", creds="alice:wonderland")
        with pytest.raises(AuthenticationRequired, match="authentication required"):
            pull_image(f"{reg.host}/private/busybox:1", owner=operator)
        RegistryCredential.objects.create(registry=reg.host, owner=operator, username="alice",
                                          secret_encrypted=encrypt(USERS["alice"]))
        assert pull_image(f"{reg.host}/private/busybox:1", owner=operator).image.id == image_id
    finally:
        reg.stop()


def test_token_auth_bearer_flow_against_the_real_registry(layout: Path, tmp_path: Path) -> None:
    reg = start_registry(tmp_path / "token", auth="token")
    try:
        image_id, _ = _seed(layout, f"{reg.host}/library/busybox:1", creds="alice:wonderland")
        reg.issuer.requests.clear()  # type: ignore[union-attr]
        result = pull_image(f"{reg.host}/library/busybox:1")  # anonymous pull is allowed by the issuer
        assert result.image.id == image_id
        assert {"account": None, "scopes": ["repository:library/busybox:pull"]} in reg.issuer.requests  # type: ignore[union-attr]
    finally:
        reg.stop()


def test_mirror_serves_docker_hub_names(layout: Path, registry, settings) -> None:  # type: ignore[no-untyped-def]
    image_id, _ = _seed(layout, f"{registry.host}/library/centos:6.6")
    settings.REGISTRY_MIRRORS = [f"http://127.0.0.1:{free_port()}", registry.url]  # a dead mirror, then ours
    progress = RecordingProgress()
    result = pull_image("centos:6.6", progress=progress)
    assert result.image.id == image_id
    assert str(Tag.objects.select_related("repository").get()) == "centos:6.6"
    assert any("failed" in line for line in progress.lines)  # the dead mirror was tried first


def test_multi_platform_index_pulls_the_requested_platform(tmp_path: Path, registry, make_image) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.layout import write_oci_layout
    from imagestore.services.remove import remove_image

    amd = make_image("multi:amd64", marker="amd")
    arm = _arm_image(make_image)
    layout = tmp_path / "multi"
    write_oci_layout([(amd, "amd64"), (arm, "arm64")], layout)
    index = json.loads((layout / "index.json").read_text())
    children = []
    for entry, platform in zip(index["manifests"], ({"os": "linux", "architecture": "amd64"},
                                                    {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                               strict=True):
        children.append({"mediaType": entry["mediaType"], "digest": entry["digest"], "size": entry["size"],
                         "platform": platform})
    image_index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                              "manifests": children}).encode()
    digest = hashlib.sha256(image_index).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(image_index)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                               "digest": f"sha256:{digest}", "size": len(image_index),
                               "annotations": {"org.opencontainers.image.ref.name": "multi"}})
    (layout / "index.json").write_text(json.dumps(index))
    skopeo_copy(f"oci:{layout}:multi", f"docker://{registry.host}/tools/multi:1", "--all")
    served = skopeo_inspect(f"docker://{registry.host}/tools/multi:1", "--raw")
    assert b"manifests" in served
    digest = hashlib.sha256(served).hexdigest()
    for image in (amd, arm):
        remove_image(image.id, force=True)
    result = pull_image(f"{registry.host}/tools/multi:1", platform="linux/arm64")
    assert result.image.id == arm.id and result.image.architecture == "arm64"
    assert str(result.manifest_digest) == f"sha256:{digest}"  # the RepoDigest is the index's
    result = pull_image(f"{registry.host}/tools/multi:1", platform="linux/amd64")
    assert result.image.id == amd.id
    with pytest.raises(BadRequest, match="no matching manifest for linux/s390x"):
        pull_image(f"{registry.host}/tools/multi:1", platform="linux/s390x")


def _arm_image(make_image) -> Image:  # type: ignore[no-untyped-def]
    """The same root filesystem, described as linux/arm64/v8 (loaded from a docker-archive)."""
    import io

    from imagestore.services.load import load_archive
    from tests.builders import simple_rootfs_tar, tar_bytes

    layer = simple_rootfs_tar("arm")
    config = json.dumps({"architecture": "arm64", "variant": "v8", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
                        ).encode()
    load_archive(io.BytesIO(tar_bytes([("l/layer.tar", layer), ("c.json", config), ("manifest.json", json.dumps(
        [{"Config": "c.json", "RepoTags": ["multi:arm64"], "Layers": ["l/layer.tar"]}]).encode())])))
    return Image.objects.get(architecture="arm64")


# --- faults, through a proxy in front of the registry --------------------------------------------

class FaultProxy(RegistryProxy):
    """Forwards to the registry; for blob GETs, cuts the first answer halfway or flips a byte."""

    def __init__(self, upstream: str, mode: str) -> None:
        self.mode = mode
        self.cut: set[str] = set()
        self.ranges: list[str] = []
        self.blob_gets: list[str] = []
        super().__init__(upstream)

    def forward(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        connection = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        if "Range" in headers:
            self.ranges.append(headers["Range"])
        connection.request(method, handler.path, headers=headers)
        response = connection.getresponse()
        if response.status in (301, 302, 307):  # the registry redirects blobs nowhere here; just relay
            pass
        body = response.read()
        is_blob = "/blobs/sha256:" in handler.path and method == "GET" and response.status in (200, 206)
        is_layer = is_blob and len(body) > 10000
        if is_blob:
            self.blob_gets.append(handler.path)
        handler.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if is_layer and self.mode == "cut" and handler.path not in self.cut:
            self.cut.add(handler.path)
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if is_layer and self.mode == "corrupt":
            body = body[:5000] + bytes([body[5000] ^ 0xFF]) + body[5001:]
        handler.wfile.write(body)


def test_cut_download_resumes_with_range(layout: Path, registry) -> None:  # type: ignore[no-untyped-def]
    image_id, _ = _seed(layout, f"{registry.host}/tools/busybox:1")
    proxy = FaultProxy(registry.host, "cut")
    try:
        result = pull_image(f"{proxy.host}/tools/busybox:1")
    finally:
        proxy.stop()
    assert result.image.id == image_id
    assert proxy.cut and any(r.startswith("bytes=") and r != "bytes=0-" for r in proxy.ranges), (proxy.blob_gets, proxy.ranges)


def test_corrupt_byte_fails_with_digest_mismatch_and_stores_nothing(layout: Path, registry, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    _seed(layout, f"{registry.host}/tools/busybox:1")
    proxy = FaultProxy(registry.host, "corrupt")
    try:
        with pytest.raises(DigestMismatch, match="digest mismatch"):
            pull_image(f"{proxy.host}/tools/busybox:1")
    finally:
        proxy.stop()
    assert not Image.objects.exists() and not Layer.objects.exists()
    layer_blobs = [p for p in store_root.glob("sha256/*/*") if p.stat().st_size > 10000]
    assert layer_blobs == []
