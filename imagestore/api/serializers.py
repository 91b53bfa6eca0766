"""Shapes of what the API reads and writes; no operation logic lives here."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..models import Container, Image, Job, RegistryCredential
from ..oci.redact import redact_text, redact_url
from ..permissions import is_operator


class ImageRowSerializer(serializers.Serializer):
    """One line of ``docker images``."""

    id = serializers.CharField(source="row_image")
    short_id = serializers.SerializerMethodField()
    repository = serializers.SerializerMethodField()
    tag = serializers.SerializerMethodField()
    created = serializers.DateTimeField(source="row_created")
    size = serializers.IntegerField(source="row_size")
    dangling = serializers.SerializerMethodField()
    update_available = serializers.BooleanField(source="row_update", allow_null=True,
                                                 help_text="the registry serves a newer image for this tag; "
                                                           "null: not checked or not from a registry")

    def get_short_id(self, row: dict[str, Any]) -> str:
        return row["row_image"].split(":", 1)[-1][:12]

    def get_repository(self, row: dict[str, Any]) -> str:
        return row["row_repository"] or "<none>"

    def get_tag(self, row: dict[str, Any]) -> str:
        return row["row_tag"] or "<none>"

    def get_dangling(self, row: dict[str, Any]) -> bool:
        return row["row_repository"] is None


class ImageListQuerySerializer(serializers.Serializer):
    reference = serializers.ListField(child=serializers.CharField(max_length=512), required=False)
    dangling = serializers.BooleanField(required=False, allow_null=True, default=None)
    before = serializers.CharField(required=False, max_length=512)
    since = serializers.CharField(required=False, max_length=512)
    # Named as the query parameter (docker's filter is "label"), though Field has a .label too.
    label = serializers.ListField(child=serializers.CharField(max_length=512), required=False)  # type: ignore[assignment]
    not_label = serializers.ListField(child=serializers.CharField(max_length=512), required=False)
    until = serializers.CharField(required=False, max_length=64)
    all = serializers.BooleanField(required=False, default=False)
    update_available = serializers.BooleanField(required=False, allow_null=True, default=None)


class LayerSerializer(serializers.Serializer):
    diff_id = serializers.CharField(source="layer.diff_id")
    digest = serializers.CharField(source="layer.digest")
    media_type = serializers.CharField(source="layer.media_type")
    size = serializers.IntegerField(source="layer.size")
    uncompressed_size = serializers.IntegerField(source="layer.uncompressed_size")


class ImageSerializer(serializers.ModelSerializer):
    short_id = serializers.CharField(read_only=True)
    repo_tags = serializers.SerializerMethodField()
    repo_digests = serializers.SerializerMethodField()
    layers = LayerSerializer(source="image_layers", many=True, read_only=True)
    containers = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "short_id", "repo_tags", "repo_digests", "parent", "created", "author", "comment",
            "architecture", "os", "variant", "size", "labels", "layers", "containers", "last_tag_time",
            "broken", "broken_reason", "update_available", "update_checked_at",
        ]

    def get_repo_tags(self, image: Image) -> list[str]:
        return sorted(f"{t.repository.name}:{t.name}" for t in image.tags.all())

    def get_repo_digests(self, image: Image) -> list[str]:
        return sorted(f"{d.repository.name}@{d.digest}" for d in image.repo_digests.all())

    def get_containers(self, image: Image) -> list[str]:
        return [c.short_id for c in image.containers.all()]


class TagRequestSerializer(serializers.Serializer):
    repository = serializers.CharField(max_length=512)
    tag = serializers.CharField(max_length=128, required=False, allow_blank=True)


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, allow_empty_file=True)
    url = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    repository = serializers.CharField(required=False, allow_blank=True, max_length=512)
    tag = serializers.CharField(required=False, allow_blank=True, max_length=128)
    message = serializers.CharField(required=False, allow_blank=True, max_length=4096)


class NamesRequestSerializer(serializers.Serializer):
    images = serializers.ListField(child=serializers.CharField(max_length=512), min_length=1, max_length=1000)


class RemoveRequestSerializer(NamesRequestSerializer):
    force = serializers.BooleanField(required=False, default=False)
    noprune = serializers.BooleanField(required=False, default=False)


class PruneRequestSerializer(serializers.Serializer):
    """``docker image prune``'s options; ``until``, ``label`` and ``not_label`` (Docker's
    ``label!``) are its filters, read as Docker reads them."""

    all = serializers.BooleanField(required=False, default=False)
    until = serializers.CharField(required=False, max_length=64, help_text="24h, 10m, RFC 3339 or a Unix time")
    label = serializers.ListField(child=serializers.CharField(max_length=512), required=False,  # type: ignore[assignment]
                                  help_text="key or key=value; every one must match")
    not_label = serializers.ListField(child=serializers.CharField(max_length=512), required=False,
                                      help_text="key or key=value (Docker's label!=)")


class LoadRequestSerializer(serializers.Serializer):
    file = serializers.FileField()


class PullRequestSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=512)
    platform = serializers.CharField(max_length=64, required=False, allow_blank=True)


class PushRequestSerializer(serializers.Serializer):
    all_tags = serializers.BooleanField(required=False, default=False)


class SearchQuerySerializer(serializers.Serializer):
    term = serializers.CharField(max_length=256)
    registry = serializers.CharField(max_length=255, required=False, allow_blank=True)
    limit = serializers.IntegerField(required=False, default=25, min_value=1, max_value=100)
    stars = serializers.IntegerField(required=False, default=0, min_value=0)
    is_official = serializers.BooleanField(required=False, allow_null=True, default=None)
    is_automated = serializers.BooleanField(required=False, allow_null=True, default=None)
    no_trunc = serializers.BooleanField(required=False, default=False)


class RegistryCredentialSerializer(serializers.ModelSerializer):
    """A login; the password goes in and never comes out."""

    password = serializers.CharField(write_only=True, max_length=4096, style={"input_type": "password"})

    class Meta:
        model = RegistryCredential
        fields = ["id", "registry", "username", "password", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class ContainerSerializer(serializers.ModelSerializer):
    short_id = serializers.CharField(read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)
    image_name = serializers.SerializerMethodField()
    command = serializers.SerializerMethodField()

    class Meta:
        model = Container
        fields = ["id", "short_id", "name", "image", "image_name", "command", "state", "exit_code", "created",
                  "started_at", "finished_at", "error", "config"]
        read_only_fields = fields

    def get_image_name(self, container: Container) -> str:
        return str(container.config.get("Image") or container.image_id)

    def to_representation(self, instance: Container) -> dict[str, Any]:
        """Environment values (passwords, API keys) are for operators: anyone else sees the
        names with ``***`` for values (``config.Env: ["DB_PASSWORD=***"]``)."""
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not is_operator(getattr(request, "user", None)) and isinstance(data.get("config"), dict):
            config = dict(data["config"])
            if config.get("Env"):
                config["Env"] = [f"{str(item).split('=', 1)[0]}=***" for item in config["Env"]]
            data["config"] = config
        return data

    def get_command(self, container: Container) -> str:
        return " ".join([*(container.config.get("Entrypoint") or []), *(container.config.get("Cmd") or [])])


class ContainerListQuerySerializer(serializers.Serializer):
    """``docker ps`` filters (CharField refuses a NUL, which PostgreSQL cannot compare)."""

    status = serializers.CharField(required=False, allow_blank=True, max_length=64)
    ancestor = serializers.CharField(required=False, allow_blank=True, max_length=512)
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


class IndexSearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=256, default="")
    n = serializers.IntegerField(required=False, allow_null=True, default=None)


class ContainerCreateSerializer(serializers.Serializer):
    image = serializers.CharField(max_length=512)
    cmd = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, default=None)
    entrypoint = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, default=None)
    env = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    working_dir = serializers.CharField(required=False, allow_blank=True, default="")
    user = serializers.CharField(required=False, allow_blank=True, default="")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    network = serializers.ChoiceField(choices=["bridge", "none", "host"], required=False, allow_blank=True,
                                      default="", help_text="bridge (default): own namespace, outbound only; "
                                      "none: loopback only; host: the host's network")
    memory = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0,
                                      max_value=(1 << 62) - 1, help_text="bytes, as docker run -m (0: no limit)")
    nano_cpus = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0,
                                         max_value=(1 << 62) - 1, help_text="1e9 per CPU, as docker run --cpus")
    pids_limit = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=-1,
                                          max_value=(1 << 62) - 1,
                                          help_text="processes, as docker run --pids-limit (default "
                                          "CONTAINER_PIDS_LIMIT; 0 or -1: no limit)")


class CommitRequestSerializer(serializers.Serializer):
    repository = serializers.CharField(required=False, allow_blank=True, max_length=512)
    tag = serializers.CharField(required=False, allow_blank=True, max_length=128)
    author = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(required=False, allow_blank=True, default="", max_length=4096)
    pause = serializers.BooleanField(required=False, default=True)
    changes = serializers.ListField(child=serializers.CharField(max_length=4096), required=False, default=list)


class JobSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    params = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id", "kind", "state", "params", "progress", "log", "error", "result", "owner", "worker",
            "cancel_requested", "created_at", "started_at", "finished_at", "heartbeat_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Job) -> dict[str, Any]:
        """Log lines and errors as anyone may read them: a URL's credentials, wherever a
        service or a library put one in a message, are ``***``."""
        data = super().to_representation(instance)
        data["log"] = [redact_text(str(line)) for line in data.get("log") or []]
        if data.get("error"):
            data["error"] = redact_text(str(data["error"]))
        return data

    def get_params(self, job: Job) -> dict[str, Any]:
        """What the job was asked, without server paths or credentials."""
        shown = {k: v for k, v in job.params.items() if k != "upload_path"}
        if "url" in shown and shown["url"]:
            shown["url"] = redact_url(shown["url"])
        if "upload_path" in job.params:
            shown["source"] = "upload"
        return shown
