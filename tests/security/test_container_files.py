"""docker cp, diff and create against hostile containers and images (issue 10 findings 1,
2, 3 (sparse) and 5 (copy-out); CVE-2018-15664 and CVE-2019-14271 classes): whatever a
container holds or does while we copy, nothing outside its root is read, changed or
removed, and a refused image registers no container."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from imagestore.errors import NotFound
from imagestore.models import Container, Image
from imagestore.oci.errors import UnsafeArchive
from imagestore.services import containers as service
from imagestore.services.import_ import import_image
from tests.builders import directory, link, simple_rootfs_tar, sparse_file, tar_bytes
from tests.security.conftest import Host

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(db: Any) -> Image:
    return import_image(io.BytesIO(simple_rootfs_tar()), repository="honest:latest")


@pytest.fixture
def container(image: Image) -> Container:
    return service.create_container("honest:latest", cmd=["true"])


def _tar_names(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {info.name: info for info in tar.getmembers()}


def _copy_out(container: Container, path: str) -> bytes:
    out = io.BytesIO()
    service.copy_out(container, path, out)
    return out.getvalue()


def _snapshots() -> list[str]:
    top = Path(settings.IMAGESTORE_ROOT) / "snapshots"
    return sorted(p.name for p in top.iterdir() if not p.name.startswith(".lock-")) if top.exists() else []


# --- hostile images: nothing registered, nothing outside touched ------------------------------------------

def test_container_from_a_layer_with_a_dir_then_a_symlink_leaves_host_modes_alone(host: Host) -> None:
    """Finding 1 end to end: x/ (04777) then x -> the host's python."""
    x = directory("x")
    x.mode = 0o4777
    import_image(io.BytesIO(tar_bytes([x, link("x", str(host.python))])), repository="setuid:latest")
    service.create_container("setuid:latest", cmd=["true"])
    host.assert_untouched()
    assert not os.stat(host.python).st_mode & 0o4000


@pytest.mark.parametrize("name", [".wh...", ".wh."])
def test_image_with_a_whiteout_of_the_root_is_refused_and_nothing_is_removed(name: str) -> None:
    import_image(io.BytesIO(tar_bytes([(name, b""), ("etc/x", b"x")])), repository="wipe:latest")
    data_folder = Path(settings.IMAGESTORE_ROOT)
    other = data_folder / "snapshots" / ("0" * 64)
    other.mkdir(parents=True)
    (other / "lower-layer-of-another-container").write_text("keep")
    with pytest.raises(UnsafeArchive, match="does not name an entry"):
        service.create_container("wipe:latest", cmd=["true"])
    assert (other / "lower-layer-of-another-container").read_text() == "keep"
    assert _snapshots() == ["0" * 64] and not Container.objects.exists()


def test_sparse_bomb_import_fails_naming_the_limit_and_registers_nothing(settings: Any) -> None:
    from imagestore.blobs import get_store

    settings.IMAGESTORE_MAX_LAYER_SIZE = 64 << 20
    with pytest.raises(UnsafeArchive, match="limit of 64 MiB once unpacked"):
        import_image(io.BytesIO(sparse_file("bomb", 512 << 20)), repository="bomb:latest")
    assert not Image.objects.exists()
    store = get_store()
    assert [p for p in Path(store.root).rglob("*") if p.is_file()] == []


def test_sparse_bomb_image_fails_at_unpack_naming_the_limit_and_leaves_nothing(settings: Any) -> None:
    """An image stored before the limit was lowered: unpacking it refuses the same way."""
    import_image(io.BytesIO(sparse_file("bomb", 512 << 20)), repository="bomb:latest")
    settings.IMAGESTORE_MAX_LAYER_SIZE = 64 << 20
    with pytest.raises(UnsafeArchive, match=f"limit of {64 << 20} bytes"):
        service.create_container("bomb:latest", cmd=["true"])
    assert _snapshots() == [] and not Container.objects.exists()
    containers = Path(settings.IMAGESTORE_ROOT) / "containers"
    assert not containers.exists() or not any(containers.iterdir())


