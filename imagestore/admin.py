"""Operators' panel. Anything destructive goes through the services, never a raw delete."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse

from .errors import USER_ERRORS, ServiceError
from .models import (
    ApiToken,
    AuditEvent,
    Container,
    HousekeepingRun,
    Image,
    ImageLayer,
    Job,
    Layer,
    RegistryCredential,
    RepoDigest,
    Repository,
    RepositoryGrant,
    RetentionPolicy,
    Tag,
    Webhook,
    WebhookDelivery,
)
from .permissions import is_operator
from .services.fsck import start_fsck
from .services.gc import start_collect_garbage
from .services.jobs import cancel_job, retry_job
from .services.registries import registry_settings
from .services.remove import prune_images, remove_image


class ReadOnlyMixin:
    """Rows made from bytes (digests, sizes) are never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _report(modeladmin: admin.ModelAdmin, request: HttpRequest, names: list[str], *, force: bool) -> None:
    if not is_operator(request.user):
        modeladmin.message_user(request, "Removing images needs staff or the operators group.", messages.ERROR)
        return
    for name in names:
        try:
            records = remove_image(name, force=force)
        except USER_ERRORS as exc:
            modeladmin.message_user(request, f"{name}: {exc}", messages.ERROR)
            continue
        lines = ", ".join(f"{k}: {v}" for record in records for k, v in record.items())
        modeladmin.message_user(request, f"{name}: {lines or 'nothing to do'}", messages.SUCCESS)


class ImageLayerInline(admin.TabularInline):
    model = ImageLayer
    fields = ("position", "layer", "layer_digest", "layer_size")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["position"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="blob digest")
    def layer_digest(self, link: ImageLayer) -> str:
        return link.layer.digest

    @admin.display(description="size")
    def layer_size(self, link: ImageLayer) -> str:
        return filesizeformat(link.layer.uncompressed_size)


