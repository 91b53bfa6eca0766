"""What is inside an image: files (merged or per layer), one file's bytes, a layer's changes,
the efficiency of the layering. Thin: parse the query, call ``services.files``, shape it."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..errors import NotFound
from ..models import Image
from ..services import diff as diff_service
from ..services import files as file_service
from ..services import images as image_service
from ..services import packages as package_service
from ..services import updates as update_service
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
            raise NotFound(gettext("no layer %(n)s: layers are numbered from 0") % {"n": n[:8]})
        return Response(file_service.layer_changes(image, int(n)))

    @extend_schema(parameters=[REF_PARAMETER], responses=EfficiencySerializer)
    def efficiency(self, request: Request, ref: str) -> Response:
        """Space wasted by files later layers overwrite or remove, and dive's efficiency score."""
        image = image_service.resolve_image(ref)
        return Response(file_service.efficiency(image))


class PackageSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="deb, apk, rpm, python or npm")
    name = serializers.CharField()
    version = serializers.CharField()
    arch = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the source package, not Field.source
    license = serializers.CharField()
    purl = serializers.CharField()
    layer = serializers.IntegerField(help_text="position of the layer that installed it")
    path = serializers.SerializerMethodField()

    def get_path(self, row: Any) -> str:
        return "/" + row.path


class StorePackageSerializer(PackageSerializer):
    image = serializers.CharField(source="image_id")
    short_id = serializers.SerializerMethodField()
    repo_tags = serializers.SerializerMethodField()

    def get_short_id(self, row: Any) -> str:
        return str(row.image_id).split(":", 1)[-1][:12]

    def get_repo_tags(self, row: Any) -> list[str]:
        return sorted(f"{t.repository.name}:{t.name}" for t in row.image.tags.all())


class PackagesQuerySerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=255)
    version = serializers.CharField(required=False, max_length=255)
    kind = serializers.ChoiceField(required=False, choices=["deb", "apk", "rpm", "python", "npm"])


class SbomQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(package_service.SBOM_FORMATS), default="spdx-json")


class ImagePackagesViewSet(viewsets.GenericViewSet):
    serializer_class = PackageSerializer
    queryset = Image.objects.none()

    @extend_schema(parameters=[REF_PARAMETER, PackagesQuerySerializer], responses=PackageSerializer(many=True))
    def list(self, request: Request, ref: str) -> Response:
        """The packages an image holds (``name`` here matches part of the name)."""
        query = _query(PackagesQuerySerializer, request)
        rows = package_service.image_packages(image_service.resolve_image(ref))
        if query.get("name"):
            rows = rows.filter(name__icontains=query["name"])
        if query.get("version"):
            rows = rows.filter(version=query["version"])
        if query.get("kind"):
            rows = rows.filter(kind=query["kind"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(PackageSerializer(page, many=True).data)

    @extend_schema(parameters=[REF_PARAMETER, SbomQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def sbom(self, request: Request, ref: str) -> Response:
        """The image's SBOM: SPDX 2.3 JSON (``spdx-json``) or CycloneDX 1.5 JSON (``cyclonedx-json``)."""
        query = _query(SbomQuerySerializer, request)
        image = image_service.resolve_image(ref)
        document = package_service.sbom(image, query["format"])
        response = Response(document)
        suffix = "spdx.json" if query["format"] == "spdx-json" else "cdx.json"
        response["Content-Disposition"] = f'attachment; filename="{image.short_id}.{suffix}"'
        return response


class StorePackagesViewSet(viewsets.GenericViewSet):
    serializer_class = StorePackageSerializer
    queryset = Image.objects.none()

    @extend_schema(parameters=[PackagesQuerySerializer], responses=StorePackageSerializer(many=True))
    def list(self, request: Request) -> Response:
        """Every image holding a package: ``?name=openssl&version=1.0.1e`` (exact)."""
        query = _query(PackagesQuerySerializer, request)
        rows = package_service.search_packages(query.get("name", ""), query.get("version", ""),
                                               query.get("kind", "")).prefetch_related("image__tags__repository")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(StorePackageSerializer(page, many=True).data)


class DiffQuerySerializer(serializers.Serializer):
    # "from" is a Python keyword: the field is declared below under its query name.
    to = serializers.CharField(max_length=512, help_text="the newer image (any reference)")


DiffQuerySerializer._declared_fields["from"] = serializers.CharField(  # type: ignore[attr-defined]
    max_length=512, help_text="the older image (any reference)")


class ImageDiffView(APIView):
    @extend_schema(parameters=[DiffQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        """Files, packages, config and layers that differ between two images."""
        query = _query(DiffQuerySerializer, request)
        old = image_service.resolve_image(query["from"])
        new = image_service.resolve_image(query["to"])
        return Response(diff_service.diff_images(old, new))


class UpdateCheckSerializer(serializers.Serializer):
    image = serializers.CharField()
    update_available = serializers.BooleanField(allow_null=True)
    update_checked_at = serializers.DateTimeField(allow_null=True)
    tags = serializers.ListField(child=serializers.DictField())


class ImageUpdateCheckView(APIView):
    @extend_schema(parameters=[REF_PARAMETER], request=None, responses={200: UpdateCheckSerializer})
    def post(self, request: Request, ref: str) -> Response:
        """Ask the registry now whether each tag of the image still names it (a manifest HEAD)."""
        image = image_service.resolve_image(ref)
        return Response(update_service.check_image(image, owner=request.user))
