"""The real docker CLI and the Docker SDK for Python, driving a live dashboard (gunicorn and a
Celery worker) with a loopback registry as the docker.io mirror: a tutorial's commands, word for word."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.models import Repository
from imagestore.services.tokens import create_token
from tests.builders import busybox_rootfs, tar_directory
from tests.integration.registry import allow_outbound, build_busybox_layout, skopeo_copy, start_registry

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def docker_cli() -> str:
    path = shutil.which("docker")
    if path is None:
        pytest.skip("the docker CLI client is not on this machine")
    return path


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    registry = start_registry(tmp_path / "mirror")
    layout = build_busybox_layout(tmp_path / "umoci")
    for tag in ("latest", "6.6"):
        skopeo_copy(f"oci:{layout}:busybox", f"docker://{registry.host}/library/centos:{tag}")
    yield registry
    registry.stop()


@pytest.fixture
def dashboard(mirror, start_dashboard) -> str:  # type: ignore[no-untyped-def]
    """A live dashboard whose docker.io mirror is the test registry, and its own search index."""
    url: str = start_dashboard(own_index=True, REGISTRY_MIRRORS=mirror.url)
    return url


@pytest.fixture
def docker(docker_cli: str, dashboard: str, operator, tmp_path: Path):  # type: ignore[no-untyped-def]
    _, token_key = create_token(operator, name="docker cli test")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": f"Token {token_key}"}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"tcp://{dashboard.split('://')[1]}/docker"}

    def run(*args: str, stdin: bytes | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run([docker_cli, *args], env=env, input=stdin, capture_output=True, timeout=300)
        result = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
        if ok:
            assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    run.token = token_key  # type: ignore[attr-defined]
    return run


def _images(docker) -> list[list[str]]:  # type: ignore[no-untyped-def]
    out = docker("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").stdout
    return sorted(line.split() for line in out.splitlines())


def test_docker_tutorial_commands(docker, mirror, dashboard: str, operator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "Status: Downloaded newer image for centos:latest" in docker("pull", "centos").stdout
    assert "Status: Downloaded newer image for centos:6.6" in docker("pull", "centos:6.6").stdout
    assert "Status: Image is up to date for centos:6.6" in docker("pull", "centos:6.6").stdout
    images = _images(docker)
    assert [row[:2] for row in images] == [["centos", "6.6"], ["centos", "latest"]]
    image_id = images[0][2]
    assert images[1][2] == image_id
    table = docker("images").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]

    docker("tag", "centos:6.6", f"{mirror.host}/tools/centos:1")
    assert docker("inspect", "-f", "{{.Architecture}}", image_id[:4]).stdout.strip() in ("amd64", "arm64")
    inspect = json.loads(docker("image", "inspect", "centos:6.6").stdout)[0]
    assert inspect["RepoTags"] == [f"{mirror.host}/tools/centos:1", "centos:6.6", "centos:latest"]
    assert inspect["RepoDigests"] and inspect["RepoDigests"][0].startswith("centos@sha256:")
    assert "IMAGE" in docker("history", "centos").stdout

    pushed = docker("push", f"{mirror.host}/tools/centos:1").stdout
    assert "1: digest: sha256:" in pushed

    # save, rmi, load
    archive = tmp_path / "centos.tar"
    docker("save", "-o", str(archive), "centos:6.6")
    assert docker("rmi", "centos:6.6").stdout.strip() == "Untagged: centos:6.6"
    assert "Loaded image: centos:6.6" in docker("load", "--input", str(archive)).stdout

    # import, then a container from it: create, start, wait, logs, ps, diff, commit
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    imported = docker("import", "--change", 'CMD ["/bin/sh"]', "-", "ubuntu:14.10",
                      stdin=tar_directory(rootfs, "gzip")).stdout.strip()
    assert imported.startswith("sha256:")
    assert docker("inspect", "-f", "{{json .Config.Cmd}}", "ubuntu:14.10").stdout.strip() == '["/bin/sh"]'
    docker("create", "--name", "c1", "ubuntu:14.10", "sh", "-c", "touch /test; echo made")
    docker("start", "c1")
    assert docker("wait", "c1").stdout.strip() == "0"
    assert docker("logs", "c1").stdout == "made\n"
    ps = docker("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "c1 Exited (0)" in ps
    assert docker("diff", "c1").stdout.strip() == "A /test"
    committed = docker("commit", "-m", "added a new file", "-a", "Docker cxp", "c1", "test").stdout.strip()
    assert committed.startswith("sha256:")
    assert json.loads(docker("inspect", "test").stdout)[0]["Author"] == "Docker cxp"
    removed = docker("rmi", "test").stdout
    assert "Untagged: test:latest" in removed and "Deleted: sha256:" in removed
    refused = docker("rmi", "ubuntu:14.10", ok=False)
    assert refused.returncode != 0 and "must force" in refused.stderr
    # Forced: the tag goes, the image stays (dangling) while c1 needs it.
    assert docker("rmi", "-f", "ubuntu:14.10").stdout.strip() == "Untagged: ubuntu:14.10"
    assert ["<none>", "<none>", imported.split(":")[1][:12]] in _images(docker)
    docker("rm", "c1")

    # search, with this dashboard as the Docker Hub index
    for name, stars in (("mysql", 9), ("mysql-proxy", 1)):
        docker("import", "-", f"{name}:latest", stdin=tar_directory(rootfs, "gzip"))
        Repository.objects.filter(name=name).update(star_count=stars, description=f"{name} server")
    from imagestore.models import RegistryCredential
    from imagestore.secrets import encrypt

    RegistryCredential.objects.create(registry=dashboard.split("://")[1], owner=operator, username="olive",
                                      secret_encrypted=encrypt("pw-operator"))
    found = docker("search", "--filter", "stars=3", "mysql").stdout.splitlines()
    assert found[0].split()[:2] == ["NAME", "DESCRIPTION"] and found[1].split()[:3] == ["mysql", "mysql", "server"]
    assert len(found) == 2

    pruned = docker("image", "prune", "-f").stdout
    assert "Total reclaimed space" in pruned


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Started (and allowed by the outbound policy) before the dashboard, which inherits the allow-list."""
    registry = start_registry(tmp_path / "basic", auth="htpasswd")
    allow_outbound("127.0.0.1:1")  # allowed, and nothing listening there
    yield registry
    registry.stop()


