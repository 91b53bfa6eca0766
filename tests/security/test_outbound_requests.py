"""Server-side request forgery (issue 10 finding 4) and what registries may send (finding 3):
hostile registries and targets are small real HTTP servers on loopback that record every
connection, so "refused" also means "never connected to"."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.errors import BadRequest, status_for
from imagestore.models import Image, Job, Layer, RegistryCredential
from imagestore.oci.outbound import OutboundRefused, ResponseTooLarge
from imagestore.secrets import encrypt
from imagestore.services import jobs
from imagestore.services.login import login
from imagestore.services.pull import pull_image
from tests.security.fakes import (
    FakeServer,
    body,
    challenge,
    endless,
    fake_server,
    manifest_for,
    redirect,
    sha256,
)

pytestmark = [pytest.mark.django_db(transaction=True)]
MIB = 1 << 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def target() -> Iterator[FakeServer]:
    """Somewhere on loopback the server must not be made to reach (not allowed): it answers
    everything with a teapot and a secret, so a test can see whether either leaks back."""
    with fake_server({"*": lambda h: h.reply(418, b'{"secret": "teapot-s3cret"}')}) as server:
        yield server


@pytest.fixture
def registry(outbound_allow: list[str]) -> Iterator[FakeServer]:
    """A registry the site allows, whose answers each test scripts."""
    with fake_server() as server:
        outbound_allow.append(server.host)
        yield server


def _refused(exc: BaseException, *words: str) -> None:
    message = str(exc)
    assert "outbound policy refused" in message, message
    for word in words:
        assert word in message, message
    # The target's answer (418 I'm a teapot) is never echoed; a port number may hold "418".
    assert "teapot" not in message and not re.search(r"\b418\b", message)
    assert status_for(exc) == 400


# --- token realms --------------------------------------------------------------------------

@pytest.mark.parametrize("realm", ["loopback", "localhost", "metadata", "metadata-name"])
def test_a_challenge_naming_a_realm_the_policy_refuses_is_never_followed(realm: str, registry: FakeServer,
                                                                         target: FakeServer,
                                                                         outbound_allow: list[str]) -> None:
    outbound_allow.append("169.254.0.0/16")  # even with link-local allowed, metadata never is
    url = {"loopback": f"http://127.0.0.1:{target.port}/token",  # another port: not allowed
           "localhost": f"http://localhost:{target.port}/token",  # a name resolving to loopback
           "metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
           "metadata-name": "http://metadata.google.internal/computeMetadata/v1/token"}[realm]
    registry.routes["*"] = challenge(url)
    with pytest.raises(OutboundRefused) as info:
        pull_image(f"{registry.host}/tools/app:1")
    _refused(info.value, "cloud metadata" if realm.startswith("metadata") else "loopback")
    assert target.connections == 0
    assert not Image.objects.exists()


def test_credentials_never_go_to_a_token_service_on_another_host_over_http(registry: FakeServer, target: FakeServer,
                                                                          outbound_allow: list[str],
                                                                          operator) -> None:  # type: ignore[no-untyped-def]
    outbound_allow.append(f"localhost:{target.port}")  # reachable: only the credentials rule stands
    registry.routes["*"] = challenge(f"http://localhost:{target.port}/token")
    RegistryCredential.objects.create(registry=registry.host, owner=operator, username="alice",
                                      secret_encrypted=encrypt("wonderland"))
    with pytest.raises(OutboundRefused) as info:
        pull_image(f"{registry.host}/tools/app:1", owner=operator)
    _refused(info.value, "credentials are sent to a token service only over https or on the registry's own host")
    with pytest.raises(OutboundRefused):
        login(operator, registry.host, "alice", "wonderland")
    assert target.requests == []  # no password, indeed no request at all


def test_a_huge_token_answer_is_refused(registry: FakeServer, outbound_allow: list[str]) -> None:
    with fake_server({"/token": body(json.dumps({"token": "t" * (2 * MIB)}).encode())}) as issuer:
        outbound_allow.append(issuer.host)
        registry.routes["*"] = challenge(f"{issuer.url}/token")
        with pytest.raises(ResponseTooLarge, match="token service's answer is larger than 1 MiB"):
            pull_image(f"{registry.host}/tools/app:1")


# --- redirects -----------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["loopback", "metadata"])
def test_a_registry_redirecting_to_loopback_or_metadata_is_refused(where: str, registry: FakeServer,
                                                                   target: FakeServer) -> None:
    location = {"loopback": f"http://127.0.0.1:{target.port}/admin",
                "metadata": "http://169.254.169.254/latest/meta-data/"}[where]
    registry.routes["/v2/tools/app/manifests/1"] = redirect(location)
    with pytest.raises(OutboundRefused) as info:
        pull_image(f"{registry.host}/tools/app:1")
    _refused(info.value, "cloud metadata" if where == "metadata" else "loopback")
    assert target.connections == 0


def test_an_import_url_redirecting_to_loopback_fails_the_job_and_connects_nowhere(registry: FakeServer,
                                                                                  target: FakeServer, operator,
                                                                                  client_for) -> None:  # type: ignore[no-untyped-def]
    registry.routes["/rootfs.tar"] = redirect(f"http://127.0.0.1:{target.port}/secret", 302)
    response = client_for(operator).post("/api/v1/images/import/", {"url": f"{registry.url}/rootfs.tar"})
    assert response.status_code == 202  # the URL's own host is allowed; its redirect is checked as it comes
    job = jobs.run_job(response.json()["id"])
    assert job is not None and job.state == "failed"
    assert "outbound policy refused" in job.error and "loopback" in job.error and "teapot" not in job.error
    assert target.connections == 0
    assert not Image.objects.exists()


# --- search --------------------------------------------------------------------------------

@pytest.mark.parametrize("named", ["target", "metadata", "private"])
def test_a_read_only_user_cannot_make_the_server_search_an_arbitrary_registry(named: str, target: FakeServer,
                                                                              member, client_for) -> None:  # type: ignore[no-untyped-def]
    registry = {"target": target.host, "metadata": "169.254.169.254", "private": "10.0.0.1:5000"}[named]
    response = client_for(member).get("/api/v1/search/", {"term": "x", "registry": registry})
    assert response.status_code == 403
    assert "operators" in response.json()["detail"]
    assert target.connections == 0


def test_an_operator_naming_a_refused_registry_gets_the_policys_400_not_its_answer(target: FakeServer, operator,
                                                                                  client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(operator).get("/api/v1/search/", {"term": "x", "registry": target.host})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "outbound policy refused" in detail and "OUTBOUND_ALLOW" in detail
    assert "418" not in detail and "teapot" not in detail
    assert target.connections == 0


def test_a_read_only_user_may_search_a_configured_registry(member, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    results = json.dumps({"results": [{"name": "tools/app", "description": "an app", "star_count": 3}]}).encode()
    with fake_server({"/v1/search": body(results)}) as index:
        settings.INSECURE_REGISTRIES = [index.host]  # configured: searchable by anyone, and allowed
        response = client_for(member).get("/api/v1/search/", {"term": "app", "registry": index.host})
        assert response.status_code == 200, response.content
        assert [r["name"] for r in response.json()] == ["tools/app"]


def test_search_results_are_read_with_a_cap(member, client_for, settings) -> None:  # type: ignore[no-untyped-def]
    huge = json.dumps({"results": [{"name": f"n{i}", "description": "d" * 1000} for i in range(2000)]}).encode()
    with fake_server({"/v1/search": body(huge)}) as index:
        settings.INSECURE_REGISTRIES = [index.host]
        response = client_for(member).get("/api/v1/search/", {"term": "n", "registry": index.host})
        assert response.status_code == 400
        assert "search results is larger than 1 MiB" in response.json()["detail"]


# --- operators: pull, push, login, import from a refused address -----------------------------

def test_an_operator_cannot_pull_push_log_in_or_import_from_a_refused_address(target: FakeServer, operator,
                                                                              client_for, make_image) -> None:  # type: ignore[no-untyped-def]
    client = client_for(operator)
    make_image(f"{target.host}/tools/app:1")
    attempts = {
        "pull": client.post("/api/v1/images/pull/", {"reference": f"{target.host}/tools/app:1"}, format="json"),
        "push": client.post(f"/api/v1/images/{target.host}/tools/app:1/push/", {}, format="json"),
        "login": client.post("/api/v1/registries/", {"registry": target.host, "username": "u", "password": "p"},
                             format="json"),
        "import": client.post("/api/v1/images/import/", {"url": f"{target.url}/rootfs.tar"}),
        "import-metadata": client.post("/api/v1/images/import/", {"url": "http://169.254.169.254/latest/user-data"}),
    }
    for what, response in attempts.items():
        assert response.status_code == 400, (what, response.content)
        detail = response.json()["detail"]
        assert "outbound policy refused" in detail and "teapot" not in detail, (what, detail)
    assert target.connections == 0
    assert not Job.objects.exists()
    assert not RegistryCredential.objects.exists()


# --- what a registry may send ----------------------------------------------------------------

def _layer() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return gzip.compress(raw.getvalue())


def _image(registry: FakeServer, layer: bytes, config_pad: int = 0, layer_route=None) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    import hashlib

    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "config": {}, "pad": "x" * config_pad}).encode()
    manifest = manifest_for(config, [(sha256(layer), len(layer))])
    registry.routes["/v2/"] = body(b"{}")
    registry.routes["/v2/tools/app/manifests/1"] = body(manifest, OCI_MANIFEST)
    registry.routes[f"/v2/tools/app/blobs/{sha256(config)}"] = body(config, "application/octet-stream")
    registry.routes[f"/v2/tools/app/blobs/{sha256(layer)}"] = layer_route or body(layer, "application/octet-stream")
    return config, manifest


def test_a_blob_longer_than_its_descriptor_says_stops_there_and_nothing_is_kept(registry: FakeServer,
                                                                               store_root: Path) -> None:
    layer = _layer()
    extra = 64 * MIB
    config, _ = _image(registry, layer, layer_route=endless(len(layer), extra, [registry]))
    with pytest.raises(BadRequest, match=f"sent more than the {len(layer)} bytes its descriptor declares"):
        pull_image(f"{registry.host}/tools/app:1")
    assert registry.sent < len(layer) + 16 * MIB, registry.sent  # we hung up; the socket buffers took the rest
    assert not Image.objects.exists() and not Layer.objects.exists()
    blobs = [p.name for p in store_root.glob("sha256/*/*")]
    assert blobs == [sha256(config)[7:]]  # the config alone (unreferenced: garbage collection takes it)
    assert [p.name for p in (store_root / "tmp").iterdir()] == []  # no partial layer left


def test_the_same_layer_within_its_size_pulls(registry: FakeServer) -> None:
    _image(registry, _layer())
    assert pull_image(f"{registry.host}/tools/app:1").image.layers.count() == 1


def test_a_5_mib_manifest_is_refused(registry: FakeServer) -> None:
    registry.routes["/v2/"] = body(b"{}")
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (5 * MIB)}).encode()
    registry.routes["/v2/tools/app/manifests/1"] = body(big, OCI_MANIFEST)
    with pytest.raises(ResponseTooLarge, match="manifest tools/app:1 is larger than 4 MiB"):
        pull_image(f"{registry.host}/tools/app:1")
    assert not Image.objects.exists()


def test_a_5_mib_config_is_refused(registry: FakeServer) -> None:
    _image(registry, _layer(), config_pad=5 * MIB)
    with pytest.raises(BadRequest, match="image config sha256:[0-9a-f]+ is larger than 4 MiB"):
        pull_image(f"{registry.host}/tools/app:1")
    assert not Image.objects.exists()


def test_a_config_longer_than_declared_is_cut_at_its_declared_size(registry: FakeServer) -> None:
    config, _ = _image(registry, _layer())
    registry.routes[f"/v2/tools/app/blobs/{sha256(config)}"] = body(config + b" " * MIB)
    with pytest.raises(ResponseTooLarge, match=f"image config .* is larger than {len(config)} bytes"):
        pull_image(f"{registry.host}/tools/app:1")
