"""Create, run and remove: the bundle runc runs, the supervisor that outlives the web server,
and the states a container goes through (start, kill, wait, stop, logs)."""

from __future__ import annotations

import fcntl
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from ...blobs import get_store
from ...dbutil import database_url
from ...errors import BadRequest, Conflict, ServiceError
from ...models import Container
from ...oci.config import ImageConfig
from ...oci.rootfs import RootFS
from ...oci.runtime import Limits, runtime_config
from ...supervisor import supervisor_command
from .. import audit
from ..images import resolve_image
from ..names import generate_name
from .lookup import (
    _NAME_RE,
    RUNNING_STATES,
    RuntimeUnavailable,
    _root,
    container_dir,
    rootfs,
    runtime_binary,
    snapshot_dir,
)
from .network import network_files, normalize_mode, prepare_network, teardown_network
from .roots import _mount_overlay, _release_rootfs, _rootfs_mode, ensure_rootfs
from .snapshots import ensure_snapshot, release_snapshot


def _list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(gettext("%(what)s must be a list of strings") % {"what": what})
    return list(value)


# Docker refuses less memory than this (``Minimum memory limit allowed is 6MB``).
MIN_MEMORY = 6 << 20


def _limit(value: Any, what: str, minimum: int = 0) -> int | None:
    """A create's limit: None (not given), 0 (none) or an integer of at least ``minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 1 << 62:
        raise BadRequest(gettext("%(what)s must be a non-negative integer") % {"what": what})
    if 0 < value < minimum:
        raise BadRequest(gettext("%(what)s must be at least %(minimum)s") % {"what": what, "minimum": minimum})
    return value


@audit.audited("create", object_type="container", describe=lambda image_ref, **kw: {"names": [kw.get("name") or ""],
                                                                                 "attributes": {"image": image_ref}})
def create_container(image_ref: str, *, cmd: Any = None, entrypoint: Any = None, env: Any = None,
                     working_dir: str = "", user: str = "", name: str = "", network: str = "",
                     memory: Any = None, nano_cpus: Any = None, pids_limit: Any = None, tty: bool = False,
                     open_stdin: bool = False, stdin_once: bool = False, auto_remove: bool = False,
                     console_size: list[int] | None = None) -> Container:
    """``network``: bridge (the default, see CONTAINER_NETWORK_DEFAULT), none or host;
    ``memory`` in bytes, ``nano_cpus`` (1e9 per CPU), ``pids_limit`` (None: the default
    CONTAINER_PIDS_LIMIT; 0 or -1: unlimited, as Docker): cgroup limits. ``tty``: the
    process runs on a pseudo-terminal; ``open_stdin``: it has a stdin clients can write to
    (else /dev/null); ``stdin_once``: the first attached client's end of input closes it;
    ``auto_remove``: removed when it exits (``docker run --rm``)."""
    network = normalize_mode(network, settings.CONTAINER_NETWORK_DEFAULT)
    if isinstance(pids_limit, int) and not isinstance(pids_limit, bool) and pids_limit < 0:
        pids_limit = 0  # Docker's -1: unlimited
    limits = {"Memory": _limit(memory, "memory", MIN_MEMORY), "NanoCpus": _limit(nano_cpus, "nano_cpus", 10**7),
              "PidsLimit": _limit(pids_limit, "pids_limit")}
    image = resolve_image(image_ref)
    if name:
        if not _NAME_RE.match(name):
            raise BadRequest(gettext("Invalid container name (%(name)s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
                             % {"name": name},
                             field="name")
        name = name.lstrip("/")
        if Container.objects.filter(name=name).exists():
            raise Conflict(gettext('Conflict. The container name "/%(name)s" is already in use.')
                           % {"name": name}, field="name")
    config = {
        "Image": image_ref,
        "Cmd": _list(cmd, "cmd"),
        "Entrypoint": _list(entrypoint, "entrypoint"),
        "Env": _list(env, "env") or [],
        "WorkingDir": working_dir or "",
        "User": user or "",
        "NetworkMode": network,
        **{key: value for key, value in limits.items() if value is not None},
        "Tty": bool(tty), "OpenStdin": bool(open_stdin), "StdinOnce": bool(stdin_once),
        "AutoRemove": bool(auto_remove), "ConsoleSize": _console_size(console_size),
    }
    image_config = ImageConfig.parse(get_store().read_bytes(image.id)).container_config
    if not _args(config, image_config):
        raise BadRequest(gettext("no command specified: the image has no CMD or ENTRYPOINT, give cmd"))
    chain = ensure_snapshot(image)
    container_id = secrets.token_hex(32)
    directory = _root() / "containers" / container_id
    directory.mkdir(parents=True)
    mode = _rootfs_mode()
    try:
        if mode == "overlay":
            for d in ("upper", "work", "rootfs"):
                (directory / d).mkdir()
            if not _mount_overlay(snapshot_dir(chain), directory / "upper", directory / "work", directory / "rootfs"):
                raise ServiceError(gettext("cannot mount an overlay root (set CONTAINER_ROOTFS=copy on this host)"))
        else:
            # A copied root (reflinked where the filesystem can), the container's own.
            subprocess.run(["cp", "-a", "--reflink=auto", f"{snapshot_dir(chain)}/.", str(directory / "rootfs")],
                           check=True, capture_output=True)
        with transaction.atomic():
            taken = set(Container.objects.values_list("name", flat=True))
            container = Container.objects.create(
                id=container_id, name=name or generate_name(taken), image=image, config=config, snapshot=chain,
                rootfs_mode=mode,
            )
            audit.record("create", object_type="container", object_id=container.id, names=[container.name],
                         attributes=audit.container_attributes(container))
    except BaseException as exc:
        if os.path.ismount(directory / "rootfs"):
            subprocess.run(["umount", "-l", str(directory / "rootfs")], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, IntegrityError):
            raise Conflict(gettext('Conflict. The container name "/%(name)s" is already in use.')
                           % {"name": name}, field="name") from None
        raise
    return container


def _console_size(value: Any) -> list[int] | None:
    if not value:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 16 for v in value)):
        raise BadRequest(gettext("ConsoleSize must be [height, width]"))
    return [int(v) for v in value] if any(value) else None


@audit.audited("destroy", object_type="container", describe=audit.container_object)
def remove_container(container: Container, *, force: bool = False) -> None:
    reconcile(container)
    if container.state in RUNNING_STATES:
        if not force:
            raise Conflict(gettext("You cannot remove a running container %(container_id)s. Stop the container "
                                   "before attempting removal or force remove") % {"container_id": container.id})
        kill_container(container, "KILL")
        wait_container(container, timeout=10)
    chain = container.snapshot
    directory = container_dir(container)
    teardown_network(directory)
    _release_rootfs(container)
    with transaction.atomic():
        audit.record("destroy", object_type="container", object_id=container.id, names=[container.name],
                     attributes=audit.container_attributes(container))
        container.delete()
    shutil.rmtree(directory, ignore_errors=True)
    release_snapshot(chain)


def _args(config: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint") or []
        if cmd is None:
            cmd = image_config.get("Cmd") or []
    return [*(entrypoint or []), *(cmd or [])]


# An honest /etc/passwd is a few KB; what we read of an image's is bounded.
MAX_PASSWD_SIZE = 1 << 20


def _read_etc(root: Path, name: str, what: str) -> bytes | None:
    """``/etc/<what>`` of the container, read inside its root (symlinks resolved there,
    never on the host) and bounded in size; None if there is none."""
    try:
        with RootFS(root) as fs:
            return fs.read_file(f"etc/{what}", MAX_PASSWD_SIZE)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError as exc:
        raise BadRequest(gettext("unable to find user %(name)s: %(exc)s") % {"name": name, "exc": exc}) from None
    except OSError as exc:
        raise BadRequest(gettext("unable to find user %(name)s: cannot read /etc/%(what)s: %(strerror)s")
                         % {"name": name, "what": what, "strerror": exc.strerror}) from None


def _passwd_entry(root: Path, name: str, *, uid: int | None = None) -> tuple[int, int] | None:
    """uid and gid of ``name`` (or of the first entry with ``uid``) in the container's /etc/passwd."""
    found = _passwd_line(root, name, uid=uid)
    return None if found is None else (found[1], found[2])


