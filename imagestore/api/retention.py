"""``/api/v1/retention-policies/``: create, list, change and delete policies; ``preview`` says
exactly what a run would untag, delete and free; ``run`` starts one as a job."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import RetentionPolicy
from ..services import retention
from .permissions import IsOperator
from .serializers import JobSerializer


class RetentionPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = RetentionPolicy
        fields = ["id", "name", "repository", "keep_last", "keep_tags", "untagged_older_than", "unused_for",
                  "keep_label", "schedule", "active", "last_run_at", "created_at"]
        read_only_fields = ["id", "last_run_at", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        merged = {**({f: getattr(self.instance, f) for f in self.Meta.fields if hasattr(self.instance, f)}
                     if self.instance is not None else {}), **attrs}
        retention.validate(merged)
        return attrs


class PreviewSerializer(serializers.Serializer):
    untag = serializers.ListField(child=serializers.CharField())
    delete = serializers.ListField(child=serializers.CharField())
    bytes_freed = serializers.IntegerField()
    kept = serializers.ListField(child=serializers.DictField(), help_text="selected, but docker rmi's rules keep them")


class RetentionPolicyViewSet(viewsets.ModelViewSet):
    serializer_class = RetentionPolicySerializer
    permission_classes = [IsOperator]
    queryset = RetentionPolicy.objects.order_by("name")

    @extend_schema(request=None, responses=PreviewSerializer)
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """What a run would do now: the names untagged, the image ids deleted, the bytes freed."""
        return Response(retention.preview(self.get_object()))

    @extend_schema(request=None, responses={202: JobSerializer, 200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Run the policy now, as a job (its result is what the preview said)."""
        job = retention.start_run(self.get_object(), owner=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
