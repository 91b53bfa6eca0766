"""Keeping credentials out of every message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://user:***@host/x``; query strings are dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if user else f"***@{hostport}"
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# Query parameters whose values are secrets wherever they appear (presigned URLs, tokens).
_SECRET_PARAMS = (
    r"password|passwd|pass|pwd|secret|token|access_token|refresh_token|id_token|api_key|apikey|key|"
    r"signature|sig|auth|authorization|credential|credentials|"
    r"x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
)
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^\s:/@?#]*):[^\s/@?#]*@", re.I)
_USERINFO_ENCODED = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*%3A%2F%2F)(?P<user>(?:(?!%3A|%40|%2F)[^\s&/@?#])*)%3A"
    r"(?:(?!%40|%2F)[^\s&/@?#])*%40",
    re.I,
)
_SECRET_QUERY = re.compile(rf"(?P<lead>[?&;](?:{_SECRET_PARAMS})=)[^&\s\"'#]*", re.I)
_SECRET_QUERY_ENCODED = re.compile(rf"(?P<lead>(?:%3F|%26)(?:{_SECRET_PARAMS})%3D)(?:(?!%26)[^&\s\"'#])*", re.I)


def redact_text(text: str) -> str:
    """Every URL credential in free text (log lines, request lines) replaced by ``***``:
    ``user:password@`` userinfo and secret query parameters, plain or percent-encoded
    (``?fromSrc=http%3A%2F%2Fuser%3Apw%40host`` as a client sends it)."""
    if "@" in text or "%40" in text.upper():
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
        text = _USERINFO_ENCODED.sub(lambda m: f"{m['scheme']}{m['user']}%3A***%40", text)
    if "=" in text or "%3D" in text.upper():
        text = _SECRET_QUERY.sub(lambda m: f"{m['lead']}***", text)
        text = _SECRET_QUERY_ENCODED.sub(lambda m: f"{m['lead']}***", text)
    return text
