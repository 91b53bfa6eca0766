"""The OCI Distribution Spec v1.1 endpoints (https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md),
thin: each reads the request, checks the scope, calls services.registry_serve and writes the answer."""

from __future__ import annotations

import urllib.parse
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..oci import distribution as spec
from ..oci import jsonbounds
from ..services import registry_auth, registry_serve
from ..services.registry_auth import DELETE, PULL, PUSH, LoginFailed
from .base import authenticate, challenge_for, error_response, host, registry_view, repository_of, require

MAX_LIST = 1000


def _stream(request: HttpRequest) -> Any:
    """The body as a stream: a chunked body (no Content-Length) is read from the server's decoded input."""
    if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" or (
            "CONTENT_LENGTH" not in request.META and "wsgi.input" in request.META
            and request.META.get("HTTP_TRANSFER_ENCODING")):
        return request.META["wsgi.input"]
    return request


def _length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None if request.META.get("HTTP_TRANSFER_ENCODING") else 0
    try:
        value = int(raw)
    except ValueError:
        raise spec.SizeInvalid("invalid Content-Length") from None
    if value < 0:
        raise spec.SizeInvalid("invalid Content-Length")
    return value


def _n(request: HttpRequest) -> int | None:
    raw = request.GET.get("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise spec.Unsupported("n must be a whole number", status=400)
    return min(int(raw), MAX_LIST)


def _listing(request: HttpRequest, key: str, names: list[str], more: bool, body: dict[str, Any]) -> JsonResponse:
    response = JsonResponse({**body, key: names})
    if more and names:
        query = urllib.parse.urlencode({"n": request.GET.get("n", ""), "last": names[-1]})
        response["Link"] = f'<{request.path}?{query}>; rel="next"'
    return response


def _empty(status: int, **headers: str) -> HttpResponse:
    response = HttpResponse(b"", status=status)
    response["Content-Length"] = "0"
    for key, value in headers.items():
        response[key.replace("_", "-")] = value
    return response


# --- base and auth -------------------------------------------------------------------------------

@registry_view(("GET", "HEAD"))
def version(request: HttpRequest) -> HttpResponse:
    """``GET /v2/``: 200 for a valid token or credentials, else the challenge (so `docker login` checks them)."""
    access = request.registry_access  # type: ignore[attr-defined]
    if access.user is None and access.granted == {} and not request.META.get("HTTP_AUTHORIZATION"):
        return error_response(spec.Unauthorized("authentication required"), challenge=challenge_for(request))
    response = JsonResponse({})
    return response


@csrf_exempt
def token(request: HttpRequest) -> HttpResponse:
    """``GET /v2/token?service=...&scope=...``: a bearer token granting what was asked and is allowed."""
    if request.method not in ("GET", "POST"):
        return error_response(spec.Unsupported(f"{request.method} is not allowed here"))
    try:
        access = authenticate(request)
        if request.method == "POST" and request.POST.get("grant_type") == "password":
            access = registry_auth.Access(registry_auth.check_password(
                request, request.POST.get("username", ""), request.POST.get("password", "")))
    except LoginFailed as exc:
        return error_response(spec.Unauthorized(str(exc)), challenge=challenge_for(request))
    if access.granted is not None and access.user is None and request.META.get("HTTP_AUTHORIZATION"):
        return error_response(spec.Unauthorized("send Basic credentials"), challenge=challenge_for(request))
    params = request.GET if request.method == "GET" else request.POST
    scopes = []
    for text in params.getlist("scope"):
        for one in text.split(" "):
            scope = spec.parse_scope(one)
            if scope is None:
                continue
            repository = (registry_serve.find_repository(scope.name, host(request))
                          if scope.type == "repository" else None)
            scopes.append((scope, repository))
    answer = registry_auth.issue_token(access.user, scopes)
    return JsonResponse(answer)


# --- discovery -----------------------------------------------------------------------------------

@registry_view(("GET",))
def catalog(request: HttpRequest) -> HttpResponse:
    require(request, "registry", "catalog", "*")
    names, more = registry_serve.catalog(host(request), _n(request), request.GET.get("last"))
    return _listing(request, "repositories", names, more, {})


@registry_view(("GET",))
def tags_list(request: HttpRequest, name: str) -> HttpResponse:
    repository = repository_of(request, name)
    require(request, "repository", name, PULL, repository)
    names, more = registry_serve.list_tags(repository, _n(request), request.GET.get("last"))
    return _listing(request, "tags", names, more, {"name": name})


@registry_view(("GET",))
def referrers(request: HttpRequest, name: str, digest: str) -> HttpResponse:
    repository = repository_of(request, name)
    require(request, "repository", name, PULL, repository)
    artifact_type = request.GET.get("artifactType", "")
    index = registry_serve.referrers(repository, digest, artifact_type)
    response = JsonResponse(index, content_type=spec.mediatypes.OCI_INDEX)
    if artifact_type:
        response["OCI-Filters-Applied"] = "artifactType"
    return response


# --- manifests -----------------------------------------------------------------------------------

@registry_view(("GET", "HEAD", "PUT", "DELETE"))
def manifest(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    if request.method == "PUT":
        return _put_manifest(request, name, reference)
    repository = repository_of(request, name)
    if request.method == "DELETE":
        require(request, "repository", name, DELETE, repository)
        registry_serve.delete_manifest(repository, reference)
        return _empty(202)
    require(request, "repository", name, PULL, repository)
    accepted = spec.accepted_types(request.headers.getlist("Accept") if hasattr(request.headers, "getlist")
                                   else [request.META.get("HTTP_ACCEPT", "")])
    try:
        served = registry_serve.get_manifest(repository, reference, accepted)
    except (spec.NameUnknown, spec.ManifestUnknown):
        if not registry_serve.proxied(name, repository):
            raise
        access = request.registry_access  # type: ignore[attr-defined]
        repository = registry_serve.pull_through(name, reference, host(request), access.user)
        served = registry_serve.get_manifest(repository, reference, accepted)
    if request.method == "GET" and repository is not None:
        registry_serve.record_pull(repository, reference, served)
    body = b"" if request.method == "HEAD" else served.data
    response = HttpResponse(body, content_type=served.media_type)
    response["Content-Length"] = str(len(served.data))
    response["Docker-Content-Digest"] = str(served.digest)
    response["ETag"] = f'"{served.digest}"'
    return response


def _put_manifest(request: HttpRequest, name: str, reference: str) -> HttpResponse:
    require(request, "repository", name, PUSH, repository_of(request, name), ask="pull,push")
    length = _length(request)
    if length is not None and length > spec.MAX_MANIFEST:
        raise spec.ManifestInvalid(f"the manifest is larger than {spec.MAX_MANIFEST >> 20} MiB", status=413)
    try:
        data = jsonbounds.read_capped(_stream(request), what="the manifest", max_size=spec.MAX_MANIFEST)
    except jsonbounds.LimitExceeded as exc:
        raise spec.ManifestInvalid(str(exc), status=413) from None
    digest, row = registry_serve.put_manifest(name, host(request), reference, data,
                                              request.META.get("CONTENT_TYPE", ""))
    response = _empty(201, Location=f"/v2/{name}/manifests/{digest}", Docker_Content_Digest=str(digest))
    if row.subject:
        response["OCI-Subject"] = row.subject
    return response


# --- blobs ---------------------------------------------------------------------------------------

@registry_view(("GET", "HEAD", "DELETE"))
def blob(request: HttpRequest, name: str, digest: str) -> HttpResponse | StreamingHttpResponse:
    repository = repository_of(request, name)
    if request.method == "DELETE":
        require(request, "repository", name, DELETE, repository)
        # Blobs are shared by every repository of the store: GC frees those nothing uses.
        raise spec.Unsupported("blobs are deleted by garbage collection once no manifest uses them")
    require(request, "repository", name, PULL, repository)
    access = request.registry_access  # type: ignore[attr-defined]
    found = registry_serve.get_blob(digest, repository=repository, scoped=access.user is None)
    headers = {"Docker-Content-Digest": str(found.digest), "Accept-Ranges": "bytes",
               "ETag": f'"{found.digest}"'}
    if request.method == "HEAD":
        response = _empty(200)
        response["Content-Length"] = str(found.size)
        response["Content-Type"] = "application/octet-stream"
        for key, value in headers.items():
            response[key] = value
        return response
    wanted = request.META.get("HTTP_RANGE")
    if wanted:
        chosen = spec.parse_range(wanted, found.size)
        if chosen is None:
            response = error_response(spec.RangeInvalid("the range cannot be satisfied"))
            response["Content-Range"] = f"bytes */{found.size}"
            return response
        start, end = chosen
        length = end - start + 1
        if end == found.size - 1:
            source = open(found.path, "rb")  # noqa: SIM115 - FileResponse closes it
            source.seek(start)
            partial: HttpResponse | StreamingHttpResponse = FileResponse(source, status=206,
                                                                         content_type="application/octet-stream")
        else:
            partial = StreamingHttpResponse(registry_serve.iter_file(found.path, start, length), status=206,
                                            content_type="application/octet-stream")
        partial["Content-Length"] = str(length)
        partial["Content-Range"] = f"bytes {start}-{end}/{found.size}"
        for key, value in headers.items():
            partial[key] = value
        return partial
    # FileResponse: gunicorn sends it with sendfile(2), no copy through Python.
    whole = FileResponse(open(found.path, "rb"), content_type="application/octet-stream")  # noqa: SIM115
    whole["Content-Length"] = str(found.size)
    for key, value in headers.items():
        whole[key] = value
    return whole


def _upload_headers(name: str, upload_id: str, offset: int) -> dict[str, str]:
    return {"Location": f"/v2/{name}/blobs/uploads/{upload_id}", "Docker-Upload-UUID": upload_id,
            "Range": f"0-{max(offset - 1, 0)}"}


@registry_view(("POST",))
def upload_start(request: HttpRequest, name: str) -> HttpResponse:
    """POST: a monolithic upload (``?digest=``), a mount (``?mount=&from=``) or a new session."""
    require(request, "repository", name, PUSH, repository_of(request, name), ask="pull,push")
    mount, source_name = request.GET.get("mount"), request.GET.get("from")
    if mount and source_name:
        spec.check_name(source_name)
        source = repository_of(request, source_name)
        access = request.registry_access  # type: ignore[attr-defined]
        if access.allows("repository", source_name, PULL, source):
            mounted = registry_serve.mount_blob(mount, source, scoped=access.user is None)
            if mounted is not None:
                return _empty(201, Location=f"/v2/{name}/blobs/{mounted}", Docker_Content_Digest=str(mounted))
    digest = request.GET.get("digest")
    length = _length(request)
    if digest:
        done = registry_serve.monolithic_upload(name, digest, _stream(request), length)
        return _empty(201, Location=f"/v2/{name}/blobs/{done}", Docker_Content_Digest=str(done))
    upload_id = registry_serve.start_upload(name)
    offset = 0
    if length:  # a first chunk with the POST (allowed by distribution, used by some clients)
        offset = registry_serve.append(name, upload_id, _stream(request), start=0, length=length)
    headers = _upload_headers(name, upload_id, offset)
    headers["OCI-Chunk-Min-Length"] = "0"
    return _empty(202, **{k.replace("-", "_"): v for k, v in headers.items()})


@registry_view(("GET", "PATCH", "PUT", "DELETE"))
def upload(request: HttpRequest, name: str, upload_id: str) -> HttpResponse:
    require(request, "repository", name, PUSH, repository_of(request, name), ask="pull,push")
    if request.method == "GET":
        offset = registry_serve.upload_offset(name, upload_id)
        return _empty(204, **{k.replace("-", "_"): v for k, v in _upload_headers(name, upload_id, offset).items()})
    if request.method == "DELETE":
        registry_serve.cancel_upload(name, upload_id)
        return _empty(204)
    length = _length(request)
    if request.method == "PATCH":
        content_range = request.META.get("HTTP_CONTENT_RANGE")
        start = None
        if content_range:
            start, end = spec.parse_content_range(content_range)
            if length is not None and length != end - start + 1:
                raise spec.RangeInvalid("Content-Range and Content-Length disagree")
            length = end - start + 1
        try:
            offset = registry_serve.append(name, upload_id, _stream(request), start=start, length=length)
        except spec.DistributionError as exc:
            if exc.status == 416:
                response = error_response(exc)
                current = registry_serve.upload_offset(name, upload_id)
                response["Range"] = f"0-{max(current - 1, 0)}"
                response["Location"] = f"/v2/{name}/blobs/uploads/{upload_id}"
                return response
            raise
        return _empty(202, **{k.replace("-", "_"): v for k, v in _upload_headers(name, upload_id, offset).items()})
    digest = request.GET.get("digest")
    if not digest:
        raise spec.DigestInvalid("the final PUT needs ?digest=")
    content_range = request.META.get("HTTP_CONTENT_RANGE")
    if content_range and length:
        start, _end = spec.parse_content_range(content_range)
        if start != registry_serve.upload_offset(name, upload_id):
            raise spec.RangeInvalid("the chunk does not start where the upload stands")
    done = registry_serve.finish_upload(name, upload_id, digest, _stream(request), length)
    return _empty(201, Location=f"/v2/{name}/blobs/{done}", Docker_Content_Digest=str(done))
