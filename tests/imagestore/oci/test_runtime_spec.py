"""The runtime spec asks for Docker's default sandbox: seccomp rules resolved per container as
moby resolves them, capabilities by user, limits into linux.resources."""

from __future__ import annotations

from typing import Any

from imagestore.oci import seccomp
from imagestore.oci.runtime import DEFAULT_CAPABILITIES, Limits, runtime_config


def _allowed(profile: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in profile["syscalls"]:
        for name in rule["names"]:
            rules.setdefault(name, []).append(rule)
    return rules


def test_without_cap_sys_admin_namespaces_and_mounts_are_refused() -> None:
    profile = seccomp.render(DEFAULT_CAPABILITIES, machine="x86_64", release="6.1.0")
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    rules = _allowed(profile)
    for name in ("unshare", "setns", "mount", "umount2", "keyctl", "add_key", "bpf", "reboot", "kexec_load"):
        assert name not in rules, name
    # clone only without namespace flags (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET)
    [clone] = rules["clone"]
    assert clone["args"] == [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]
    assert rules["clone3"] == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    assert "arch_prctl" in rules and "chroot" in rules  # amd64's, and CAP_SYS_CHROOT's
    assert "process_vm_readv" in rules  # minKernel 4.8


def test_conditions_follow_capabilities_architecture_and_kernel() -> None:
    rules = _allowed(seccomp.render([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], machine="aarch64", release="4.4.0"))
    assert "unshare" in rules and "mount" in rules and "clone3" in rules
    assert [r.get("args") for r in rules["clone"]] == [None]  # unconditional with CAP_SYS_ADMIN
    assert "arch_prctl" not in rules and "set_tls" in rules
    assert "process_vm_readv" not in rules  # older than 4.8, no CAP_SYS_PTRACE


def _spec(uid: int, **options: Any) -> dict[str, Any]:
    return runtime_config(rootfs="/r", args=["sh"], env=[], cwd="/", uid=uid, gid=uid, hostname="h", **options)


def test_capabilities_are_bounded_and_none_for_a_non_root_user() -> None:
    root = _spec(0)["process"]["capabilities"]
    assert root["bounding"] == root["effective"] == root["permitted"] == DEFAULT_CAPABILITIES
    assert root["inheritable"] == root["ambient"] == []
    user = _spec(1000)["process"]["capabilities"]
    assert user["bounding"] == DEFAULT_CAPABILITIES
    assert user["effective"] == user["permitted"] == user["inheritable"] == user["ambient"] == []


def test_limits_network_and_groups_reach_the_spec() -> None:
    spec = _spec(1000, additional_gids=[1000, 10], netns="/x/netns",
                 limits=Limits(pids=64, memory=128 << 20, nano_cpus=1_500_000_000))
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}
    assert {"type": "network", "path": "/x/netns"} in spec["linux"]["namespaces"]
    resources = spec["linux"]["resources"]
    assert resources["pids"] == {"limit": 64} and resources["memory"] == {"limit": 128 << 20}
    assert resources["cpu"] == {"period": 100000, "quota": 150000}
    assert "/sys/devices/virtual/powercap" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]
    host = _spec(0)
    assert all(ns["type"] != "network" for ns in host["linux"]["namespaces"])
    assert "pids" not in host["linux"]["resources"]
