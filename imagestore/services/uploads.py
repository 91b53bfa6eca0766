"""Keeping an uploaded file where every worker can read it, until its job ends."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings


def uploads_dir() -> Path:
    path = Path(settings.IMAGESTORE_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_stream(stream: Any) -> Path:
    """Copy a request body (a tarball, possibly huge) chunk by chunk into the uploads folder."""
    target = uploads_dir() / f"upload-{uuid.uuid4().hex}"
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
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
