"""Who may do what at /v2/: grants for non-operators, public repositories for anonymous pulls."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from imagestore.models import Repository, RepositoryGrant
from tests.imagestore.registryapi.test_conformance import (
    OCI_MANIFEST,
    Registry,
    basic,
    digest_of,
    error_code,
    image_parts,
    pushed,  # noqa: F401 - fixture
    pusher,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.django_db


def _push_image(client: Registry, name: str, tag: str = "1") -> int:
    layer, config, manifest = image_parts("granted")
    for blob in (layer, config):
        response = client("POST", f"/v2/{name}/blobs/uploads/?digest={digest_of(blob)}", blob)
        if response.status_code != 201:
            return int(response.status_code)
    return int(client("PUT", f"/v2/{name}/manifests/{tag}", manifest, content_type=OCI_MANIFEST).status_code)


def test_a_grant_on_a_namespace_lets_a_member_push_there_only(member) -> None:  # type: ignore[no-untyped-def]
    RepositoryGrant.objects.create(path="team/*", user=member, can_push=True)
    client = Registry(basic("mia", "pw-member"))
    assert _push_image(client, "team/app") == 201
    assert _push_image(client, "elsewhere/app") == 403
    # Push, not delete.
    response = client("DELETE", "/v2/team/app/manifests/1")
    assert (response.status_code, error_code(response)) == (403, "DENIED")


def test_a_group_grant_on_one_repository(member) -> None:  # type: ignore[no-untyped-def]
    group = Group.objects.create(name="team-app")
    member.groups.add(group)
    RepositoryGrant.objects.create(path="team/app", group=group, can_push=True, can_delete=True)
    client = Registry(basic("mia", "pw-member"))
    assert _push_image(client, "team/app") == 201
    assert _push_image(client, "team/app2") == 403
    assert client("DELETE", "/v2/team/app/manifests/1").status_code == 202


def test_grants_are_what_the_token_endpoint_grants(member) -> None:  # type: ignore[no-untyped-def]
    RepositoryGrant.objects.create(path="team/app", user=member, can_push=True)
    client = Registry(basic("mia", "pw-member"))
    answer = client("GET", "/v2/token?scope=repository:team/app:pull,push,delete&scope=repository:x/y:push").json()
    bearer = Registry(f"Bearer {answer['token']}")
    assert bearer("POST", "/v2/team/app/blobs/uploads/").status_code == 202
    assert bearer("POST", "/v2/x/y/blobs/uploads/").status_code == 403


def test_anonymous_pulls_a_public_repository_only(pushed) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    anonymous = Registry(None)
    token = anonymous("GET", "/v2/token?scope=repository:team/app:pull").json()["token"]
    bearer = Registry(f"Bearer {token}")
    response = bearer("GET", "/v2/team/app/manifests/1")
    assert (response.status_code, error_code(response)) == (401, "UNAUTHORIZED")
    Repository.objects.filter(path="team/app").update(public=True)
    token = anonymous("GET", "/v2/token?scope=repository:team/app:pull").json()["token"]
    bearer = Registry(f"Bearer {token}")
    assert bearer("GET", "/v2/team/app/manifests/1").content == pushed["manifest"]
    assert bearer("GET", f"/v2/team/app/blobs/{digest_of(pushed['layer'])}").status_code == 200
    # A blob of the store that this public repository does not use stays unknown to anonymous readers.
    other = Registry(basic("olive", "pw-operator"))
    secret = other("POST", f"/v2/private/app/blobs/uploads/?digest={digest_of(b'secret')}", b"secret")
    assert secret.status_code == 201
    response = bearer("GET", f"/v2/team/app/blobs/{digest_of(b'secret')}")
    assert (response.status_code, error_code(response)) == (404, "BLOB_UNKNOWN")
    assert bearer("POST", "/v2/team/app/blobs/uploads/").status_code == 401


def test_a_grant_path_must_be_a_repository_name_or_namespace(member) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError):
        RepositoryGrant(path="Team/App", user=member).full_clean()
    RepositoryGrant(path="team/*", user=member).full_clean()
