"""Engine API handlers: each parses Docker's parameters and calls one service."""

from __future__ import annotations

import base64
import json
import os
import platform as host
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from ..downloads import archive_response
from ..errors import BadRequest, NotFound
from ..models import Container, Image
from ..oci import jsonbounds
from ..oci.platform import host_platform
from ..oci.redact import redact_url
from ..querystring import flag, seconds
from ..services import containers as container_service
from ..services.commit import commit_container
from ..services.disk import TYPES as DISK_USAGE_TYPES
from ..services.disk import disk_usage
from ..services.history import image_history
from ..services.images import ImageFilters, check_filter_names, image_summaries, resolve_image, until_filter
from ..services.import_ import start_import
from ..services.inspect import inspect_image
from ..services.load import start_load
from ..services.login import login
from ..services.pull import start_pull
from ..services.push import start_push
from ..services.remove import prune_images, prune_options, remove_image
from ..services.search import SearchFilters, search
from ..services.tag import tag_image
from ..services.uploads import keep_stream
from ..streams import JSON_KEEPALIVE, StreamGuard
from ..supervisor import frame
from .base import API_VERSION, MIN_API_VERSION, docker_view, error, filters, holds_nul, json_body, json_lines, watch_job

SERVER_VERSION = "28.0.0-imagestore"


# --- system ------------------------------------------------------------------------------------

def ping(request: HttpRequest, version: str | None = None) -> HttpResponse:
    """``/_ping`` answers before auth, as the CLI calls it to negotiate the version."""
    if not settings.DOCKER_API_ENABLED:
        return error("the Docker API endpoint is switched off (DOCKER_API_ENABLED)", 404)
    response = HttpResponse("" if request.method == "HEAD" else "OK", content_type="text/plain; charset=utf-8")
    response["API-Version"] = API_VERSION
    response["Docker-Experimental"] = "false"
    response["Ostype"] = "linux"
    response["Cache-Control"] = "no-cache, no-store, must-revalidate"
    return response


@csrf_exempt
def not_found(request: HttpRequest) -> JsonResponse:
    return error("page not found", 404)


@docker_view(("GET",))
def version_view(request: HttpRequest) -> JsonResponse:
    arch = host_platform().architecture
    return JsonResponse({
        "Platform": {"Name": "imagestore"},
        "Components": [{"Name": "Engine", "Version": SERVER_VERSION, "Details": {
            "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch,
            "KernelVersion": host.release(), "GitCommit": "", "GoVersion": "n/a", "BuildTime": "",
            "Experimental": "false"}}],
        "Version": SERVER_VERSION, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux", "Arch": arch, "KernelVersion": host.release(), "GoVersion": "n/a", "GitCommit": "",
        "BuildTime": "",
    })


