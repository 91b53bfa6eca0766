"""REST endpoints: parse the request, call one service, shape the answer."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..downloads import archive_response
from ..errors import NotFound
from ..models import Image, ImageLayer, Job, RegistryCredential
from ..querystring import flag
from ..services import images as image_service
from ..services import jobs as job_service
from ..services.history import image_history
from ..services.import_ import import_target, start_import_from
from ..services.inspect import format_inspect, inspect_image
from ..services.load import start_load_from
from ..services.login import login, logout
from ..services.pull import start_pull
from ..services.push import start_push
from ..services.registries import registry_settings
from ..services.remove import prune_images, prune_options, remove_image, remove_images
from ..services.save import export_path, start_save
from ..services.search import SearchFilters, index_search, search
from ..services.tag import tag_image
from .parsers import BoundedJSONParser
from .responses import (
    HistoryRowSerializer,
    IndexSearchSerializer,
    RemovalRecordSerializer,
    RemoveResultSerializer,
    SearchResultSerializer,
)
from .serializers import (
    ImageListQuerySerializer,
    ImageRowSerializer,
    ImageSerializer,
    ImportRequestSerializer,
    IndexSearchQuerySerializer,
    JobSerializer,
    LoadRequestSerializer,
    NamesRequestSerializer,
    PruneRequestSerializer,
    PullRequestSerializer,
    PushRequestSerializer,
    RegistryCredentialSerializer,
    RemoveRequestSerializer,
    SearchQuerySerializer,
    TagRequestSerializer,
)

REF_PARAMETER = OpenApiParameter(
    "ref", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="name[:tag], name@digest, an image id or a unique id prefix; slashes and ports as they are",
)


class ImageViewSet(viewsets.GenericViewSet):
    serializer_class = ImageSerializer
    lookup_url_kwarg = "ref"
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> Any:
        return Image.objects.prefetch_related(
            "tags__repository",
            "repo_digests__repository",
            "containers",
            Prefetch("image_layers", queryset=ImageLayer.objects.select_related("layer").order_by("position")),
        )

    def _image(self) -> Image:
        found = image_service.resolve_image(self.kwargs["ref"])
        return self.get_queryset().get(pk=found.pk)

    @extend_schema(
        parameters=[
            OpenApiParameter("reference", OpenApiTypes.STR, many=True, description="glob on name or name:tag"),
            OpenApiParameter("dangling", OpenApiTypes.BOOL),
            OpenApiParameter("before", OpenApiTypes.STR),
            OpenApiParameter("since", OpenApiTypes.STR),
            OpenApiParameter("label", OpenApiTypes.STR, many=True, description="key or key=value"),
            OpenApiParameter("not_label", OpenApiTypes.STR, many=True, description="key or key=value: left out"),
            OpenApiParameter("until", OpenApiTypes.STR, description="created at or before: 24h, RFC 3339, Unix time"),
            OpenApiParameter("all", OpenApiTypes.BOOL, description="include intermediate images"),
            OpenApiParameter("update_available", OpenApiTypes.BOOL,
                             description="only images whose registry serves a newer image for their tag"),
        ],
        responses=ImageRowSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        """``docker images``: one row per tag, untagged images as ``<none>``."""
        query = ImageListQuerySerializer(
            data={
                "reference": request.query_params.getlist("reference"),
                "label": request.query_params.getlist("label"),
                "not_label": request.query_params.getlist("not_label"),
                **{
                    key: value
                    for key in ("dangling", "before", "since", "until", "all", "update_available")
                    if (value := request.query_params.get(key)) is not None
                },
            }
        )
        query.is_valid(raise_exception=True)
        rows = image_service.list_image_rows(image_service.ImageFilters(
            reference=query.validated_data.get("reference", []),
            dangling=query.validated_data.get("dangling"),
            before=query.validated_data.get("before"),
            since=query.validated_data.get("since"),
            labels=query.validated_data.get("label", []),
            not_labels=query.validated_data.get("not_label", []),
            until=image_service.until_filter([v for v in [query.validated_data.get("until")] if v]),
            all=query.validated_data.get("all", False),
            update_available=query.validated_data.get("update_available"),
        ))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ImageRowSerializer(page, many=True).data)

    @extend_schema(parameters=[REF_PARAMETER])
    def retrieve(self, request: Request, ref: str) -> Response:
        return Response(ImageSerializer(self._image()).data)

    @extend_schema(
        parameters=[
            REF_PARAMETER,
            OpenApiParameter("force", OpenApiTypes.BOOL),
            OpenApiParameter("noprune", OpenApiTypes.BOOL),
        ],
        responses={200: RemovalRecordSerializer(many=True)},
    )
    def destroy(self, request: Request, ref: str) -> Response:
        """``docker rmi``: the Untagged and Deleted records, as Docker answers."""
        records = remove_image(ref, force=flag(request, "force"), noprune=flag(request, "noprune"))
        return Response(records)

    @extend_schema(
        parameters=[
            REF_PARAMETER,
            OpenApiParameter("format", OpenApiTypes.STR, description="Go template, e.g. {{.Architecture}}"),
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/plain"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"])
    def inspect(self, request: Request, ref: str) -> Response | HttpResponse:
        """``docker image inspect``; with ``format``, the template's output as text."""
        data = inspect_image(image_service.resolve_image(ref))
        template = request.query_params.get("format")
        if template:
            return HttpResponse(format_inspect(data, template) + "\n", content_type="text/plain; charset=utf-8")
        return Response(data)

    @extend_schema(parameters=[REF_PARAMETER], request=TagRequestSerializer, responses={201: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def tag(self, request: Request, ref: str) -> Response:
        """``docker tag``: add repository[:tag] to the image, or move it here."""
        body = TagRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = image_service.resolve_image(ref)
        target = body.validated_data["repository"]
        if body.validated_data.get("tag"):
            target = import_target(target, body.validated_data["tag"]) or target
        tag = tag_image(image, target)
        return Response(
            {"image": image.id, "repository": tag.repository.name, "tag": tag.name,
             "name": f"{tag.repository.name}:{tag.name}"},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer, "application/json": ImportRequestSerializer},
        responses={202: JobSerializer},
    )
    def import_image(self, request: Request, ref: str | None = None) -> Response:
        """``docker import``: a root filesystem tarball (upload or URL) becomes an image; answers the job."""
        body = ImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = start_import_from(
            upload=data.get("file"), url=data.get("url") or None, repository=data.get("repository") or None,
            tag=data.get("tag") or None, message=data.get("message") or "", owner=request.user,
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


    @extend_schema(parameters=[REF_PARAMETER], responses={200: HistoryRowSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request: Request, ref: str) -> Response:
        """``docker history``: newest first; size 0 for empty layers."""
        return Response(image_history(image_service.resolve_image(ref)))

    @extend_schema(parameters=[REF_PARAMETER], responses={(200, "application/x-tar"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def archive(self, request: Request, ref: str) -> StreamingHttpResponse:
        """``docker save NAME``, streamed: the download starts before the archive is complete."""
        return _archive_response([ref])

    @extend_schema(request=NamesRequestSerializer, responses={202: JobSerializer})
    def save(self, request: Request, ref: str | None = None) -> Response:
        """``docker save`` as a job: the archive is written to the data folder; the finished
        job's ``result.download`` is where to fetch it."""
        body = NamesRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = start_save(body.validated_data["images"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request={"multipart/form-data": LoadRequestSerializer}, responses={202: JobSerializer})
    def load(self, request: Request, ref: str | None = None) -> Response:
        """``docker load``: an archive upload (docker save, skopeo, podman) becomes a job."""
        body = LoadRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = start_load_from(body.validated_data["file"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=PruneRequestSerializer, responses={200: OpenApiTypes.OBJECT})
    def prune(self, request: Request, ref: str | None = None) -> Response:
        """``docker image prune [-a]``: ImagesDeleted records and SpaceReclaimed bytes."""
        body = PruneRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        options = prune_options({"dangling": ["false" if data["all"] else "true"],
                                 "until": [data["until"]] if data.get("until") else [],
                                 "label": data.get("label", []), "label!": data.get("not_label", [])})
        return Response(prune_images(**options))

    @extend_schema(request=PullRequestSerializer, responses={202: JobSerializer})
    def pull(self, request: Request, ref: str | None = None) -> Response:
        """``docker pull``: answers the job; its progress is Docker's, per layer."""
        return _pull(request)

    @extend_schema(parameters=[REF_PARAMETER], request=PushRequestSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def push(self, request: Request, ref: str) -> Response:
        """``docker push NAME[:TAG]`` (``all_tags`` for every tag of the repository)."""
        body = PushRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = start_push(ref, body.validated_data["all_tags"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=RemoveRequestSerializer, responses={200: RemoveResultSerializer(many=True)})
    def remove(self, request: Request, ref: str | None = None) -> Response:
        """``docker rmi A B C``: each name's records or error; one failing does not stop the rest."""
        body = RemoveRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return Response(remove_images(data["images"], force=data["force"], noprune=data["noprune"]))


def _archive_response(names: list[str]) -> StreamingHttpResponse:
    stem = "-".join(n.replace("/", "_").replace(":", "_") for n in names)[:100] or "images"
    return archive_response(names, f"{stem}.tar")


def _pull(request: Request) -> Response:
    body = PullRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    job = start_pull(body.validated_data["reference"], body.validated_data.get("platform") or None,
                     owner=request.user)
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class SearchView(APIView):
    @extend_schema(parameters=[SearchQuerySerializer], responses={200: SearchResultSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """``docker search``: Docker Hub (default), another registry, or ``registry=local`` for the store."""
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        results = search(
            data["term"], registry=data.get("registry") or None, limit=data["limit"], no_trunc=data["no_trunc"],
            filters=SearchFilters(data["stars"], data["is_official"], data["is_automated"]), owner=request.user,
        )
        return Response(results)


class IndexSearchView(APIView):
    """Docker Hub's ``GET /v1/search?q=&n=`` over this dashboard's repositories."""

    @extend_schema(parameters=[OpenApiParameter("q", OpenApiTypes.STR), OpenApiParameter("n", OpenApiTypes.INT)],
                   responses={200: IndexSearchSerializer})
    def get(self, request: Request) -> Response:
        query = IndexSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = min(max(query.validated_data["n"] or 25, 1), 100)
        return Response(index_search(query.validated_data["q"].strip(), limit))


class RegistryCredentialViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin,
                                viewsets.GenericViewSet):
    """Your registry logins (``docker login``/``logout``): checked with the registry when saved,
    the password encrypted at rest and never returned."""

    serializer_class = RegistryCredentialSerializer

    def get_queryset(self) -> Any:
        return RegistryCredential.objects.filter(owner_id=self.request.user.pk).order_by("registry")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = RegistryCredentialSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        credential = login(request.user, data["registry"], data["username"], data["password"])
        return Response(RegistryCredentialSerializer(credential).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: RegistryCredential) -> None:
        logout(instance.owner, instance.registry)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"], url_path="settings")
    def site_settings(self, request: Request) -> Response:
        """Mirrors, insecure registries and the search index, as the site configured them."""
        return Response(registry_settings())


class JobFilter(filters.FilterSet):
    class Meta:
        model = Job
        fields = ["state", "kind"]


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = JobSerializer
    queryset = Job.objects.select_related("owner").order_by("-created_at")
    filterset_class = JobFilter

    def get_object(self) -> Job:
        return job_service.get_job(self.kwargs["pk"])

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return Response(JobSerializer(job_service.cancel_job(self.get_object())).data)

    @extend_schema(responses={(200, "application/x-tar"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> FileResponse:
        """The archive a finished save job wrote."""
        job = self.get_object()
        path = export_path(job)
        if path is None:
            raise NotFound(gettext("job %(job_id)s has no archive to download (kind %(kind)s, %(state)s)")
                           % {"job_id": job.id, "kind": job.kind, "state": job.state})
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"images-{job.id}.tar",
                            content_type="application/x-tar")
