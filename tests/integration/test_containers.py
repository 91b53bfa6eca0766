"""Containers run by the real runc on a busybox-static image; commit of their changes."""

from __future__ import annotations

import io
import tarfile

import pytest
from rest_framework.test import APIClient

from imagestore.errors import Conflict
from imagestore.models import Container, Image
from imagestore.oci.errors import UnsafeArchive
from imagestore.services import containers as service
from imagestore.services import jobs
from imagestore.services.commit import commit_container
from imagestore.services.remove import remove_image
from tests.builders import link, tar_bytes
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def runc() -> str:
    return require_tool("runc")


def _run(image: str, *cmd: str) -> Container:
    container = service.create_container(image, cmd=list(cmd))
    service.start_container(container)
    return service.wait_container(container, timeout=30)


def _logs(container: Container) -> bytes:
    return b"".join(service.container_logs(container))


def _layer_names(image: Image) -> list[str]:
    from imagestore.blobs import get_store

    last = image.image_layers.select_related("layer").order_by("-position").first()
    assert last is not None
    with get_store().open(last.layer.digest) as blob, tarfile.open(fileobj=blob, mode="r:gz") as tar:
        return tar.getnames()


def test_run_commit_and_run_the_committed_image(busybox: Image, runc: str) -> None:
    container = _run("busybox:static", "sh", "-c", "touch /test; echo hi")
    assert container.state == "exited" and container.exit_code == 0, _logs(container)
    assert _logs(container) == b"hi\n"
    assert {"Path": "/test", "Kind": 1} in service.container_changes(container)
    image = commit_container(container.id, repository="test", author="Docker cxp", message="added a new file")
    assert _layer_names(image) == ["test"]
    assert image.parent_id == busybox.id
    from imagestore.services.inspect import inspect_image

    data = inspect_image(image)
    assert data["Container"] == container.id and data["Author"] == "Docker cxp"
    assert data["Comment"] == "added a new file" and data["RepoTags"] == ["test:latest"]
    seen = _run("test", "ls", "/test")
    assert seen.exit_code == 0 and _logs(seen) == b"/test\n"


def test_deleted_base_file_becomes_a_whiteout(busybox: Image, runc: str) -> None:
    container = _run("busybox:static", "rm", "/etc/hostname")
    assert container.exit_code == 0
    assert {"Path": "/etc/hostname", "Kind": 2} in service.container_changes(container)
    assert {"Path": "/etc", "Kind": 0} in service.container_changes(container)
    image = commit_container(container.id, repository="nohost")
    assert "etc/.wh.hostname" in _layer_names(image)
    probe = _run("nohost", "test", "-e", "/etc/hostname")
    assert probe.exit_code == 1


def test_exit_code_env_and_workdir_reach_the_process(busybox: Image, runc: str) -> None:
    container = service.create_container("busybox:static", cmd=["sh", "-c", 'echo "$GREETING $(pwd)"; exit 7'],
                                         env=["GREETING=hello"], working_dir="/tmp")
    service.start_container(container)
    container = service.wait_container(container, timeout=30)
    assert container.exit_code == 7 and _logs(container) == b"hello /tmp\n"


def test_stop_sends_term_then_kill_and_rm_needs_force_while_running(busybox: Image, runc: str) -> None:
    container = service.create_container("busybox:static", cmd=["sleep", "300"])
    service.start_container(container)
    container.refresh_from_db()
    assert container.state == "running"
    with pytest.raises(Conflict, match="cannot remove a running container"):
        service.remove_container(container)
    with pytest.raises(Conflict, match="being used by running container"):
        remove_image(busybox.id, force=True)
    stopped = service.stop_container(container, timeout=2)
    assert stopped.state == "exited" and stopped.exit_code in (137, 143)
    service.remove_container(stopped)
    assert not Container.objects.exists()
    assert not service.snapshot_dir(stopped.snapshot).exists()  # the last user removed: the snapshot goes


def test_killed_supervisor_shows_the_container_exited(busybox: Image, runc: str) -> None:
    import os
    import signal

    container = service.create_container("busybox:static", cmd=["sleep", "300"])
    service.start_container(container)
    container.refresh_from_db()
    assert container.supervisor_pid
    os.killpg(container.supervisor_pid, signal.SIGKILL)  # as when the host stops
    import time

    time.sleep(0.5)
    service.reconcile(container)
    assert container.state == "exited" and "restarted" in container.error
    service._runc(container, "delete", "--force", container.id)