@docker_view(("GET",))
def info(request: HttpRequest) -> JsonResponse:
    counts = {state: Container.objects.filter(state=state).count() for state in ("running", "paused", "exited")}
    return JsonResponse({
        "ID": "imagestore", "Name": host.node(), "ServerVersion": SERVER_VERSION, "OSType": "linux",
        "OperatingSystem": "imagestore", "Architecture": host.machine(), "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "Driver": "imagestore",
        "Images": Image.objects.count(), "Containers": Container.objects.count(),
        "ContainersRunning": counts["running"], "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["exited"], "IndexServerAddress": "https://index.docker.io/v1/",
        "DockerRootDir": str(settings.IMAGESTORE_ROOT),
        "RegistryConfig": {"Mirrors": [redact_url(url) for url in settings.REGISTRY_MIRRORS],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"], "IndexConfigs": {}},
        "Runtimes": {settings.CONTAINER_RUNTIME: {"path": container_service.runtime_binary() or ""}},
        "DefaultRuntime": settings.CONTAINER_RUNTIME, "Warnings": None,
    })


@docker_view(("GET",))
def system_df(request: HttpRequest) -> JsonResponse:
    """``docker system df [-v]``: images, containers and (empty) build cache, with sizes."""
    types = request.GET.getlist("type")
    unknown = [t for t in types if t not in DISK_USAGE_TYPES]
    if unknown:
        raise BadRequest(gettext("invalid disk usage type: %(type)s") % {"type": unknown[0][:64]})
    return JsonResponse(disk_usage(types))


@docker_view(("POST",))
def auth(request: HttpRequest) -> JsonResponse:
    """``docker login``: checked with the registry, kept encrypted for this user."""
    body = _json_body(request)
    server, username, password = (_string(body, key) for key in ("serveraddress", "username", "password"))
    try:
        login(request.docker_user, server, username, password)  # type: ignore[attr-defined]
    except BadRequest as exc:
        return error(str(exc), 401)
    return JsonResponse({"Status": "Login Succeeded", "IdentityToken": ""})


def _json_body(request: HttpRequest) -> dict[str, Any]:
    body = json_body(request)  # bounded in size and depth: a 400, never a RecursionError's 500
    if holds_nul(body):
        raise BadRequest("the request body holds a NUL character")
    return body


def _string(body: dict[str, Any], key: str) -> str:
    """A string field of a JSON body (absent or null: empty). Docker refuses another type with
    400, as Go's decoder does, rather than taking ``"User": 1000`` for something it is not."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, not {type(value).__name__}: {json.dumps(value)[:64]}")
    return value


# --- images -------------------------------------------------------------------------------------

IMAGE_LIST_FILTERS = {"dangling", "label", "label!", "before", "since", "reference", "until"}


def _image_filters(request: HttpRequest) -> ImageFilters:
    f = filters(request)
    check_filter_names(f, IMAGE_LIST_FILTERS)
    dangling = f.get("dangling")
    for label in f.get("label", []) + f.get("label!", []):
        if not label.partition("=")[0]:
            raise BadRequest(gettext("invalid filter 'label=%(label)s'") % {"label": label})
    return ImageFilters(
        reference=f.get("reference", []),
        dangling=None if not dangling else dangling[0].lower() in ("true", "1"),
        before=f["before"][0] if f.get("before") else None,
        since=f["since"][0] if f.get("since") else None,
        labels=f.get("label", []),
        not_labels=f.get("label!", []),
        until=until_filter(f.get("until", [])),
        all=flag(request, "all"),
    )


@docker_view(("GET",))
def distribution_inspect(request: HttpRequest, name: str) -> JsonResponse:
    """``docker manifest inspect``-like: what the registry serves for a name (services.updates)."""
    from ..services.updates import distribution_info

    return JsonResponse(distribution_info(name, owner=request.user))


@docker_view(("GET",))
def images_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse(image_summaries(_image_filters(request)), safe=False)


@docker_view(("GET",))
def image_inspect(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(inspect_image(resolve_image(name)))


@docker_view(("GET",))
def image_history_view(request: HttpRequest, name: str) -> JsonResponse:
    rows = [{k: v for k, v in row.items() if k != "Layer"} for row in image_history(resolve_image(name))]
    return JsonResponse(rows, safe=False)


@docker_view(("POST",))
def image_tag(request: HttpRequest, name: str) -> HttpResponse:
    repo = request.GET.get("repo", "")
    if not repo:
        raise BadRequest("repository name must have at least one component")
    tag = request.GET.get("tag") or "latest"
    tag_image(resolve_image(name), f"{repo}:{tag}")
    return HttpResponse(status=201)


@docker_view(("DELETE",))
def image_delete(request: HttpRequest, name: str) -> JsonResponse:
    return JsonResponse(remove_image(name, force=flag(request, "force"), noprune=flag(request, "noprune")), safe=False)


@docker_view(("POST",))
def images_prune(request: HttpRequest) -> JsonResponse:
    result = prune_images(**prune_options(filters(request)))
    return JsonResponse({"ImagesDeleted": result["ImagesDeleted"] or None, "SpaceReclaimed": result["SpaceReclaimed"]})


@docker_view(("GET",))
def images_search(request: HttpRequest) -> JsonResponse:
    f = filters(request)
    try:
        stars = int((f.get("stars") or ["0"])[0])
        limit = int(request.GET.get("limit") or 25)
    except ValueError:
        raise BadRequest("invalid filter 'stars' or limit: not a number") from None

    def boolean(key: str) -> bool | None:
        values = f.get(key)
        return None if not values else values[0].lower() in ("true", "1")

    term = request.GET.get("term", "")
    registry = None
    first = term.split("/", 1)[0]
    if "/" in term and ("." in first or ":" in first or first == "localhost"):
        registry, term = first, term.split("/", 1)[1]
    results = search(term, registry=registry, limit=limit, no_trunc=True, owner=request.docker_user,  # type: ignore[attr-defined]
                     filters=SearchFilters(stars, boolean("is-official"), boolean("is-automated")))
    return JsonResponse(results, safe=False)


@docker_view(("GET",))
def image_get(request: HttpRequest, name: str) -> StreamingHttpResponse:
    return archive_response([name])


@docker_view(("GET",))
def images_get(request: HttpRequest) -> StreamingHttpResponse:
    return archive_response(request.GET.getlist("names"))


def request_stream(request: HttpRequest) -> Any:
    """The request body as a stream. The docker CLI sends tarballs chunked (no
    Content-Length), which Django reads as empty: then read the server's own decoded input."""
    if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return request.META["wsgi.input"]
    return request


def _keep_body(request: HttpRequest) -> Path:
    """The request body streamed to the uploads folder for a job."""
    return keep_stream(request_stream(request))


@docker_view(("POST",))
def images_create(request: HttpRequest) -> StreamingHttpResponse:
    """``docker pull`` (``fromImage``) and ``docker import`` (``fromSrc``), streaming progress."""
    user = request.docker_user  # type: ignore[attr-defined]
    if request.GET.get("fromImage"):
        reference = request.GET["fromImage"]
        tag = request.GET.get("tag")
        if tag and "@" not in reference:
            reference = f"{reference}@{tag}" if tag.startswith("sha256:") else f"{reference}:{tag}"
        job = start_pull(reference, request.GET.get("platform") or None, owner=user)
        return json_lines(watch_job(job, StreamGuard(request)))
    source = request.GET.get("fromSrc")
    if not source:
        raise BadRequest("fromImage or fromSrc is required")
    changes = [line for value in request.GET.getlist("changes") for line in value.split("\n") if line.strip()]
    upload = _keep_body(request) if source == "-" else None
    try:
        job = start_import(upload_path=str(upload) if upload else None, url=None if upload else source,
                           repository=request.GET.get("repo") or None, tag=request.GET.get("tag") or None,
                           message=request.GET.get("message") or "", changes=changes, owner=user)
    except BaseException:
        if upload:
            upload.unlink(missing_ok=True)
        raise

    def messages() -> Iterator[dict[str, Any] | None]:
        # Docker's import says "Importing" with its progress, then only the new image id.
        for message in watch_job(job, StreamGuard(request)):
            if message is None:
                yield message
                continue
            status = message.get("status", "")
            if status.startswith("Tagged ") or (message.get("id") == "import" and status != "Importing"):
                continue
            yield message

    return json_lines(messages())


@docker_view(("POST",))
def images_load(request: HttpRequest) -> StreamingHttpResponse:
    upload = _keep_body(request)
    job = start_load(str(upload), owner=request.docker_user)  # type: ignore[attr-defined]

    def messages() -> Iterator[dict[str, Any] | None]:
        for message in watch_job(job, StreamGuard(request)):
            if message is None or "error" in message:
                yield message
            elif message.get("status", "").startswith("Loaded image"):
                yield {"stream": message["status"] + "\n"}
    return json_lines(messages())


@docker_view(("POST",))
def image_push(request: HttpRequest, name: str) -> StreamingHttpResponse:
    _remember_registry_auth(request)
    tag = request.GET.get("tag")
    reference = f"{name}:{tag}" if tag else name
    job = start_push(reference, all_tags=not tag, owner=request.docker_user)  # type: ignore[attr-defined]

    def messages() -> Iterator[dict[str, Any] | None]:
        yield from watch_job(job, StreamGuard(request))
        job.refresh_from_db()
        if not job.finished:  # the stream ended early (client gone or idle): no result yet
            return
        for pushed in (job.result or {}).get("pushed", []):
            yield {"progressDetail": {}, "aux": {"Tag": pushed["reference"].rsplit(":", 1)[-1],
                                                 "Digest": pushed["digest"], "Size": pushed["size"]}}
    return json_lines(messages())


def _remember_registry_auth(request: HttpRequest) -> None:
    """``X-Registry-Auth`` from the CLI: kept as the user's login when they have none for that registry."""
    header = request.headers.get("X-Registry-Auth")
    if not header:
        return
    try:
        data = jsonbounds.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)), what="X-Registry-Auth")
    except ValueError:  # bad base64, InvalidJSON, LimitExceeded (nesting)
        raise BadRequest("X-Registry-Auth is not valid base64 JSON") from None
    if isinstance(data, dict) and data.get("username") and data.get("password") and data.get("serveraddress"):
        from ..models import RegistryCredential
        from ..services.login import normalize_registry

        registry = normalize_registry(str(data["serveraddress"]))
        user = request.docker_user  # type: ignore[attr-defined]
        if not RegistryCredential.objects.filter(owner=user, registry=registry).exists():
            login(user, registry, str(data["username"]), str(data["password"]))


