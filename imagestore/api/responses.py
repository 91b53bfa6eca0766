"""Shapes of answers that are not models, for the OpenAPI document only (the views answer what
the services return; these say what that is, so clients and schemathesis can rely on it)."""

from __future__ import annotations

from rest_framework import serializers


class RemovalRecordSerializer(serializers.Serializer):
    """One of Docker's ``docker rmi`` records: exactly one of the two keys."""

    Untagged = serializers.CharField(required=False)
    Deleted = serializers.CharField(required=False)


class RemoveResultSerializer(serializers.Serializer):
    """One name of a ``docker rmi A B C``: its records, or why it was not removed."""

    name = serializers.CharField()
    records = RemovalRecordSerializer(many=True, required=False)
    error = serializers.CharField(required=False)
    status = serializers.IntegerField(required=False)


class HistoryRowSerializer(serializers.Serializer):
    """The Engine API's ImageHistoryResponseItem, plus the layer's diff_id."""

    Id = serializers.CharField()
    Created = serializers.IntegerField()
    CreatedBy = serializers.CharField(allow_blank=True)
    Tags = serializers.ListField(child=serializers.CharField(), allow_null=True)
    Size = serializers.IntegerField()
    Comment = serializers.CharField(allow_blank=True)
    Layer = serializers.CharField(allow_null=True)


class ChangeSerializer(serializers.Serializer):
    """``docker diff``: Kind 0 changed, 1 added, 2 deleted."""

    Path = serializers.CharField()
    Kind = serializers.IntegerField()


class SearchResultSerializer(serializers.Serializer):
    """Docker Hub's search result."""

    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    star_count = serializers.IntegerField()
    is_official = serializers.BooleanField()
    is_automated = serializers.BooleanField()


class IndexSearchSerializer(serializers.Serializer):
    """Docker Hub's ``/v1/search`` answer."""

    num_results = serializers.IntegerField()
    query = serializers.CharField(allow_blank=True)
    page = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    page_size = serializers.IntegerField()
    results = SearchResultSerializer(many=True)
