"""Persistence and the invariants the database itself keeps.

Identities are computed from bytes (image id = config digest, layer = diff_id),
never invented. PROTECT marks every link whose deletion would orphan something:
removing images goes through ``services.remove``, which knows Docker's rules.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .oci.reference import DEFAULT_DOMAIN, Reference

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"


class Repository(models.Model):
    registry = models.CharField(max_length=255, help_text="Registry host[:port], e.g. docker.io")
    path = models.CharField(max_length=255, help_text="Repository path, e.g. library/centos")
    name = models.CharField(max_length=255, unique=True, help_text="Familiar name, e.g. centos")
    description = models.TextField(blank=True, default="")
    star_count = models.PositiveIntegerField(default=0)
    is_official = models.BooleanField(default=False)
    is_automated = models.BooleanField(default=False)
    public = models.BooleanField(default=False, help_text="anyone, signed in or not, may pull it through /v2/")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "repositories"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["registry", "path"], name="repository_unique_registry_path"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        # The familiar name is derived, never typed: keep it in step with registry/path.
        self.name = self.familiar_name_of(self.registry, self.path)
        super().save(*args, **kwargs)

    @property
    def reference(self) -> Reference:
        return Reference(self.registry, self.path)

    @property
    def full_name(self) -> str:
        return f"{self.registry}/{self.path}"

    @classmethod
    def familiar_name_of(cls, registry: str, path: str) -> str:
        return Reference(registry, path).familiar_name


class Layer(models.Model):
    diff_id = models.CharField(max_length=71, unique=True, help_text="sha256 of the uncompressed tar")
    digest = models.CharField(max_length=71, db_index=True, help_text="sha256 of the stored (compressed) blob")
    media_type = models.CharField(max_length=255)
    size = models.BigIntegerField(help_text="compressed bytes")
    uncompressed_size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(diff_id__regex=DIGEST_PATTERN), name="layer_diff_id_format"),
            models.CheckConstraint(condition=Q(digest__regex=DIGEST_PATTERN), name="layer_digest_format"),
            models.CheckConstraint(condition=Q(size__gte=0) & Q(uncompressed_size__gte=0), name="layer_sizes_positive"),
        ]

    def __str__(self) -> str:
        return self.diff_id


class Image(models.Model):
    id = models.CharField(primary_key=True, max_length=71, help_text="sha256 of the config JSON")
    config_size = models.BigIntegerField()
    created = models.DateTimeField(null=True, blank=True, db_index=True)
    author = models.CharField(max_length=255, blank=True, default="")
    comment = models.TextField(blank=True, default="")
    architecture = models.CharField(max_length=32, blank=True, default="")
    os = models.CharField(max_length=32, blank=True, default="")
    variant = models.CharField(max_length=32, blank=True, default="")
    docker_version = models.CharField(max_length=64, blank=True, default="")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    size = models.BigIntegerField(default=0, help_text="uncompressed bytes of all layers")
    labels = models.JSONField(default=dict, blank=True)
    layers = models.ManyToManyField(Layer, through="ImageLayer", related_name="images")
    added_at = models.DateTimeField(auto_now_add=True)
    last_tag_time = models.DateTimeField(null=True, blank=True)
    # Every pull of it (docker pull that found it, a registry client fetching it): what
    # retention's "unused for" reads.
    last_pulled_at = models.DateTimeField(null=True, blank=True)
    # Set by ``manage.py fsck --repair`` when a blob the image needs is missing or corrupt.
    broken = models.BooleanField(default=False, db_index=True)
    broken_reason = models.TextField(blank=True, default="")
    # When the packages inside were read from its layers' indexes (services.packages); null: not yet.
    packages_scanned_at = models.DateTimeField(null=True, blank=True)
    # The registry's digest for its tag differs from the stored one (services.updates); null: unknown.
    update_available = models.BooleanField(null=True, blank=True, db_index=True)
    update_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(id__regex=DIGEST_PATTERN), name="image_id_format"),
        ]

    def __str__(self) -> str:
        return self.short_id

    def get_absolute_url(self) -> str:
        return f"/images/{self.id}/"  # the dashboard page, linked from the admin

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]

    @property
    def hex(self) -> str:
        return self.id.split(":", 1)[-1]


class ImageLayer(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="image_layers")
    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, related_name="image_layers")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["image", "position"]
        constraints = [
            models.UniqueConstraint(fields=["image", "position"], name="imagelayer_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} layer {self.position}"


class ImagePackage(models.Model):
    """A package an image holds, read from a package database in its layers (dpkg, apk, rpm,
    Python, Node): what ``GET /api/v1/packages/?name=&version=`` searches across the store."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="packages")
    kind = models.CharField(max_length=16, help_text="deb, apk, rpm, python or npm")
    name = models.CharField(max_length=255)
    version = models.CharField(max_length=255, blank=True, default="")
    arch = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=255, blank=True, default="")
    license = models.TextField(blank=True, default="")
    purl = models.TextField(blank=True, default="")
    layer = models.PositiveIntegerField(default=0, help_text="position of the layer that installed it")
    path = models.TextField(blank=True, default="", help_text="the database it was read from")

    class Meta:
        ordering = ["image", "kind", "name", "arch"]
        indexes = [models.Index(fields=["name", "version"], name="imagepackage_name_version")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["deb", "apk", "rpm", "python", "npm"]),
                                   name="imagepackage_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class Tag(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="tags")
    name = models.CharField(max_length=128)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="tags")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repository__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="tag_unique_per_repository"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}:{self.name}"