def _passwd_line(root: Path, name: str, *, uid: int | None = None) -> tuple[str, int, int] | None:
    data = _read_etc(root, name, "passwd")
    if data is None:
        return None
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        fields = line.split(":")
        if uid is None and fields[0] != name:
            continue
        if uid is not None and (len(fields) < 3 or fields[2] != str(uid)):
            continue
        if len(fields) < 4 or not (fields[2].isascii() and fields[2].isdigit()
                                   and fields[3].isascii() and fields[3].isdigit()):
            raise BadRequest(gettext("unable to find user %(name)s: line %(number)s of /etc/passwd is malformed "
                                     "(expected name:password:uid:gid with numeric ids)")
                             % {"name": name, "number": number})
        uid, gid = int(fields[2]), int(fields[3])
        if uid >= 1 << 32 or gid >= 1 << 32:
            raise BadRequest(gettext("unable to find user %(name)s: line %(number)s of /etc/passwd has an id out "
                                     "of range") % {"name": name, "number": number})
        return fields[0], uid, gid
    return None


# The supplementary groups the kernel takes (NGROUPS_MAX).
MAX_GROUPS = 65536


def _supplementary_gids(root: Path, name: str, gid: int) -> list[int]:
    """The primary ``gid`` and the groups of /etc/group that list ``name`` as a member, as
    initgroups(3) gives them at a login; malformed lines are skipped."""
    gids: list[int] = [gid]
    data = _read_etc(root, name, "group")
    if data is None:
        return gids
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if len(fields) < 4 or not (fields[2].isascii() and fields[2].isdigit()):
            continue
        number = int(fields[2])
        if name in fields[3].split(",") and number < 1 << 32 and number not in gids:
            gids.append(number)
            if len(gids) >= MAX_GROUPS:
                break
    return gids


