"""XCAP URLs: everything below the XCAP root is one resource view that reads the raw path."""

from django.urls import re_path

from .views import XcapView

app_name = "xcapapi"
urlpatterns = [re_path(r"^(?P<path>.*)$", XcapView.as_view(), name="resource")]
