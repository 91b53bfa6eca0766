"""Operators' housekeeping over REST: GC and fsck as jobs, and the runs they recorded."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import HousekeepingRun
from ..services.fsck import start_fsck
from ..services.gc import start_collect_garbage
from .permissions import IsOperator
from .serializers import JobSerializer

# A week at most: a longer grace is a typo, not a policy.
MAX_GRACE = 7 * 86400


class GcRequestSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False)
    grace_seconds = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0,
                                             max_value=MAX_GRACE)


class FsckRequestSerializer(serializers.Serializer):
    repair = serializers.BooleanField(required=False, default=False)
    grace_seconds = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0,
                                             max_value=MAX_GRACE)


class HousekeepingRunSerializer(serializers.ModelSerializer):
    freed_count = serializers.IntegerField(read_only=True)
    freed_bytes = serializers.IntegerField(read_only=True)

    class Meta:
        model = HousekeepingRun
        fields = [
            "id", "what", "trigger", "dry_run", "repair", "grace_seconds", "started_at", "finished_at", "freed",
            "freed_count", "freed_bytes", "removed", "findings", "broken", "errors", "job",
        ]
        read_only_fields = fields


def _data(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class GcView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=GcRequestSerializer, responses={202: JobSerializer})
    def post(self, request: Request) -> Response:
        """``manage.py collect_garbage`` as a job: the result says what was freed per folder."""
        data = _data(GcRequestSerializer, request)
        job = start_collect_garbage(dry_run=data["dry_run"], grace_seconds=data["grace_seconds"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class FsckView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=FsckRequestSerializer, responses={202: JobSerializer})
    def post(self, request: Request) -> Response:
        """``manage.py fsck [--repair]`` as a job: the result and the run list what is broken."""
        data = _data(FsckRequestSerializer, request)
        job = start_fsck(repair=data["repair"], grace_seconds=data["grace_seconds"], owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class HousekeepingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The last GC and fsck runs, newest first (``?what=gc`` or ``?what=fsck``)."""

    permission_classes = [IsOperator]
    serializer_class = HousekeepingRunSerializer
    queryset = HousekeepingRun.objects.order_by("-started_at", "-id")
    filterset_fields = ["what"]
