"""``/api/v1/webhooks/``: operators register receivers of audit events (the secret is write-only)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import Webhook, WebhookDelivery
from ..services import webhooks
from .permissions import IsOperator


class WebhookSerializer(serializers.ModelSerializer):
    secret = serializers.CharField(write_only=True, required=False, max_length=255,
                                   help_text="the HMAC-SHA256 key; never shown again")
    events = serializers.ListField(child=serializers.CharField(max_length=32), required=False,
                                   help_text="actions to send (tag, push, delete, ...); empty: all")

    class Meta:
        model = Webhook
        fields = ["id", "name", "url", "events", "secret", "active", "created_at"]
        read_only_fields = ["id", "created_at"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = ["id", "webhook", "event", "state", "attempts", "last_status", "last_error", "created_at",
                  "delivered_at", "next_attempt_at", "payload"]
        read_only_fields = fields


class WebhookViewSet(viewsets.ModelViewSet):
    serializer_class = WebhookSerializer
    permission_classes = [IsOperator]
    queryset = Webhook.objects.order_by("name", "id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        hook = webhooks.create_webhook(url=data["url"], secret=data.get("secret", ""), events=data.get("events"),
                                       name=data.get("name", ""), active=data.get("active", True),
                                       owner=request.user)
        return Response(self.get_serializer(hook).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        hook = self.get_object()
        body = self.get_serializer(hook, data=request.data, partial=kwargs.get("partial", False))
        body.is_valid(raise_exception=True)
        data = body.validated_data
        hook = webhooks.change_webhook(hook, url=data.get("url"), secret=data.get("secret"),
                                       events=data.get("events"), name=data.get("name"), active=data.get("active"))
        return Response(self.get_serializer(hook).data)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        """The delivery log, newest first: state, attempts, the receiver's last status or error."""
        rows = WebhookDelivery.objects.filter(webhook=self.get_object()).order_by("-created_at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)