# --- containers ----------------------------------------------------------------------------------

def _container_json(container: Container) -> dict[str, Any]:
    config = container.config
    state = container.state
    return {
        "Id": container.id, "Name": f"/{container.name}", "Image": container.image_id,
        "Created": container.created_at.isoformat().replace("+00:00", "Z"),
        "Path": ((config.get("Entrypoint") or []) + (config.get("Cmd") or []) or [""])[0],
        "Args": ((config.get("Entrypoint") or []) + (config.get("Cmd") or []))[1:],
        "State": {"Status": state, "Running": state == "running", "Paused": state == "paused",
                  "Restarting": False, "OOMKilled": False, "Dead": state == "dead", "Pid": 0,
                  "ExitCode": container.exit_code or 0, "Error": container.error,
                  "StartedAt": container.started_at.isoformat().replace("+00:00", "Z") if container.started_at
                  else "0001-01-01T00:00:00Z",
                  "FinishedAt": container.finished_at.isoformat().replace("+00:00", "Z") if container.finished_at
                  else "0001-01-01T00:00:00Z"},
        "Config": {"Image": config.get("Image"), "Cmd": config.get("Cmd"), "Entrypoint": config.get("Entrypoint"),
                   "Env": config.get("Env") or [], "WorkingDir": config.get("WorkingDir") or "",
                   "User": config.get("User") or "", "Tty": bool(config.get("Tty")),
                   "OpenStdin": bool(config.get("OpenStdin")), "StdinOnce": bool(config.get("StdinOnce")),
                   "AttachStdin": bool(config.get("OpenStdin")), "AttachStdout": True, "AttachStderr": True,
                   "Labels": {}},
        "HostConfig": {"NetworkMode": config.get("NetworkMode") or "host", "Memory": config.get("Memory") or 0,
                       "NanoCpus": config.get("NanoCpus") or 0, "PidsLimit": config.get("PidsLimit"),
                       "AutoRemove": bool(config.get("AutoRemove")),
                       "LogConfig": {"Type": "json-file", "Config": {}}},
        "Mounts": [], "NetworkSettings": {"Networks": {}},
    }


