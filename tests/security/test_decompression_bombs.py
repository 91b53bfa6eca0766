"""Compression bombs of every codec, imported and loaded as jobs: each fails with a message
naming the limit (IMAGESTORE_MAX_LAYER_SIZE), registers nothing and leaves no blob, temp
file or upload; and the process that runs them stays under 200 MB of memory.

Before: bzip2, xz and zstd had no output cap (402 bytes of bzip2 and 16 KB of zstd became
512 MiB in one decompression call), and every codec expanded a whole input chunk at once.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imagestore.models import Image, Job, Layer, Repository, Tag
from imagestore.oci.compression import DecompressingReader
from imagestore.oci.diffid import DiffIdHasher
from imagestore.oci.digest import Digest
from imagestore.oci.errors import LimitExceeded
from imagestore.services import jobs
from imagestore.services.import_ import start_import
from imagestore.services.load import start_load
from tests.security.bombs import CODECS, MiB, bomb, bomb_archive

LIMIT = 8 * MiB
BOMB = 64 * MiB  # eight times the limit: a few milliseconds to trip, a second at most to make
BIG_BOMB = 256 * MiB  # for the memory test: more than the 200 MB budget if expanded in one piece
RSS_BUDGET = 200 * 1000 * 1000


@pytest.fixture
def small_limit(settings) -> int:  # type: ignore[no-untyped-def]
    settings.IMAGESTORE_MAX_LAYER_SIZE = LIMIT
    return LIMIT


def _nothing_left(store_root: Path) -> None:
    assert not Image.objects.exists() and not Layer.objects.exists()
    assert not Tag.objects.exists() and not Repository.objects.exists()
    assert list(store_root.glob("sha256/*/*")) == []  # no blob
    assert list((store_root / "tmp").glob("*")) == []  # no temp file, no staging folder
    assert list((store_root / "uploads").glob("*")) == []  # the upload went with its job


def _upload(store_root: Path, data: bytes) -> str:
    path = store_root / "uploads" / "upload-bomb"
    path.write_bytes(data)
    return str(path)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CODECS)
def test_an_imported_bomb_fails_naming_the_limit(kind: str, store_root: Path, small_limit: int) -> None:
    job = start_import(upload_path=_upload(store_root, bomb(kind, BOMB)), repository="bomb", tag="1")
    finished = jobs.run_job(str(job.id))
    assert finished is not None and finished.state == Job.State.FAILED
    assert "8 MiB" in finished.error and "IMAGESTORE_MAX_LAYER_SIZE" in finished.error, finished.error
    _nothing_left(store_root)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", CODECS)
def test_a_loaded_archive_with_a_bomb_layer_fails_naming_the_limit(kind: str, store_root: Path,
                                                                 small_limit: int) -> None:
    job = start_load(_upload(store_root, bomb_archive(kind, BOMB)))
    finished = jobs.run_job(str(job.id))
    assert finished is not None and finished.state == Job.State.FAILED
    assert "8 MiB" in finished.error and "IMAGESTORE_MAX_LAYER_SIZE" in finished.error, finished.error
    _nothing_left(store_root)


_MEASURE = textwrap.dedent("""
    import resource, sys
    import django
    django.setup()
    from imagestore.services.import_ import import_image
    from imagestore.services.load import load_archive
    for name, run, path in (("import", import_image, sys.argv[1]), ("load", load_archive, sys.argv[2])):
        try:
            with open(path, "rb") as source:
                run(source)
        except Exception as exc:
            print(name, "refused:", exc.__class__.__name__, exc)
        else:
            print(name, "accepted")
    # VmHWM, the peak RSS of this process's own memory: getrusage's ru_maxrss would also count
    # the test runner's, which Linux carries across fork and exec.
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print("peak-rss", peak_kb * 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
""")


@pytest.mark.parametrize("kind", CODECS)
def test_memory_stays_flat_while_a_bomb_is_refused(kind: str, tmp_path: Path) -> None:
    """The real import and load services in a process of their own, whose peak RSS is the
    worker's: Django, the codec, and never more than a bounded piece of output."""
    layer, archive = tmp_path / "bomb", tmp_path / "bomb.tar"
    layer.write_bytes(bomb(kind, BIG_BOMB))
    archive.write_bytes(bomb_archive(kind, BIG_BOMB))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
           "IMAGESTORE_ROOT": str(tmp_path / "store"), "IMAGESTORE_MAX_LAYER_SIZE": str(LIMIT),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(layer), str(archive)], env=env,
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    peak = int(lines["peak-rss"].split()[0])
    assert peak < RSS_BUDGET, f"peak RSS {peak / MiB:.0f} MiB"
    for name in ("import", "load"):
        assert "LimitExceeded" in lines[name] and "IMAGESTORE_MAX_LAYER_SIZE" in lines[name], lines
    assert not list((tmp_path / "store" / "tmp").glob("*"))


class _PieceRecorder(DecompressingReader):
    """Records the size of every piece one decompression step hands over."""

    pieces: list[int]

    def _decompress_step(self) -> bytes:
        out = super()._decompress_step()
        self.__dict__.setdefault("pieces", []).append(len(out))
        return out


@pytest.mark.parametrize("kind", CODECS)
def test_no_decompression_step_expands_more_than_a_bounded_piece(kind: str) -> None:
    """Read to its end under a high cap, a bomb comes out in pieces of at most 1 MiB (gzip,
    bzip2, xz: max_length) or one 512-byte zstd slice's worth (16 MiB at the worst ratio)."""
    reader = _PieceRecorder(io.BytesIO(bomb(kind, BOMB)), max_output=1 << 40)
    while reader.read(MiB):
        pass
    assert reader.decompressed_bytes > BOMB
    assert max(reader.pieces) <= (16 * MiB + 128 * 1024 if kind == "zstd" else MiB), max(reader.pieces)


@pytest.mark.parametrize("kind", CODECS)
def test_the_pull_verifier_stops_at_the_limit(kind: str) -> None:
    """The diff_id hasher a pull feeds as bytes arrive says "over the limit" early, and fails."""
    data = bomb(kind, BOMB)
    hasher = DiffIdHasher(max_output=LIMIT)
    try:
        for i in range(0, len(data), 1024):
            hasher.feed(data[i:i + 1024])
        with pytest.raises(LimitExceeded, match="more than the limit of 8 MiB"):
            hasher.finish(Digest("sha256", "0" * 64))
        assert hasher.over_limit and hasher.size <= LIMIT + MiB
    finally:
        hasher.close()
