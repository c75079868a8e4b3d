from django.urls import path

from accounts import web

app_name = "accounts"

urlpatterns = [
    path("account", web.account, name="account"),
]