def test_without_a_runtime_everything_but_start_works(busybox: Image, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CONTAINER_RUNTIME = "no-such-runtime"
    settings.CONTAINER_ROOTFS = "copy"  # and with a copied root, where overlay is not allowed
    container = service.create_container("busybox:static", cmd=["true"])
    assert container.rootfs_mode == "copy"
    service.copy_into(container, "/etc", io.BytesIO(tar_bytes([("motd", b"welcome\n")])))
    assert {"Path": "/etc/motd", "Kind": 1} in service.container_changes(container)
    out = io.BytesIO()
    service.copy_out(container, "/etc/motd", out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile("motd").read() == b"welcome\n"  # type: ignore[union-attr]
    image = commit_container(container.id, repository="motd")
    assert _layer_names(image) == ["etc", "etc/motd"]
    with pytest.raises(service.RuntimeUnavailable, match="no OCI runtime is installed"):
        service.start_container(container)
    response = _api().post(f"/api/v1/containers/{container.id}/start/")
    assert response.status_code == 503 and "no-such-runtime not found" in response.json()["detail"]


def test_copy_escaping_the_root_is_refused(busybox: Image) -> None:
    container = service.create_container("busybox:static", cmd=["true"])
    for entries in ([("../../escape", b"x")], [link("evil", "../../../etc/shadow", hard=True)]):
        with pytest.raises(UnsafeArchive):
            service.copy_into(container, "/tmp", io.BytesIO(tar_bytes(entries)))
    assert service.container_changes(container) == []


def test_name_taken_twice_is_a_conflict(busybox: Image) -> None:
    service.create_container("busybox:static", cmd=["true"], name="web")
    with pytest.raises(Conflict, match='"/web" is already in use'):
        service.create_container("busybox:static", cmd=["true"], name="web")
    assert Container.objects.count() == 1


def _api() -> APIClient:
    from django.contrib.auth.models import User

    user = User.objects.filter(username="api-op").first() or User.objects.create_user("api-op", is_staff=True)
    client = APIClient()
    client.force_login(user)
    return client


def test_containers_rest_api(busybox: Image, runc: str) -> None:
    client = _api()
    response = client.post("/api/v1/containers/", {"image": "busybox:static", "cmd": ["sh", "-c", "echo made > /made"],
                                                   "name": "maker"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "maker" and body["state"] == "created" and len(body["id"]) == 64
    assert client.post("/api/v1/containers/", {"image": "busybox:static", "cmd": ["true"], "name": "maker"},
                       format="json").status_code == 409
    assert client.post("/api/v1/containers/", {"image": "nothere:1"}, format="json").status_code == 404
    assert client.get("/api/v1/containers/").json()["count"] == 0  # not running
    assert client.get("/api/v1/containers/?all=1").json()["count"] == 1
    assert client.post("/api/v1/containers/maker/start/").status_code == 200
    assert client.post("/api/v1/containers/maker/wait/").json() == {"StatusCode": 0, "Error": None}
    assert client.get("/api/v1/containers/maker/diff/").json() == [{"Path": "/made", "Kind": 1}]
    tar_response = client.get("/api/v1/containers/maker/archive/", {"path": "/made"})
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_response.streaming_content))) as tar:  # type: ignore[attr-defined]
        assert tar.extractfile("made").read() == b"made\n"  # type: ignore[union-attr]
    put = client.put("/api/v1/containers/maker/archive/?path=/tmp", tar_bytes([("x", b"1")]),
                     content_type="application/x-tar")
    assert put.status_code == 200
    job = client.post("/api/v1/containers/maker/commit/", {"repository": "made", "tag": "1", "message": "m",
                                                           "changes": ["CMD [\"cat\", \"/made\"]"]}, format="json")
    assert job.status_code == 202
    finished = jobs.run_job(job.json()["id"])
    assert finished is not None and finished.state == "succeeded", finished.error if finished else None
    bad = client.post("/api/v1/containers/maker/commit/", {"changes": ["RUN rm -rf /"]}, format="json")
    assert bad.status_code == 400 and "not a valid change command" in bad.json()["detail"]
    run = client.post("/api/v1/containers/", {"image": "made:1"}, format="json").json()  # CMD from the commit
    client.post(f"/api/v1/containers/{run['id']}/start/")
    client.post(f"/api/v1/containers/{run['id']}/wait/")
    assert b"".join(client.get(f"/api/v1/containers/{run['id']}/logs/").streaming_content) == b"made\n"  # type: ignore[attr-defined]
    assert client.delete("/api/v1/containers/maker/").status_code == 204
    assert client.get("/api/v1/containers/maker/").status_code == 404
    member = APIClient()
    from django.contrib.auth.models import User

    member.force_login(User.objects.create_user("reader"))
    assert member.post(f"/api/v1/containers/{run['id']}/start/").status_code == 403
    assert member.get("/api/v1/containers/?all=1").status_code == 200


def test_overlay_root_where_the_kernel_allows_it(busybox: Image, runc: str) -> None:
    import os

    container = _run("busybox:static", "sh", "-c", "echo changed > /etc/hostname")
    assert container.rootfs_mode == "overlay"  # this test machine allows overlay mounts (root)
    root = service.rootfs(container)
    assert os.path.ismount(root)
    upper = service.container_dir(container) / "upper"
    assert (upper / "etc" / "hostname").read_text() == "changed\n"  # only the change is written
    assert not (upper / "bin" / "busybox").exists()
    snapshot = service.snapshot_dir(container.snapshot)
    assert (snapshot / "etc" / "hostname").read_text() == "imagestore-test\n"  # the shared root untouched
    second = service.create_container("busybox:static", cmd=["true"])
    assert second.snapshot == container.snapshot  # one snapshot for both
    # After a reboot the mount is gone; using the container mounts it again.
    import subprocess

    subprocess.run(["umount", str(root)], check=True)
    assert {"Path": "/etc/hostname", "Kind": 0} in service.container_changes(container)
    service.remove_container(container)
    assert snapshot.exists()  # the other container still needs it
    service.remove_container(second)
    assert not snapshot.exists()
