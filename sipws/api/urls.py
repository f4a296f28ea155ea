"""/api/admin/: presentities, subscriptions, watchers, and the actions on them."""

from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("presentities/", views.PresentityList.as_view(), name="presentities"),
    path("presentities/<str:uri>/", views.PresentityDetail.as_view(), name="presentity"),
    path("presentities/<str:uri>/refresh/", views.Refresh.as_view(), name="refresh"),
    path("presentities/<str:uri>/reevaluate/", views.Reevaluate.as_view(), name="reevaluate"),
    path("subscriptions/", views.SubscriptionList.as_view(), name="subscriptions"),
    path("subscriptions/<int:pk>/", views.SubscriptionDetail.as_view(), name="subscription"),
    path("subscriptions/<int:pk>/terminate/", views.Terminate.as_view(), name="terminate"),
    path("watchers/", views.WatcherList.as_view(), name="watchers"),
    path("cleanup/", views.Cleanup.as_view(), name="cleanup"),
]
