"""JSON from strangers, read with bounds: a size cap and a nesting-depth cap.

Image documents (manifest.json, index.json, OCI manifests, indexes and configs), registry
answers and request bodies are all small by nature. Read whole and parsed without a
bound, a 5 GB "manifest" fills memory, and 100,000 nested brackets make the parser, or
whatever walks the result later, raise RecursionError (a 500, or a dead worker).

The 4 MiB default is the distribution registry's own limit on a manifest
(https://github.com/distribution/distribution/blob/main/registry/handlers/manifests.go,
``maxManifestBodySize``); no real document comes near 64 levels of nesting.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from .errors import InvalidJSON, LimitExceeded, human_size

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT", "InvalidJSON", "LimitExceeded", "depth_of", "load", "loads", "read_capped"]

MAX_DOCUMENT = 4 << 20
MAX_DEPTH = 64
_STRING_RE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def read_capped(stream: Readable, *, what: str = "the JSON document", max_size: int = MAX_DOCUMENT) -> bytes:
    """At most ``max_size`` bytes of ``stream``; LimitExceeded if it holds more (never reads
    more than one byte past the cap)."""
    parts: list[bytes] = []
    size = 0
    while size <= max_size:
        data = stream.read(min(1 << 20, max_size + 1 - size))
        if not data:
            break
        parts.append(data)
        size += len(data)
    if size > max_size:
        raise LimitExceeded(f"{what} is larger than the limit of {human_size(max_size)}", max_size)
    return b"".join(parts)


def loads(data: bytes | str, *, what: str = "the JSON document", max_size: int = MAX_DOCUMENT,
          max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses a document over ``max_size`` bytes or nested deeper than
    ``max_depth`` (LimitExceeded) and says InvalidJSON for anything that does not parse."""
    raw = data.encode(errors="surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_size:
        raise LimitExceeded(f"{what} is larger than the limit of {human_size(max_size)}", max_size)
    if raw.count(b"[") + raw.count(b"{") > max_depth and _bracket_depth(raw, max_depth) > max_depth:
        raise _too_deep(what, max_depth)
    try:
        return json.loads(data)
    except RecursionError:  # cannot happen after the depth check; kept as a last guard
        raise _too_deep(what, max_depth) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJSON(f"{what} is not valid JSON: {exc}") from None


def load(stream: Readable, *, what: str = "the JSON document", max_size: int = MAX_DOCUMENT,
         max_depth: int = MAX_DEPTH) -> Any:
    """``loads`` of a stream read with ``read_capped``."""
    return loads(read_capped(stream, what=what, max_size=max_size), what=what, max_size=max_size,
                 max_depth=max_depth)


def depth_of(value: Any, *, stop_after: int | None = None) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0, ``[]`` is 1), walked
    without recursion; stops counting once past ``stop_after``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop_after is not None and deepest > stop_after:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


def _bracket_depth(raw: bytes, max_depth: int) -> int:
    """How deeply the brackets of a JSON text nest, up to ``max_depth + 1``, before parsing.

    Strings are cut out and everything but brackets dropped (all in C), then innermost
    pairs are removed one level a pass: a few milliseconds for 4 MiB, where walking the
    parsed value in Python took over a second for a million empty lists.
    """
    brackets = _STRING_RE.sub(b"", raw).translate(None, _NOT_BRACKETS)
    brackets = brackets.replace(b"{", b"[").replace(b"}", b"]")
    depth = 0
    while brackets and depth <= max_depth:
        inner = brackets.replace(b"[]", b"")
        if inner == brackets:
            break  # unbalanced: the parser will say what is wrong
        brackets = inner
        depth += 1
    return depth


def _too_deep(what: str, max_depth: int) -> LimitExceeded:
    return LimitExceeded(f"{what} nests deeper than the limit of {max_depth} levels", max_depth)
