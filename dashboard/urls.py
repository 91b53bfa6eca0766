from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from imagestore.api.views import IndexSearchView
from imagestore.login_limit import LimitedAuthenticationForm
from imagestore.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # Prometheus (imagestore/metrics.py): METRICS_TOKEN as a bearer token, or loopback only.
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("imagestore.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Docker Hub's search API, so another dashboard or client can search this one.
    path("v1/search", IndexSearchView.as_view(), name="index-search"),
    # The Docker Engine API: DOCKER_HOST=tcp://127.0.0.1:8000/docker
    path("docker/", include("imagestore.dockerapi.urls")),
    # This store as an OCI Distribution registry (docker pull HOST:PORT/team/app).
    path("v2/", include("imagestore.registryapi.urls")),
    # The sign-in page with the failed sign-in limit's message (imagestore.login_limit).
    path("accounts/login/", LoginView.as_view(authentication_form=LimitedAuthenticationForm), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The language switch (Django's set_language: a POST that sets the language cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("ui.urls")),
]

handler404 = "dashboard.error_views.not_found"
handler500 = "dashboard.error_views.server_error"
