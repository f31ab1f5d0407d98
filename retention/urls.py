"""Top-level routes. Each included module states who may use its views."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("console/", include("console.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("customers.urls")),
    path("api/v1/", include("retention.api_urls")),
    path("bots/", include("bots.urls")),
]

admin.site.site_header = "Retention assistant"
admin.site.site_title = "Retention assistant"
admin.site.index_title = "Shop data, models and retention"
