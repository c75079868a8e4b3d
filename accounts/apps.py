from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The signed-in user's own settings: for now, the time zone pages show times in."""

    name = "accounts"
    verbose_name = "Accounts"
