"""Containers: a copied, writable root over a shared read-only snapshot of the image,
run by an OCI runtime (runc) under a supervisor process that outlives the web server.

Files of a container live in ``<IMAGESTORE_ROOT>/containers/<id>/``: ``rootfs/`` (its
root filesystem), ``config.json`` (the runtime bundle), ``container.log`` (stdout and
stderr). Snapshots live in ``<IMAGESTORE_ROOT>/snapshots/<chain id>/``, one per layer
chain, shared by every container of that image and removed with the last of them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..blobs import get_store
from ..dbutil import database_url
from ..errors import BadRequest, Conflict, NotFound, ServiceError
from ..models import Container, Image, ImageLayer
from ..oci.compression import open_decompressed
from ..oci.config import ImageConfig, format_time
from ..oci.runtime import runtime_config
from ..oci.unpack import apply_layer, resolve_in_root
from .images import resolve_image
from .names import generate_name
from .remove import chain_ids

RUNNING_STATES = (Container.State.RUNNING, Container.State.PAUSED, Container.State.RESTARTING)
# Mount points the runtime creates in the root when the image lacks them: part of the
# container's plumbing, not of its changes (Docker keeps them in an "init" layer).
RUNTIME_MOUNT_POINTS = {"/dev", "/proc", "/sys"}
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_REF_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # a name, an id or an id prefix


class ContainerNotFound(NotFound):
    pass


class RuntimeUnavailable(ServiceError):
    status = 503


def runtime_binary() -> str | None:
    return shutil.which(settings.CONTAINER_RUNTIME)


def _root() -> Path:
    return Path(settings.IMAGESTORE_ROOT)


def container_dir(container: Container) -> Path:
    return _root() / "containers" / container.id


def rootfs(container: Container) -> Path:
    return container_dir(container) / "rootfs"


def snapshot_dir(chain: str) -> Path:
    return _root() / "snapshots" / chain.split(":", 1)[-1]


def get_container(ref: str) -> Container:
    """By full id, unique id prefix, or name, as docker accepts."""
    ref = (ref or "").strip().lstrip("/")
    if not ref:
        raise BadRequest("a container id or name is required")
    if not _REF_RE.match(ref):
        # No name or id is spelled so; nor is the database asked (PostgreSQL refuses a NUL).
        raise ContainerNotFound(f"No such container: {ref}")
    found = Container.objects.filter(name=ref).first() or Container.objects.filter(pk=ref).first()
    if found is None and re.fullmatch(r"[a-f0-9]{1,64}", ref):
        matches = list(Container.objects.filter(pk__startswith=ref)[:2])
        if len(matches) > 1:
            raise BadRequest(f"multiple containers found with provided prefix: {ref}")
        found = matches[0] if matches else None
    if found is None:
        raise ContainerNotFound(f"No such container: {ref}")
    return found


# --- snapshots ----------------------------------------------------------------------------------

def _chain(image: Image) -> tuple[str, list[ImageLayer]]:
    links = list(ImageLayer.objects.filter(image=image).select_related("layer").order_by("position"))
    chains = chain_ids([link.layer.diff_id for link in links])
    return (chains[-1] if chains else "sha256:" + "0" * 64), links


def ensure_snapshot(image: Image) -> str:
    """The unpacked read-only root of the image's layer chain, built once and shared."""
    chain, links = _chain(image)
    target = snapshot_dir(chain)
    if target.is_dir():
        return chain
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".lock-{target.name}", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return chain
        building = target.parent / f".building-{uuid.uuid4().hex}"
        store = get_store()
        try:
            building.mkdir()
            for link in links:
                with store.open(link.layer.digest) as blob:
                    apply_layer(open_decompressed(blob), building)
            os.rename(building, target)
        finally:
            if building.exists():
                shutil.rmtree(building, ignore_errors=True)
    return chain


def release_snapshot(chain: str) -> None:
    """Remove a snapshot no container needs any more."""
    if chain and not Container.objects.filter(snapshot=chain).exists():
        shutil.rmtree(snapshot_dir(chain), ignore_errors=True)


# --- the writable root -------------------------------------------------------------------------

_overlay_probe: dict[str, bool] = {}


