"""OCI runtime bundle configs (https://github.com/opencontainers/runtime-spec/blob/main/config.md).

The defaults follow Docker's (moby's ``oci/defaults.go`` and ``daemon/oci_linux.go``):
its capability set in the bounding, effective and permitted sets only (none inheritable or
ambient; effective and permitted empty when the process user is not root), its seccomp
profile (imagestore/oci/seccomp.py), its masked and read-only paths, a pids limit, and a
network namespace of its own unless the container runs with the host's network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import seccomp

DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
# moby's oci/defaults.go DefaultLinuxSpec (/sys/devices/virtual/powercap: the RAPL energy
# counters of CVE-2020-8694).
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# The CFS period Docker uses to turn --cpus into a quota (runtime-spec linux.resources.cpu).
CPU_PERIOD = 100_000
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    """cgroup limits (https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#control-groups);
    0 means none. runc applies them on cgroup v1 and v2 alike."""

    pids: int = 0
    memory: int = 0  # bytes
    nano_cpus: int = 0  # 1e9 = one CPU, as Docker's NanoCpus


def _resources(limits: Limits) -> dict[str, Any]:
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if limits.pids > 0:
        resources["pids"] = {"limit": limits.pids}
    if limits.memory > 0:
        # Swap as Docker without --memory-swap would allow it is left to the host: the memsw
        # controller is often absent (swap accounting off), and runc refuses a swap limit then.
        resources["memory"] = {"limit": limits.memory}
    if limits.nano_cpus > 0:
        resources["cpu"] = {"period": CPU_PERIOD, "quota": max(1000, limits.nano_cpus * CPU_PERIOD // 10**9)}
    return resources


def runtime_config(*, rootfs: str, args: list[str], env: list[str], cwd: str, uid: int, gid: int,
                   hostname: str, additional_gids: list[int] | None = None, netns: str | None = None,
                   limits: Limits | None = None, mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The bundle's config.json. ``netns``: the path of the network namespace to join
    (services/containers/network.py prepares it); None shares the host's network. ``mounts``:
    more mounts after the standard ones (the container's resolv.conf and hosts)."""
    if not any(e.startswith("PATH=") for e in env):
        env = [DEFAULT_PATH, *env]
    user: dict[str, Any] = {"uid": uid, "gid": gid}
    if additional_gids:
        user["additionalGids"] = list(additional_gids)
    # Docker gives a non-root process no effective or permitted capabilities (a file's
    # capabilities can still raise them within the bounding set, as with Docker).
    granted = list(DEFAULT_CAPABILITIES) if uid == 0 else []
    namespaces: list[dict[str, str]] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if netns is not None:
        namespaces.append({"type": "network", "path": netns})
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": user,
            "args": args,
            "env": env,
            "cwd": cwd or "/",
            "capabilities": {"bounding": list(DEFAULT_CAPABILITIES), "effective": granted,
                             "permitted": list(granted), "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            *(mounts or []),
        ],
        "linux": {
            "resources": _resources(limits or Limits()),
            "namespaces": namespaces,
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            # Rules conditional on capabilities follow the bounding set, as Docker renders them.
            "seccomp": seccomp.render(DEFAULT_CAPABILITIES),
        },
    }
