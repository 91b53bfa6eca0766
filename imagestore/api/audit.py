"""``GET /api/v1/events/``: the audit trail, newest first, with the Audit page's filters."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import AuditEvent
from ..services import audit
from .permissions import IsOperator


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = audit.EXPORT_FIELDS
        read_only_fields = fields


FILTERS = [
    OpenApiParameter("who", OpenApiTypes.STR, description="a username, token name or policy"),
    OpenApiParameter("action", OpenApiTypes.STR, many=True, description="tag, untag, delete, pull, ... (or a,b)"),
    OpenApiParameter("object", OpenApiTypes.STR, description="an image or container id (prefix) or a name"),
    OpenApiParameter("interface", OpenApiTypes.STR, enum=AuditEvent.Interface.values),
    OpenApiParameter("outcome", OpenApiTypes.STR, enum=AuditEvent.Outcome.values),
    OpenApiParameter("since", OpenApiTypes.STR, description="1h, RFC 3339 or a Unix time"),
    OpenApiParameter("until", OpenApiTypes.STR, description="1h, RFC 3339 or a Unix time"),
]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who changed what, through which door, and how it ended (operators only: it names
    client addresses and every user's actions)."""

    serializer_class = AuditEventSerializer
    permission_classes = [IsOperator]
    queryset = AuditEvent.objects.order_by("-time", "-id")

    @extend_schema(parameters=FILTERS)
    def list(self, request: Request) -> Response:
        rows = audit.events(audit.filters_from(request.query_params))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
