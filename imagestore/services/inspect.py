"""``docker image inspect``: the JSON Docker answers, and ``-f`` formats over it."""

from __future__ import annotations

from typing import Any

from ..blobs import get_store
from ..errors import BadRequest
from ..gotemplate import TemplateError, render
from ..models import Image
from ..oci.config import ImageConfig, format_time

ZERO_TIME = "0001-01-01T00:00:00Z"

# The container-config shape Docker's inspect shows for an image, in Docker's order.
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "ExposedPorts": None,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Healthcheck": None,
    "ArgsEscaped": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
    "StopSignal": None,
    "Shell": None,
}
_OMIT_WHEN_EMPTY = {"ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"}


def docker_config(config: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, default in _CONFIG_DEFAULTS.items():
        value = config.get(key, default)
        if key in _OMIT_WHEN_EMPTY and value in (None, "", {}, []):
            continue
        out[key] = value
    for key, value in config.items():
        out.setdefault(key, value)
    return out


def inspect_images(images: list[Image]) -> list[dict[str, Any]]:
    """Inspect several images with a fixed number of queries."""
    rows = (
        Image.objects.filter(pk__in=[i.pk for i in images])
        .prefetch_related("tags__repository", "repo_digests__repository")
    )
    by_id = {row.pk: row for row in rows}
    store = get_store()
    out = []
    for image in images:
        row = by_id[image.pk]
        config = ImageConfig.parse(store.read_bytes(row.id))
        out.append(_inspect(row, config))
    return out


def inspect_image(image: Image) -> dict[str, Any]:
    return inspect_images([image])[0]


def _inspect(image: Image, config: ImageConfig) -> dict[str, Any]:
    tags = sorted(f"{t.repository.name}:{t.name}" for t in image.tags.all())
    digests = sorted(f"{d.repository.name}@{d.digest}" for d in image.repo_digests.all())
    data: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": image.parent_id or "",
        "Comment": config.comment,
        "Created": config.raw.get("created") or ZERO_TIME,
        "DockerVersion": config.docker_version,
        "Author": config.author,
        "Config": docker_config(config.container_config),
        "Architecture": config.architecture,
    }
    if config.raw.get("container"):
        data["Container"] = config.raw["container"]  # the container a commit made it from
    if config.variant:
        data["Variant"] = config.variant
    data["Os"] = config.os
    if config.raw.get("os.version"):
        data["OsVersion"] = config.raw["os.version"]
    data.update(
        {
            "Size": image.size,
            "GraphDriver": {"Data": None, "Name": "imagestore"},
            "RootFS": {"Type": "layers", "Layers": [str(d) for d in config.diff_ids]},
            "Metadata": {"LastTagTime": format_time(image.last_tag_time) if image.last_tag_time else ZERO_TIME},
        }
    )
    return data


def format_inspect(data: Any, template: str) -> str:
    """``docker inspect -f TEMPLATE``: the template executed on the inspect JSON."""
    try:
        return render(template, data)
    except TemplateError as exc:
        raise BadRequest(str(exc)) from None
