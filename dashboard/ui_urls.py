from django.urls import path, re_path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="ui-images", permanent=False), name="home"),
    path("images/", views.images, name="ui-images"),
    path("pull/", views.pull, name="ui-pull"),
    path("jobs/", views.jobs, name="ui-jobs"),
    path("jobs/<str:job_id>/", views.job_detail, name="ui-job"),
    path("search/", views.search_page, name="ui-search"),
    re_path(r"^images/(?P<ref>.+)/$", views.image_detail, name="ui-image"),
]
