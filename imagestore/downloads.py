"""The one way an archive download is answered over HTTP (REST, Docker API, pages):
streamed from the store as it is written, with its exact length known up front."""

from __future__ import annotations

from django.http import StreamingHttpResponse

from .metrics import counted
from .services.save import archive_stream, plan_save, record_save


def archive_response(names: list[str], filename: str | None = None) -> StreamingHttpResponse:
    plan = plan_save(names)
    record_save(names)  # docker save's event: the download is answered from here on
    response = StreamingHttpResponse(counted("save", archive_stream(plan)), content_type="application/x-tar")
    response["Content-Length"] = str(plan.size())
    if filename:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
