"""A container's user looked up in its image's /etc/passwd: read inside the root, bounded,
and a malformed file is a clear 400 (issue 11 finding 7), never a 500."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from imagestore.errors import BadRequest
from imagestore.services import containers as service
from imagestore.services.containers import MAX_PASSWD_SIZE, _user_ids
from imagestore.services.import_ import import_image
from tests.builders import directory, simple_rootfs_tar, tar_bytes


def _root(tmp_path: Path, passwd: bytes) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(passwd)
    return tmp_path


def test_names_and_numbers_resolve() -> None:
    assert _user_ids(Path("/nonexistent"), "") == (0, 0)
    assert _user_ids(Path("/nonexistent"), "1000:50") == (1000, 50)


def test_a_name_is_looked_up_in_the_images_passwd(tmp_path: Path) -> None:
    root = _root(tmp_path, b"root:x:0:0::/root:/bin/sh\n\xff\xfe junk\nshort\napp:x:1000:100::/app:/bin/sh\n")
    assert _user_ids(root, "app") == (1000, 100)
    assert _user_ids(root, "app:7") == (1000, 7)


@pytest.mark.parametrize("line", [b"app:x:abc:100::/:/bin/sh", b"app:x", b"app:x:1000", b"app:x:\xff\xfe:1",
                                  b"app:x:\xd9\xa3:1", b"app:x:99999999999:1"])
def test_a_malformed_passwd_entry_is_a_clear_bad_request(tmp_path: Path, line: bytes) -> None:
    root = _root(tmp_path, b"root:x:0:0::/root:/bin/sh\n" + line + b"\n")
    with pytest.raises(BadRequest, match="/etc/passwd"):
        _user_ids(root, "app")


def test_a_huge_passwd_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    root = _root(tmp_path, b"x" * (MAX_PASSWD_SIZE + 1))
    with pytest.raises(BadRequest, match=f"larger than {MAX_PASSWD_SIZE} bytes"):
        _user_ids(root, "app")


def test_passwd_that_is_a_fifo_or_a_link_to_the_host_is_not_read_from_the_host(tmp_path: Path) -> None:
    host_passwd = tmp_path / "host-passwd"
    host_passwd.write_text("app:x:0:0::/root:/bin/sh\n")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "etc" / "passwd")  # a loop: it means itself
    with pytest.raises(BadRequest, match="cannot read /etc/passwd"):
        _user_ids(root, "app")
    os.unlink(root / "etc" / "passwd")
    os.symlink(str(host_passwd), root / "etc" / "passwd")  # means the root's own copy of that path
    with pytest.raises(BadRequest, match="no matching entries"):
        _user_ids(root, "app")
    os.unlink(root / "etc" / "passwd")
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(BadRequest, match="not a regular file"):
        _user_ids(root, "app")  # and it did not hang


@pytest.mark.django_db
def test_starting_a_container_whose_image_has_a_malformed_passwd_is_a_400(settings: Any, staff: Any) -> None:
    settings.CONTAINER_RUNTIME = "true"  # found on PATH; the user is looked up before it would run
    layer = tar_bytes([directory("etc"), ("etc/passwd", b"app:x:not-a-number:0::/:/bin/sh\n")])
    import_image(io.BytesIO(simple_rootfs_tar()), repository="base:latest")
    import_image(io.BytesIO(layer), repository="badpasswd:latest")
    container = service.create_container("badpasswd:latest", cmd=["true"], user="app")
    client = APIClient()
    client.force_login(staff)
    response = client.post(f"/api/v1/containers/{container.id}/start/")
    assert response.status_code == 400, response.content
    assert "line 1 of /etc/passwd is malformed" in response.json()["detail"]