def test_docker_login_and_errors(basic_registry, docker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = basic_registry
    bad = docker("login", registry.host, "-u", "alice", "-p", "nope", ok=False)
    assert bad.returncode != 0 and "refused" in bad.stderr
    assert "Login Succeeded" in docker("login", registry.host, "-u", "alice", "-p", "wonderland").stdout
    missing = docker("pull", "127.0.0.1:1/nothing:1", ok=False)
    assert missing.returncode != 0 and "cannot reach" in missing.stderr
    refused = docker("pull", "127.0.0.1:2/nothing:1", ok=False)  # not allowed: refused before any connection
    assert refused.returncode != 0 and "outbound policy refused" in refused.stderr
    assert "No such image: nothere:1" in docker("image", "inspect", "nothere:1", ok=False).stderr


def test_docker_sdk_core_flow(dashboard: str, docker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import docker as docker_sdk

    client = docker_sdk.DockerClient(base_url=f"tcp://{dashboard.split('://')[1]}/docker", version="1.47")
    client.api.headers["Authorization"] = f"Token {docker.token}"
    image = client.images.pull("centos", tag="latest")
    assert image.id.startswith("sha256:")
    assert "centos:latest" in [t for i in client.images.list() for t in i.tags]
    assert image.tag("sdk/centos", tag="1")
    assert client.images.get("sdk/centos:1").id == image.id
    assert client.images.get("sdk/centos:1").attrs["Os"] == "linux"
    archive = b"".join(client.images.get("sdk/centos:1").save())
    client.images.remove("sdk/centos:1")
    client.images.remove("centos:latest", force=True)
    loaded = client.images.load(archive)
    assert [i.id for i in loaded] == [image.id]
    client.images.remove(image.id, force=True)
    assert client.images.list() == []
    with pytest.raises(docker_sdk.errors.ImageNotFound):
        client.images.get("centos:latest")


def test_docker_cp_in_and_out_stays_inside_the_container(docker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``docker cp`` both ways with the container's own symlinks pointing at host paths
    (CVE-2018-15664 / CVE-2019-14271 classes): the links are the container's, never the host's."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text("HOST SECRET\n")
    rootfs = busybox_rootfs(tmp_path / "rootfs")
    os.symlink(str(host), rootfs / "hostdir")
    os.symlink(str(host / "secret"), rootfs / "leak")
    docker("import", "--change", 'CMD ["/bin/sh"]', "-", "cp:test", stdin=tar_directory(rootfs, "gzip"))
    docker("create", "--name", "cp1", "cp:test", "true")
    source = tmp_path / "motd"
    source.write_text("welcome\n")
    docker("cp", str(source), "cp1:/etc/motd")
    out = tmp_path / "out"
    out.mkdir()
    docker("cp", "cp1:/etc/motd", str(out / "motd"))
    assert (out / "motd").read_text() == "welcome\n"
    docker("cp", "cp1:/etc", str(out / "etc"))  # a directory, streamed as a tar
    assert (out / "etc" / "hostname").read_text() == "imagestore-test\n"
    docker("cp", "cp1:/leak", str(out / "leak"))
    assert (out / "leak").is_symlink() and os.readlink(out / "leak") == str(host / "secret")
    docker("cp", str(source), "cp1:/hostdir/planted", ok=False)
    docker("cp", "cp1:/hostdir/secret", str(out / "stolen"), ok=False)
    assert not (out / "stolen").exists()
    assert sorted(os.listdir(host)) == ["secret"] and (host / "secret").read_text() == "HOST SECRET\n"