class RepoDigest(models.Model):
    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="repo_digests")
    digest = models.CharField(max_length=71, help_text="registry manifest digest")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="repo_digests")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One index digest can name several images (one per platform), as in Docker.
            models.UniqueConstraint(fields=["repository", "digest", "image"], name="repodigest_unique"),
            models.CheckConstraint(condition=Q(digest__regex=DIGEST_PATTERN), name="repodigest_digest_format"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}@{self.digest}"


class Manifest(models.Model):
    """A manifest as this store serves it at ``/v2/``: pushed here, or kept from a pull. Its bytes
    are the blob of its digest, so a client gets exactly what was pushed (digests identical end
    to end). An image manifest names its Image; an index or an artifact names none and lists the
    blobs it needs in ``blobs`` (GC keeps them)."""

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="manifests")
    digest = models.CharField(max_length=71)
    media_type = models.CharField(max_length=255)
    size = models.BigIntegerField()
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.CASCADE, related_name="manifests")
    subject = models.CharField(max_length=71, blank=True, default="", db_index=True,
                               help_text="the manifest this one refers to (the referrers API)")
    artifact_type = models.CharField(max_length=255, blank=True, default="")
    blobs = models.JSONField(default=list, blank=True, help_text="digests an index or artifact needs")
    annotations = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="manifest_unique_per_repository"),
            models.CheckConstraint(condition=Q(digest__regex=DIGEST_PATTERN), name="manifest_digest_format"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}@{self.digest}"


class ManifestTag(models.Model):
    """A tag naming a manifest that is not one image (an index, an artifact); image tags are Tag."""

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="manifest_tags")
    name = models.CharField(max_length=128)
    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="tags")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["repository__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "name"], name="manifesttag_unique_per_repository"),
        ]

    def __str__(self) -> str:
        return f"{self.repository.name}:{self.name}"


class RepositoryGrant(models.Model):
    """Rights at ``/v2/`` for a user or group that is not an operator (operators may do all):
    on one repository name (``team/app``) or on a namespace (``team/*``)."""

    path = models.CharField(max_length=255, help_text="team/app, or team/* for every repository under team/")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="repository_grants")
    group = models.ForeignKey("auth.Group", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="repository_grants")
    can_pull = models.BooleanField(default=True, help_text="may pull (every signed-in user may anyway)")
    can_push = models.BooleanField(default=False)
    can_delete = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(user__isnull=False) | Q(group__isnull=False),
                                   name="repositorygrant_has_grantee"),
        ]

    def __str__(self) -> str:
        who = self.user or self.group
        return f"{self.path} -> {who}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .oci.distribution import NAME_RE

        name = self.path[:-2] if self.path.endswith("/*") else self.path
        if not NAME_RE.match(name):
            raise ValidationError({"path": "a repository name as /v2/ names it (team/app), or a namespace (team/*)"})
        if self.user_id is None and self.group_id is None:
            raise ValidationError("name a user or a group")


