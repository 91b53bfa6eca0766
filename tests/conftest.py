from __future__ import annotations

import io
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from imagestore.models import Image
from imagestore.permissions import OPERATORS_GROUP
from imagestore.services.import_ import import_image
from tests.builders import simple_rootfs_tar
from tests.integration.registry import require_tool  # noqa: F401 - the tests' one way to need a tool

LOCALE = Path(__file__).resolve().parents[1] / "locale"


def pytest_configure(config: pytest.Config) -> None:
    """The catalogues compiled (as `make test` does) when a .po is newer than its .mo, so a bare
    `pytest` on a fresh clone shows the pages in Chinese too (.mo files are not committed).
    Once, in the controlling process: xdist's workers find them made."""
    if hasattr(config, "workerinput"):
        return
    for po in LOCALE.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            partial = mo.with_suffix(".mo.partial")
            subprocess.run(["msgfmt", "--check-format", "-o", str(partial), str(po)], check=True)
            partial.replace(mo)


@pytest.fixture(autouse=True)
def store_root(tmp_path: Path, settings) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """Every test gets its own empty data folder; container roots mounted in it are unmounted after."""
    root = tmp_path / "imagestore"
    (root / "uploads").mkdir(parents=True)
    settings.IMAGESTORE_ROOT = root
    settings.FILE_UPLOAD_TEMP_DIR = str(root / "uploads")
    yield root
    with open("/proc/mounts") as mounts:
        mounted = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for point in sorted(mounted, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture(autouse=True)
def outbound_allow(settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The outbound policy's allow-list, empty for every test: a loopback peer a test starts (a
    registry, a token issuer, an HTTP server) is allowed by tests.integration.registry.allow_outbound,
    in these settings and in the environment the test's workers and servers inherit."""
    settings.OUTBOUND_ALLOW = []
    monkeypatch.setenv("OUTBOUND_ALLOW", "")
    return settings.OUTBOUND_ALLOW  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    """Sign-in failure counters (imagestore.login_limit) do not carry from one test to the next."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def operator(db) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_user("olive", password="pw-operator")
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    user.groups.add(group)
    return user


@pytest.fixture
def staff(db) -> User:  # type: ignore[no-untyped-def]
    return User.objects.create_user("stan", password="pw-staff", is_staff=True)


@pytest.fixture
def member(db) -> User:  # type: ignore[no-untyped-def]
    """Signed in, but neither staff nor an operator: may read, may not change."""
    return User.objects.create_user("mia", password="pw-member")


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def make_image(db) -> Callable[..., Image]:  # type: ignore[no-untyped-def]
    """Import a small root filesystem as an image, optionally tagged."""

    def make(repository: str | None = "busybox:latest", marker: str = "hello") -> Image:
        return import_image(io.BytesIO(simple_rootfs_tar(marker)), repository=repository)

    return make


@pytest.fixture
def no_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every outbound connection (to a generated registry, index or URL) fails at once: fuzzing
    input must never reach the network, loopback included."""

    def refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, f"name resolution is off in this test ({host})")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Any]:
    """A docker-registry of this test's own on a free loopback port (tests.integration.registry)."""
    from tests.integration.registry import start_registry

    reg = start_registry(tmp_path / "registry")
    yield reg
    reg.stop()
