"""What is inside an image: files (merged or per layer), one file's bytes, a layer's changes,
the efficiency of the layering. Thin: parse the query, call ``services.files``, shape it."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ..errors import NotFound
from ..models import Image
from ..services import files as file_service
from ..services import images as image_service
from .views import REF_PARAMETER


class FileEntrySerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField()
    type = serializers.ChoiceField(choices=["file", "dir", "symlink", "hardlink", "char", "block", "fifo",
                                            "whiteout"])
    size = serializers.IntegerField()
    mode = serializers.CharField(help_text="permission bits as octal text, e.g. 0644")
    uid = serializers.IntegerField()
    gid = serializers.IntegerField()
    mtime = serializers.CharField()
    link = serializers.CharField(help_text="a link's target, else empty")
    layer = serializers.IntegerField(help_text="position of the layer that last wrote it")
    digest = serializers.CharField(allow_null=True, help_text="sha256 of a regular file's content")


class FilesQuerySerializer(serializers.Serializer):
    path = serializers.CharField(required=False, default="/", max_length=4096)
    layer = serializers.IntegerField(required=False, min_value=0, max_value=1000)
    glob = serializers.CharField(required=False, max_length=file_service.MAX_GLOB)


class ContentQuerySerializer(serializers.Serializer):
    path = serializers.CharField(max_length=4096)
    layer = serializers.IntegerField(required=False, min_value=0, max_value=1000)


class LayerChangesSerializer(serializers.Serializer):
    layer = serializers.IntegerField()
    diff_id = serializers.CharField()
    added = FileEntrySerializer(many=True)
    modified = FileEntrySerializer(many=True)
    removed = FileEntrySerializer(many=True)


class OffenderSerializer(serializers.Serializer):
    path = serializers.CharField()
    count = serializers.IntegerField(help_text="layers whose tree holds the path (dive's Count)")
    total_size = serializers.IntegerField(help_text="every size seen, summed (dive's Total Space)")
    wasted = serializers.IntegerField(help_text="what removing the duplicates would save")
    removed = serializers.BooleanField(help_text="gone from the final image")


class EfficiencySerializer(serializers.Serializer):
    score = serializers.FloatField()
    wasted_bytes = serializers.IntegerField()
    image_size = serializers.IntegerField()
    offenders = OffenderSerializer(many=True)
    offender_count = serializers.IntegerField()


_LAYER = OpenApiParameter("layer", OpenApiTypes.INT, description="one layer's own view (0 is the base layer)")


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


class ImageFilesViewSet(viewsets.GenericViewSet):
    serializer_class = FileEntrySerializer
    queryset = Image.objects.none()  # for the schema: every action names its image by {ref}

    @extend_schema(
        parameters=[REF_PARAMETER, OpenApiParameter("path", OpenApiTypes.STR, description="a directory, e.g. /etc"),
                    _LAYER, OpenApiParameter("glob", OpenApiTypes.STR,
                                             description="search the whole image instead, e.g. **/*.so*")],
        responses=FileEntrySerializer(many=True),
    )
    def list(self, request: Request, ref: str) -> Response:
        """One directory's entries (whiteouts applied), or every path a glob matches."""
        query = _query(FilesQuerySerializer, request)
        image = image_service.resolve_image(ref)
        rows = file_service.list_files(image, query.get("path"), layer=query.get("layer"), glob=query.get("glob"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(FileEntrySerializer(page, many=True).data)

    @extend_schema(
        parameters=[REF_PARAMETER, OpenApiParameter("path", OpenApiTypes.STR, required=True), _LAYER],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   (200, "application/x-tar"): OpenApiTypes.BINARY},
    )
    def content(self, request: Request, ref: str) -> HttpResponse | StreamingHttpResponse:
        """A file's bytes, streamed from its layer (ETag: its sha256), or a directory as a tar."""
        query = _query(ContentQuerySerializer, request)
        image = image_service.resolve_image(ref)
        found = file_service.read_content(image, query["path"], layer=query.get("layer"))
        name = found.path.rsplit("/", 1)[-1] or "root"
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100]
        if found.is_directory:
            archive = StreamingHttpResponse(found.chunks, content_type="application/x-tar")
            archive["Content-Disposition"] = f'attachment; filename="{safe}.tar"'
            return archive
        etag = f'"{found.entry.digest}"'
        response: HttpResponse | StreamingHttpResponse
        if request.headers.get("If-None-Match") == etag:
            found.chunks.close()  # type: ignore[attr-defined]
            response = HttpResponse(status=304)
        else:
            response = StreamingHttpResponse(found.chunks, content_type="application/octet-stream")
            response["Content-Length"] = str(found.size)
            response["Content-Disposition"] = f'attachment; filename="{safe}"'
        response["ETag"] = etag
        return response

    @extend_schema(parameters=[REF_PARAMETER, OpenApiParameter("n", OpenApiTypes.INT, OpenApiParameter.PATH)],
                   responses=LayerChangesSerializer)
    def changes(self, request: Request, ref: str, n: str) -> Response:
        """What layer ``n`` (0 is the base) adds, modifies and removes."""
        image = image_service.resolve_image(ref)
        if not n.isdigit() or len(n) > 4:
            raise NotFound(f"no layer {n!r}: layers are numbered from 0")
        return Response(file_service.layer_changes(image, int(n)))

    @extend_schema(parameters=[REF_PARAMETER], responses=EfficiencySerializer)
    def efficiency(self, request: Request, ref: str) -> Response:
        """Space wasted by files later layers overwrite or remove, and dive's efficiency score."""
        image = image_service.resolve_image(ref)
        return Response(file_service.efficiency(image))
