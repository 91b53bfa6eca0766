"""A container is sandboxed as Docker's default is: its own network namespace that cannot
reach the host's loopback services, Docker's capabilities (none for a non-root user, none
ambient), Docker's seccomp profile, masked and read-only paths, cgroup limits, the user's
groups, and the cgroup freezer while files are copied out. Real runc, real pasta."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore.models import Container, Image
from imagestore.oci.runtime import DEFAULT_CAPABILITIES
from imagestore.services import containers as service
from imagestore.services.import_ import import_image
from tests.builders import busybox_rootfs, tar_directory
from tests.conftest import require_tool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KEYCTL_PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    /* KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), creating it (1) */
    long r = syscall(SYS_keyctl, 0, -3, 1);
    printf("keyctl=%ld errno=%d\n", r, r < 0 ? errno : 0);
    return 0;
}
"""

# Linux capability numbers (include/uapi/linux/capability.h) of Docker's default set.
_CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6,
    "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31,
}
DOCKER_CAPS = sum(1 << _CAP_NUMBERS[name] for name in DEFAULT_CAPABILITIES)


@pytest.fixture
def runc() -> str:
    require_tool("pasta")
    return require_tool("runc")


@pytest.fixture
def sandbox_image(tmp_path: Path) -> Image:
    root = busybox_rootfs(tmp_path / "rootfs")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\n")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the static keyctl probe")
    source = tmp_path / "keyctl.c"
    source.write_text(KEYCTL_PROBE)
    subprocess.run([gcc, "-static", "-O", "-o", str(root / "bin" / "keyctl-probe"), str(source)], check=True)
    return import_image(io.BytesIO(tar_directory(root, "gzip")), repository="sandbox:test")


def _run(*cmd: str, **options: object) -> tuple[Container, str]:
    container = service.create_container("sandbox:test", cmd=["/bin/busybox", "sh", "-c", cmd[0]], **options)
    service.start_container(container)
    container = service.wait_container(container, timeout=60)
    assert container.state == "exited", "the container did not finish"
    return container, b"".join(service.container_logs(container)).decode()


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A service on the host's loopback, as the dashboard is, that hangs up on whoever connects
    (so that a probe which does get through ends at once)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                server.accept()[0].close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)


PROBE = ("set -- $(/bin/busybox ip route show default); gw=${{3:-none}}; "
         "for target in {targets}; do "
         "/bin/busybox nc -w 2 ${{target%:*}} ${{target#*:}} </dev/null >/dev/null 2>&1; "
         "echo \"$target rc=$?\"; done")


def test_the_hosts_loopback_services_and_metadata_are_unreachable(sandbox_image: Image, runc: str,
                                                                  host_listener: int) -> None:
    # Redis on 6379 and our listener, on the loopback, through the gateway address (which pasta
    # maps to the host's loopback unless told not to), and the metadata address.
    targets = f"127.0.0.1:6379 127.0.0.1:{host_listener} $gw:6379 $gw:{host_listener} 169.254.169.254:80"
    container, out = _run(PROBE.format(targets=targets))
    assert container.exit_code == 0, out
    results = dict(line.split(" rc=") for line in out.splitlines())
    assert len(results) == 5, out
    assert all(rc != "0" for rc in results.values()), out  # not one of them reached
    _, routes = _run("/bin/busybox ip route; /bin/busybox ls /sys/class/net")
    assert "blackhole 169.254.0.0/16" in routes and "default via" in routes, routes  # outbound exists


def test_the_probe_reaches_the_host_with_the_host_network(sandbox_image: Image, runc: str,
                                                          host_listener: int) -> None:
    # The same probe, with the host's network asked for explicitly: it reaches the host's
    # loopback, so the refusals above are the sandbox's doing.
    _, out = _run(PROBE.format(targets=f"127.0.0.1:{host_listener}"), network="host")
    assert f"127.0.0.1:{host_listener} rc=0" in out, out