def _overlay_supported() -> bool:
    """Whether this kernel and these privileges allow an overlay mount here (probed once)."""
    key = str(_root())
    if key not in _overlay_probe:
        probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=get_store().tmp_dir))
        try:
            for d in ("lower", "upper", "work", "merged"):
                (probe / d).mkdir()
            ok = _mount_overlay(probe / "lower", probe / "upper", probe / "work", probe / "merged")
            if ok:
                subprocess.run(["umount", str(probe / "merged")], capture_output=True)
            _overlay_probe[key] = ok
        finally:
            shutil.rmtree(probe, ignore_errors=True)
    return _overlay_probe[key]


def _mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> bool:
    result = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}",
         str(merged)], capture_output=True,
    )
    return result.returncode == 0


def _rootfs_mode() -> str:
    mode = settings.CONTAINER_ROOTFS
    if mode == "auto":
        return "overlay" if _overlay_supported() else "copy"
    return mode


def ensure_rootfs(container: Container) -> Path:
    """The container's root, mounted again if it is an overlay the host forgot (a reboot)."""
    root = rootfs(container)
    if container.rootfs_mode == "overlay" and not os.path.ismount(root):
        directory = container_dir(container)
        if not _mount_overlay(snapshot_dir(container.snapshot), directory / "upper", directory / "work", root):
            raise ServiceError(f"cannot mount the root filesystem of container {container.short_id}")
    return root


def _release_rootfs(container: Container) -> None:
    root = rootfs(container)
    if container.rootfs_mode == "overlay" and os.path.ismount(root):
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


# --- create, remove -------------------------------------------------------------------------------

def _list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{what} must be a list of strings")
    return list(value)