def _interactive_options(body: dict[str, Any], host_config: dict[str, Any]) -> dict[str, Any]:
    """Create's terminal and stdin options (``-t``, ``-i``, ``--rm``), as ContainerConfig and HostConfig say."""
    def boolean(holder: dict[str, Any], key: str) -> bool:
        value = holder.get(key)
        if value is not None and not isinstance(value, bool):
            raise BadRequest(f"{key} must be a boolean")
        return bool(value)

    return {"tty": boolean(body, "Tty"), "open_stdin": boolean(body, "OpenStdin"),
            "stdin_once": boolean(body, "StdinOnce"), "auto_remove": boolean(host_config, "AutoRemove"),
            "console_size": host_config.get("ConsoleSize")}


@docker_view(("POST",))
def containers_create(request: HttpRequest) -> JsonResponse:
    body = _json_body(request)
    host_config = body.get("HostConfig") or {}
    if not isinstance(host_config, dict):
        raise BadRequest("HostConfig must be an object")
    container = container_service.create_container(
        _string(body, "Image"), cmd=body.get("Cmd"), entrypoint=body.get("Entrypoint"),
        env=body.get("Env"), working_dir=_string(body, "WorkingDir"), user=_string(body, "User"),
        name=request.GET.get("name", ""), network=_string(host_config, "NetworkMode"),
        # docker's CLI sends 0 for a limit not given: no limit, except pids, whose default we keep.
        memory=host_config.get("Memory") or None, nano_cpus=host_config.get("NanoCpus") or None,
        pids_limit=host_config.get("PidsLimit") or None, **_interactive_options(body, host_config),
    )
    return JsonResponse({"Id": container.id, "Warnings": []}, status=201)


