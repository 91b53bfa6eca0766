"""The pages' URLs (included at the root by dashboard/urls.py). The names are ``ui-*``."""

from django.urls import path, re_path

from . import contents, terminal, views

urlpatterns = [
    path("", views.overview, name="ui-overview"),
    path("images/", views.images, name="ui-images"),
    path("pull/", views.pull, name="ui-pull"),
    path("jobs/", views.jobs, name="ui-jobs"),
    path("audit/", views.audit_page, name="ui-audit"),
    path("webhooks/", views.webhooks_page, name="ui-webhooks"),
    path("retention/", views.retention_page, name="ui-retention"),
    path("jobs/toasts/", views.job_toasts, name="ui-job-toasts"),
    path("jobs/<str:job_id>/", views.job_detail, name="ui-job"),
    path("search/", views.search_page, name="ui-search"),
    path("import/", views.import_page, name="ui-import"),
    path("load/", views.load_page, name="ui-load"),
    path("registries/", views.registries, name="ui-registries"),
    path("repositories/", views.repositories, name="ui-repositories"),
    path("containers/", views.containers, name="ui-containers"),
    path("containers/<str:ref>/", views.container_detail, name="ui-container"),
    path("containers/<str:ref>/terminal/", terminal.terminal_socket, name="ui-container-terminal"),
    path("images/selection/", views.images_bulk, name="ui-images-bulk"),
    re_path(r"^images/(?P<ref>.+)/push/$", views.push, name="ui-push"),
    path("images/diff/", contents.image_diff, name="ui-image-diff"),
    re_path(r"^images/(?P<ref>.+)/files/view/$", contents.image_file_view, name="ui-image-file"),
    re_path(r"^images/(?P<ref>.+)/files/$", contents.image_files, name="ui-image-files"),
    re_path(r"^images/(?P<ref>.+)/packages/$", contents.image_packages, name="ui-image-packages"),
    re_path(r"^images/(?P<ref>.+)/$", views.image_detail, name="ui-image"),
]
