"""URL map: Django admin, the XCAP, MWI and operations APIs, and the web client at /."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sipws.observability.views import healthz, metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("xcap-root/", include("xcapapi.urls")),
    path("api/mwi/", include("mwi.urls")),
    path("api/admin/", include("sipws.api.urls")),
    path("api/xcap/", include("xcapapi.api")),
    path("api/sip-credentials/", include("sipws.credentials")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("", include("frontend.urls")),  # the web client: /, /login/, /logout/
]
