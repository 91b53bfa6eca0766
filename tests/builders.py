"""Test inputs made by the tests themselves: tarballs, root filesystems, images."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import tarfile
from pathlib import Path

import zstandard

BUSYBOX = Path("/bin/busybox")

COMPRESSORS = {
    "tar": lambda data: data,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A tar from (name, content) pairs and ready TarInfo entries, in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def link(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def char_device(name: str, major: int, minor: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = major, minor
    info.mode = 0o666
    return info


def simple_rootfs_tar(marker: str = "hello") -> bytes:
    """A small but realistic root filesystem: dirs, files, absolute symlinks, a device."""
    return tar_bytes(
        [
            directory("./"),
            directory("./bin"),
            ("./bin/busybox", b"\x7fELF fake busybox " + marker.encode()),
            link("./bin/sh", "/bin/busybox"),
            link("./bin/ls", "busybox"),
            directory("./etc"),
            ("./etc/hostname", marker.encode() + b"\n"),
            link("./etc/hostname.bak", "etc/hostname", hard=True),
            directory("./dev"),
            char_device("./dev/null", 1, 3),
        ]
    )


def busybox_rootfs(root: Path) -> Path:
    """A real root filesystem around busybox-static, the way test images are built here."""
    if not BUSYBOX.exists():
        raise RuntimeError("busybox-static is not installed (make test installs it)")
    for d in ("bin", "etc", "tmp", "usr/bin", "var/empty"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "rm", "sleep", "test", "true", "touch", "mkdir", "id"):
        os.symlink("busybox", root / "bin" / applet)
    os.symlink("/bin/busybox", root / "usr" / "bin" / "env")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "hostname").write_text("imagestore-test\n")
    os.link(root / "etc" / "passwd", root / "etc" / "passwd.hardlink")
    (root / "tmp").chmod(0o1777)
    return root


def tar_directory(root: Path, compression: str = "gzip") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=".")
    return COMPRESSORS[compression](out.getvalue())


def sparse_file(name: str, apparent_size: int) -> bytes:
    """A tar of one GNU sparse file (PAX format 1.0): one 512-byte block of data and a
    hole up to ``apparent_size``, a few KB on the wire whatever the apparent size."""
    sparse_map = b"1\n0\n512\n".ljust(BLOCK_SIZE, b"\0")
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size = len(sparse_map) + BLOCK_SIZE
    info.mode = 0o644
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
                        "GNU.sparse.realsize": str(apparent_size)}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(sparse_map + b"x" * BLOCK_SIZE))
    return out.getvalue()


BLOCK_SIZE = 512


def docker_archive(layers: list[bytes], repo_tag: str | None = None, config: dict | None = None) -> bytes:  # type: ignore[type-arg]
    """A ``docker save`` archive of one image made of these (uncompressed) layer tars."""
    import hashlib
    import json

    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    document = {"architecture": "amd64", "os": "linux", "config": config or {},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "history": [{"created_by": f"layer {n}"} for n in range(len(layers))]}
    config_bytes = json.dumps(document).encode()
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [("config.json", config_bytes)]
    members += [(f"layer{n}.tar", layer) for n, layer in enumerate(layers)]
    manifest = [{"Config": "config.json", "RepoTags": [repo_tag] if repo_tag else [],
                 "Layers": [f"layer{n}.tar" for n in range(len(layers))]}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    return tar_bytes(members)
