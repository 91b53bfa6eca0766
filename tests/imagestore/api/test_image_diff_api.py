"""The diff of two images: two imports of the same root filesystem, the second with a package
added (its files and its dpkg status entry) and one file changed, report exactly that."""

from __future__ import annotations

import io

import pytest

from imagestore.services.import_ import import_image
from tests.builders import directory, link, tar_bytes

pytestmark = pytest.mark.django_db

STATUS = ("Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n\n"
          "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n")
TOOL = "Package: newtool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n"


def _root(*, with_tool: bool, hostname: bytes) -> bytes:
    entries = [directory("etc"), ("etc/hostname", hostname), ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
               directory("usr"), directory("usr/bin"), ("usr/bin/busybox", b"\x7fELF busybox"),
               link("usr/bin/sh", "busybox"), directory("var/lib/dpkg"),
               ("var/lib/dpkg/status", (STATUS + (TOOL if with_tool else "")).encode())]
    if with_tool:
        entries += [("usr/bin/newtool", b"\x7fELF newtool"), directory("usr/share/doc/newtool"),
                    ("usr/share/doc/newtool/copyright", b"MIT")]
    return tar_bytes(entries)


def test_diff_reports_exactly_the_added_package_and_the_changed_file(client_for, member) -> None:  # type: ignore[no-untyped-def]
    old = import_image(io.BytesIO(_root(with_tool=False, hostname=b"old\n")), repository="app:1")
    new = import_image(io.BytesIO(_root(with_tool=True, hostname=b"new\n")), repository="app:2")
    response = client_for(member).get("/api/v1/images/diff/", {"from": "app:1", "to": "app:2"})
    assert response.status_code == 200, response.content
    diff = response.json()
    assert [f["path"] for f in diff["files"]["added"]] == [
        "/usr/bin/newtool", "/usr/share", "/usr/share/doc", "/usr/share/doc/newtool",
        "/usr/share/doc/newtool/copyright"]
    assert diff["files"]["removed"] == []
    assert [c["path"] for c in diff["files"]["changed"]] == ["/etc/hostname", "/var/lib/dpkg/status"]
    hostname = diff["files"]["changed"][0]
    assert hostname["from"]["digest"] != hostname["to"]["digest"]
    assert [p["name"] for p in diff["packages"]["added"]] == ["newtool"]
    assert diff["packages"]["removed"] == [] and diff["packages"]["changed"] == []
    assert diff["config"] == {}
    assert diff["layers"]["shared"] == [] and len(diff["layers"]["new"]) == 1
    assert diff["size"]["delta"] == new.size - old.size


def test_diff_reports_package_versions_config_and_shared_layers(client_for, member) -> None:  # type: ignore[no-untyped-def]
    import_image(io.BytesIO(_root(with_tool=True, hostname=b"h\n")), repository="app:1")
    upgraded = _root(with_tool=True, hostname=b"h\n").replace(b"Version: 1.0-1", b"Version: 1.1-1")
    import_image(io.BytesIO(upgraded), repository="app:2", changes=["ENV MODE=prod", "CMD [\"/usr/bin/newtool\"]"])
    diff = client_for(member).get("/api/v1/images/diff/", {"from": "app:1", "to": "app:2"}).json()
    assert diff["packages"]["changed"] == [{"kind": "deb", "name": "newtool", "arch": "amd64", "from": "1.0-1",
                                            "to": "1.1-1"}]
    assert diff["config"] == {"Env": {"from": None, "to": ["MODE=prod"]},
                              "Cmd": {"from": None, "to": ["/usr/bin/newtool"]}}
    same = client_for(member).get("/api/v1/images/diff/", {"from": "app:1", "to": "app:1"}).json()
    assert same["layers"]["new"] == [] and len(same["layers"]["shared"]) == 1 and same["files"]["changed"] == []
    assert client_for(member).get("/api/v1/images/diff/", {"from": "app:1", "to": "nope:9"}).status_code == 404
    assert client_for(member).get("/api/v1/images/diff/", {"from": "app:1"}).status_code == 400
