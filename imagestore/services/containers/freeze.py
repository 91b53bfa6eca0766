"""A running container frozen while its files are resolved from outside (``docker cp`` both
ways, ``docker commit``): the cgroup freezer, through ``runc pause``/``runc resume``, so it
cannot swap a path for a link between our check and our use, nor change what is committed.

Operations on one container take turns (a lock file in its folder): one resumes it only when
nobody else still needs it frozen.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils.translation import gettext

from ...errors import Conflict
from ...models import Container
from .lookup import RUNNING_STATES, container_dir, runtime_binary

log = logging.getLogger(__name__)


def _runc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([runtime_binary() or "runc", *args], capture_output=True, text=True)


@contextmanager
def frozen(container: Container) -> Iterator[None]:
    """The container paused for the block if it is running (nothing to do otherwise)."""
    container.refresh_from_db(fields=["state"])
    if container.state not in RUNNING_STATES or runtime_binary() is None:
        yield
        return
    with open(container_dir(container) / "freeze.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Paused while nobody holds the lock: a holder that died (a worker killed mid-commit)
        # left it so. Take that pause as ours, so it ends with this block instead of never.
        was_paused = (container.state != Container.State.PAUSED and _status(container.id) == "paused") \
            or _pause(container)
        try:
            yield
        finally:
            if was_paused:
                resumed = _runc("resume", container.id)
                if resumed.returncode != 0 and _status(container.id) == "paused":
                    log.error("container %s stays paused: runc resume failed: %s", container.short_id,
                              resumed.stderr.strip()[:300])


# How long a container the runtime has created but not yet started may take to start.
START_GRACE = 5.0


def _pause(container: Container) -> bool:
    """Whether the container is now paused by us (False: it is not running, nothing to freeze)."""
    deadline = time.monotonic() + START_GRACE
    while True:
        result = _runc("pause", container.id)
        if result.returncode == 0:
            return True
        status = _status(container.id)
        # Just started, the runtime may not know the container yet, or not have started its
        # process ("created"), or have started it between our two calls ("running").
        starting = status in ("created", "running") or (status == "" and not _exited(container))
        if starting and time.monotonic() < deadline:
            time.sleep(0.02)
            continue
        if status in ("", "stopped", "created"):
            return False  # exited (or never started): nothing runs that could change its files
        raise Conflict(gettext("cannot pause container %(container_short_id)s (%(status)s): %(stderr)s")
                       % {"container_short_id": container.short_id, "status": status,
                          "stderr": result.stderr.strip()[:300]})


def _exited(container: Container) -> bool:
    try:
        return (container_dir(container) / "state").read_text() == "exited"
    except OSError:
        return True


def _status(container_id: str) -> str:
    state = _runc("state", container_id)
    if state.returncode != 0:
        return ""
    try:
        return str(json.loads(state.stdout).get("status") or "")
    except ValueError:
        return ""
