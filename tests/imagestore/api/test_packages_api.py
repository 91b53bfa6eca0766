"""Packages inside images, read from the layer index: a real Debian root (debootstrap) against
dpkg-query, its os-release through the files API, SPDX and CycloneDX documents valid by the
formats' own tools; apk and rpm databases; the store-wide search."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.json.json_parser import parse_from_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from imagestore.services.import_ import import_image
from imagestore.services.load import load_archive
from tests.builders import directory, docker_archive, tar_bytes
from tests.debootstrap import bookworm_minbase

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def bookworm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The cached debootstrap tarball and its dpkg database and os-release, unpacked."""
    tarball = bookworm_minbase()
    extracted = tmp_path_factory.mktemp("bookworm")
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(extracted), "./var/lib/dpkg", "./etc/os-release",
                    "./usr/lib/os-release"], check=True)
    return tarball, extracted


def _all(api, url: str, **params: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    response = api.get(url, {**params, "page_size": 500})
    assert response.status_code == 200, response.content
    return response.json()["results"]  # type: ignore[no-any-return]


def test_a_debian_root_lists_what_dpkg_query_lists_and_its_sboms_validate(  # type: ignore[no-untyped-def]
        bookworm, client_for, member, tmp_path: Path) -> None:
    tarball, extracted = bookworm
    with open(tarball, "rb") as source:
        import_image(source, repository="debian:bookworm")
    api = client_for(member)
    packages = _all(api, "/api/v1/images/debian:bookworm/packages/")
    admindir = str(extracted / "var" / "lib" / "dpkg")
    plain = subprocess.run(["dpkg-query", f"--admindir={admindir}", "-W", "-f", "${Package}\t${Version}\n"],
                           capture_output=True, text=True, check=True).stdout
    assert sorted(f"{p['name']}\t{p['version']}" for p in packages) == sorted(plain.splitlines())
    default = subprocess.run(["dpkg-query", f"--admindir={admindir}", "-W"], capture_output=True, text=True,
                             check=True).stdout  # binary:Package: arch-qualified when Multi-Arch: same
    assert sorted(line.split(":")[0].split("\t")[0] for line in default.splitlines()) == sorted(
        p["name"] for p in packages)
    libc = next(p for p in packages if p["name"] == "libc6")
    assert libc["kind"] == "deb" and libc["arch"] == "amd64" and libc["source"] == "glibc" and libc["layer"] == 0
    assert libc["purl"].startswith("pkg:deb/debian/libc6@") and "distro=debian-12" in libc["purl"]

    # /etc/os-release through the API is the file (a link to ../usr/lib/os-release, resolved inside the image).
    response = api.get("/api/v1/images/debian:bookworm/files/content/", {"path": "/etc/os-release"})
    assert b"".join(response.streaming_content) == (extracted / "etc" / "os-release").read_bytes()

    spdx = api.get("/api/v1/images/debian:bookworm/sbom/", {"format": "spdx-json"})
    assert spdx.status_code == 200
    document_path = tmp_path / "sbom.spdx.json"
    document_path.write_bytes(spdx.content)
    document = parse_from_file(str(document_path))
    assert validate_full_spdx_document(document) == []
    assert len(document.packages) == len(packages) + 1
    cyclonedx = api.get("/api/v1/images/debian:bookworm/sbom/", {"format": "cyclonedx-json"})
    errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(cyclonedx.content.decode())
    assert errors is None, errors
    assert {c["purl"] for c in json.loads(cyclonedx.content)["components"]} == {p["purl"] for p in packages}
    assert api.get("/api/v1/images/debian:bookworm/sbom/", {"format": "xml"}).status_code == 400


APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl

C:Q1def=
P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
"""


def test_apk_database_and_python_and_node_metadata_are_read(client_for, member) -> None:  # type: ignore[no-untyped-def]
    base = tar_bytes([directory("lib"), ("lib/apk/db/installed", APK_INSTALLED),
                      ("etc/os-release", b'ID=alpine\nVERSION_ID=3.20.0\n')])
    apps = tar_bytes([
        ("usr/lib/python3.12/site-packages/requests-2.32.3.dist-info/METADATA",
         b"Metadata-Version: 2.1\nName: requests\nVersion: 2.32.3\nLicense: Apache-2.0\n\nlong text\n"),
        ("app/node_modules/@scope/left-pad/package.json", json.dumps(
            {"name": "@scope/left-pad", "version": "1.3.0", "license": "WTFPL"}).encode()),
    ])
    load_archive(io.BytesIO(docker_archive([base, apps], "alpine/apps:1")))
    rows = {p["name"]: p for p in _all(client_for(member), "/api/v1/images/alpine/apps:1/packages/")}
    assert set(rows) == {"musl", "busybox", "requests", "@scope/left-pad"}
    assert (rows["musl"]["version"], rows["musl"]["arch"], rows["musl"]["license"], rows["musl"]["layer"]) == \
        ("1.2.5-r0", "x86_64", "MIT", 0)
    assert rows["musl"]["purl"] == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.0"
    assert (rows["requests"]["purl"], rows["requests"]["layer"]) == ("pkg:pypi/requests@2.32.3", 1)
    assert rows["@scope/left-pad"]["purl"] == "pkg:npm/%40scope/left-pad@1.3.0"


def _rpm_database(tmp: Path) -> bytes:
    """A real rpm database: ``rpm --initdb``, then a tiny package built with rpmbuild put in it."""
    top, db = tmp / "top", tmp / "db"
    (top / "SPECS").mkdir(parents=True)
    db.mkdir()
    (top / "SPECS" / "tiny.spec").write_text("Name: tiny\nVersion: 1.2.3\nRelease: 4\nSummary: tiny\n"
                                             "License: MIT\nBuildArch: noarch\n%description\nTiny.\n%files\n")
    env = {"HOME": str(tmp), "PATH": "/usr/bin:/bin"}
    subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(top / "SPECS" / "tiny.spec")], check=True,
                   capture_output=True, env=env)
    subprocess.run(["rpm", "--dbpath", str(db), "--initdb"], check=True, env=env)
    (package,) = (top / "RPMS" / "noarch").glob("*.rpm")
    subprocess.run(["rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--ignoreos", str(package)],
                   check=True, capture_output=True, env=env)
    return (db / "rpmdb.sqlite").read_bytes()


def test_rpm_database_is_read_with_debians_rpm(client_for, member, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    layer = tar_bytes([("usr/lib/sysimage/rpm/rpmdb.sqlite", _rpm_database(tmp_path)),
                       ("etc/os-release", b'ID="fedora"\nVERSION_ID=40\n')])
    load_archive(io.BytesIO(docker_archive([layer], "fedora/tiny:1")))
    (row,) = _all(client_for(member), "/api/v1/images/fedora/tiny:1/packages/")
    assert (row["kind"], row["name"], row["version"], row["arch"], row["license"]) == \
        ("rpm", "tiny", "1.2.3-4", "noarch", "MIT")
    assert row["source"] == "tiny-1.2.3-4.src.rpm"
    assert row["purl"] == "pkg:rpm/fedora/tiny@1.2.3-4?arch=noarch&distro=fedora-40"


def _status(*packages: tuple[str, str]) -> bytes:
    return "".join(f"Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
                   for n, v in packages).encode()


def test_the_store_answers_which_images_hold_a_package_and_the_layer_that_installed_it(  # type: ignore[no-untyped-def]
        client_for, member, django_assert_max_num_queries) -> None:
    base = tar_bytes([("var/lib/dpkg/status", _status(("libc6", "2.36"), ("openssl", "1.0.1e")))])
    upgraded = tar_bytes([("var/lib/dpkg/status", _status(("libc6", "2.36"), ("openssl", "1.0.1g"),
                                                          ("curl", "8.0")))])
    load_archive(io.BytesIO(docker_archive([base], "old/app:1")))
    load_archive(io.BytesIO(docker_archive([base, upgraded], "new/app:1")))
    api = client_for(member)
    with django_assert_max_num_queries(6):
        hits = _all(api, "/api/v1/packages/", name="openssl", version="1.0.1e")
    assert [h["repo_tags"] for h in hits] == [["old/app:1"]]
    new = {p["name"]: p for p in _all(api, "/api/v1/images/new/app:1/packages/")}
    assert (new["libc6"]["layer"], new["openssl"]["layer"], new["curl"]["layer"]) == (0, 1, 1)
    assert [p["name"] for p in _all(api, "/api/v1/images/new/app:1/packages/", name="url")] == ["curl"]
