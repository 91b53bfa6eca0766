"""The platform (os/architecture/variant) of this host, named as Go and OCI name them."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

_GOARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        out = f"{self.os}/{self.architecture}"
        return f"{out}/{self.variant}" if self.variant else out


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch, variant = _GOARCH.get(machine, (machine, ""))
    return Platform("linux", arch, variant)
