"""Browser pages. The dashboard UI is still to come; until then the home page leads to the
admin (operators) and the API docs (automation), both behind sign-in."""

from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.generic import TemplateView

urlpatterns = [
    path("", login_required(TemplateView.as_view(template_name="home.html")), name="home"),
]