def create_container(image_ref: str, *, cmd: Any = None, entrypoint: Any = None, env: Any = None,
                     working_dir: str = "", user: str = "", name: str = "") -> Container:
    image = resolve_image(image_ref)
    if name:
        if not _NAME_RE.match(name):
            raise BadRequest(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = name.lstrip("/")
        if Container.objects.filter(name=name).exists():
            raise Conflict(f'Conflict. The container name "/{name}" is already in use.')
    config = {
        "Image": image_ref,
        "Cmd": _list(cmd, "cmd"),
        "Entrypoint": _list(entrypoint, "entrypoint"),
        "Env": _list(env, "env") or [],
        "WorkingDir": working_dir or "",
        "User": user or "",
    }
    image_config = ImageConfig.parse(get_store().read_bytes(image.id)).container_config
    if not _args(config, image_config):
        raise BadRequest("no command specified: the image has no CMD or ENTRYPOINT, give cmd")
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
                raise ServiceError("cannot mount an overlay root (set CONTAINER_ROOTFS=copy on this host)")
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
    except BaseException as exc:
        if os.path.ismount(directory / "rootfs"):
            subprocess.run(["umount", "-l", str(directory / "rootfs")], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)
        if isinstance(exc, IntegrityError):
            raise Conflict(f'Conflict. The container name "/{name}" is already in use.') from None
        raise
    return container


def remove_container(container: Container, *, force: bool = False) -> None:
    reconcile(container)
    if container.state in RUNNING_STATES:
        if not force:
            raise Conflict(f"You cannot remove a running container {container.id}. Stop the container before "
                           "attempting removal or force remove")
        kill_container(container, "KILL")
        wait_container(container, timeout=10)
    chain = container.snapshot
    directory = container_dir(container)
    _release_rootfs(container)
    container.delete()
    shutil.rmtree(directory, ignore_errors=True)
    release_snapshot(chain)


# --- run --------------------------------------------------------------------------------------------

def _args(config: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    entrypoint = config.get("Entrypoint")
    cmd = config.get("Cmd")
    if entrypoint is None:
        entrypoint = image_config.get("Entrypoint") or []
        if cmd is None:
            cmd = image_config.get("Cmd") or []
    return [*(entrypoint or []), *(cmd or [])]


def _user_ids(root: Path, user: str) -> tuple[int, int]:
    """``uid[:gid]`` or a name from the container's /etc/passwd."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    else:
        passwd = resolve_in_root(root, "etc/passwd", follow_last=True)
        for line in passwd.read_text().splitlines() if passwd.is_file() else []:
            fields = line.split(":")
            if len(fields) > 3 and fields[0] == name:
                uid, gid = int(fields[2]), int(fields[3])
        if uid is None:
            raise BadRequest(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        if not group.isdigit():
            raise BadRequest(f"group {group!r} must be numeric")
        gid = int(group)
    return uid, gid if gid is not None else uid


def bundle_config(container: Container) -> dict[str, Any]:
    image_config = ImageConfig.parse(get_store().read_bytes(container.image_id)).container_config
    config = container.config
    root = rootfs(container)
    uid, gid = _user_ids(root, config.get("User") or image_config.get("User") or "")
    return runtime_config(
        rootfs=str(root), args=_args(config, image_config),
        env=[*(image_config.get("Env") or []), *(config.get("Env") or [])],
        cwd=config.get("WorkingDir") or image_config.get("WorkingDir") or "/",
        uid=uid, gid=gid, hostname=container.id[:12],
    )


def _supervisor_alive(container: Container) -> bool:
    pid = container.supervisor_pid
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return container.id.encode() in cmdline


def reconcile(container: Container) -> Container:
    """A container shown running whose supervisor is gone (the host stopped) is exited."""
    if container.state in RUNNING_STATES and not _supervisor_alive(container):
        Container.objects.filter(pk=container.pk, state__in=RUNNING_STATES).update(
            state=Container.State.EXITED, exit_code=container.exit_code if container.exit_code is not None else 255,
            finished_at=timezone.now(), supervisor_pid=None,
            error="the container's supervisor stopped (the host or service was restarted)",
        )
        container.refresh_from_db()
    return container


def reconcile_all() -> int:
    count = 0
    for container in Container.objects.filter(state__in=RUNNING_STATES):
        if reconcile(container).state == Container.State.EXITED:
            count += 1
    return count


def start_container(container: Container, *, timeout: float = 15) -> Container:
    reconcile(container)
    if container.state in RUNNING_STATES:
        return container
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable(
            f"cannot start container {container.short_id}: no OCI runtime is installed "
            f"({settings.CONTAINER_RUNTIME} not found on PATH)"
        )
    directory = container_dir(container)
    ensure_rootfs(container)
    (directory / "config.json").write_text(json.dumps(bundle_config(container)))
    Container.objects.filter(pk=container.pk).update(state=Container.State.RUNNING, started_at=timezone.now(),
                                                     finished_at=None, exit_code=None, error="")
    log = open(directory / "container.log", "ab")  # noqa: SIM115 - handed to the supervisor
    process = subprocess.Popen(
        [sys.executable, "-m", "imagestore.supervisor", container.id], cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "dashboard.settings"),
             "IMAGESTORE_ROOT": str(_root()), "CONTAINER_RUNTIME_BINARY": binary, "DATABASE_URL": database_url()},
    )
    log.close()
    Container.objects.filter(pk=container.pk).update(supervisor_pid=process.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (directory / "state").read_text() if (directory / "state").exists() else ""
        if state in ("running", "exited") or process.poll() is not None:
            break
        time.sleep(0.05)
    container.refresh_from_db()
    return container


def _runc(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable(f"no OCI runtime is installed ({settings.CONTAINER_RUNTIME} not found on PATH)")
    return subprocess.run([binary, *args], capture_output=True, text=True)


def kill_container(container: Container, sig: str = "KILL") -> Container:
    reconcile(container)
    if container.state not in RUNNING_STATES:
        raise Conflict(f"Container {container.id} is not running")
    name = sig.upper().removeprefix("SIG")
    if not (name.isdigit() or hasattr(signal, f"SIG{name}")):
        raise BadRequest(f"invalid signal: {sig}")
    result = _runc(container, "kill", container.id, name)
    if result.returncode != 0 and "not running" not in result.stderr and "does not exist" not in result.stderr:
        raise Conflict(f"cannot signal container {container.short_id}: {result.stderr.strip()}")
    return container


def wait_container(container: Container, *, timeout: float | None = None) -> Container:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        container.refresh_from_db()
        reconcile(container)
        if container.state not in RUNNING_STATES:
            return container
        if deadline is not None and time.monotonic() > deadline:
            return container
        time.sleep(0.1)


def stop_container(container: Container, *, timeout: float = 10) -> Container:
    """SIGTERM, then SIGKILL after ``timeout`` seconds, as ``docker stop``."""
    reconcile(container)
    if container.state not in RUNNING_STATES:
        return container
    kill_container(container, "TERM")
    container = wait_container(container, timeout=timeout)
    if container.state in RUNNING_STATES:
        kill_container(container, "KILL")
        container = wait_container(container, timeout=10)
    return container


def container_logs(container: Container, *, follow: bool = False) -> Iterator[bytes]:
    path = container_dir(container) / "container.log"
    while not path.exists():
        if not follow:
            return
        time.sleep(0.1)
    with open(path, "rb") as log:
        while True:
            chunk = log.read(65536)
            if chunk:
                yield chunk
                continue
            if not follow:
                return
            container.refresh_from_db()
            if reconcile(container).state not in RUNNING_STATES:
                rest = log.read()
                if rest:
                    yield rest
                return
            time.sleep(0.1)


# --- files --------------------------------------------------------------------------------------------

def copy_into(container: Container, path: str, archive: BinaryIO) -> int:
    """``docker cp SRC CONTAINER:PATH`` as Docker's archive API: a tar extracted at ``path``,
    a directory that must exist; entries that would leave the root are refused."""
    destination = resolve_in_root(ensure_rootfs(container), path, follow_last=True)
    if not destination.is_dir():
        raise NotFound(f"Could not find the file {path} in container {container.short_id}")
    return apply_layer(open_decompressed(archive), destination)


def copy_out(container: Container, path: str, out: BinaryIO) -> None:
    """``docker cp CONTAINER:PATH -``: ``path`` (and what it holds) as a tar, named by its base name."""
    import tarfile

    source = resolve_in_root(ensure_rootfs(container), path)
    if not (source.exists() or source.is_symlink()):
        raise NotFound(f"Could not find the file {path} in container {container.short_id}")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(source, arcname=source.name or ".", recursive=True)


def path_stat(container: Container, path: str) -> dict[str, Any]:
    """What ``docker cp`` asks first (``X-Docker-Container-Path-Stat``), with Go's FileMode bits."""
    target = resolve_in_root(ensure_rootfs(container), path)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {container.short_id}") from None
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISDIR(st.st_mode):
        mode |= 1 << 31
    elif stat.S_ISLNK(st.st_mode):
        mode |= 1 << 27
    return {"name": target.name or "/", "size": st.st_size, "mode": mode,
            "mtime": format_time(datetime.fromtimestamp(st.st_mtime, tz=UTC)),
            "linkTarget": os.readlink(target) if stat.S_ISLNK(st.st_mode) else ""}


def archive_of(container: Container, path: str) -> BinaryIO:
    """``path`` as a tar in a temporary file (on the data folder's disk, not in memory),
    positioned at its start; the caller closes it (a FileResponse does)."""
    out = tempfile.TemporaryFile(dir=container_dir(container))  # noqa: SIM115 - handed to the caller
    try:
        copy_out(container, path, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, int(st.st_mtime_ns), st.st_rdev)


def container_changes(container: Container) -> list[dict[str, Any]]:
    """``docker diff``: Kind 0 changed, 1 added, 2 deleted, paths sorted."""
    upper, lower = ensure_rootfs(container), snapshot_dir(container.snapshot)
    changes: dict[str, int] = {}

    def mark_parents(rel: str) -> None:
        parent = os.path.dirname(rel)
        while parent not in ("", "/"):
            changes.setdefault(parent, 0)
            parent = os.path.dirname(parent)

    for dirpath, dirnames, filenames in os.walk(upper):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            rel = "/" + str(path.relative_to(upper))
            other = lower / rel.lstrip("/")
            try:
                theirs = os.lstat(other)
            except FileNotFoundError:
                if rel in RUNTIME_MOUNT_POINTS and path.is_dir() and not any(path.iterdir()):
                    continue
                changes[rel] = 1
                mark_parents(rel)
                continue
            ours = os.lstat(path)
            if stat.S_ISDIR(ours.st_mode) and stat.S_ISDIR(theirs.st_mode):
                if (ours.st_mode, ours.st_uid, ours.st_gid) != (theirs.st_mode, theirs.st_uid, theirs.st_gid):
                    changes[rel] = 0
                    mark_parents(rel)
                continue
            if _signature(ours) != _signature(theirs) or (
                stat.S_ISLNK(ours.st_mode) and os.readlink(path) != os.readlink(other)
            ):
                changes[rel] = 0
                mark_parents(rel)
    for dirpath, dirnames, filenames in os.walk(lower):
        for name in list(dirnames) + filenames:
            other = Path(dirpath) / name
            rel = "/" + str(other.relative_to(lower))
            if not os.path.lexists(upper / rel.lstrip("/")):
                changes[rel] = 2
                mark_parents(rel)
                if name in dirnames:
                    dirnames.remove(name)  # a deleted directory is one entry
    return [{"Path": p, "Kind": k} for p, k in sorted(changes.items())]

