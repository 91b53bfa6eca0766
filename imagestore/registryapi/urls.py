"""``/v2/`` routes. Repository names hold slashes, so each route ends in its own keyword and the
name is checked against the spec's grammar by the view (NAME_INVALID)."""

from django.urls import re_path

from . import views

_NAME = r"(?P<name>[^?#]+?)"

urlpatterns = [
    re_path(r"^$", views.version, name="registry-version"),
    re_path(r"^token$", views.token, name="registry-token"),
    re_path(r"^_catalog$", views.catalog, name="registry-catalog"),
    re_path(rf"^{_NAME}/tags/list$", views.tags_list, name="registry-tags"),
    re_path(rf"^{_NAME}/manifests/(?P<reference>[^/]+)$", views.manifest, name="registry-manifest"),
    re_path(rf"^{_NAME}/referrers/(?P<digest>[^/]+)$", views.referrers, name="registry-referrers"),
    re_path(rf"^{_NAME}/blobs/uploads/?$", views.upload_start, name="registry-upload-start"),
    re_path(rf"^{_NAME}/blobs/uploads/(?P<upload_id>[^/]+)$", views.upload, name="registry-upload"),
    re_path(rf"^{_NAME}/blobs/(?P<digest>[^/]+)$", views.blob, name="registry-blob"),
]