# --- copy in -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [".wh..", ".wh...", ".wh."])
def test_copy_into_the_root_cannot_delete_the_container_folder(container: Container, name: str) -> None:
    """Finding 2: ``.wh..`` copied to / named containers/<id>/ itself."""
    folder = service.container_dir(container)
    before = sorted(os.listdir(folder))
    with pytest.raises(UnsafeArchive, match="does not name an entry"):
        service.copy_into(container, "/", io.BytesIO(tar_bytes([(name, b"")])))
    assert sorted(os.listdir(folder)) == before
    assert (service.rootfs(container) / "bin" / "busybox").exists()
    assert Container.objects.filter(pk=container.pk).exists()


def test_copy_into_through_a_container_symlink_to_a_host_path_stays_inside(container: Container, host: Host) -> None:
    root = service.rootfs(container)
    os.symlink(str(host.dir), root / "hostdir")  # made by the container: its own absolute link
    with pytest.raises(NotFound):
        service.copy_into(container, "/hostdir", io.BytesIO(tar_bytes([("planted", b"x")])))
    # the same link in the archive itself, and a file written through it
    service.copy_into(container, "/tmp" if (root / "tmp").exists() else "/",
                      io.BytesIO(tar_bytes([link("esc", str(host.dir)), ("esc/passwd", b"planted")])))
    host.assert_untouched()
    assert (root / host.dir.relative_to("/") / "passwd").read_bytes() == b"planted"


class _SwapDuringRead(io.RawIOBase):
    """A tar body whose reading gives a running container time to act: a megabyte into
    the file under ``watched``, the container swaps ``watched`` for a symlink to the host."""

    def __init__(self, data: bytes, watched: Path, target: Path) -> None:
        self._data = io.BytesIO(data)
        self._watched, self._target = watched, target
        self.swapped = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self.swapped and self._data.tell() > 1 << 20:
            assert self._watched.is_dir() and not self._watched.is_symlink()
            os.rename(self._watched, self._watched.with_name("moved-away"))
            os.symlink(str(self._target), self._watched)
            self.swapped = True
        return self._data.read(min(n, 65536) if n and n > 0 else 65536)

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_symlink_swapped_in_during_copy_into_is_not_followed(container: Container, host: Host) -> None:
    """CVE-2018-15664: the container replaces a directory being extracted with a symlink to
    the host; the directory's mode, owner and times must not land on the host's."""
    service.copy_into(container, "/", io.BytesIO(tar_bytes([directory("data")])))
    sub = directory("data/sub")
    sub.mode, sub.uid, sub.gid = 0o777, 4242, 4242
    big = tarfile.TarInfo("data/sub/passwd")  # the host's directory has a passwd too
    big.size, big.mode = 3 << 20, 0o4755
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(sub)
        tar.addfile(big, io.BytesIO(os.urandom(big.size)))
    body = _SwapDuringRead(data.getvalue(),
                           service.rootfs(container) / "data" / "sub", host.dir)
    service.copy_into(container, "/", body)  # type: ignore[arg-type]
    assert body.swapped
    host.assert_untouched()


class _SwapOnWrite(io.RawIOBase):
    """The output of a copy-out; after its first megabyte the container swaps a directory
    being archived for a symlink to the host."""

    def __init__(self, watched: Path, target: Path) -> None:
        self.data = bytearray()
        self._watched, self._target = watched, target
        self.swapped = False

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        self.data += chunk
        if not self.swapped and len(self.data) > 1 << 20:
            os.rename(self._watched, self._watched.with_name("moved-away"))
            os.symlink(str(self._target), self._watched)
            self.swapped = True
        return len(chunk)


def test_symlink_swapped_in_during_copy_out_is_not_followed(container: Container, host: Host) -> None:
    """The container swaps data/sub for a link to the host's etc after we listed it; the
    archive must hold the container's data/sub/passwd, never the host's."""
    root = service.rootfs(container)
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "sub" / "a-big").write_bytes(os.urandom(3 << 20))
    (root / "data" / "sub" / "passwd").write_bytes(b"container passwd\n")
    out = _SwapOnWrite(root / "data" / "sub", host.dir)
    service.copy_out(container, "/data", out)  # type: ignore[arg-type]
    assert out.swapped
    assert b"HOST SECRET" not in out.data
    with tarfile.open(fileobj=io.BytesIO(bytes(out.data))) as tar:
        member = tar.extractfile("data/sub/passwd")
        assert member is not None and member.read() == b"container passwd\n"
    host.assert_untouched()


