"""Request bodies parsed with bounds: DRF's JSONParser reads a body whole and hands it to
``json.load``, so 100,000 nested brackets raised RecursionError (a 500) and a body skipped
DATA_UPLOAD_MAX_MEMORY_SIZE (DRF reads the request stream itself). Here a body is read up
to that size and parsed with oci.jsonbounds' depth cap; either past its bound is a 400."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from ..oci import jsonbounds
from ..oci.errors import InvalidJSON, LimitExceeded


def parse_json_body(stream: IO[bytes] | Any, what: str = "the request body") -> Any:
    """The JSON of a request body, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes and
    jsonbounds.MAX_DEPTH levels; InvalidJSON or LimitExceeded otherwise."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or jsonbounds.MAX_DOCUMENT
    data = jsonbounds.read_capped(stream, what=what, max_size=limit)
    return jsonbounds.loads(data, what=what, max_size=limit)


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        if stream is None:  # an empty body
            return {}
        try:
            return parse_json_body(stream)
        except (InvalidJSON, LimitExceeded) as exc:
            raise ParseError(str(exc)) from None
