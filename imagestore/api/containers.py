"""Container endpoints: ``docker ps/create/start/stop/kill/wait/logs/diff/cp/rm/commit``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from ..errors import BadRequest
from ..models import Container
from ..querystring import flag, seconds
from ..services import containers as service
from ..services.commit import start_commit
from ..services.images import resolve_image
from ..streams import StreamGuard
from .parsers import BoundedJSONParser
from .responses import ChangeSerializer
from .serializers import (
    CommitRequestSerializer,
    ContainerCreateSerializer,
    ContainerListQuerySerializer,
    ContainerSerializer,
    JobSerializer,
)


class TarParser(BaseParser):
    """A raw tar body (``PUT .../archive/``), left as a stream for the service."""

    media_type = "application/x-tar"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return stream


STOP_TIMEOUT = OpenApiParameter(
    "t", OpenApiTypes.NUMBER, description=f"seconds from SIGTERM to SIGKILL, 0 to {service.STOP_TIMEOUT_MAX} "
    "(default 10)")


def _stop_timeout(request: Request) -> float:
    return seconds(request.query_params, "t", default=10, maximum=service.STOP_TIMEOUT_MAX)


class ContainerViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ContainerSerializer
    parser_classes = [BoundedJSONParser, TarParser]

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            # drf-spectacular only wants the model: no reconciling (nor a database) to write the schema.
            return Container.objects.none()
        query = ContainerListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        service.reconcile_all()
        qs = Container.objects.all().order_by("-created_at")
        if not flag(self.request, "all") and not params.get("status"):
            qs = qs.filter(state__in=service.RUNNING_STATES)
        if params.get("status"):
            qs = qs.filter(state=params["status"])
        if params.get("ancestor"):
            qs = qs.filter(image=resolve_image(params["ancestor"]))
        if params.get("name"):
            qs = qs.filter(name__icontains=params["name"].lstrip("/"))
        return qs

    def get_object(self) -> Container:
        return service.reconcile(service.get_container(self.kwargs["pk"]))

    @extend_schema(parameters=[
        OpenApiParameter("all", OpenApiTypes.BOOL), OpenApiParameter("status", OpenApiTypes.STR),
        OpenApiParameter("ancestor", OpenApiTypes.STR), OpenApiParameter("name", OpenApiTypes.STR),
    ])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """``docker ps [-a]``: running containers, or all with ``all=1``."""
        return super().list(request, *args, **kwargs)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=ContainerCreateSerializer, responses={201: ContainerSerializer})
    def create(self, request: Request) -> Response:
        body = ContainerCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        container = service.create_container(data.pop("image"), **data)
        return Response(self.get_serializer(container).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[OpenApiParameter("force", OpenApiTypes.BOOL)], responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        service.remove_container(self.get_object(), force=flag(request, "force"))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=ContainerSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(service.start_container(self.get_object())).data)

    @extend_schema(request=None, parameters=[STOP_TIMEOUT], responses=ContainerSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        timeout = _stop_timeout(request)
        return Response(self.get_serializer(service.stop_container(self.get_object(), timeout=timeout)).data)

    @extend_schema(request=None, parameters=[STOP_TIMEOUT], responses=ContainerSerializer)
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        """``docker restart``: stop (TERM, then KILL after ``t`` seconds), then start."""
        timeout = _stop_timeout(request)
        stopped = service.stop_container(self.get_object(), timeout=timeout)
        return Response(self.get_serializer(service.start_container(stopped)).data)

    @extend_schema(request=None, parameters=[OpenApiParameter("signal", OpenApiTypes.STR)],
                   responses=ContainerSerializer)
    @action(detail=True, methods=["post"])
    def kill(self, request: Request, pk: str) -> Response:
        container = service.kill_container(self.get_object(), request.query_params.get("signal", "KILL"))
        return Response(self.get_serializer(container).data)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def wait(self, request: Request, pk: str) -> Response:
        """Blocks until the container has exited; answers ``{"StatusCode": N}``. Ends
        early, answering nobody, when the client has gone."""
        container = service.wait_container(self.get_object(), keep_going=StreamGuard(request).listening)
        return Response({"StatusCode": container.exit_code, "Error": container.error or None})

    @extend_schema(parameters=[OpenApiParameter("follow", OpenApiTypes.BOOL)],
                   responses={(200, "text/plain"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def logs(self, request: Request, pk: str) -> StreamingHttpResponse:
        """The container's output; ``follow=1`` goes on while it runs, until the client
        leaves or nothing new came for ``STREAM_IDLE_TIMEOUT`` seconds."""
        container = self.get_object()
        guard = StreamGuard(request)

        def chunks() -> Iterator[bytes]:
            for chunk in service.container_logs(container, follow=flag(request, "follow"), keep_going=guard.go_on):
                guard.output()
                yield chunk

        return StreamingHttpResponse(chunks(), content_type="text/plain; charset=utf-8")

    @extend_schema(responses={200: ChangeSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str) -> Response:
        """``docker diff``: Kind 0 changed, 1 added, 2 deleted."""
        return Response(service.container_changes(self.get_object()))

    @extend_schema(parameters=[OpenApiParameter("path", OpenApiTypes.STR, required=True)],
                   request={"application/x-tar": OpenApiTypes.BINARY},
                   responses={(200, "application/x-tar"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get", "put"])
    def archive(self, request: Request, pk: str) -> HttpResponse | StreamingHttpResponse:
        """``docker cp``: GET a path as a tar; PUT a tar to extract into a directory."""
        container = self.get_object()
        path = request.query_params.get("path")
        if not path:
            raise BadRequest(gettext("path is required"))
        if request.method == "PUT":
            service.copy_into(container, path, request.stream)  # type: ignore[arg-type]
            return HttpResponse(status=200)
        return StreamingHttpResponse(service.archive_of(container, path), content_type="application/x-tar")

    @extend_schema(request=CommitRequestSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def commit(self, request: Request, pk: str) -> Response:
        """``docker commit``: a job making an image from the container's changes."""
        body = CommitRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = start_commit(self.get_object().id, repository=data.get("repository") or None,
                           tag=data.get("tag") or None, author=data["author"], message=data["message"],
                           pause=data["pause"], changes=data["changes"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