@admin.register(Image)
class ImageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["short_id", "tag_list", "created", "human_size", "architecture", "os", "broken"]
    list_filter = ["architecture", "os", "broken"]
    search_fields = ["id", "tags__repository__name", "tags__name", "comment", "author"]
    readonly_fields = [
        "id", "config_size", "created", "author", "comment", "architecture", "os", "variant",
        "docker_version", "parent", "size", "labels", "added_at", "last_tag_time", "last_pulled_at", "broken",
        "broken_reason",
    ]
    inlines = [ImageLayerInline]
    actions = ["remove_images", "force_remove_images"]

    change_list_template = "admin/imagestore/image/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Image]:
        return super().get_queryset(request).prefetch_related("tags__repository")

    def get_urls(self) -> list:  # type: ignore[type-arg]
        return [
            path("prune/", self.admin_site.admin_view(self.prune_view), name="imagestore_image_prune"),
            *super().get_urls(),
        ]

    def prune_view(self, request: HttpRequest) -> HttpResponse:
        """``docker image prune [-a]`` from the changelist's buttons (POST only, CSRF-checked)."""
        changelist = reverse("admin:imagestore_image_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(changelist)
        if not is_operator(request.user):
            self.message_user(request, "Pruning images needs staff or the operators group.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        result = prune_images(all=request.POST.get("all") == "1")
        lines = ", ".join(f"{k}: {v}" for record in result["ImagesDeleted"] for k, v in record.items())
        self.message_user(
            request,
            f"Pruned {lines or 'nothing'}; reclaimed {filesizeformat(result['SpaceReclaimed'])}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(changelist)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.display(description="tags")
    def tag_list(self, image: Image) -> str:
        return ", ".join(sorted(f"{t.repository.name}:{t.name}" for t in image.tags.all())) or "<none>"

    @admin.display(description="size", ordering="size")
    def human_size(self, image: Image) -> str:
        return filesizeformat(image.size)

    @admin.action(description="Remove selected images (docker rmi)")
    def remove_images(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        _report(self, request, list(queryset.values_list("id", flat=True)), force=False)

    @admin.action(description="Force remove selected images (docker rmi -f)")
    def force_remove_images(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        _report(self, request, list(queryset.values_list("id", flat=True)), force=True)


@admin.register(Tag)
class TagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "repository", "name", "image", "updated_at"]
    list_select_related = ["repository", "image"]
    search_fields = ["repository__name", "name", "image__id"]
    readonly_fields = ["repository", "name", "image", "updated_at"]
    actions = ["untag"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.action(description="Untag (docker rmi NAME:TAG)")
    def untag(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        _report(self, request, [str(t) for t in queryset.select_related("repository")], force=False)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["name", "registry", "path", "public", "star_count", "is_official", "is_automated"]
    list_filter = ["registry", "public", "is_official", "is_automated"]
    search_fields = ["name", "description"]
    readonly_fields = ["registry", "path", "name", "created_at"]
    fields = ["registry", "path", "name", "description", "public", "star_count", "is_official", "is_automated",
              "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Layer)
class LayerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["diff_id", "digest", "media_type", "human_size", "human_uncompressed_size", "created_at"]
    search_fields = ["diff_id", "digest"]
    list_filter = ["media_type"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.display(description="size", ordering="size")
    def human_size(self, layer: Layer) -> str:
        return filesizeformat(layer.size)

    @admin.display(description="uncompressed", ordering="uncompressed_size")
    def human_uncompressed_size(self, layer: Layer) -> str:
        return filesizeformat(layer.uncompressed_size)


@admin.register(RepoDigest)
class RepoDigestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["__str__", "image", "created_at"]
    list_select_related = ["repository", "image"]
    search_fields = ["repository__name", "digest", "image__id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(Container)
class ContainerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["short_id", "name", "image", "state", "exit_code", "created_at"]
    list_filter = ["state"]
    list_select_related = ["image"]
    search_fields = ["id", "name", "image__id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(RegistryCredential)
class RegistryCredentialAdmin(admin.ModelAdmin):
    """Logins, without their secrets; the site's registry settings shown above them, read-only.
    New logins are made through the API or UI, which check them with the registry first."""

    list_display = ["registry", "username", "owner", "updated_at"]
    list_filter = ["registry"]
    list_select_related = ["owner"]
    search_fields = ["registry", "username", "owner__username"]
    fields = ("registry", "username", "owner", "created_at", "updated_at")
    readonly_fields = fields
    change_list_template = "admin/imagestore/registrycredential/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "registry_settings": registry_settings()}
        return super().changelist_view(request, extra_context)


@admin.register(Job)
class JobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "state", "owner", "created_at", "finished_at", "error"]
    list_filter = ["kind", "state"]
    list_select_related = ["owner"]
    search_fields = ["id", "error"]
    exclude = ["params"]
    actions = ["cancel_jobs", "retry_jobs"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.action(description="Retry selected failed jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            try:
                new = retry_job(job, owner=request.user)
                self.message_user(request, f"{job.id}: retried as {new.id}", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, f"{job.id}: {exc}", messages.WARNING)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            try:
                cancel_job(job)
                self.message_user(request, f"{job.id}: cancel requested", messages.SUCCESS)
            except ServiceError as exc:
                self.message_user(request, f"{job.id}: {exc}", messages.WARNING)


@admin.register(HousekeepingRun)
class HousekeepingRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """What each GC and fsck run found and freed; buttons above the list start new runs as jobs."""

    list_display = ["started_at", "what", "trigger", "mode", "finished_at", "freed_count", "human_freed", "broken",
                    "error_count"]
    list_filter = ["what", "trigger", "dry_run", "repair"]
    readonly_fields = ["what", "trigger", "dry_run", "repair", "grace_seconds", "started_at", "finished_at", "freed",
                       "removed", "findings", "broken", "errors", "job"]
    change_list_template = "admin/imagestore/housekeepingrun/change_list.html"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_operator(request.user) and bool(request.user.is_staff)

    @admin.display(description="mode")
    def mode(self, run: HousekeepingRun) -> str:
        if run.what == HousekeepingRun.What.FSCK:
            return "repair" if run.repair else "check"
        return "dry run" if run.dry_run else "removed"

    @admin.display(description="freed")
    def human_freed(self, run: HousekeepingRun) -> str:
        return filesizeformat(run.freed_bytes)

    @admin.display(description="errors")
    def error_count(self, run: HousekeepingRun) -> int:
        return len(run.errors or [])

    def get_urls(self) -> list:  # type: ignore[type-arg]
        return [
            path("start/", self.admin_site.admin_view(self.start_view), name="imagestore_housekeepingrun_start"),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a GC or fsck job from the changelist's buttons (POST only, CSRF-checked)."""
        changelist = reverse("admin:imagestore_housekeepingrun_changelist")
        if request.method != "POST":
            return HttpResponseRedirect(changelist)
        if not is_operator(request.user):
            self.message_user(request, "Housekeeping needs staff or the operators group.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        action = request.POST.get("action", "")
        if action in ("gc", "gc-dry-run"):
            job = start_collect_garbage(dry_run=action == "gc-dry-run", owner=request.user, trigger="admin")
        elif action in ("fsck", "fsck-repair"):
            job = start_fsck(repair=action == "fsck-repair", owner=request.user, trigger="admin")
        else:
            self.message_user(request, f"Unknown housekeeping action {action!r}.", messages.ERROR)
            return HttpResponseRedirect(changelist)
        self.message_user(request, f"Queued {job.kind} job {job.id}; its run appears here when it ends.",
                          messages.SUCCESS)
        return HttpResponseRedirect(changelist)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens, to see which exist and revoke (delete) them. Only a hash is stored, so no
    key is ever shown; new tokens come from ``manage.py create_token``."""

    list_display = ["prefix", "user", "name", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user"]
    search_fields = ["prefix", "name", "user__username"]
    fields = ("prefix", "user", "name", "created_at", "expires_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RepositoryGrant)
class RepositoryGrantAdmin(admin.ModelAdmin):
    """Rights at /v2/ for users and groups that are not operators (operators may do everything)."""

    list_display = ["path", "user", "group", "can_pull", "can_push", "can_delete", "created_at"]
    list_filter = ["can_push", "can_delete"]
    search_fields = ["path", "user__username", "group__name"]
    fields = ["path", "user", "group", "can_pull", "can_push", "can_delete"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The audit trail, read-only: events are written by the services and removed by retention."""

    list_display = ["time", "username", "token_name", "interface", "address", "action", "object_type", "object_label",
                    "outcome"]
    list_filter = ["action", "interface", "outcome", "object_type", ("time", admin.DateFieldListFilter)]
    search_fields = ["username", "token_name", "policy", "object_id", "action", "error"]
    date_hierarchy = "time"
    readonly_fields = ["time", "user", "username", "token_name", "policy", "interface", "address", "action",
                       "object_type", "object_id", "object_names", "attributes", "outcome", "error", "job_id"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.display(description="object")
    def object_label(self, event: AuditEvent) -> str:
        names = ", ".join(str(n) for n in event.object_names or [])
        return f"{names} {event.object_id[:19]}".strip()


class WebhookForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    secret = forms.CharField(required=False, widget=forms.PasswordInput, help_text="the HMAC-SHA256 key "
                             "(X-Signature-256); kept encrypted, never shown; empty keeps the current one")
    events_text = forms.CharField(required=False, label="events", help_text="actions, comma-separated "
                                  "(tag, push, delete, ...); empty: all")

    class Meta:
        model = Webhook
        fields = ["name", "url", "active"]

    def clean(self) -> dict[str, Any]:
        from .services import webhooks

        data = super().clean() or {}
        if not self.instance.pk and not data.get("secret"):
            self.add_error("secret", "a secret is needed to sign the deliveries")
        try:
            if data.get("url"):
                webhooks.check_url(data["url"])
            webhooks.clean_events(data.get("events_text"))
        except ServiceError as exc:
            self.add_error(getattr(exc, "field", None) if getattr(exc, "field", None) in ("url",) else None, str(exc))
        return data


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    """Receivers of audit events; saved through services.webhooks (URL checked, secret encrypted)."""

    form = WebhookForm
    list_display = ["__str__", "url", "events", "active", "created_at"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            form.base_fields["events_text"].initial = ", ".join(obj.events or [])
        return form

    def save_model(self, request: HttpRequest, obj: Webhook, form: Any, change: bool) -> None:
        from .services import webhooks

        data = form.cleaned_data
        try:
            if change:
                webhooks.change_webhook(obj, url=data["url"], secret=data.get("secret") or None,
                                        events=data.get("events_text") or [], name=data["name"],
                                        active=data["active"])
            else:
                created = webhooks.create_webhook(url=data["url"], secret=data.get("secret") or "",
                                                  events=data.get("events_text"), name=data["name"],
                                                  active=data["active"], owner=request.user)
                obj.pk = created.pk
        except ServiceError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "webhook", "state", "attempts", "last_status", "created_at", "delivered_at"]
    list_filter = ["state", "webhook"]
    list_select_related = ["webhook"]
    readonly_fields = ["webhook", "event", "payload", "state", "attempts", "last_status", "last_error",
                       "created_at", "delivered_at", "next_attempt_at"]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


class RetentionPolicyForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["name", "repository", "keep_last", "keep_tags", "untagged_older_than", "unused_for", "keep_label",
                  "schedule", "active"]

    def clean(self) -> dict[str, Any]:
        from .services import retention

        data = super().clean() or {}
        try:
            retention.validate(dict(data))
        except ServiceError as exc:
            field = getattr(exc, "field", None)
            self.add_error(field if field in self.fields else None, str(exc))
        return data


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """Policies; preview and run them from the Retention page or the API (a run is a job)."""

    form = RetentionPolicyForm
    list_display = ["name", "repository", "keep_last", "keep_tags", "unused_for", "untagged_older_than", "schedule",
                    "active", "last_run_at"]
    readonly_fields = ["last_run_at", "created_at"]
    actions = ["run_now"]

    @admin.action(description="Run the selected policies now (as jobs)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[RetentionPolicy]) -> None:
        from .services import retention

        if not is_operator(request.user):
            self.message_user(request, "Running policies needs staff or the operators group.", messages.ERROR)
            return
        for policy in queryset:
            job = retention.start_run(policy, owner=request.user)
            self.message_user(request, f"{policy.name}: job {job.id}", messages.SUCCESS)
