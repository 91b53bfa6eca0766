"""Reading the package databases found inside an image (from the files the layer index keeps).

- dpkg: ``var/lib/dpkg/status`` and distroless' ``var/lib/dpkg/status.d/*`` (deb822 stanzas,
  https://www.debian.org/doc/debian-policy/ch-controlfields.html)
- apk: ``lib/apk/db/installed`` (https://wiki.alpinelinux.org/wiki/Apk_spec#Installed_Database_V2)
- rpm: ``rpmdb.sqlite``, Berkeley DB ``Packages`` or ``Packages.db`` (ndb), read by Debian's own
  ``rpm`` tool on a private copy (``--dbpath``), never by a parser of our own
- Python: ``*.dist-info/METADATA`` (core metadata, https://packaging.python.org/en/latest/specifications/core-metadata/)
- Node: ``node_modules/*/package.json``

Each reader takes the bytes and the path it was read from and gives Package records; a reader
that cannot make sense of its input gives none rather than raising (an image is whatever its
author put in it).
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from packageurl import PackageURL

from . import jsonbounds
from .errors import OCIError

RPM_TIMEOUT = 60
MAX_PACKAGES = 100_000


@dataclass(frozen=True)
class Package:
    kind: str  # deb, apk, rpm, python, npm
    name: str
    version: str
    arch: str = ""
    source: str = ""
    license: str = ""
    path: str = ""  # the database or metadata file it was read from (relative to the root)
    layer: int = 0  # position of the layer that installed it

    def key(self) -> tuple[str, str, str]:
        return self.kind, self.name, self.arch

    def with_layer(self, layer: int) -> Package:
        return replace(self, layer=layer)


DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = re.compile(r"^var/lib/dpkg/status\.d/([^/]+)$")
APK_INSTALLED = "lib/apk/db/installed"
RPM_DBS = re.compile(r"^(?:usr/lib/sysimage|var/lib)/rpm/(rpmdb\.sqlite|Packages|Packages\.db)$")
PYTHON_METADATA = re.compile(r"(?:^|/)[^/]+\.dist-info/METADATA$")
NPM_PACKAGE = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/]+/package\.json$")
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of a deb822 file: ``Field: value`` lines, continuation lines indented."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, last = {}, ""
            continue
        if line[0] in " \t" and last:
            current[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            current[last] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas[:MAX_PACKAGES]


def read_dpkg(data: bytes, path: str) -> list[Package]:
    """Packages dpkg knows (``dpkg-query -W`` lists those whose state is not ``not-installed``)."""
    out = []
    for stanza in deb822(_text(data)):
        name, version = stanza.get("Package", ""), stanza.get("Version", "")
        status = stanza.get("Status", "install ok installed").split()
        if not name or (len(status) == 3 and status[2] == "not-installed"):
            continue
        source = stanza.get("Source", "").split(" ")[0]
        out.append(Package("deb", name, version, stanza.get("Architecture", ""), source, "", path))
    return out


def read_apk(data: bytes, path: str) -> list[Package]:
    out = []
    for block in re.split(r"\n\s*\n", _text(data)):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":" and line[0] not in fields:
                fields[line[0]] = line[2:]
        if fields.get("P"):
            out.append(Package("apk", fields["P"], fields.get("V", ""), fields.get("A", ""), fields.get("o", ""),
                               fields.get("L", ""), path))
    return out[:MAX_PACKAGES]


def read_python(data: bytes, path: str) -> list[Package]:
    head = _text(data[:1 << 20]).split("\n\n", 1)[0]
    message = email.parser.HeaderParser().parsestr(head)
    name, version = message.get("Name", ""), message.get("Version", "")
    if not name:
        return []
    license_ = message.get("License-Expression") or message.get("License") or ""
    if "\n" in license_ or len(license_) > 200:  # a whole licence text, not its name
        license_ = ""
    return [Package("python", str(name), str(version), "", "", str(license_), path)]


def read_npm(data: bytes, path: str) -> list[Package]:
    try:
        document = jsonbounds.loads(data, what=path)
    except OCIError:
        return []
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        return []
    license_ = document.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("type")
    return [Package("npm", document["name"], str(document.get("version") or ""), "", "",
                    license_ if isinstance(license_, str) else "", path)]


_RPM_FORMAT = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n"
_RPM_BACKENDS = {"rpmdb.sqlite": "sqlite", "Packages": "bdb_ro", "Packages.db": "ndb"}


def read_rpm(data: bytes, path: str) -> list[Package]:
    """Ask Debian's ``rpm`` to list a copy of the database (its own reader, read-only)."""
    rpm = shutil.which("rpm")
    name = path.rsplit("/", 1)[-1]
    if rpm is None or name not in _RPM_BACKENDS:
        return []
    with tempfile.TemporaryDirectory(prefix="rpmdb-") as tmp:
        Path(tmp, name).write_bytes(data)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "LC_ALL": "C.UTF-8"}
        try:
            result = subprocess.run(
                [rpm, "--dbpath", tmp, "--define", f"_db_backend {_RPM_BACKENDS[name]}", "-qa",
                 "--queryformat", _RPM_FORMAT],
                capture_output=True, timeout=RPM_TIMEOUT, env=env, cwd=tmp, check=False)
        except (subprocess.TimeoutExpired, OSError):
            return []
    out = []
    for line in _text(result.stdout).splitlines()[:MAX_PACKAGES]:
        fields = line.split("\t")
        if len(fields) != 7 or not fields[0]:
            continue
        pkg, epoch, version, release, arch, source, license_ = (None if f == "(none)" else f for f in fields)
        full = f"{version}-{release}" if release else str(version or "")
        if epoch:
            full = f"{epoch}:{full}"
        out.append(Package("rpm", str(pkg), full, arch or "", source or "", license_ or "", path))
    return out


