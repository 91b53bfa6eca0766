"""``docker exec``: another process in a running container, with a terminal or pipes.

    instance = create_exec(container, ["sh"], tty=True, stdin=True)
    start_exec(instance)                        # its own supervisor runs ``runc exec -d``
    with attach_exec(instance, stdin=True) as stream: ...   # as containers.attach.Attachment
    resize_exec(instance, 24, 80)
    exec_inspect(instance)                      # Docker's ExecInspect: Running, ExitCode, Pid...
    kill_exec(instance)                         # e.g. when the browser's terminal is closed

An exec lives in ``<container folder>/execs/<exec id>/``: ``exec.json`` (what was asked),
``process.json`` (the OCI process given to ``runc exec --process``: the container's own
process settings, capabilities and all, with this command, user, directory and terminal),
``output.log`` (its output, framed as the container's log), ``state``, ``pid`` and
``exit.json`` (written by its supervisor). It goes with the container's folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from ...errors import BadRequest, Conflict, NotFound
from ...models import Container
from ...supervisor import supervisor_command
from .. import audit
from .attach import Attachment, attach_process, parse_detach_keys, resize_process
from .lifecycle import _user_ids, reconcile
from .lookup import RUNNING_STATES, RuntimeUnavailable, _root, container_dir, rootfs, runtime_binary

_EXEC_ID = re.compile(r"^[a-f0-9]{64}$")


class ExecNotFound(NotFound):
    pass


@dataclass
class ExecInstance:
    id: str
    container_id: str
    directory: Path
    config: dict[str, Any]

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def state(self) -> str:
        """created, running or exited."""
        try:
            return (self.directory / "state").read_text() or "created"
        except FileNotFoundError:
            return "created"

    def exit(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.directory / "exit.json").read_text())  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int:
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return 0


def get_exec(exec_id: str) -> ExecInstance:
    if not _EXEC_ID.match(exec_id or ""):
        raise ExecNotFound(gettext("No such exec instance: %(exec_id)s") % {"exec_id": exec_id})
    for directory in (_root() / "containers").glob(f"*/execs/{exec_id}"):
        try:
            config = json.loads((directory / "exec.json").read_text())
        except (OSError, ValueError):
            continue
        return ExecInstance(exec_id, config["ContainerID"], directory, config)
    raise ExecNotFound(gettext("No such exec instance: %(exec_id)s") % {"exec_id": exec_id})


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and "\x00" not in v for v in value):
        raise BadRequest(gettext("%(what)s must be a list of strings") % {"what": what})
    return list(value)


def create_exec(container: Container, cmd: Any, *, tty: bool = False, stdin: bool = False, stdout: bool = True,
                stderr: bool = True, env: Any = None, user: str = "", workdir: str = "",
                detach_keys: str | None = None, console_size: list[int] | None = None) -> ExecInstance:
    """An exec instance of ``cmd`` in a running container, not started yet (``POST /containers/{id}/exec``)."""
    if reconcile(container).state not in RUNNING_STATES:
        raise Conflict(gettext("Container %(container_id)s is not running") % {"container_id": container.id})
    args = _strings(cmd, "Cmd")
    if not args:
        raise BadRequest(gettext("No exec command specified"))
    extra_env = _strings(env, "Env")
    if detach_keys:
        parse_detach_keys(detach_keys)  # a bad one is a 400 now, not at start
    directory = container_dir(container)
    base = json.loads((directory / "config.json").read_text())["process"]
    process = {**base, "args": args, "terminal": bool(tty)}
    process["env"] = [*base.get("env", []), *extra_env]
    if tty and not any(e.startswith("TERM=") for e in process["env"]):
        process["env"].append("TERM=xterm")
    if workdir:
        if not workdir.startswith("/"):
            raise BadRequest(gettext("the working directory '%(workdir)s' is invalid, it needs to be an absolute "
                                     "path") % {"workdir": workdir})
        process["cwd"] = workdir
    if user:
        uid, gid = _user_ids(rootfs(container), user)
        process["user"] = {"uid": uid, "gid": gid}
    exec_id = secrets.token_hex(32)
    exec_dir = directory / "execs" / exec_id
    exec_dir.mkdir(parents=True)
    config = {
        "ID": exec_id, "ContainerID": container.id, "Cmd": args, "Tty": bool(tty), "AttachStdin": bool(stdin),
        "AttachStdout": bool(stdout), "AttachStderr": bool(stderr), "Env": extra_env, "User": user,
        "WorkingDir": workdir, "DetachKeys": detach_keys or "", "ConsoleSize": console_size,
        # moby closes an exec's stdin when its attached input ends (CloseStdin: true).
        "io": {"tty": bool(tty), "stdin": bool(stdin), "stdin_once": True, "console_size": console_size},
    }
    (exec_dir / "process.json").write_text(json.dumps(process))
    (exec_dir / "exec.json").write_text(json.dumps(config))
    return ExecInstance(exec_id, container.id, exec_dir, config)


def start_exec(instance: ExecInstance, *, console_size: list[int] | None = None, timeout: float = 15) -> ExecInstance:
    """Start the exec under its own supervisor; returns once it runs (or has already ended)."""
    if instance.state() != "created":
        raise Conflict(gettext("Error: Exec command %(instance_id)s is already running")
                       % {"instance_id": instance.id})
    container = Container.objects.filter(pk=instance.container_id).first()
    if container is None or reconcile(container).state not in RUNNING_STATES:
        raise Conflict(gettext("Container %(container_id)s is not running") % {"container_id": instance.container_id})
    binary = runtime_binary()
    if binary is None:
        raise RuntimeUnavailable(gettext("no OCI runtime is installed (%(CONTAINER_RUNTIME)s not found on PATH)")
                                 % {"CONTAINER_RUNTIME": settings.CONTAINER_RUNTIME})
    if console_size:
        instance.config["io"]["console_size"] = console_size
        (instance.directory / "exec.json").write_text(json.dumps(instance.config))
    (instance.directory / "state").write_text("starting")
    with open(instance.directory / "supervisor.log", "ab") as log:
        process = subprocess.Popen(
            supervisor_command(instance.container_id, instance.id),
            cwd=settings.BASE_DIR, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            env={**os.environ, "IMAGESTORE_ROOT": str(_root()), "CONTAINER_RUNTIME_BINARY": binary},
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and instance.state() == "starting" and process.poll() is None:
        time.sleep(0.01)
    cmd = " ".join(str(a) for a in instance.config.get("Cmd") or [])
    audit.record("exec_start", object_type="container", object_id=container.id, names=[container.name],
                 attributes=audit.container_attributes(container, execID=instance.id, execCommand=cmd))
    return instance


def attach_exec(instance: ExecInstance, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
                keep_going: Callable[[], bool] | None = None) -> Attachment:
    """The exec's I/O from its first byte (its whole output so far, then live)."""

    def running() -> bool:
        return instance.state() in ("starting", "running")

    return attach_process(instance.directory, instance.directory / "output.log", tty=instance.tty,
                          running=running, stdin=stdin, stdout=stdout, stderr=stderr, logs=True,
                          detach_keys=instance.config.get("DetachKeys") or None, keep_going=keep_going,
                          started=True)


