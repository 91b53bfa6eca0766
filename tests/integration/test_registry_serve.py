"""This dashboard as a registry at /v2/, driven by real clients against a live server (gunicorn and
a Celery worker): what they push is an Image here, what they pull is byte for byte what was pushed."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
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
def dashboard(store_root: Path, tmp_path: Path) -> Iterator[str]:
    """gunicorn serving the test database and store (no worker: /v2/ needs none)."""
    import os

    from imagestore.dbutil import database_url
    from tests.integration.conftest import start_gunicorn
    from tests.integration.registry import free_port

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url(),
           "IMAGESTORE_ROOT": str(store_root), "WEB_CONCURRENCY": "2", "WEB_THREADS": "8"}
    server, url = start_gunicorn(env, free_port(), tmp_path / "gunicorn.log")
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def dashboard_with_worker(start_dashboard) -> str:  # type: ignore[no-untyped-def]
    # Loopback allowed: the dashboard's own pull service reaches its own /v2/ in the docker CLI test.
    url: str = start_dashboard(OUTBOUND_ALLOW="127.0.0.1")
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


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Debian's podman 4.3 in a storage of its own (vfs), with cgroupfs and no default ulimits (these
    machines' needs, see DESIGN.md) and its own auth file."""
    import os
    import tempfile

    podman = require_tool("podman")
    runroot = tempfile.mkdtemp(prefix="pr-", dir="/tmp")  # podman wants a runroot under 50 characters
    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    base = [podman, "--root", str(tmp_path / "podman-root"), "--runroot", runroot,
            "--storage-driver", "vfs", "--cgroup-manager=cgroupfs"]
    yield base, env
    shutil.rmtree(runroot, ignore_errors=True)


def test_podman_login_push_pull(dashboard: str, operator, podman, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host = dashboard.split("://", 1)[1]
    podman, env = podman

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*podman, *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    layout = build_busybox_layout(tmp_path / "umoci")
    assert run("login", "--tls-verify=false", "-u", "olive", "-p", "wrong", host, ok=False).returncode != 0
    run("login", "--tls-verify=false", "-u", "olive", "-p", "pw-operator", host)
    run("pull", "-q", f"oci:{layout}:busybox")
    image_id = run("images", "-q", "--no-trunc").stdout.split()[0]
    digest_file = tmp_path / "digest"
    run("push", "-q", "--tls-verify=false", "--digestfile", str(digest_file), image_id, f"docker://{host}/team/pod:1")
    pushed = digest_file.read_text().strip()
    assert RepoDigest.objects.filter(digest=pushed, repository__path="team/pod").exists()
    run("rmi", "-a", "-f")
    run("pull", "-q", "--tls-verify=false", f"{host}/team/pod:1")
    assert run("image", "inspect", "--format", "{{.Digest}}", f"{host}/team/pod:1").stdout.strip() == pushed


def test_oras_sdk_pushes_and_pulls_an_artifact(dashboard: str, operator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import oras.client

    from imagestore.models import Manifest, ManifestTag

    host = dashboard.split("://", 1)[1]
    artifact = tmp_path / "notes.txt"
    artifact.write_text("release notes\n")
    client = oras.client.OrasClient(hostname=host, insecure=True)
    client.login(username="olive", password="pw-operator", hostname=host)
    client.push(files=[str(artifact)], target=f"{host}/team/notes:1", disable_path_validation=True)
    row = ManifestTag.objects.get(name="1", repository__path="team/notes").manifest
    assert row.image_id is None and Manifest.objects.filter(pk=row.pk).exists()
    out = tmp_path / "out"
    files = client.pull(target=f"{host}/team/notes:1", outdir=str(out))
    assert [Path(f).read_text() for f in files] == ["release notes\n"]
    assert client.get_tags(f"{host}/team/notes") == ["1"]


def test_docker_cli_pulls_from_this_dashboards_own_v2_through_its_engine_api(dashboard_with_worker: str,  # type: ignore[no-untyped-def]
                                                                             operator, tmp_path: Path) -> None:
    import os

    dashboard = dashboard_with_worker
    from imagestore.services.tokens import create_token

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI client is not on this machine")
    skopeo = require_tool("skopeo")
    host = dashboard.split("://", 1)[1]
    layout = build_busybox_layout(tmp_path / "umoci")
    source_digest, _manifest = _layout_manifest(layout)
    subprocess.run([skopeo, "copy", "-q", "--dest-tls-verify=false", "--dest-creds", "olive:pw-operator",
                    f"oci:{layout}:busybox", f"docker://{host}/team/app:1"], check=True, capture_output=True)
    _, key = create_token(operator, name="docker cli")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": f"Token {key}"}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"tcp://{host}/docker"}

    def run(*args: str) -> str:
        result = subprocess.run([docker, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    login = subprocess.run([docker, "login", host, "-u", "olive", "--password-stdin"], input="pw-operator",
                           env=env, capture_output=True, text=True, timeout=120)
    assert login.returncode == 0, login.stderr
    # The store is the registry: the pull asks /v2/ (token flow with the stored login) and finds its own image.
    pulled = run("pull", f"{host}/team/app:1")
    assert f"Digest: {source_digest}" in pulled
    # A name the store has only under Docker Hub's name is served at /v2/ under it, and pulled as a new name.
    run("tag", f"{host}/team/app:1", "busybox:static")
    run("pull", f"{host}/library/busybox:static")
    assert run("inspect", "-f", "{{.Id}}", f"{host}/library/busybox:static") == \
        run("inspect", "-f", "{{.Id}}", f"{host}/team/app:1")
    assert f"{host}/team/app@{source_digest}" in json.loads(run("inspect", "-f", "{{json .RepoDigests}}",
                                                                  f"{host}/team/app:1"))