def test_network_none_has_only_loopback(sandbox_image: Image, runc: str) -> None:
    _, out = _run("/bin/busybox ls /sys/class/net; /bin/busybox ip -o addr show lo", network="none")
    assert out.split("\n")[0] == "lo" and "127.0.0.1/8" in out, out


def _pasta_of(directory: Path) -> list[str]:
    pastas = subprocess.run(["pgrep", "-af", "pasta"], capture_output=True, text=True).stdout
    return [line for line in pastas.splitlines() if str(directory) in line]


def test_the_network_lives_as_long_as_the_container_runs(sandbox_image: Image, runc: str) -> None:
    container = service.create_container("sandbox:test", cmd=["/bin/busybox", "sleep", "60"])
    service.start_container(container)
    directory = service.container_dir(container)
    try:
        assert Path(directory / "netns").is_file() and len(_pasta_of(directory)) == 1
    finally:
        service.stop_container(container, timeout=0)
    assert not (directory / "netns").exists() and not (directory / "pasta.pid").exists()
    for _ in range(50):  # SIGTERM was sent; pasta exits at once
        if not _pasta_of(directory):
            break
        time.sleep(0.02)
    assert not _pasta_of(directory)
    ran, _ = _run("true")  # and a container that exited by itself leaves nothing either
    assert not (service.container_dir(ran) / "netns").exists() and not _pasta_of(service.container_dir(ran))


def test_proc_sys_is_read_only_and_docker_paths_are_masked(sandbox_image: Image, runc: str) -> None:
    # (stderr into stdout: the two are separate streams, whose order between them is not kept)
    container, out = _run("{ echo 1 > /proc/sys/kernel/ns_last_pid; } 2>&1; echo write=$?; "
                          "/bin/busybox wc -c < /proc/keys; /bin/busybox cut -d' ' -f5 /proc/self/mountinfo")
    assert "write=1" in out and "Read-only file system" in out, out
    lines = out.splitlines()
    assert lines[lines.index("write=1") + 1] == "0", out  # /proc/keys: /dev/null over it
    assert {"/proc/sys", "/proc/keys", "/proc/timer_list"} <= set(out.split()), out
    spec = json.loads((service.container_dir(container) / "config.json").read_text())
    assert "/sys/devices/virtual/powercap" in spec["linux"]["maskedPaths"]


def test_seccomp_refuses_unshare_and_keyctl(sandbox_image: Image, runc: str) -> None:
    container, out = _run("/bin/busybox grep Seccomp: /proc/self/status; /bin/busybox unshare -U true; "
                          "echo unshare=$?; /bin/keyctl-probe")
    assert re.search(r"^Seccomp:\s+2$", out, re.M), out
    assert "unshare=1" in out and "Operation not permitted" in out, out
    assert "keyctl=-1 errno=1" in out, out  # EPERM, the profile's default action


def test_a_fork_bomb_stops_at_the_pids_limit(sandbox_image: Image, runc: str) -> None:
    # The bomb runs in a subshell (ash gives up on a failed fork); what follows uses builtins
    # only (no fork): the killed sleepers, orphaned, stay counted until reaped, so a `cat` after
    # them could still find the limit reached on a loaded machine.
    container, out = _run("(i=0; while [ $i -lt 500 ]; do /bin/busybox sleep 30 & i=$((i+1)); echo $i > /tmp/n; "
                          "done); read n < /tmp/n; echo forked=$n; kill -9 -1; wait; "
                          "{ read max < /sys/fs/cgroup/pids/pids.max || read max < /sys/fs/cgroup/pids.max; } "
                          "2>/dev/null; echo $max; true", pids_limit=20)
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
    match = re.search(r"^forked=(\d+)$", out, re.M)
    assert match and 10 <= int(match.group(1)) < 20, out  # the shells and the sleepers: 20 at most
    assert out.split()[-1] == "20", out


def test_a_pids_limit_is_there_by_default(sandbox_image: Image, runc: str) -> None:
    _, out = _run("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; true")
    assert out.strip() == "1024", out