def test_copy_out_of_container_symlinks_to_host_paths_never_reads_the_host(container: Container,
                                                                             host: Host) -> None:
    """CVE-2019-14271's class: what the container links to is archived as a link."""
    root = service.rootfs(container)
    os.symlink(str(host.secret), root / "leak")
    os.symlink(str(host.dir), root / "leakdir")
    leak = _tar_names(_copy_out(container, "/leak"))["leak"]
    assert leak.issym() and leak.linkname == str(host.secret)
    with pytest.raises(NotFound):
        _copy_out(container, "/leakdir/passwd")
    everything = _copy_out(container, "/")
    assert b"HOST SECRET" not in everything
    assert _tar_names(everything)["./leakdir"].issym()
    host.assert_untouched()


# --- copy out streamed (finding 5) -------------------------------------------------------------------------

def _operator_client() -> Client:
    """A token for both the REST API and the Docker API (as the Docker API's tests do)."""
    from django.contrib.auth.models import User

    from imagestore.services.tokens import create_token

    user = User.objects.create_user("cp-op", is_staff=True)
    return Client(HTTP_AUTHORIZATION=f"Token {create_token(user)[1]}")


@pytest.mark.parametrize("url", ["/api/v1/containers/{id}/archive/?path=/",
                                 "/docker/v1.47/containers/{id}/archive?path=/"])
def test_directory_copy_out_is_streamed_never_staged(container: Container, url: str) -> None:
    root = service.rootfs(container)
    (root / "big").write_bytes(os.urandom(8 << 20))
    data_folder = Path(settings.IMAGESTORE_ROOT)

    def files_on_disk() -> set[Path]:
        return {p for p in data_folder.rglob("*") if p.is_file() and "rootfs" not in p.parts
                and "snapshots" not in p.parts and "upper" not in p.parts}

    before = files_on_disk()
    response = _operator_client().get(url.format(id=container.id))
    assert response.status_code == 200 and response.streaming, getattr(response, "content", b"")
    chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
    first = next(chunks)
    assert files_on_disk() == before  # nothing staged to answer
    sizes = [len(first)] + [len(c) for c in chunks]
    assert max(sizes) <= 1 << 20
    assert sum(sizes) > 8 << 20


def test_copy_out_of_a_missing_path_is_a_404_before_any_byte(container: Container) -> None:
    response = _operator_client().get(f"/api/v1/containers/{container.id}/archive/?path=/no/such")
    assert response.status_code == 404


# --- diff and commit -----------------------------------------------------------------------------------------

def test_diff_and_commit_take_container_symlinks_as_links(container: Container, host: Host) -> None:
    from imagestore.blobs import get_store
    from imagestore.services.commit import commit_container

    root = service.rootfs(container)
    os.symlink(str(host.dir), root / "hostdir")
    os.symlink(str(host.secret), root / "etc" / "leak")
    changes = service.container_changes(container)
    assert {"Path": "/hostdir", "Kind": 1} in changes and {"Path": "/etc/leak", "Kind": 1} in changes
    assert not any(c["Path"].startswith("/hostdir/") for c in changes)
    image = commit_container(container.id, repository="committed")
    last = image.image_layers.select_related("layer").order_by("-position").first()
    assert last is not None
    with get_store().open(last.layer.digest) as blob:
        raw = blob.read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["hostdir"].issym() and members["etc/leak"].issym()
        assert all(not name.startswith("hostdir/") for name in members)
        for member in tar.getmembers():
            if member.isreg():
                extracted = tar.extractfile(member)
                assert extracted is not None and b"HOST SECRET" not in extracted.read()
    host.assert_untouched()
