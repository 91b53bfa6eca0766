"""API routes. Image refs may hold slashes and ports, so image routes are spelled out,
actions before the catch-all detail route."""

from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from .views import ImageViewSet, JobViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")

image_list = ImageViewSet.as_view({"get": "list"})
image_import = ImageViewSet.as_view({"post": "import_image", "get": "retrieve", "delete": "destroy"})
image_inspect = ImageViewSet.as_view({"get": "inspect"})
image_tag = ImageViewSet.as_view({"post": "tag"})
image_detail = ImageViewSet.as_view({"get": "retrieve", "delete": "destroy"})

urlpatterns = [
    path("images/", image_list, name="image-list"),
    # POST imports; GET/DELETE still reach an image that happens to be named "import".
    re_path(r"^images/(?P<ref>import)/$", image_import, name="image-import"),
    re_path(r"^images/(?P<ref>.+)/inspect/$", image_inspect, name="image-inspect"),
    re_path(r"^images/(?P<ref>.+)/tag/$", image_tag, name="image-tag"),
    re_path(r"^images/(?P<ref>.+)/$", image_detail, name="image-detail"),
    *router.urls,
]