@docker_view(("GET",))
def containers_list(request: HttpRequest) -> JsonResponse:
    container_service.reconcile_all()
    qs = Container.objects.select_related("image").order_by("-created_at")
    f = filters(request)
    if not flag(request, "all") and "status" not in f:
        qs = qs.filter(state__in=container_service.RUNNING_STATES)
    if f.get("status"):
        qs = qs.filter(state__in=f["status"])
    if f.get("ancestor"):
        qs = qs.filter(image__in=[resolve_image(a) for a in f["ancestor"]])
    if f.get("name"):
        qs = qs.filter(name__icontains=f["name"][0].lstrip("/"))
    out: list[dict[str, Any]] = []
    for c in qs:
        args = (c.config.get("Entrypoint") or []) + (c.config.get("Cmd") or [])
        status = {"running": "Up", "created": "Created", "exited": f"Exited ({c.exit_code})"}.get(c.state, c.state)
        out.append({"Id": c.id, "Names": [f"/{c.name}"], "Image": c.config.get("Image") or c.image_id,
                    "ImageID": c.image_id, "Command": " ".join(args), "Created": int(c.created_at.timestamp()),
                    "State": c.state, "Status": status, "Ports": [], "Labels": {}, "Mounts": []})
    return JsonResponse(out, safe=False)


def _container(ref: str) -> Container:
    return container_service.reconcile(container_service.get_container(ref))


@docker_view(("GET",))
def container_inspect(request: HttpRequest, ref: str) -> JsonResponse:
    return JsonResponse(_container_json(_container(ref)))


def _stop_timeout(request: HttpRequest) -> float:
    return seconds(request.GET, "t", default=10, maximum=container_service.STOP_TIMEOUT_MAX)


@docker_view(("POST",))
def container_action(request: HttpRequest, ref: str, verb: str) -> HttpResponse | StreamingHttpResponse:
    if verb in ("stop", "restart"):
        timeout = _stop_timeout(request)  # a bad t is a 400 before anything happens
    container = _container(ref)
    if verb == "start":
        if container.state in container_service.RUNNING_STATES:
            return HttpResponse(status=304)
        container_service.start_container(container)
    elif verb == "stop":
        if container.state not in container_service.RUNNING_STATES:
            return HttpResponse(status=304)
        container_service.stop_container(container, timeout=timeout)
    elif verb == "restart":
        container_service.start_container(container_service.stop_container(container, timeout=timeout))
    elif verb == "kill":
        container_service.kill_container(container, request.GET.get("signal") or "KILL")
    elif verb == "wait":
        return _wait_stream(request, container)
    else:
        raise NotFound(f"unknown container action {verb}")
    return HttpResponse(status=204)