class Container(models.Model):
    class State(models.TextChoices):
        CREATED = "created"
        RUNNING = "running"
        PAUSED = "paused"
        RESTARTING = "restarting"
        EXITED = "exited"
        DEAD = "dead"

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=255, unique=True)
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="containers")
    config = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CREATED)
    exit_code = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.CharField(max_length=71, blank=True, default="", help_text="chain id of its read-only root")
    rootfs_mode = models.CharField(max_length=16, default="copy", help_text="overlay (over the snapshot) or copy")
    supervisor_pid = models.IntegerField(null=True, blank=True, help_text="process watching it while it runs")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(id__regex=r"^[a-f0-9]{64}$"), name="container_id_format"),
            models.CheckConstraint(
                condition=Q(state__in=["created", "running", "paused", "restarting", "exited", "dead"]),
                name="container_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def short_id(self) -> str:
        return self.id[:12]


class Job(models.Model):
    class Kind(models.TextChoices):
        IMPORT = "import"
        PULL = "pull"
        PUSH = "push"
        SAVE = "save"
        LOAD = "load"
        COMMIT = "commit"
        GC = "gc"
        FSCK = "fsck"
        RETENTION = "retention"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    progress = models.JSONField(default=dict, blank=True, help_text="item -> {current, total, phase}")
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, default="")
    result = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    worker = models.CharField(max_length=255, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Who asked, from where (services.audit.Actor.origin): the worker acts on their behalf.
    origin = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["queued", "running", "succeeded", "failed", "cancelled"]), name="job_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["import", "pull", "push", "save", "load", "commit", "gc", "fsck", "retention"]),
                name="job_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"

    def get_absolute_url(self) -> str:
        return f"/jobs/{self.id}/"

    @property
    def finished(self) -> bool:
        return self.state in self.FINISHED_STATES


class HousekeepingRun(models.Model):
    """One run of garbage collection or of fsck: what it found, what it freed, what went wrong."""

    class What(models.TextChoices):
        GC = "gc"
        FSCK = "fsck"

    what = models.CharField(max_length=8, choices=What.choices)
    trigger = models.CharField(max_length=16, blank=True, default="", help_text="beat, command, api, admin")
    dry_run = models.BooleanField(default=False)
    repair = models.BooleanField(default=False)
    grace_seconds = models.IntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    freed = models.JSONField(default=dict, blank=True, help_text="folder -> {count, bytes}")
    removed = models.JSONField(default=list, blank=True, help_text="what was (or would be) removed, first entries")
    findings = models.JSONField(default=list, blank=True, help_text="fsck: problems found, first entries")
    broken = models.IntegerField(default=0, help_text="fsck: missing or corrupt things found")
    errors = models.JSONField(default=list, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="housekeeping_runs")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(what__in=["gc", "fsck"]), name="housekeeping_what_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.what} {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def freed_bytes(self) -> int:
        return sum(int(v.get("bytes", 0)) for v in (self.freed or {}).values())

    @property
    def freed_count(self) -> int:
        return sum(int(v.get("count", 0)) for v in (self.freed or {}).values())


__all__ = [
    "DEFAULT_DOMAIN",
    "AuditEvent",
    "Container",
    "HousekeepingRun",
    "Image",
    "ImageLayer",
    "ImagePackage",
    "Job",
    "Layer",
    "Manifest",
    "ManifestTag",
    "RepoDigest",
    "Repository",
    "RepositoryGrant",
    "RetentionPolicy",
    "Tag",
    "Webhook",
    "WebhookDelivery",
]