def _status(out: str, key: str) -> int:
    match = re.search(rf"^{key}:\s+([0-9a-f]+)$", out, re.M)
    assert match, out
    return int(match.group(1), 16)


def test_capabilities_are_dockers_and_none_for_a_non_root_user(sandbox_image: Image, runc: str) -> None:
    caps = "/bin/busybox grep ^Cap /proc/self/status"
    _, root = _run(caps)
    assert _status(root, "CapEff") == _status(root, "CapPrm") == _status(root, "CapBnd") == DOCKER_CAPS, root
    assert _status(root, "CapAmb") == 0 and _status(root, "CapInh") == 0, root
    _, user = _run(caps, user="1000")
    assert _status(user, "CapEff") == 0 and _status(user, "CapPrm") == 0 and _status(user, "CapAmb") == 0, user
    assert _status(user, "CapBnd") == DOCKER_CAPS, user
    # What runc is told, not only what it made of it: runc 1.1 leaves out an ambient set that is
    # not also inheritable, and a non-root process loses what it was given at setuid; the spec
    # itself now asks for neither.
    container = Container.objects.get(config__User="1000")
    spec = json.loads((service.container_dir(container) / "config.json").read_text())["process"]["capabilities"]
    assert spec["ambient"] == spec["inheritable"] == spec["effective"] == spec["permitted"] == []
    assert spec["bounding"] == DEFAULT_CAPABILITIES
    # An image's own USER, as a Dockerfile's `USER 1000` sets it.
    from imagestore.services.commit import commit_container

    commit_container(container.id, repository="user1000", changes=["USER 1000"])
    as_image = service.create_container("user1000", cmd=["/bin/busybox", "sh", "-c", caps])
    as_image = service.wait_container(service.start_container(as_image), timeout=60)
    image_user = b"".join(service.container_logs(as_image)).decode()
    assert _status(image_user, "CapEff") == 0 and _status(image_user, "CapPrm") == 0, image_user


def test_the_user_runs_with_its_groups(sandbox_image: Image, runc: str) -> None:
    _, out = _run("id", user="app")
    ids, _, groups = out.strip().partition(" groups=")
    assert ids == "uid=1000(app) gid=1000(app)", out
    assert set(groups.split(",")) == {"1000(app)", "10(wheel)", "50(staff)"}, out


def test_memory_and_cpu_limits_reach_the_cgroup(sandbox_image: Image, runc: str) -> None:
    _, out = _run("cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max "
                  "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; true",
                  memory=64 << 20, nano_cpus=500_000_000)
    assert str(64 << 20) in out.split(), out
    assert "50000" in out.split(), out  # half of the 100000 us period


def test_copy_out_copy_in_and_commit_freeze_the_running_container(sandbox_image: Image, runc: str) -> None:
    from imagestore.services.commit import commit_container
    from tests.builders import tar_bytes

    container = service.create_container("sandbox:test", cmd=["/bin/busybox", "sleep", "60"])
    service.start_container(container)

    def status() -> str:
        state = subprocess.run([runc, "state", container.id], capture_output=True, text=True, check=True)
        return str(json.loads(state.stdout)["status"])

    class Watching(io.BytesIO):
        """The tar being copied in, noting the container's state while it is read."""
        seen: set[str] = set()

        def read(self, size: int | None = -1) -> bytes:
            self.seen.add(status())
            return super().read(size)

    class Noting:
        seen: set[str] = set()

        def update(self, item: str, done: int, total: int | None, phase: str) -> None:
            self.seen.add(status())

        def log(self, line: str) -> None:
            return None

    try:
        chunks = service.archive_of(container, "/etc")
        next(iter(chunks))
        assert status() == "paused"
        chunks.close()  # type: ignore[attr-defined]
        assert status() == "running"
        service.path_stat(container, "/etc/passwd")
        assert status() == "running"
        archive = Watching(tar_bytes([("copied", b"in")]))
        service.copy_into(container, "/tmp", archive)
        assert archive.seen == {"paused"} and status() == "running"
        progress = Noting()
        commit_container(container.id, repository="frozen", progress=progress)
        assert progress.seen == {"paused"} and status() == "running"
    finally:
        service.remove_container(container, force=True)


