"""docker login, push and search against the real reference registry (and this dashboard as an index)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from imagestore.errors import BadRequest
from imagestore.models import RegistryCredential, RepoDigest, Repository
from imagestore.oci.registry import AuthenticationRequired
from imagestore.secrets import decrypt
from imagestore.services import jobs
from imagestore.services.login import login, logout, normalize_registry
from imagestore.services.progress import RecordingProgress
from imagestore.services.push import push_image
from imagestore.services.search import SearchFilters, search
from imagestore.services.tag import tag_image
from tests.integration.registry import skopeo_inspect, start_registry

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    reg = start_registry(tmp_path / "basic", auth="htpasswd")
    yield reg
    reg.stop()


@pytest.fixture
def big_image(make_image, settings):  # type: ignore[no-untyped-def]
    """An image whose layer is larger than the push chunk size, so it goes up in PATCH chunks."""
    import io
    import os

    from imagestore.services.import_ import import_image
    from tests.builders import tar_bytes

    settings.PUSH_CHUNK_SIZE = 1 << 20
    return import_image(io.BytesIO(tar_bytes([("big.bin", os.urandom(3 << 20))])), repository="big:1")


# --- login -------------------------------------------------------------------------------------

def test_login_checks_with_the_registry_and_stores_the_secret_encrypted(basic_registry, operator) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest, match="refused that username and password"):
        login(operator, basic_registry.host, "alice", "wrong")
    assert not RegistryCredential.objects.exists()
    credential = login(operator, f"http://{basic_registry.host}/", "alice", "wonderland")
    assert credential.registry == basic_registry.host
    assert "wonderland" not in credential.secret_encrypted and decrypt(credential.secret_encrypted) == "wonderland"
    assert logout(operator, basic_registry.host) is True
    assert not RegistryCredential.objects.exists()


def test_login_with_the_token_flow(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    reg = start_registry(tmp_path / "token", auth="token")
    try:
        with pytest.raises(BadRequest, match="refused"):
            login(operator, reg.host, "alice", "nope")
        login(operator, reg.host, "alice", "wonderland")
        assert reg.issuer.requests[-1]["account"] == "alice"  # type: ignore[union-attr]
    finally:
        reg.stop()


def test_docker_hub_aliases_mean_docker_io() -> None:
    for alias in ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "", "docker.io"):
        assert normalize_registry(alias) == "docker.io"
    with pytest.raises(BadRequest):
        normalize_registry("bad host!")


def test_registries_api_never_returns_the_password(basic_registry, operator, member, client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(operator)
    response = client.post("/api/v1/registries/", {"registry": basic_registry.host, "username": "alice",
                                                   "password": "wonderland"}, format="json")
    assert response.status_code == 201, response.content
    assert "wonderland" not in response.content.decode() and "password" not in response.json()
    listing = client.get("/api/v1/registries/")
    assert "wonderland" not in listing.content.decode()
    assert [c["registry"] for c in listing.json()["results"]] == [basic_registry.host]
    assert client_for(member).get("/api/v1/registries/").json()["results"] == []  # only your own logins
    response = client.post("/api/v1/registries/", {"registry": basic_registry.host, "username": "alice",
                                                   "password": "bad"}, format="json")
    assert response.status_code == 400 and "refused" in response.json()["detail"]
    assert "bad" not in json.dumps([j.log for j in jobs.Job.objects.all()])
    credential_id = listing.json()["results"][0]["id"]
    assert client.delete(f"/api/v1/registries/{credential_id}/").status_code == 204
    assert not RegistryCredential.objects.exists()
    assert client.get("/api/v1/registries/settings/").json()["registry_mirrors"] == []


# --- push ---------------------------------------------------------------------------------------

def test_push_then_skopeo_sees_our_manifest_and_layers(registry, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    tag_image(image, f"{registry.host}/tools/busybox:1")
    progress = RecordingProgress()
    [pushed] = push_image(f"{registry.host}/tools/busybox:1", progress=progress)
    info = json.loads(skopeo_inspect(f"docker://{registry.host}/tools/busybox:1"))
    assert info["Digest"] == pushed["digest"]
    assert info["Layers"] == [image.layers.get().digest]
    config = skopeo_inspect(f"docker://{registry.host}/tools/busybox:1", "--config", "--raw")
    import hashlib

    assert "sha256:" + hashlib.sha256(config).hexdigest() == image.id
    assert progress.lines[-1] == f"1: digest: {pushed['digest']} size: {pushed['size']}"
    assert {item["phase"] for item in progress.items.values()} == {"Pushed"}
    assert RepoDigest.objects.filter(digest=pushed["digest"], image=image).exists()
    # Again: the registry has every blob.
    again = RecordingProgress()
    push_image(f"{registry.host}/tools/busybox:1", progress=again)
    assert {item["phase"] for item in again.items.values()} == {"Layer already exists"}


def test_push_to_a_second_repository_mounts(registry, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    tag_image(image, f"{registry.host}/one/busybox:1")
    tag_image(image, f"{registry.host}/two/busybox:1")
    push_image(f"{registry.host}/one/busybox:1")
    progress = RecordingProgress()
    push_image(f"{registry.host}/two/busybox:1", progress=progress)
    assert {item["phase"] for item in progress.items.values()} == {"Mounted from one/busybox"}
    assert json.loads(skopeo_inspect(f"docker://{registry.host}/two/busybox:1"))["Layers"]


def test_chunked_upload_of_a_big_layer(registry, big_image) -> None:  # type: ignore[no-untyped-def]
    tag_image(big_image, f"{registry.host}/tools/big:1")
    [pushed] = push_image(f"{registry.host}/tools/big:1")
    assert json.loads(skopeo_inspect(f"docker://{registry.host}/tools/big:1"))["Digest"] == pushed["digest"]


def test_push_all_tags_of_a_repository(registry, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image(f"{registry.host}/tools/app:1")
    tag_image(image, f"{registry.host}/tools/app:2")
    pushed = push_image(f"{registry.host}/tools/app", all_tags=True)
    assert [p["reference"] for p in pushed] == [f"{registry.host}/tools/app:1", f"{registry.host}/tools/app:2"]


def test_push_without_credentials_says_authentication_required(basic_registry, make_image, operator) -> None:  # type: ignore[no-untyped-def]
    make_image(f"{basic_registry.host}/private/app:1")
    with pytest.raises(AuthenticationRequired, match="authentication required"):
        push_image(f"{basic_registry.host}/private/app:1", owner=operator)
    login(operator, basic_registry.host, "alice", "wonderland")
    assert push_image(f"{basic_registry.host}/private/app:1", owner=operator)[0]["digest"].startswith("sha256:")


def test_push_job_through_the_api(registry, make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    make_image(f"{registry.host}/tools/app:1")
    response = client_for(operator).post(f"/api/v1/images/{registry.host}/tools/app:1/push/", {}, format="json")
    assert response.status_code == 202
    job = jobs.run_job(response.json()["id"])
    assert job is not None and job.state == "succeeded", job.error if job else None
    assert job.log[-1].startswith("1: digest: sha256:")
    response = client_for(operator).post("/api/v1/images/nothere:1/push/", {}, format="json")
    assert response.status_code == 404


def test_pull_job_through_the_api(registry, make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image(f"{registry.host}/tools/app:1")
    push_image(f"{registry.host}/tools/app:1")
    from imagestore.services.remove import remove_image

    remove_image(image.id, force=True)
    client = client_for(operator)
    response = client.post("/api/v1/images/pull/", {"reference": f"{registry.host}/tools/app:1"}, format="json")
    assert response.status_code == 202
    job = jobs.run_job(response.json()["id"])
    assert job is not None and job.state == "succeeded", job.error if job else None
    assert job.result["image"] == image.id
    assert job.log[-1] == f"Status: Downloaded newer image for {registry.host}/tools/app:1"
    for bad, message in [({"reference": "Bad:1"}, "lowercase"), ({"reference": "x", "platform": "linux"}, "platform"),
                         ({}, "reference")]:
        response = client.post("/api/v1/images/pull/", bad, format="json")
        assert response.status_code == 400 and message in response.json()["detail"]


def test_pull_job_fails_clearly_when_the_registry_is_down(operator, client_for) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.registry import allow_outbound, free_port

    port = free_port()
    allow_outbound(f"127.0.0.1:{port}")  # allowed, and nothing listening there
    response = client_for(operator).post("/api/v1/images/pull/", {"reference": f"127.0.0.1:{port}/x:1"},
                                         format="json")
    job = jobs.run_job(response.json()["id"])
    assert job is not None and job.state == "failed" and "cannot reach" in job.error


# --- search -------------------------------------------------------------------------------------

def test_search_a_registry_without_an_index_uses_its_catalog(registry, make_image, operator) -> None:  # type: ignore[no-untyped-def]
    for name in ("tools/mysql", "tools/mysql-client", "tools/redis"):
        make_image(f"{registry.host}/{name}:1", marker=name)
        push_image(f"{registry.host}/{name}:1")
    results = search("mysql", registry=registry.host, owner=operator)  # an unconfigured registry: operators only
    assert [r["name"] for r in results] == [f"{registry.host}/tools/mysql", f"{registry.host}/tools/mysql-client"]
    assert results[0] == {"name": f"{registry.host}/tools/mysql", "description": "", "star_count": 0,
                          "is_official": False, "is_automated": False}


def test_search_docker_hub_index_at_a_running_dashboard(live_server, make_image, operator, settings) -> None:  # type: ignore[no-untyped-def]
    descriptions = {"mysql": "MySQL is a widely used, open-source relational database management system.",
                    "mysql-proxy": "A proxy", "percona/mysql": "Percona server", "mariadb": "not a match"}
    stars = {"mysql": 9000, "mysql-proxy": 2, "percona/mysql": 50, "mariadb": 10}
    for name in descriptions:
        make_image(f"{name}:latest", marker=name)
    for repo in Repository.objects.all():
        repo.description, repo.star_count = descriptions[repo.name], stars[repo.name]
        repo.is_official = "/" not in repo.name
        repo.save(update_fields=["description", "star_count", "is_official"])
    host = live_server.url.split("://", 1)[1]
    settings.DOCKER_HUB_INDEX_URL = live_server.url
    RegistryCredential.objects.create(registry=host, owner=operator, username=operator.username,
                                      secret_encrypted=__import__("imagestore.secrets").secrets.encrypt("pw-operator"))
    results = search("mysql", owner=operator, filters=SearchFilters(stars=3))
    assert [r["name"] for r in results] == ["mysql", "percona/mysql"]
    assert results[0]["description"] == descriptions["mysql"][:42] + "..."
    assert search("mysql", owner=operator, no_trunc=True)[0]["description"] == descriptions["mysql"]
    assert [r["name"] for r in search("mysql", owner=operator, filters=SearchFilters(is_official=False))] == [
        "percona/mysql"]
    assert len(search("mysql", owner=operator, limit=1)) == 1
    # The REST search and the dashboard's own /v1/search answer the same.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"olive:pw-operator").decode())
    body = client.get("/api/v1/search/", {"term": "mysql", "stars": 3}).json()
    assert [r["name"] for r in body] == ["mysql", "percona/mysql"]
    index = client.get("/v1/search", {"q": "mysql", "n": 10}).json()
    assert index["num_results"] == 3 and index["query"] == "mysql"
    assert APIClient().get("/v1/search", {"q": "mysql"}).status_code == 401
    local = client.get("/api/v1/search/", {"term": "mysql", "registry": "local", "is_official": "true"}).json()
    assert [r["name"] for r in local] == ["mysql", "mysql-proxy"]
