"""Credentials never reach a log line: Django's log records and gunicorn's access log.

Import URLs (``docker import http://user:pw@host/x.tar`` arrives as ``?fromSrc=...``),
presigned URLs and tokens in query strings are redacted with the one helper,
``imagestore.oci.redact.redact_text``.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from imagestore.oci.redact import redact_text


class RedactSecrets(logging.Filter):
    """A handler filter: the record's formatted message, redacted (Django's request logs name
    the path and query; a service error can name a URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's own problem to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingGunicornLogger(GunicornLogger):
    """gunicorn's access log with the request line, query and referer redacted
    (``--logger-class dashboard.logfilters.RedactingGunicornLogger``)."""

    _REDACTED_ATOMS = ("r", "q", "f", "U")

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in self._REDACTED_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact_text(atoms[name])
        return atoms
