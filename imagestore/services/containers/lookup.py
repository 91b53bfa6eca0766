"""Finding containers and where their files live; the errors every part raises."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext

from ...errors import BadRequest, NotFound, ServiceError
from ...models import Container

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
        raise BadRequest(gettext("a container id or name is required"))
    if not _REF_RE.match(ref):
        # No name or id is spelled so; nor is the database asked (PostgreSQL refuses a NUL).
        raise ContainerNotFound(gettext("No such container: %(ref)s") % {"ref": ref})
    found = Container.objects.filter(name=ref).first() or Container.objects.filter(pk=ref).first()
    if found is None and re.fullmatch(r"[a-f0-9]{1,64}", ref):
        matches = list(Container.objects.filter(pk__startswith=ref)[:2])
        if len(matches) > 1:
            raise BadRequest(gettext("multiple containers found with provided prefix: %(ref)s") % {"ref": ref})
        found = matches[0] if matches else None
    if found is None:
        raise ContainerNotFound(gettext("No such container: %(ref)s") % {"ref": ref})
    return found
