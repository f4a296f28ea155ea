"""URL map: Django admin; the XCAP, MWI and operations APIs join here as they land."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("xcap-root/", include("xcapapi.urls")),
]