def _wait_stream(request: HttpRequest, container: Container) -> StreamingHttpResponse:
    """As moby's ``postContainersWait``: the status and headers at once, the JSON body when
    the ``condition`` holds (not-running, next-exit, removed). Meanwhile a space now and then
    (whitespace before a JSON value is allowed), and the wait ends when the client has gone."""
    waiter = container_service.Waiter(container, request.GET.get("condition") or "not-running")
    guard = StreamGuard(request)

    def body() -> Iterator[bytes]:
        yield b""  # the headers go now
        while (code := waiter.poll()) is None:
            if guard.client_gone():
                return  # nobody listens
            if guard.keepalive_due():
                guard.wrote()
                yield JSON_KEEPALIVE
            time.sleep(0.02)
        yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

    return StreamingHttpResponse(body(), content_type="application/json")


@docker_view(("GET",))
def container_logs(request: HttpRequest, ref: str) -> StreamingHttpResponse:
    """Logs in the multiplexed stream format (8-byte frame headers); a terminal's raw."""
    container = _container(ref)
    follow = flag(request, "follow")
    guard = StreamGuard(request)  # no keep-alive: no byte of this format is free to invent

    tty = bool(container.config.get("Tty"))
    wanted = {n for n, key in ((1, "stdout"), (2, "stderr")) if flag(request, key)} or {1, 2}

    def frames() -> Iterator[bytes]:
        for stream, chunk in container_service.container_log_frames(container, follow=follow,
                                                                    keep_going=guard.go_on):
            if stream not in wanted:
                continue
            guard.output()
            yield chunk if tty else frame(stream, chunk)

    return StreamingHttpResponse(frames(), content_type="application/vnd.docker.raw-stream" if tty
                                 else "application/vnd.docker.multiplexed-stream")


@docker_view(("DELETE",))
def container_delete(request: HttpRequest, ref: str) -> HttpResponse:
    container_service.remove_container(_container(ref), force=flag(request, "force"))
    return HttpResponse(status=204)


@docker_view(("GET",))
def container_changes(request: HttpRequest, ref: str) -> JsonResponse:
    return JsonResponse(container_service.container_changes(_container(ref)) or None, safe=False)


@docker_view(("GET", "PUT", "HEAD"))
def container_archive(request: HttpRequest, ref: str) -> HttpResponse | StreamingHttpResponse:
    container = _container(ref)
    path = request.GET.get("path")
    if not path:
        raise BadRequest("path is required")
    if request.method == "PUT":
        container_service.copy_into(container, path, request_stream(request))
        return HttpResponse(status=200)
    stat = container_service.path_stat(container, path)
    header = base64.b64encode(json.dumps(stat).encode()).decode()
    if request.method == "HEAD":
        response = HttpResponse(status=200)
        response["X-Docker-Container-Path-Stat"] = header
        return response
    # Streamed as it is read from the container's root, never staged whole.
    archive = StreamingHttpResponse(container_service.archive_of(container, path), content_type="application/x-tar")
    archive["X-Docker-Container-Path-Stat"] = header
    return archive


@docker_view(("POST",))
def commit(request: HttpRequest) -> JsonResponse:
    """``docker commit``: answers the new image id once it is made."""
    repo, tag = request.GET.get("repo") or "", request.GET.get("tag") or ""
    changes = request.GET.getlist("changes")
    changes = [line for value in changes for line in value.split("\n") if line.strip()]
    image = commit_container(
        request.GET.get("container", ""), repository=(f"{repo}:{tag}" if repo and tag else repo) or None,
        author=request.GET.get("author", ""), message=request.GET.get("comment", ""),
        pause=request.GET.get("pause", "1").lower() not in ("0", "false"), changes=changes,
    )
    return JsonResponse({"Id": image.id}, status=201)

