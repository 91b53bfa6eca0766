"""Engine API routes, under ``/docker/`` with or without a ``/v1.NN`` version prefix.
Image names keep their slashes and ports, so the suffix (``/json``, ``/tag``) decides."""

from django.urls import re_path

from . import events, interactive, views

V = r"^(?:v(?P<version>[0-9]+\.[0-9]+)/)?"

urlpatterns = [
    re_path(V + r"_ping$", views.ping),
    re_path(V + r"version$", views.version_view),
    re_path(V + r"info$", views.info),
    re_path(V + r"auth$", views.auth),
    re_path(V + r"system/df$", views.system_df),
    re_path(V + r"events$", events.events),
    re_path(V + r"images/json$", views.images_list),
    re_path(V + r"distribution/(?P<name>.+)/json$", views.distribution_inspect),
    re_path(V + r"images/create$", views.images_create),
    re_path(V + r"images/load$", views.images_load),
    re_path(V + r"images/search$", views.images_search),
    re_path(V + r"images/prune$", views.images_prune),
    re_path(V + r"images/get$", views.images_get),
    re_path(V + r"images/(?P<name>.+)/json$", views.image_inspect),
    re_path(V + r"images/(?P<name>.+)/history$", views.image_history_view),
    re_path(V + r"images/(?P<name>.+)/tag$", views.image_tag),
    re_path(V + r"images/(?P<name>.+)/get$", views.image_get),
    re_path(V + r"images/(?P<name>.+)/push$", views.image_push),
    re_path(V + r"images/(?P<name>.+)$", views.image_delete),
    re_path(V + r"containers/create$", views.containers_create),
    re_path(V + r"containers/json$", views.containers_list),
    re_path(V + r"containers/(?P<ref>[^/]+)/json$", views.container_inspect),
    re_path(V + r"containers/(?P<ref>[^/]+)/(?P<verb>start|stop|restart|kill|wait)$", views.container_action),
    re_path(V + r"containers/(?P<ref>[^/]+)/logs$", views.container_logs),
    re_path(V + r"containers/(?P<ref>[^/]+)/attach$", interactive.container_attach),
    re_path(V + r"containers/(?P<ref>[^/]+)/attach/ws$", interactive.container_attach_ws),
    re_path(V + r"containers/(?P<ref>[^/]+)/resize$", interactive.container_resize),
    re_path(V + r"containers/(?P<ref>[^/]+)/exec$", interactive.container_exec_create),
    re_path(V + r"containers/(?P<ref>[^/]+)/rename$", interactive.container_rename),
    re_path(V + r"containers/(?P<ref>[^/]+)/top$", interactive.container_top),
    re_path(V + r"exec/(?P<exec_id>[^/]+)/start$", interactive.exec_start),
    re_path(V + r"exec/(?P<exec_id>[^/]+)/resize$", interactive.exec_resize),
    re_path(V + r"exec/(?P<exec_id>[^/]+)/json$", interactive.exec_inspect),
    re_path(V + r"containers/(?P<ref>[^/]+)/changes$", views.container_changes),
    re_path(V + r"containers/(?P<ref>[^/]+)/archive$", views.container_archive),
    re_path(V + r"containers/(?P<ref>[^/]+)$", views.container_delete),
    re_path(V + r"commit$", views.commit),
    # Docker's own answer for what it does not serve, whatever DEBUG says.
    re_path(r"", views.not_found),
]
