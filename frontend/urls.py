"""The web client: the app page at /, the Django login and logout around it."""

from django.urls import path

from . import views

app_name = "frontend"
urlpatterns = [
    path("", views.app, name="app"),
    path("login/", views.Login.as_view(), name="login"),
    path("logout/", views.Logout.as_view(), name="logout"),
]
