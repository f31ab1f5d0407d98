"""The console's routes; who may use each is stated on its view (``console.access``)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from console import views

app_name = "console"

urlpatterns = [
    path("", views.today, name="today"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="console/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("customers/<str:external_id>/", views.customer, name="customer"),
    path("overview/", views.overview_page, name="overview"),
    path("campaigns/", views.campaigns, name="campaigns"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("models/", views.models, name="models"),
    path("models/<int:pk>/promote/", views.model_promote, name="model-promote"),
    path("models/rollback/", views.model_rollback, name="model-rollback"),
    path("offers/<int:pk>/approve/", views.offer_approve, name="offer-approve"),
    path("offers/<int:pk>/edit/", views.offer_edit, name="offer-edit"),
    path("offers/<int:pk>/dismiss/", views.offer_dismiss, name="offer-dismiss"),
    path("cases/<int:pk>/dismiss/", views.case_dismiss, name="case-dismiss"),
    path("cases/<int:pk>/assign-me/", views.case_assign_me, name="case-assign-me"),
]
