"""The OCI Distribution Spec v1.1's four workflow categories, endpoint by endpoint, with the
status and error codes the spec (and its conformance suite) expects, negatives included.

https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#workflow-categories
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any

import pytest
from django.test import Client

from imagestore.models import Image, Manifest, RepoDigest, Tag
from tests.builders import simple_rootfs_tar

pytestmark = pytest.mark.django_db

HOST = "127.0.0.1:8000"  # as clients name this dashboard (docker needs a dot or a port)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Registry:
    """A client of /v2/ speaking as one user with Basic credentials."""

    def __init__(self, auth: str | None) -> None:
        self.client = Client(HTTP_HOST=HOST)
        self.auth = auth

    def __call__(self, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
        extra = {f"HTTP_{k.upper()}": v for k, v in headers.items() if k not in ("content_type",)}
        if self.auth:
            extra["HTTP_AUTHORIZATION"] = self.auth
        return self.client.generic(method, path, body, content_type=headers.get("content_type", "application/octet-stream"),
                                   **extra)

    def push_blob(self, name: str, data: bytes) -> str:
        digest = digest_of(data)
        response = self("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
        assert response.status_code == 201, response.content
        return digest


def image_parts(marker: str = "hello") -> tuple[bytes, bytes, bytes]:
    """(layer, config, manifest) of a one-layer image."""
    tar = simple_rootfs_tar(marker)
    layer = gzip.compress(tar, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(layer),
                    "size": len(layer)}],
    }, indent=3).encode()  # not the compact form this store would build: bytes must be kept
    return layer, config, manifest


@pytest.fixture
def pusher(operator) -> Registry:  # type: ignore[no-untyped-def]
    return Registry(basic("olive", "pw-operator"))


@pytest.fixture
def reader(member) -> Registry:  # type: ignore[no-untyped-def]
    return Registry(basic("mia", "pw-member"))


@pytest.fixture
def pushed(pusher: Registry) -> dict[str, Any]:
    layer, config, manifest = image_parts()
    pusher.push_blob("team/app", layer)
    pusher.push_blob("team/app", config)
    response = pusher("PUT", "/v2/team/app/manifests/1", manifest, content_type=OCI_MANIFEST)
    assert response.status_code == 201, response.content
    return {"layer": layer, "config": config, "manifest": manifest, "digest": response["Docker-Content-Digest"]}


def error_code(response: Any) -> str:
    return str(response.json()["errors"][0]["code"])


# --- the base and auth -----------------------------------------------------------------------------

def test_version_check_challenges_anonymous_clients_with_the_token_realm() -> None:
    response = Registry(None)("GET", "/v2/")
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="http://{HOST}/v2/token",service="{HOST}"')


def test_version_check_answers_200_with_credentials_and_the_api_version_header(reader: Registry) -> None:
    response = reader("GET", "/v2/")
    assert response.status_code == 200
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"


def test_wrong_password_is_401(member) -> None:  # type: ignore[no-untyped-def]
    response = Registry(basic("mia", "wrong"))("GET", "/v2/")
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_token_flow_grants_only_what_the_user_may(member, pushed: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    client = Registry(basic("mia", "pw-member"))
    answer = client("GET", "/v2/token?service=127.0.0.1:8000&scope=repository:team/app:pull,push").json()
    bearer = Registry(f"Bearer {answer['token']}")
    assert answer["expires_in"] > 0
    assert bearer("GET", "/v2/team/app/manifests/1", ACCEPT=OCI_MANIFEST).status_code == 200
    # The token holds pull only: a push is refused as DENIED (asked for, not granted).
    response = bearer("POST", "/v2/team/app/blobs/uploads/")
    assert response.status_code == 403
    assert error_code(response) == "DENIED"
    # A scope the token never asked for: 401 with a challenge naming it, as Docker clients expect.
    response = bearer("GET", "/v2/other/manifests/1")
    assert response.status_code == 401
    assert 'scope="repository:other:pull"' in response["WWW-Authenticate"]


def test_a_forged_token_is_401() -> None:
    response = Registry("Bearer not-a-token")("GET", "/v2/")
    assert response.status_code == 401


def test_api_tokens_work_as_passwords(member) -> None:  # type: ignore[no-untyped-def]
    from imagestore.services.tokens import create_token

    _token, key = create_token(member, name="ci")
    assert Registry(basic("mia", key))("GET", "/v2/").status_code == 200
    assert Registry(basic("someone-else", key))("GET", "/v2/").status_code == 401


# --- pull ------------------------------------------------------------------------------------------

def test_pull_manifest_by_tag_and_digest_serves_the_pushed_bytes(reader: Registry, pushed: dict[str, Any]) -> None:
    for reference in ("1", pushed["digest"]):
        response = reader("GET", f"/v2/team/app/manifests/{reference}", ACCEPT=OCI_MANIFEST)
        assert response.status_code == 200
        assert response.content == pushed["manifest"]
        assert response["Content-Type"] == OCI_MANIFEST
        assert response["Docker-Content-Digest"] == digest_of(pushed["manifest"])
    head = reader("HEAD", "/v2/team/app/manifests/1")
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Length"] == str(len(pushed["manifest"]))


def test_a_docker_only_client_gets_a_schema2_manifest_for_a_tag(reader: Registry, pushed: dict[str, Any]) -> None:
    response = reader("GET", "/v2/team/app/manifests/1", ACCEPT=DOCKER_MANIFEST)
    assert response.status_code == 200
    assert response["Content-Type"] == DOCKER_MANIFEST
    document = response.json()
    assert document["config"]["digest"] == digest_of(pushed["config"])
    # ...and that manifest is then reachable by its own digest.
    again = reader("GET", f"/v2/team/app/manifests/{response['Docker-Content-Digest']}")
    assert again.content == response.content


def test_pull_blob_whole_and_by_range(reader: Registry, pushed: dict[str, Any]) -> None:
    layer = pushed["layer"]
    response = reader("GET", f"/v2/team/app/blobs/{digest_of(layer)}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == layer
    assert response["Docker-Content-Digest"] == digest_of(layer)
    part = reader("GET", f"/v2/team/app/blobs/{digest_of(layer)}", RANGE="bytes=10-19")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == layer[10:20]
    assert part["Content-Range"] == f"bytes 10-19/{len(layer)}"
    tail = reader("GET", f"/v2/team/app/blobs/{digest_of(layer)}", RANGE="bytes=5-")
    assert b"".join(tail.streaming_content) == layer[5:]
    bad = reader("GET", f"/v2/team/app/blobs/{digest_of(layer)}", RANGE=f"bytes={len(layer) + 5}-")
    assert bad.status_code == 416
    head = reader("HEAD", f"/v2/team/app/blobs/{digest_of(layer)}")
    assert head.status_code == 200 and head["Content-Length"] == str(len(layer))


def test_pull_negatives(reader: Registry, pushed: dict[str, Any]) -> None:
    unknown = "sha256:" + "0" * 64
    response = reader("GET", f"/v2/team/app/blobs/{unknown}")
    assert (response.status_code, error_code(response)) == (404, "BLOB_UNKNOWN")
    response = reader("GET", "/v2/team/app/manifests/nope")
    assert (response.status_code, error_code(response)) == (404, "MANIFEST_UNKNOWN")
    response = reader("GET", f"/v2/team/app/manifests/{unknown}")
    assert (response.status_code, error_code(response)) == (404, "MANIFEST_UNKNOWN")
    response = reader("GET", "/v2/no/such/repo/manifests/1")
    assert (response.status_code, error_code(response)) == (404, "NAME_UNKNOWN")
    response = reader("GET", "/v2/Team/App/manifests/1")
    assert (response.status_code, error_code(response)) == (400, "NAME_INVALID")
    response = reader("GET", "/v2/team/app/blobs/sha256:xyz")
    assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")


def test_an_image_in_the_store_is_pulled_by_its_docker_hub_name(reader: Registry, make_image) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    response = reader("GET", "/v2/library/busybox/manifests/latest", ACCEPT=OCI_MANIFEST)
    assert response.status_code == 200
    assert response.json()["config"]["digest"] == image.id
    # The built manifest is kept: asking by its digest gives the same bytes.
    again = reader("GET", f"/v2/library/busybox/manifests/{response['Docker-Content-Digest']}")
    assert again.status_code == 200 and again.content == response.content


# --- push ------------------------------------------------------------------------------------------

def test_a_pushed_manifest_becomes_an_image_with_tag_and_repo_digest(pushed: dict[str, Any]) -> None:
    image = Image.objects.get(pk=digest_of(pushed["config"]))
    tag = Tag.objects.get(image=image)
    assert (tag.repository.registry, tag.repository.path, tag.name) == (HOST, "team/app", "1")
    assert RepoDigest.objects.filter(image=image, digest=pushed["digest"]).exists()
    layer = image.layers.get()
    assert layer.digest == digest_of(pushed["layer"])
    # The layer was indexed as it arrived, like a pulled one (services.layerindex).
    from imagestore.services import layerindex

    assert "etc/hostname" in {entry.path.lstrip("./") for entry in layerindex.load(layer.diff_id).entries}


def test_chunked_upload_with_content_range_checks_and_status(pusher: Registry) -> None:
    data = b"x" * 1000 + b"y" * 500
    start = pusher("POST", "/v2/team/app/blobs/uploads/")
    assert start.status_code == 202
    location = start["Location"]
    first = pusher("PATCH", location, data[:1000], CONTENT_RANGE="0-999")
    assert first.status_code == 202 and first["Range"] == "0-999"
    # A chunk that does not start where the upload stands: 416, and the upload is unchanged.
    wrong = pusher("PATCH", location, data[1000:], CONTENT_RANGE="10-509")
    assert wrong.status_code == 416 and wrong["Range"] == "0-999"
    status = pusher("GET", location)
    assert status.status_code == 204 and status["Range"] == "0-999"
    second = pusher("PATCH", location, data[1000:], CONTENT_RANGE="1000-1499")
    assert second.status_code == 202 and second["Range"] == "0-1499"
    done = pusher("PUT", f"{location}?digest={digest_of(data)}")
    assert done.status_code == 201
    assert done["Docker-Content-Digest"] == digest_of(data)
    assert pusher("HEAD", f"/v2/team/app/blobs/{digest_of(data)}").status_code == 200
    assert pusher("GET", location).status_code == 404  # finished uploads are gone


def test_digest_mismatch_is_digest_invalid_and_keeps_nothing(pusher: Registry, store_root) -> None:  # type: ignore[no-untyped-def]
    response = pusher("POST", f"/v2/team/app/blobs/uploads/?digest={digest_of(b'other')}", b"these bytes")
    assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
    assert pusher("HEAD", f"/v2/team/app/blobs/{digest_of(b'these bytes')}").status_code == 404
    assert not [p for p in (store_root / "tmp").iterdir() if p.name.startswith("upload-")]


def test_upload_negatives(pusher: Registry) -> None:
    unknown = "0123456789abcdef0123456789abcdef"
    response = pusher("PATCH", f"/v2/team/app/blobs/uploads/{unknown}", b"x")
    assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_UNKNOWN")
    start = pusher("POST", "/v2/team/app/blobs/uploads/")
    # An upload belongs to its repository.
    other = start["Location"].replace("/team/app/", "/team/other/")
    assert pusher("GET", other).status_code == 404
    assert pusher("DELETE", start["Location"]).status_code == 204
    assert pusher("GET", start["Location"]).status_code == 404


def test_cross_repository_mount(pusher: Registry, pushed: dict[str, Any]) -> None:
    layer = digest_of(pushed["layer"])
    response = pusher("POST", f"/v2/team/copy/blobs/uploads/?mount={layer}&from=team/app")
    assert response.status_code == 201
    assert response["Location"] == f"/v2/team/copy/blobs/{layer}"
    # A blob the source lacks: a new upload session instead (202), as the spec says.
    response = pusher("POST", f"/v2/team/copy/blobs/uploads/?mount=sha256:{'1' * 64}&from=team/app")
    assert response.status_code == 202


def test_invalid_manifests_are_refused(pusher: Registry, pushed: dict[str, Any]) -> None:
    response = pusher("PUT", "/v2/team/app/manifests/bad", b"{not json", content_type=OCI_MANIFEST)
    assert (response.status_code, error_code(response)) == (400, "MANIFEST_INVALID")
    missing = json.loads(pushed["manifest"])
    missing["layers"][0]["digest"] = "sha256:" + "2" * 64
    response = pusher("PUT", "/v2/team/app/manifests/bad", json.dumps(missing).encode(), content_type=OCI_MANIFEST)
    assert (response.status_code, error_code(response)) == (400, "MANIFEST_BLOB_UNKNOWN")
    response = pusher("PUT", f"/v2/team/app/manifests/sha256:{'3' * 64}", pushed["manifest"], content_type=OCI_MANIFEST)
    assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")


def test_a_member_may_not_push(reader: Registry) -> None:
    response = reader("POST", "/v2/team/app/blobs/uploads/")
    assert (response.status_code, error_code(response)) == (403, "DENIED")


# --- content discovery -----------------------------------------------------------------------------

def test_tags_list_with_pagination(pusher: Registry, pushed: dict[str, Any]) -> None:
    for tag in ("2", "3", "a"):
        assert pusher("PUT", f"/v2/team/app/manifests/{tag}", pushed["manifest"],
                      content_type=OCI_MANIFEST).status_code == 201
    response = pusher("GET", "/v2/team/app/tags/list")
    assert response.json() == {"name": "team/app", "tags": ["1", "2", "3", "a"]}
    page = pusher("GET", "/v2/team/app/tags/list?n=2")
    assert page.json()["tags"] == ["1", "2"]
    assert page["Link"] == '</v2/team/app/tags/list?n=2&last=2>; rel="next"'
    assert pusher("GET", "/v2/team/app/tags/list?n=2&last=2").json()["tags"] == ["3", "a"]
    response = pusher("GET", "/v2/nothing/here/tags/list")
    assert (response.status_code, error_code(response)) == (404, "NAME_UNKNOWN")


def test_catalog_is_for_operators(pusher: Registry, reader: Registry, pushed: dict[str, Any]) -> None:
    assert "team/app" in pusher("GET", "/v2/_catalog").json()["repositories"]
    response = reader("GET", "/v2/_catalog")
    assert (response.status_code, error_code(response)) == (403, "DENIED")


def test_referrers_list_artifacts_whose_subject_is_the_manifest(pusher: Registry, reader: Registry,
                                                                pushed: dict[str, Any]) -> None:
    empty = b"{}"
    pusher.push_blob("team/app", empty)
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    pusher.push_blob("team/app", sbom)
    artifact = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(empty), "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": digest_of(sbom), "size": len(sbom)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": pushed["digest"], "size": len(pushed["manifest"])},
    }).encode()
    response = pusher("PUT", f"/v2/team/app/manifests/{digest_of(artifact)}", artifact, content_type=OCI_MANIFEST)
    assert response.status_code == 201
    assert response["OCI-Subject"] == pushed["digest"]
    index = reader("GET", f"/v2/team/app/referrers/{pushed['digest']}")
    assert index.status_code == 200 and index["Content-Type"] == OCI_INDEX
    assert [m["digest"] for m in index.json()["manifests"]] == [digest_of(artifact)]
    assert index.json()["manifests"][0]["artifactType"] == "application/spdx+json"
    filtered = reader("GET", f"/v2/team/app/referrers/{pushed['digest']}?artifactType=other")
    assert filtered.json()["manifests"] == [] and filtered["OCI-Filters-Applied"] == "artifactType"
    assert reader("GET", f"/v2/team/app/referrers/sha256:{'4' * 64}").json()["manifests"] == []


# --- content management ----------------------------------------------------------------------------

def test_delete_a_tag_then_the_manifest(pusher: Registry, reader: Registry, pushed: dict[str, Any]) -> None:
    assert pusher("PUT", "/v2/team/app/manifests/2", pushed["manifest"], content_type=OCI_MANIFEST).status_code == 201
    response = reader("DELETE", "/v2/team/app/manifests/2")
    assert (response.status_code, error_code(response)) == (403, "DENIED")
    assert pusher("DELETE", "/v2/team/app/manifests/2").status_code == 202
    assert pusher("GET", "/v2/team/app/tags/list").json()["tags"] == ["1"]
    assert pusher("DELETE", f"/v2/team/app/manifests/{pushed['digest']}").status_code == 202
    assert pusher("GET", f"/v2/team/app/manifests/{pushed['digest']}").status_code == 404
    # The image had no other name: the removal rules deleted it with its layer.
    assert not Image.objects.filter(pk=digest_of(pushed["config"])).exists()
    assert not Manifest.objects.exists()
    response = pusher("DELETE", f"/v2/team/app/manifests/{pushed['digest']}")
    assert (response.status_code, error_code(response)) == (404, "MANIFEST_UNKNOWN")


def test_blob_delete_is_unsupported(pusher: Registry, pushed: dict[str, Any]) -> None:
    response = pusher("DELETE", f"/v2/team/app/blobs/{digest_of(pushed['layer'])}")
    assert (response.status_code, error_code(response)) == (405, "UNSUPPORTED")


def test_a_final_put_in_another_web_process_uses_the_checkpoint(pusher: Registry, store_root) -> None:  # type: ignore[no-untyped-def]
    """Clients often send the final PUT on another connection (another gunicorn process): the
    sha256 and diff_id made while the PATCH streamed are on disk, nothing is read again."""
    from imagestore.services import registry_serve

    layer, _config, _manifest = image_parts("elsewhere")
    start = pusher("POST", "/v2/team/app/blobs/uploads/")
    assert pusher("PATCH", start["Location"], layer).status_code == 202
    registry_serve._sessions.clear()  # as if the PUT came to another process
    done = pusher("PUT", f"{start['Location']}?digest={digest_of(layer)}")
    assert done.status_code == 201
    assert (store_root / "locks" / f"{digest_of(layer).split(':')[1]}.diffid").exists()
    # A wrong digest is still caught from the checkpoint.
    start = pusher("POST", "/v2/team/app/blobs/uploads/")
    assert pusher("PATCH", start["Location"], b"abc").status_code == 202
    registry_serve._sessions.clear()
    response = pusher("PUT", f"{start['Location']}?digest={digest_of(b'abd')}")
    assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