class RegistryCredential(models.Model):
    """A dashboard user's login to one registry. The secret is stored encrypted
    (imagestore.secrets) and is never shown again once saved."""

    registry = models.CharField(max_length=255, help_text="Registry host[:port], e.g. docker.io")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="registry_credentials")
    username = models.CharField(max_length=255)
    secret_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registry", "owner"]
        constraints = [
            models.UniqueConstraint(fields=["registry", "owner"], name="credential_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.username}@{self.registry}"


class ApiToken(models.Model):
    """An API token (``Authorization: Token <key>``), stored as the sha256 of its key: the key
    itself is printed once by ``manage.py create_token`` and never stored. A key is 256 random
    bits, so a fast hash is enough (no guessing to slow down); ``prefix`` names it for people."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=255, blank=True, default="")
    prefix = models.CharField(max_length=16, help_text="the key's first characters, to tell tokens apart")
    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the key, hex")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never expires")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.user})"


class AuditEvent(models.Model):
    """One change (or refused attempt) through any door, append-only: written by
    services.audit in the same transaction as the change, never updated, deleted only by
    retention (AUDIT_RETENTION_DAYS)."""

    class Interface(models.TextChoices):
        BROWSER = "browser"
        REST = "rest"
        DOCKER = "docker"
        REGISTRY = "registry"
        ADMIN = "admin"
        COMMAND = "command"
        POLICY = "policy"
        SYSTEM = "system"

    class Outcome(models.TextChoices):
        OK = "ok"
        ERROR = "error"

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    username = models.CharField(max_length=150, blank=True, default="", help_text="kept when the user goes")
    token_name = models.CharField(max_length=255, blank=True, default="")
    policy = models.CharField(max_length=255, blank=True, default="")
    interface = models.CharField(max_length=16, choices=Interface.choices)
    address = models.CharField(max_length=64, blank=True, default="", help_text="the client's address")
    action = models.CharField(max_length=32, db_index=True, help_text="Docker's event vocabulary where it has one")
    object_type = models.CharField(max_length=16, help_text="image, container, registry, user, system")
    object_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    object_names = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OK)
    error = models.TextField(blank=True, default="")
    job_id = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["action", "time"], name="audit_action_time")]
        constraints = [
            models.CheckConstraint(condition=Q(outcome__in=["ok", "error"]), name="audit_outcome_valid"),
            models.CheckConstraint(
                condition=Q(interface__in=["browser", "rest", "docker", "registry", "admin", "command", "policy",
                                           "system"]),
                name="audit_interface_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object_id}"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self._state.adding:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("audit events are removed by retention only (AUDIT_RETENTION_DAYS)")


class Webhook(models.Model):
    """An operator's receiver of audit events: each matching event is POSTed to ``url`` as JSON,
    signed with its secret (``X-Signature-256: sha256=<HMAC-SHA256 of the body>``), which is
    stored encrypted (imagestore.secrets) and never shown again."""

    name = models.CharField(max_length=255, blank=True, default="")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, blank=True, help_text="actions to send (tag, push, ...); empty: all")
    secret_encrypted = models.TextField(editable=False, help_text="the HMAC key, encrypted")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or self.url


class WebhookDelivery(models.Model):
    """One delivery of one event to one webhook: every attempt's outcome, the next try's time."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(AuditEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.IntegerField(null=True, blank=True, help_text="the receiver's last HTTP status")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=["pending", "delivered", "failed"]),
                                   name="webhookdelivery_state_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook} #{self.pk} ({self.state})"


class RetentionPolicy(models.Model):
    """Rules that keep a repository glob from filling the store: keep the ``keep_last`` most
    recent tags and those matching ``keep_tags``, remove untagged images older than
    ``untagged_older_than`` and images unused for ``unused_for`` (durations like ``7d``), never
    an image with the label ``keep_label``; run on ``schedule`` (a duration between runs)."""

    name = models.CharField(max_length=255, unique=True)
    repository = models.CharField(max_length=255, help_text="a glob over repository names, e.g. team/*")
    keep_last = models.PositiveIntegerField(null=True, blank=True, help_text="the N most recent tags are kept")
    keep_tags = models.CharField(max_length=255, blank=True, default="", help_text="a regex; matching tags stay")
    untagged_older_than = models.CharField(max_length=32, blank=True, default="", help_text="e.g. 7d, 12h")
    unused_for = models.CharField(max_length=32, blank=True, default="", help_text="no container, no pull for e.g. 30d")
    keep_label = models.CharField(max_length=255, blank=True, default="", help_text="key or key=value; always kept")
    schedule = models.CharField(max_length=32, blank=True, default="", help_text="how often it runs, e.g. 1d; empty: "
                                                                                "by hand")
    active = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return self.name