def reader_for(path: str) -> tuple[str, object] | None:
    """(database kind, reader) for a kept file's path, or None when it is not a package database."""
    if path == DPKG_STATUS:
        return "dpkg", read_dpkg
    match = DPKG_STATUS_D.match(path)
    if match and not match.group(1).endswith(".md5sums"):
        return "dpkg", read_dpkg
    if path == APK_INSTALLED:
        return "apk", read_apk
    if RPM_DBS.match(path):
        return "rpm", read_rpm
    if PYTHON_METADATA.search(path):
        return "python", read_python
    if NPM_PACKAGE.search(path):
        return "npm", read_npm
    return None


def os_release(data: bytes) -> dict[str, str]:
    """``/etc/os-release`` as a dict (https://www.freedesktop.org/software/systemd/man/os-release.html)."""
    out = {}
    for line in _text(data).splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key.strip()] = value
    return out


def purl(package: Package, distro: dict[str, str] | None = None) -> str:
    """The package URL (https://github.com/package-url/purl-spec) of a package."""
    distro = distro or {}
    qualifiers: dict[str, str] = {}
    if package.arch:
        qualifiers["arch"] = package.arch
    os_id = distro.get("ID", "")
    if package.kind in ("deb", "apk", "rpm"):
        namespace = os_id or {"deb": "debian", "apk": "alpine", "rpm": "redhat"}[package.kind]
        if os_id and distro.get("VERSION_ID"):
            qualifiers["distro"] = f"{os_id}-{distro['VERSION_ID']}"
        if package.kind == "deb" and package.source and package.source != package.name:
            qualifiers["upstream"] = package.source
        return PackageURL(type=package.kind, namespace=namespace, name=package.name, version=package.version or None,
                          qualifiers=qualifiers or None).to_string()
    if package.kind == "python":
        name = re.sub(r"[-_.]+", "-", package.name).lower()
        return PackageURL(type="pypi", name=name, version=package.version or None).to_string()
    scope, _, name = package.name.rpartition("/")
    return PackageURL(type="npm", namespace=scope or None, name=name, version=package.version or None).to_string()
