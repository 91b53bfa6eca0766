"""``manage.py fsck`` and ``manage.py collect_garbage``: what they print and their exit status."""

from __future__ import annotations

import os
import time

import pytest
from django.core.management import execute_from_command_line

from imagestore.blobs import get_store
from imagestore.models import HousekeepingRun

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_database_open(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # run_from_argv closes every connection when a command ends, as a process exit would.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)


def _exit_status(*argv: str) -> int:
    try:
        execute_from_command_line(["manage.py", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_fsck_exits_0_on_a_clean_store_and_1_when_a_blob_is_missing(make_image, capsys) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    assert _exit_status("fsck") == 0
    assert "2 blob(s) verified" in capsys.readouterr().out
    get_store().path(image.layers.get().digest).unlink()
    assert _exit_status("fsck") == 1
    err = capsys.readouterr().err
    assert "missing blob" in err and image.short_id in err
    assert _exit_status("fsck", "--repair") == 1  # repair marks, it cannot make the blob whole
    assert HousekeepingRun.objects.filter(what="fsck").count() == 3


def test_orphans_alone_are_not_broken_and_repair_removes_them(make_image, capsys) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    orphan = get_store().put_bytes(b"orphan")
    assert _exit_status("fsck", "--grace", "0") == 0
    assert "orphan in blobs" in capsys.readouterr().out and get_store().exists(orphan)
    assert _exit_status("fsck", "--repair", "--grace", "0") == 0
    assert not get_store().exists(orphan)


def test_collect_garbage_dry_run_then_for_real(make_image, capsys) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    store = get_store()
    orphan = store.put_bytes(b"orphan")
    past = time.time() - 7200
    os.utime(store.path(orphan), (past, past))
    young = store.put_bytes(b"young orphan")
    assert _exit_status("collect_garbage", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would remove sha256/" in out and "blobs: 1 would remove" in out and store.exists(orphan)
    assert _exit_status("collect_garbage") == 0
    assert "blobs: 1 removed" in capsys.readouterr().out
    assert not store.exists(orphan) and store.exists(young)
    assert _exit_status("collect_garbage", "--grace", "0") == 0
    assert not store.exists(young)
    assert [r.trigger for r in HousekeepingRun.objects.all()] == ["command"] * 3
