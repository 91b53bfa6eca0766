"""API routes. Image refs may hold slashes and ports, so image routes are spelled out,
actions before the catch-all detail route."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from .audit import AuditEventViewSet
from .containers import ContainerViewSet
from .contents import (
    ImageDiffView,
    ImageFilesViewSet,
    ImagePackagesViewSet,
    ImageUpdateCheckView,
    StorePackagesViewSet,
)
from .retention import RetentionPolicyViewSet
from .system import FsckView, GcView, HousekeepingRunViewSet
from .views import ImageViewSet, JobViewSet, RegistryCredentialViewSet, SearchView
from .webhooks import WebhookViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("registries", RegistryCredentialViewSet, basename="registry")
router.register("containers", ContainerViewSet, basename="container")
router.register("system/runs", HousekeepingRunViewSet, basename="housekeeping-run")
router.register("events", AuditEventViewSet, basename="audit-event")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("retention-policies", RetentionPolicyViewSet, basename="retention-policy")

image_list = ImageViewSet.as_view({"get": "list"})
# Collection actions; GET/DELETE still reach an image that happens to be named like one.
image_import = ImageViewSet.as_view({"post": "import_image", "get": "retrieve", "delete": "destroy"})
image_save = ImageViewSet.as_view({"post": "save", "get": "retrieve", "delete": "destroy"})
image_load = ImageViewSet.as_view({"post": "load", "get": "retrieve", "delete": "destroy"})
image_prune = ImageViewSet.as_view({"post": "prune", "get": "retrieve", "delete": "destroy"})
image_remove = ImageViewSet.as_view({"post": "remove", "get": "retrieve", "delete": "destroy"})
image_pull = ImageViewSet.as_view({"post": "pull", "get": "retrieve", "delete": "destroy"})
image_push = ImageViewSet.as_view({"post": "push"})
image_history = ImageViewSet.as_view({"get": "history"})
image_archive = ImageViewSet.as_view({"get": "archive"})
image_inspect = ImageViewSet.as_view({"get": "inspect"})
image_tag = ImageViewSet.as_view({"post": "tag"})
image_detail = ImageViewSet.as_view({"get": "retrieve", "delete": "destroy"})
image_files = ImageFilesViewSet.as_view({"get": "list"})
image_file_content = ImageFilesViewSet.as_view({"get": "content"})
image_layer_changes = ImageFilesViewSet.as_view({"get": "changes"})
image_efficiency = ImageFilesViewSet.as_view({"get": "efficiency"})
image_packages = ImagePackagesViewSet.as_view({"get": "list"})
image_sbom = ImagePackagesViewSet.as_view({"get": "sbom"})
store_packages = StorePackagesViewSet.as_view({"get": "list"})

urlpatterns = [
    path("images/", image_list, name="image-list"),
    re_path(r"^images/(?P<ref>import)/$", image_import, name="image-import"),
    re_path(r"^images/(?P<ref>save)/$", image_save, name="image-save"),
    re_path(r"^images/(?P<ref>load)/$", image_load, name="image-load"),
    re_path(r"^images/(?P<ref>prune)/$", image_prune, name="image-prune"),
    re_path(r"^images/(?P<ref>remove)/$", image_remove, name="image-remove"),
    re_path(r"^images/(?P<ref>pull)/$", image_pull, name="image-pull"),
    re_path(r"^images/(?P<ref>.+)/push/$", image_push, name="image-push"),
    path("images/diff/", ImageDiffView.as_view(), name="image-diff"),
    path("search/", SearchView.as_view(), name="search"),
    path("system/gc/", GcView.as_view(), name="system-gc"),
    path("system/fsck/", FsckView.as_view(), name="system-fsck"),
    re_path(r"^images/(?P<ref>.+)/history/$", image_history, name="image-history"),
    re_path(r"^images/(?P<ref>.+)/archive/$", image_archive, name="image-archive"),
    re_path(r"^images/(?P<ref>.+)/inspect/$", image_inspect, name="image-inspect"),
    re_path(r"^images/(?P<ref>.+)/tag/$", image_tag, name="image-tag"),
    re_path(r"^images/(?P<ref>.+)/files/content/$", image_file_content, name="image-file-content"),
    re_path(r"^images/(?P<ref>.+)/files/$", image_files, name="image-files"),
    re_path(r"^images/(?P<ref>.+)/layers/(?P<n>[^/]+)/changes/$", image_layer_changes, name="image-layer-changes"),
    re_path(r"^images/(?P<ref>.+)/efficiency/$", image_efficiency, name="image-efficiency"),
    re_path(r"^images/(?P<ref>.+)/packages/$", image_packages, name="image-packages"),
    re_path(r"^images/(?P<ref>.+)/sbom/$", image_sbom, name="image-sbom"),
    re_path(r"^images/(?P<ref>.+)/check-update/$", ImageUpdateCheckView.as_view(), name="image-check-update"),
    path("packages/", store_packages, name="packages"),
    re_path(r"^images/(?P<ref>.+)/$", image_detail, name="image-detail"),
    *router.urls,
]