LIMITS_PROBE = ("/bin/busybox ls /sys/class/net; cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max "
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null; true")


def _started(container_id: str) -> str:
    container = service.start_container(Container.objects.get(pk=container_id))
    container = service.wait_container(container, timeout=60)
    return b"".join(service.container_logs(container)).decode()


def test_docker_api_create_takes_the_network_and_limits_of_host_config(sandbox_image: Image, runc: str,
                                                                       operator: object) -> None:
    from django.test import Client

    from imagestore.services.tokens import create_token

    docker = Client(HTTP_AUTHORIZATION=f"Token {create_token(operator)[1]}")
    body = {"Image": "sandbox:test", "Cmd": ["/bin/busybox", "sh", "-c", LIMITS_PROBE],
            "HostConfig": {"NetworkMode": "none", "Memory": 32 << 20, "NanoCpus": 250_000_000, "PidsLimit": 33}}
    response = docker.post("/docker/v1.47/containers/create", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    assert _started(response.json()["Id"]).split() == ["lo", str(32 << 20), "33", "25000"]
    inspect = docker.get(f"/docker/v1.47/containers/{response.json()['Id']}/json").json()
    assert inspect["HostConfig"]["NetworkMode"] == "none" and inspect["HostConfig"]["Memory"] == 32 << 20
    body["HostConfig"] = {"NetworkMode": "macvlan"}
    assert docker.post("/docker/v1.47/containers/create", data=json.dumps(body),
                       content_type="application/json").status_code == 400


def test_rest_create_takes_the_network_and_limits(sandbox_image: Image, runc: str, operator: object,
                                                  client_for: object) -> None:
    client = client_for(operator)  # type: ignore[operator]
    response = client.post("/api/v1/containers/", {
        "image": "sandbox:test", "cmd": ["/bin/busybox", "sh", "-c", LIMITS_PROBE], "network": "none",
        "memory": 48 << 20, "nano_cpus": 1_000_000_000, "pids_limit": 40}, format="json")
    assert response.status_code == 201, response.content
    assert _started(response.json()["id"]).split() == ["lo", str(48 << 20), "40", "100000"]


def test_resolv_conf_and_hosts_are_the_containers_own_and_stay_out_of_its_diff(sandbox_image: Image,
                                                                               runc: str) -> None:
    container, out = _run("cat /etc/hosts /etc/resolv.conf; echo '10.1.2.3 extra' >> /etc/hosts; echo wrote=$?; "
                          "/bin/busybox hostname")
    hostname = out.split()[-1]
    assert hostname == container.id[:12] and f"127.0.1.1\t{hostname}" in out and "wrote=0" in out, out
    nameservers = re.findall(r"^nameserver\s+(\S+)", out, re.M)
    assert nameservers and not any(n.startswith("127.") or n == "::1" for n in nameservers), out
    paths = {change["Path"] for change in service.container_changes(container)}
    assert not paths & {"/etc/hosts", "/etc/resolv.conf"}, paths  # empty mount points, left out
    assert "10.1.2.3 extra" in (service.container_dir(container) / "hosts").read_text()


def test_a_pause_left_by_a_holder_that_died_ends_with_the_next_copy(sandbox_image: Image, runc: str) -> None:
    """A worker killed mid-commit leaves the container paused with nobody to resume it; before,
    every later cp or commit failed ("cannot pause") and it stayed frozen for good."""
    container = service.create_container("sandbox:test", cmd=["/bin/busybox", "sleep", "60"])
    service.start_container(container)
    try:
        subprocess.run([runc, "pause", container.id], check=True, capture_output=True)  # the dead holder's pause
        assert b"".join(service.archive_of(container, "/etc/hostname"))
        state = subprocess.run([runc, "state", container.id], capture_output=True, text=True, check=True)
        assert json.loads(state.stdout)["status"] == "running"
    finally:
        service.remove_container(container, force=True)
