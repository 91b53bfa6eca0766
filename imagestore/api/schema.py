"""drf-spectacular hooks: the OpenAPI document says what the API really answers.

- ``images/(?P<ref>import)/`` and its siblings are routes of their own (POST import, save,
  load, prune, remove, pull), not an image called "import": they are documented at their
  literal path. Their GET and DELETE reach an image that happens to bear such a name and
  are already documented at ``/images/{ref}/``.
- Every error is ``{"detail": "..."}`` (imagestore/api/errors.py); each operation lists the
  error statuses it can answer, so a client (and schemathesis) knows every status it may see.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from .auth_basic import CachedBasicAuthentication
from .auth_tokens import HashedTokenAuthentication

_LITERAL_REF = re.compile(r"\(\?P<ref>([a-z]+)\)")

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        # A validation error's fields, as DRF reports them.
        "errors": {},
    },
    "required": ["detail"],
}
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_DESCRIPTIONS = {
    400: "The request is invalid (parameters, body, or the reference it names).",
    401: "Not signed in: send a token, a session or Basic credentials.",
    403: "Signed in, but changing anything needs staff or the operators group.",
    404: "Nothing of that name or id.",
    409: "The request conflicts with the current state (in use, already done, name taken).",
    413: "The request body is larger than the server accepts.",
    415: "The request body's media type is not one this operation reads.",
    503: "A service this needs is unavailable (the job queue, the container runtime).",
}


class AutoSchema(openapi.AutoSchema):
    """Only ``list`` actions paginate here; a list another action answers (history, diff,
    removal records) is a plain JSON array, not a page."""

    def _get_paginator(self) -> Any:
        if getattr(self.view, "action", None) != "list":
            return None
        return super()._get_paginator()


def spell_out_action_routes(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    kept = []
    for path, path_regex, method, callback in endpoints:
        literal = _LITERAL_REF.search(path_regex)
        if literal:
            if method != "POST":
                continue
            path = path.replace("{ref}", literal.group(1))
        kept.append((path, path_regex, method, callback))
    return kept


def error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[int]:
    """The errors an operation can answer: bad input and auth anywhere; 404 where the path, a
    required query parameter (``images/diff/?from=&to=``) or the body names something (or a page
    past the last); 409 and 503 where the request changes something; 413 and 415 where it has a body."""
    changes = method.upper() not in ("GET", "HEAD", "OPTIONS")
    statuses = [400, 401, 403]
    parameters = operation.get("parameters", [])
    if "{" in path or changes or any(p.get("name") == "page" or (p.get("in") == "query" and p.get("required"))
                                     for p in parameters):
        statuses.append(404)
    if changes:
        statuses += [409, 503]
    if "requestBody" in operation:
        statuses += [413, 415]
    return sorted(statuses)


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in error_statuses(path, method, operation):
                responses.setdefault(str(status), {
                    "content": {"application/json": {"schema": _ERROR_REF}},
                    "description": _DESCRIPTIONS[status],
                })
    return result


# The authentication classes as the schema names them. Here, not beside the classes: this
# module is imported only when a schema is made, so commands and workers skip drf-spectacular.
class CachedBasicScheme(OpenApiAuthenticationExtension):
    """The schema (/api/schema/) names it as the HTTP Basic scheme it is."""

    target_class = CachedBasicAuthentication
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic"}


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """The schema (/api/schema/) names it as DRF's token scheme did: ``Authorization: Token <key>``."""

    target_class = HashedTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": 'Token-based authentication with required prefix "Token"'}
