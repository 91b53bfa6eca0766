"""Keeping an uploaded file where every worker can read it, until its job ends."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from ..errors import TooLarge


def uploads_dir() -> Path:
    path = Path(settings.IMAGESTORE_ROOT) / "uploads"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def keep_stream(stream: Any, limit: int | None = None) -> Path:
    """Copy a request body (a tarball, possibly huge) chunk by chunk into the uploads folder,
    stopping with TooLarge (413) past ``limit`` (IMAGESTORE_MAX_UPLOAD_SIZE): a chunked body
    declares no length up front."""
    limit = settings.IMAGESTORE_MAX_UPLOAD_SIZE if limit is None else limit
    target = uploads_dir() / f"upload-{uuid.uuid4().hex}"
    written = 0
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(gettext("the upload is larger than IMAGESTORE_MAX_UPLOAD_SIZE (%(limit)s bytes)")
                                   % {"limit": limit})
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def keep_upload(uploaded: Any) -> Path:
    """Move (or stream) an uploaded file into the data folder; returns its new path.

    Large uploads are already on disk in the uploads folder (FILE_UPLOAD_TEMP_DIR),
    so this is a rename; small ones are written out chunk by chunk.
    """
    target = uploads_dir() / f"upload-{uuid.uuid4().hex}"
    temporary = getattr(uploaded, "temporary_file_path", None)
    if temporary is not None:
        source = temporary()
        try:
            os.replace(source, target)
            # Django closes (and would delete) the temp file at the end of the request.
            return target
        except OSError:
            pass  # another filesystem: fall back to copying
    with open(target, "wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return target
