"""Auth, errors and JSON streams as the Engine API speaks them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException

from ..api.auth_tokens import HashedTokenAuthentication
from ..errors import BadRequest, TooLarge, status_for
from ..models import Job
from ..oci import jsonbounds
from ..oci.errors import human_size
from ..permissions import is_operator
from ..streams import JSON_KEEPALIVE, StreamGuard

log = logging.getLogger(__name__)
API_VERSION = "1.47"
MIN_API_VERSION = "1.24"


def error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


def _authenticate(request: HttpRequest) -> Any:
    try:
        found = HashedTokenAuthentication().authenticate(request)
    except APIException as exc:  # a wrong, expired or revoked token, or too many of them
        raise PermissionError(str(exc.detail)) from None
    if found is None:
        raise PermissionError("authentication required: send a token in the Authorization header "
                              '(~/.docker/config.json "HttpHeaders": {"Authorization": "Token ..."})')
    user = found[0]
    request.auth = found[1]  # type: ignore[attr-defined]  # the token's name, for the audit trail
    if not is_operator(user):
        raise PermissionError("the Docker API is full control: it needs staff or the operators group")
    return user


def docker_view(methods: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Method check, token auth, and Docker-shaped errors for one handler."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @csrf_exempt
        @wraps(fn)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            kwargs.pop("version", None)
            if not settings.DOCKER_API_ENABLED:
                return error("the Docker API endpoint is switched off (DOCKER_API_ENABLED)", 404)
            if request.method not in methods:
                return error(f"{request.method} is not allowed here", 405)
            try:
                request.docker_user = _authenticate(request)  # type: ignore[attr-defined]
                response = fn(request, *args, **kwargs)
            except PermissionError as exc:
                return error(str(exc), 401)
            except Exception as exc:  # every error answers Docker's shape
                status = status_for(exc)
                if status is None:
                    log.exception("Docker API %s %s failed", request.method, request.path)
                    return error(f"internal error: {exc.__class__.__name__}", 500)
                return error(str(exc), status)
            response["API-Version"] = API_VERSION
            return response

        return view

    return wrap


def filters(request: HttpRequest) -> dict[str, list[str]]:
    """The ``filters`` query parameter: ``{"key": ["v"]}`` or the older ``{"key": {"v": true}}``."""
    raw = request.GET.get("filters")
    if not raw:
        return {}
    try:
        parsed = jsonbounds.loads(raw, what="filters")
    except jsonbounds.InvalidJSON:
        raise BadRequest("invalid filter: filters is not JSON") from None
    if not isinstance(parsed, dict):
        raise BadRequest("invalid filter: filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in parsed.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [str(value)]
        if any("\x00" in v for v in out[key]):
            raise BadRequest(f"invalid filter '{key}': a value holds a NUL character")
    return out


def json_body(request: HttpRequest) -> dict[str, Any]:
    """A request's JSON object, read with bounds: at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes and
    jsonbounds.MAX_DEPTH levels of nesting; anything else answers 400 ``{"message": ...}``."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or jsonbounds.MAX_DOCUMENT
    try:
        raw = request.body
    except RequestDataTooBig:
        raise TooLarge(f"the request body is larger than the limit of {human_size(limit)}") from None
    body = jsonbounds.loads(raw or b"{}", what="the request body", max_size=limit)  # 400 past a bound
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def holds_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL in any string, key or value: PostgreSQL can
    store none (text nor jsonb), so such input is refused before it reaches the database."""
    pending = [value]
    while pending:  # a loop, not recursion: any depth json.loads accepted
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False



def json_lines(messages: Iterator[dict[str, Any] | None]) -> StreamingHttpResponse:
    """Docker's JSON message stream; a ``None`` from ``watch_job`` is a keep-alive space."""
    return StreamingHttpResponse((JSON_KEEPALIVE if m is None else json.dumps(m) + "\r\n" for m in messages),
                                 content_type="application/json")


def watch_job(job: Job, guard: StreamGuard, *, interval: float = 0.2) -> Iterator[dict[str, Any] | None]:
    """Docker's progress messages for a job as it advances, ending with its outcome.

    The client never waits on a silent connection: each change of a layer's phase or
    bytes is one line, and a failure is sent as ``errorDetail`` and ``error``. A silent
    job yields ``None`` (a keep-alive) now and then. The stream ends early, the job going
    on, when the client has gone or nothing changed for ``STREAM_IDLE_TIMEOUT`` seconds.
    """
    sent_lines = 0
    sent_items: dict[str, Any] = {}
    held: list[str] = []  # the closing lines (Digest:, Status:) come after the last layer's
    while True:
        job.refresh_from_db()
        lines = job.log or []
        for line in lines[sent_lines:]:
            if line.startswith(("Digest: ", "Status: ", "sha256:")):
                held.append(line)
            elif not line.startswith("Error: "):
                guard.output()
                yield {"status": line}
        sent_lines = len(lines)
        for item, state in (job.progress or {}).items():
            if sent_items.get(item) != state:
                sent_items[item] = state
                message: dict[str, Any] = {"status": state.get("phase", ""), "id": item}
                if state.get("phase") in ("Downloading", "Pushing", "Importing", "Saving"):
                    message["progressDetail"] = {"current": state.get("current") or 0,
                                                 "total": state.get("total") or 0}
                else:
                    message["progressDetail"] = {}
                guard.output()
                yield message
        if job.finished:
            for line in held:
                yield {"status": line}
            if job.state != Job.State.SUCCEEDED:
                text = job.error or f"the job ended {job.state}"
                yield {"errorDetail": {"message": text}, "error": text}
            return
        if guard.client_gone():
            log.info("client of job %s's progress went away; the job goes on", job.id)
            return
        if guard.idle():
            text = (f"no progress for {guard.idle_timeout:g} s; job {job.id} goes on in the background "
                    f"(GET /api/v1/jobs/{job.id}/)")
            yield {"errorDetail": {"message": text}, "error": text}
            return
        if guard.keepalive_due():
            guard.wrote()
            yield None
        time.sleep(interval)
