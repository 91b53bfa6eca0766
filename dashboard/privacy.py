"""Keeping the data folder, the database and the secret key readable by the service alone.

Plain Python (no Django): settings call these at start-up, before anything is written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700, and tighten it if it already exists.

    Only the folder itself is tightened: a 0700 folder is enough to keep other local users
    away from everything under it (setuid binaries of unpacked images, device nodes, tokens).
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o7777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty 0600 if missing (an empty file is a new SQLite database), else tighten it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    except FileExistsError:
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
    else:
        os.close(fd)
    return path


def tighten_sqlite(path: Path) -> None:
    """The database and its journal files 0600 (SQLite gives journals the database's mode)."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            private_file(journal)


def secret_once(path: Path, nbytes: int = 50) -> str:
    """A secret generated once into ``path`` and kept, never readable by anyone else.

    Written 0600 from the first byte into a temporary file (O_CREAT|O_EXCL), synced, then
    linked into place without replacing: when several processes start at once (gunicorn
    workers, Celery), the first link wins and everyone reads that one.
    """
    try:
        found = path.read_text().strip()
    except FileNotFoundError:
        found = ""
    if found:
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
        return found
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(nbytes))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race (or left an empty file: replaced below)
        if not path.read_text().strip():
            os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text().strip()
