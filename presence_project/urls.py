"""URL map: Django admin; the XCAP, MWI and operations APIs join here as they land."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