def resize_exec(instance: ExecInstance, height: int, width: int) -> None:
    if instance.state() not in ("starting", "running"):
        raise Conflict(gettext("Exec %(instance_id)s is not running") % {"instance_id": instance.id})
    resize_process(instance.directory, height, width)


def kill_exec(instance: ExecInstance, sig: int = signal.SIGKILL) -> None:
    """Signal the exec's process (its pid in the host's namespace), if it still runs."""
    pid = instance.pid()
    if pid and instance.state() == "running":
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def exec_inspect(instance: ExecInstance) -> dict[str, Any]:
    """Docker's ``GET /exec/{id}/json``."""
    config = instance.config
    state = instance.state()
    ended = instance.exit()
    running = state in ("starting", "running") and ended is None
    return {
        "ID": instance.id, "ContainerID": instance.container_id, "Running": running,
        "ExitCode": ended["ExitCode"] if ended else None, "CanRemove": False,
        "DetachKeys": config.get("DetachKeys") or "", "OpenStdin": config.get("AttachStdin", False),
        "OpenStdout": config.get("AttachStdout", True), "OpenStderr": config.get("AttachStderr", True),
        "ProcessConfig": {"entrypoint": config["Cmd"][0], "arguments": config["Cmd"][1:], "tty": instance.tty,
                          "privileged": False, "user": config.get("User") or ""},
        "Pid": instance.pid() if running else 0,
    }