def _process_user(root: Path, user: str) -> tuple[int, int, list[int]]:
    """uid, gid and supplementary gids for ``user`` (``name|uid[:gid]``), from the
    container's /etc/passwd and /etc/group where the user is found there."""
    uid, gid = _user_ids(root, user)
    name = user.partition(":")[0]
    if name.isascii() and name.isdigit():
        found = _passwd_line(root, name, uid=uid)
        if found is None:
            return uid, gid, []
        name = found[0]
    if not name:
        name = "root"
    return uid, gid, _supplementary_gids(root, name, gid)


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    """``uid[:gid]`` or a name from the container's /etc/passwd."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    gid = None
    if name.isascii() and name.isdigit():
        uid = int(name)
    else:
        entry = _passwd_entry(root, name)
        if entry is None:
            raise BadRequest(gettext("unable to find user %(name)s: no matching entries in passwd file")
                             % {"name": name})
        uid, gid = entry
    if group:
        if not (group.isascii() and group.isdigit()):
            raise BadRequest(gettext("group %(group)s must be numeric") % {"group": repr(group)})
        gid = int(group)
    if uid >= 1 << 32 or (gid or 0) >= 1 << 32:
        raise BadRequest(gettext("user %(user)s: id out of range") % {"user": repr(user)})
    return uid, gid if gid is not None else uid


def bundle_config(container: Container, *, netns: str | None = None) -> dict[str, Any]:
    """The runtime spec; ``netns``: the prepared network namespace (None: the host's network)."""
    image_config = ImageConfig.parse(get_store().read_bytes(container.image_id)).container_config
    config = container.config
    root = rootfs(container)
    uid, gid, groups = _process_user(root, config.get("User") or image_config.get("User") or "")
    pids = config.get("PidsLimit")
    bundle = runtime_config(
        rootfs=str(root), args=_args(config, image_config),
        env=[*(image_config.get("Env") or []), *(config.get("Env") or [])],
        cwd=config.get("WorkingDir") or image_config.get("WorkingDir") or "/",
        uid=uid, gid=gid, additional_gids=groups, hostname=container.id[:12], netns=netns,
        mounts=network_files(container_dir(container), network_mode(container), container.id[:12]),
        limits=Limits(pids=settings.CONTAINER_PIDS_LIMIT if pids is None else pids,
                      memory=config.get("Memory") or 0, nano_cpus=config.get("NanoCpus") or 0),
    )
    if config.get("Tty"):
        bundle["process"]["terminal"] = True
        env = bundle["process"]["env"]
        if not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")  # as Docker sets for -t
    return bundle


def network_mode(container: Container) -> str:
    # Containers created before networks existed ran with the host's network, and keep it.
    return str(container.config.get("NetworkMode") or "host")


def _supervisor_alive(container: Container) -> bool:
    pid = container.supervisor_pid
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return container.id.encode() in cmdline


def _recorded_exit(container: Container) -> dict[str, Any] | None:
    try:
        return json.loads((container_dir(container) / "exit.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def reconcile(container: Container) -> Container:
    """A container shown running whose process has ended is exited: with the exit code its
    supervisor wrote (``exit.json``, the moment the process ended; the first to see it
    records it), or, if its supervisor is gone (the host stopped), as lost."""
    if container.state not in RUNNING_STATES:
        return container
    ended = _recorded_exit(container)
    if ended is not None:
        record_exit(container.pk, int(ended.get("ExitCode", 255)), str(ended.get("Error") or ""))
        try:
            container.refresh_from_db()
        except Container.DoesNotExist:  # removed on exit (--rm)
            container.state = Container.State.EXITED
            container.exit_code = int(ended.get("ExitCode", 255))
        return container
    if not _supervisor_alive(container):
        Container.objects.filter(pk=container.pk, state__in=RUNNING_STATES).update(
            state=Container.State.EXITED, exit_code=container.exit_code if container.exit_code is not None else 255,
            finished_at=timezone.now(), supervisor_pid=None,
            error="the container's supervisor stopped (the host or service was restarted)",
        )
        teardown_network(container_dir(container))
        container.refresh_from_db()
    return container


def reconcile_all() -> int:
    count = 0
    for container in Container.objects.filter(state__in=RUNNING_STATES):
        if reconcile(container).state == Container.State.EXITED:
            count += 1
    return count


@audit.audited("start", object_type="container", describe=audit.container_object)
def start_container(container: Container, *, timeout: float = 15) -> Container:
    """Start it under its supervisor. Starts of one container take turns (a lock file in its
    folder, held until it is recorded running): a second start must not tear down the first
    one's network nor run a second supervisor."""
    with open(container_dir(container) / "start.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        container.refresh_from_db()
        return _start(container, timeout=timeout)


def _start(container: Container, *, timeout: float) -> Container:
    reconcile(container)
    if container.state in RUNNING_STATES:
        return container
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable(
            gettext("cannot start container %(container_short_id)s: no OCI runtime is installed "
                    "(%(CONTAINER_RUNTIME)s not found on PATH)")
            % {"container_short_id": container.short_id, "CONTAINER_RUNTIME": settings.CONTAINER_RUNTIME}
        )
    directory = container_dir(container)
    ensure_rootfs(container)
    netns = prepare_network(directory, network_mode(container))
    try:
        process = _launch(container, directory, binary, netns)
    except BaseException:
        teardown_network(directory)  # nothing runs in it: no pasta or netns left behind
        raise
    # Running and its supervisor in one write: a reconcile never sees one without the other.
    # Unless it has already ended (record_exit set finished_at): then that stays.
    with transaction.atomic():
        Container.objects.filter(pk=container.pk, finished_at__isnull=True).update(
            state=Container.State.RUNNING, supervisor_pid=process.pid)
        audit.record("start", object_type="container", object_id=container.id, names=[container.name],
                     attributes=audit.container_attributes(container))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = (directory / "state").read_text()
        except FileNotFoundError:
            state = ""
        if state in ("running", "exited") or process.poll() is not None:
            break
        time.sleep(0.01)
    try:
        container.refresh_from_db()
    except Container.DoesNotExist:  # it ran, ended and was removed (--rm) already
        container.state = Container.State.EXITED
    return container


def _launch(container: Container, directory: Path, binary: str, netns: str | None) -> subprocess.Popen[bytes]:
    """The bundle written and the supervisor started (detached: it outlives this process)."""
    (directory / "config.json").write_text(json.dumps(bundle_config(container, netns=netns)))
    config = container.config
    # How the supervisor gives the process its I/O (imagestore/supervisor.py).
    (directory / "io.json").write_text(json.dumps({
        "tty": bool(config.get("Tty")), "stdin": bool(config.get("OpenStdin")),
        "stdin_once": bool(config.get("StdinOnce")), "console_size": config.get("ConsoleSize"),
    }))
    (directory / "state").unlink(missing_ok=True)  # the last run's "exited" is not this run's
    (directory / "exit.json").unlink(missing_ok=True)
    (directory / "recorded").unlink(missing_ok=True)
    Container.objects.filter(pk=container.pk).update(started_at=timezone.now(), finished_at=None, exit_code=None,
                                                     error="")
    # The supervisor's own messages; the container's output is its log (container.log).
    log = open(directory / "supervisor.log", "ab")  # noqa: SIM115 - handed to the supervisor
    process = subprocess.Popen(
        supervisor_command(container.id), cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "dashboard.settings"),
             "IMAGESTORE_ROOT": str(_root()), "CONTAINER_RUNTIME_BINARY": binary, "DATABASE_URL": database_url()},
    )
    log.close()
    return process


def _runc(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable(gettext("no OCI runtime is installed (%(CONTAINER_RUNTIME)s not found on PATH)")
                                 % {"CONTAINER_RUNTIME": settings.CONTAINER_RUNTIME})
    return subprocess.run([binary, *args], capture_output=True, text=True)


@audit.audited("kill", object_type="container", describe=audit.container_object)
def kill_container(container: Container, sig: str = "KILL") -> Container:
    reconcile(container)
    if container.state not in RUNNING_STATES:
        raise Conflict(gettext("Container %(container_id)s is not running") % {"container_id": container.id})
    name = sig.upper().removeprefix("SIG")
    if not (name.isdigit() or hasattr(signal, f"SIG{name}")):
        raise BadRequest(gettext("invalid signal: %(sig)s") % {"sig": sig})
    result = _runc(container, "kill", container.id, name)
    if result.returncode != 0 and "not running" not in result.stderr and "does not exist" not in result.stderr:
        raise Conflict(gettext("cannot signal container %(container_short_id)s: %(value)s")
                       % {"container_short_id": container.short_id, "value": result.stderr.strip()})
    audit.record("kill", object_type="container", object_id=container.id, names=[container.name],
                 attributes=audit.container_attributes(container, signal=name))
    return container


# The longest ``docker stop -t`` accepted: a stop holds its request until then (plus 10 s for the KILL).
STOP_TIMEOUT_MAX = 3600


def _check_timeout(timeout: float | None) -> None:
    # A non-finite or negative timeout would make the deadline never pass (nan compares false).
    if timeout is not None and not (math.isfinite(timeout) and timeout >= 0):
        raise BadRequest(gettext("a timeout must be a finite number of seconds, not %(timeout)s")
                         % {"timeout": timeout})


def wait_container(container: Container, *, timeout: float | None = None,
                   keep_going: Callable[[], bool] | None = None) -> Container:
    """Until the container has exited, ``timeout`` seconds have passed, or ``keep_going``
    says no (the client of a ``wait`` went away): the container as it then is."""
    _check_timeout(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        container.refresh_from_db()
        reconcile(container)
        if container.state not in RUNNING_STATES:
            return container
        if deadline is not None and time.monotonic() > deadline:
            return container
        if keep_going is not None and not keep_going():
            return container
        time.sleep(0.1)


@audit.audited("stop", object_type="container", describe=audit.container_object)
def stop_container(container: Container, *, timeout: float = 10) -> Container:
    """SIGTERM, then SIGKILL after ``timeout`` seconds, as ``docker stop``."""
    _check_timeout(timeout)
    reconcile(container)
    if container.state not in RUNNING_STATES:
        return container
    kill_container(container, "TERM")
    container = wait_container(container, timeout=timeout)
    if container.state in RUNNING_STATES:
        kill_container(container, "KILL")
        container = wait_container(container, timeout=10)
    audit.record("stop", object_type="container", object_id=container.id, names=[container.name],
                 attributes=audit.container_attributes(container))
    return container


def record_exit(container_id: str, code: int, error: str = "", *, supervisor_pid: int | None = None) -> None:
    """The end of the container's run, recorded once: by its supervisor, or by whoever sees
    its ``exit.json`` first (``reconcile``; a ``wait`` then answers without waiting for the
    supervisor's own database set-up). With ``AutoRemove`` (``docker run --rm``) the one that
    recorded it removes the container, its exit code kept a while for a
    ``wait?condition=removed`` that was waiting on it. ``supervisor_pid``: the supervisor
    records only the run it supervises (by then the container may have been started again)."""
    this_run = Container.objects.filter(pk=container_id, finished_at__isnull=True)
    if supervisor_pid is not None:
        this_run = this_run.filter(supervisor_pid=supervisor_pid)
    with transaction.atomic():
        won = this_run.update(
            state=Container.State.EXITED, exit_code=code, finished_at=timezone.now(), supervisor_pid=None,
            error=error[:4000],
        )
        container = Container.objects.filter(pk=container_id).first() if won else None
        if container is not None:
            audit.record("die", object_type="container", object_id=container.id, names=[container.name],
                         attributes=audit.container_attributes(container, exitCode=code))
    if container is None:
        return
    teardown_network(container_dir(container))  # the run's network goes with it
    try:  # tells the supervisor it need not set Django up to record it
        (container_dir(container) / "recorded").touch()
    except OSError:
        pass
    if not container.config.get("AutoRemove"):
        return
    exits = _root() / "exits"
    exits.mkdir(exist_ok=True)
    (exits / container_id).write_text(str(code))
    now = time.time()
    for old in exits.iterdir():  # a waiter reads it within a second; a day is plenty
        if now - old.stat().st_mtime > 86400:
            old.unlink(missing_ok=True)
    try:
        remove_container(container, force=True)
    except ServiceError:
        pass


WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


class Waiter:
    """``docker wait`` with moby's conditions: ``not-running`` (now, if it is not running),
    ``next-exit`` (the end of its next run, even if it has not started yet), ``removed`` (it
    is gone). ``poll()`` answers the exit code once the condition holds, else None."""

    def __init__(self, container: Container, condition: str = "not-running") -> None:
        if condition not in WAIT_CONDITIONS:
            raise BadRequest(gettext("invalid condition: %(condition)s") % {"condition": condition})
        self.condition = condition
        self.pk = container.pk
        self.first_finish = container.finished_at if container.state not in RUNNING_STATES else None
        self.seen_running = container.state in RUNNING_STATES
        self.code = container.exit_code

    def poll(self) -> int | None:
        current = Container.objects.filter(pk=self.pk).first()
        if current is None:  # removed: its exit code, kept by record_exit for --rm
            kept = _root() / "exits" / self.pk
            if kept.exists():
                self.code = int(kept.read_text() or 0)
            return self.code or 0
        current = reconcile(current)
        if current.state in RUNNING_STATES:
            self.seen_running = True
            return None
        self.code = current.exit_code
        if self.condition == "not-running":
            return self.code or 0
        if self.condition == "next-exit" and current.finished_at is not None and (
                self.seen_running or current.finished_at != self.first_finish):
            return self.code or 0
        return None


def wait_for(container: Container, condition: str = "not-running", *,
             keep_going: Callable[[], bool] | None = None, interval: float = 0.02) -> int | None:
    """As ``Waiter``, blocking: the exit code, or None when ``keep_going`` said no first."""
    waiter = Waiter(container, condition)
    while (code := waiter.poll()) is None:
        if keep_going is not None and not keep_going():
            return None
        time.sleep(interval)
    return code


def rename_container(container: Container, new_name: str) -> Container:
    new_name = (new_name or "").lstrip("/")
    if not new_name or not _NAME_RE.match(new_name):
        raise BadRequest(gettext("Invalid container name (%(new_name)s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
                         % {"new_name": new_name})
    if new_name == container.name:
        raise Conflict(gettext("Renaming a container with the same name as its current name: %(new_name)s")
                       % {"new_name": new_name})
    try:
        with transaction.atomic():
            Container.objects.filter(pk=container.pk).update(name=new_name)
            audit.record("rename", object_type="container", object_id=container.id, names=[new_name],
                         attributes={"name": new_name, "oldName": container.name})
    except IntegrityError:
        raise Conflict(gettext('Conflict. The container name "/%(new_name)s" is already in use.')
                       % {"new_name": new_name}) from None
    container.name = new_name
    return container


def log_frames(path: Path, *, follow: bool = False, done: Callable[[], bool] = lambda: True,
               keep_going: Callable[[], bool] | None = None) -> Iterator[tuple[int, bytes]]:
    """(stream, bytes) records of a log the supervisor wrote in Docker's frame format; with
    ``follow``, then what is appended until ``done()`` or ``keep_going`` says no. A log of an
    older version (plain bytes, no frames) reads as stdout."""
    while not path.exists():
        if not follow or done() or (keep_going is not None and not keep_going()):
            return
        time.sleep(0.1)
    with open(path, "rb") as log:
        buffer = b""
        framed: bool | None = None
        while True:
            chunk = log.read(65536)
            if not chunk:
                if not follow:
                    return
                if done():
                    chunk = log.read()
                    if not chunk:
                        return
                elif keep_going is not None and not keep_going():
                    return
                else:
                    time.sleep(0.1)
                    continue
            buffer += chunk
            if framed is None and len(buffer) >= 8:
                framed = buffer[0] in (0, 1, 2) and buffer[1:4] == b"\0\0\0"
            if framed is False:
                yield 1, buffer
                buffer = b""
                continue
            while len(buffer) >= 8:
                size = int.from_bytes(buffer[4:8], "big")
                if len(buffer) < 8 + size:
                    break
                yield buffer[0], buffer[8:8 + size]
                buffer = buffer[8 + size:]


def container_log_frames(container: Container, *, follow: bool = False,
                         keep_going: Callable[[], bool] | None = None) -> Iterator[tuple[int, bytes]]:
    """The container's output as (stream, bytes): 1 stdout, 2 stderr (a terminal's is all 1)."""

    def done() -> bool:
        container.refresh_from_db()
        return reconcile(container).state not in RUNNING_STATES

    yield from log_frames(container_dir(container) / "container.log", follow=follow, done=done,
                          keep_going=keep_going)


def container_logs(container: Container, *, follow: bool = False,
                   keep_going: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """The container's output (stdout and stderr as they came); with ``follow``, then what it
    writes until it exits or ``keep_going`` says no (the client went away, or nothing new
    came for too long)."""
    for _, data in container_log_frames(container, follow=follow, keep_going=keep_going):
        yield data
