"""Docker's default seccomp profile rendered into an OCI runtime spec's ``linux.seccomp``
(https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#seccomp).

The profile itself is data (``seccomp_default.json``, transcribed from moby, source and
commit named in it). Its rules carry conditions -- on the architecture, on the container's
capabilities, on the kernel version -- that Docker resolves per container when it writes the
spec; ``render`` resolves them the same way, so a container without CAP_SYS_ADMIN gets
``clone`` only without namespace flags, no ``unshare``/``mount``/``setns``, and ``clone3``
answered ENOSYS (so libc falls back to the filtered ``clone``).
"""

from __future__ import annotations

import json
import os
import platform
from functools import cache
from pathlib import Path
from typing import Any

PROFILE_PATH = Path(__file__).with_name("seccomp_default.json")

# uname's machine -> (libseccomp architecture, the Go architecture name moby's rules use)
_ARCHES = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
}


@cache
def default_profile() -> dict[str, Any]:
    with open(PROFILE_PATH, encoding="utf-8") as f:
        profile: dict[str, Any] = json.load(f)
    return profile


def _kernel_at_least(minimum: str, release: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        numbers = []
        for piece in text.split("-")[0].split(".")[:2]:
            digits = "".join(c for c in piece if c.isdigit())
            numbers.append(int(digits or 0))
        return tuple(numbers)
    return parts(release) >= parts(minimum)


def render(capabilities: list[str], *, machine: str | None = None, release: str | None = None) -> dict[str, Any]:
    """``linux.seccomp`` for a container whose bounding set is ``capabilities``."""
    machine = machine or platform.machine()
    release = release or os.uname().release
    native, arch = _ARCHES.get(machine, ("", machine))
    profile = default_profile()
    architectures: list[str] = []
    for entry in profile["archMap"]:
        if entry["architecture"] == native:
            architectures = [native, *(entry["subArchitectures"] or [])]
    if not architectures and native:
        architectures = [native]
    caps = set(capabilities)
    syscalls = []
    for rule in profile["syscalls"]:
        includes = rule.get("includes") or {}
        excludes = rule.get("excludes") or {}
        if includes.get("arches") and arch not in includes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= caps:
            continue
        if includes.get("minKernel") and not _kernel_at_least(includes["minKernel"], release):
            continue
        if arch in (excludes.get("arches") or []):
            continue
        if caps & set(excludes.get("caps") or []):
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if rule.get("args"):
            out["args"] = [dict(a) for a in rule["args"]]
        if "errnoRet" in rule:
            out["errnoRet"] = rule["errnoRet"]
        syscalls.append(out)
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile["defaultErrnoRet"],
            "architectures": architectures, "syscalls": syscalls}
