"""Files of an image through the API: the merged view (whiteouts applied), one layer's view,
globs, file bytes (ETag = digest), a directory as a tar, a layer's changes, and dive's efficiency."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile

import pytest

from imagestore.services.load import load_archive
from tests.builders import directory, docker_archive, link, tar_bytes

pytestmark = pytest.mark.django_db

MIB = 1 << 20
BIG_OLD, BIG_NEW = os.urandom(10 * MIB), os.urandom(10 * MIB)
GONE = b"g" * 300_000
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
LIB = b"\x7fELF a library"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\n"


def _two_layers() -> list[bytes]:
    base = tar_bytes([directory("data"), ("data/big.bin", BIG_OLD), ("data/gone.txt", GONE), directory("etc"),
                      ("etc/os-release", OS_RELEASE), ("etc/passwd", PASSWD), ("usr/lib/libx.so.1", LIB),
                      link("lib", "usr/lib"), link("etc/host-file", "/etc/hostname"),
                      link("etc/loop", "/etc/loop")])
    top = tar_bytes([("data/big.bin", BIG_NEW), ("data/.wh.gone.txt", b"")])
    return [base, top]


@pytest.fixture
def image_ref() -> str:
    load_archive(io.BytesIO(docker_archive(_two_layers(), "files/test:1")))
    return "files/test:1"


@pytest.fixture
def api(client_for, member):  # type: ignore[no-untyped-def]
    return client_for(member)  # reading needs no operator


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_merged_view_has_the_new_file_and_neither_old_one(api, image_ref: str, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_max_num_queries(12):
        response = api.get(f"/api/v1/images/{image_ref}/files/", {"path": "/data"})
    assert response.status_code == 200, response.content
    (big,) = response.json()["results"]
    assert big == {"name": "big.bin", "path": "/data/big.bin", "type": "file", "size": 10 * MIB, "mode": "0644",
                   "uid": 0, "gid": 0, "mtime": "1970-01-01T00:00:00Z", "link": "", "layer": 1,
                   "digest": _digest(BIG_NEW)}
    root = {e["name"]: e for e in api.get(f"/api/v1/images/{image_ref}/files/").json()["results"]}
    assert set(root) == {"data", "etc", "lib", "usr"}
    assert root["lib"]["type"] == "symlink" and root["lib"]["link"] == "usr/lib"
    through_link = api.get(f"/api/v1/images/{image_ref}/files/", {"path": "/lib"}).json()["results"]
    assert [e["path"] for e in through_link] == ["/usr/lib/libx.so.1"]


def test_one_layers_view_shows_its_own_entries_and_removals(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    rows = api.get(f"/api/v1/images/{image_ref}/files/", {"path": "/data", "layer": 1}).json()["results"]
    assert {(e["name"], e["type"]) for e in rows} == {("big.bin", "file"), ("gone.txt", "whiteout")}
    base = api.get(f"/api/v1/images/{image_ref}/files/", {"path": "/data", "layer": 0}).json()["results"]
    assert {e["digest"] for e in base} == {_digest(BIG_OLD), _digest(GONE)}
    assert api.get(f"/api/v1/images/{image_ref}/files/", {"layer": 2}).status_code == 404


def test_glob_searches_the_whole_image_and_pages(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    rows = api.get(f"/api/v1/images/{image_ref}/files/", {"glob": "**/*.so*"}).json()["results"]
    assert [e["path"] for e in rows] == ["/usr/lib/libx.so.1"]
    page = api.get(f"/api/v1/images/{image_ref}/files/", {"glob": "**", "page_size": 3}).json()
    assert page["count"] == 11 and len(page["results"]) == 3 and page["next"]
    assert "/data/gone.txt" not in {e["path"] for e in api.get(
        f"/api/v1/images/{image_ref}/files/", {"glob": "data/*"}).json()["results"]}


def test_file_content_is_streamed_with_its_digest_as_etag(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/images/{image_ref}/files/content/"
    response = api.get(url, {"path": "/etc/os-release"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == OS_RELEASE
    assert response["ETag"] == f'"{_digest(OS_RELEASE)}"'
    assert api.get(url, {"path": "/etc/os-release"}, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    big = api.get(url, {"path": "/data/big.bin"})
    assert int(big["Content-Length"]) == 10 * MIB and b"".join(big.streaming_content) == BIG_NEW
    old = api.get(url, {"path": "/data/big.bin", "layer": 0})
    assert b"".join(old.streaming_content) == BIG_OLD
    assert b"".join(api.get(url, {"path": "/lib/libx.so.1"}).streaming_content) == LIB  # through the link


def test_links_never_leave_the_image(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/images/{image_ref}/files/content/"
    # /etc/hostname exists on the host, not in the image: the link resolves inside the image.
    assert api.get(url, {"path": "/etc/host-file"}).status_code == 404
    assert b"".join(api.get(url, {"path": "/../../../../etc/passwd"}).streaming_content) == PASSWD
    assert api.get(url, {"path": "/etc/loop"}).status_code == 400
    assert api.get(url, {"path": "/data/gone.txt"}).status_code == 404
    assert api.get(url, {"path": "/nope"}).status_code == 404


def test_a_directory_downloads_as_a_tar(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    response = api.get(f"/api/v1/images/{image_ref}/files/content/", {"path": "/etc"})
    assert response["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        names = {m.name: m for m in tar.getmembers()}
        assert set(names) == {"etc", "etc/os-release", "etc/passwd", "etc/host-file", "etc/loop"}
        assert names["etc/host-file"].issym() and names["etc/host-file"].linkname == "/etc/hostname"
        assert tar.extractfile("etc/os-release").read() == OS_RELEASE  # type: ignore[union-attr]


def test_layer_changes_list_what_it_modifies_and_removes(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    changes = api.get(f"/api/v1/images/{image_ref}/layers/1/changes/").json()
    assert [e["path"] for e in changes["modified"]] == ["/data/big.bin"]
    assert [(e["path"], e["size"], e["layer"]) for e in changes["removed"]] == [("/data/gone.txt", 300_000, 0)]
    assert changes["added"] == []
    base = api.get(f"/api/v1/images/{image_ref}/layers/0/changes/").json()
    assert "/etc/os-release" in {e["path"] for e in base["added"]} and base["removed"] == []
    assert api.get(f"/api/v1/images/{image_ref}/layers/9/changes/").status_code == 404
    assert api.get(f"/api/v1/images/{image_ref}/layers/x/changes/").status_code == 404


def test_efficiency_counts_the_overwritten_and_the_removed_file_as_dive_does(api, image_ref: str) -> None:  # type: ignore[no-untyped-def]
    report = api.get(f"/api/v1/images/{image_ref}/efficiency/").json()
    offenders = {o["path"]: o for o in report["offenders"]}
    assert set(offenders) == {"/data/big.bin", "/data/gone.txt"}
    assert offenders["/data/big.bin"] == {"path": "/data/big.bin", "count": 2, "total_size": 20 * MIB,
                                          "wasted": 10 * MIB, "removed": False}
    assert offenders["/data/gone.txt"] == {"path": "/data/gone.txt", "count": 2, "total_size": 300_000,
                                           "wasted": 300_000, "removed": True}
    # By hand: every path's smallest size over every size seen (links and directories weigh 0).
    others = len(OS_RELEASE) + len(PASSWD) + len(LIB)
    assert report["score"] == pytest.approx((10 * MIB + 0 + others) / (20 * MIB + 300_000 + others))
    assert report["wasted_bytes"] == 20 * MIB + 300_000
