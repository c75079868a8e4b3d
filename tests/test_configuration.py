import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_rate, parse_database_url

ROOT = Path(__file__).resolve().parent.parent


def settings_load(**env: str) -> subprocess.CompletedProcess:
    """Import the settings module in a fresh interpreter with the given environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-c", "import gradeproject.settings as s; print(s.DATABASES['default']['ENGINE'])"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_load_value(name: str, **env: str) -> str:
    """repr() of one setting, loaded in a fresh interpreter with the given environment."""
    # Without the test run's own defaults (pyproject.toml), so the settings' defaults show.
    unset = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "LOGIN_LOCKOUT", "AUTH_TOKEN_RATE", name}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    loaded = subprocess.run(
        [sys.executable, "-c", f"import gradeproject.settings as s; print(repr(s.{name}))"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    return loaded.stdout.strip()


def test_a_postgres_url_becomes_a_postgres_database_with_kept_connections():
    database = parse_database_url("postgres://grader:s%40cret@db.local:5433/grades", conn_max_age=600)

    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["NAME"], database["USER"], database["PASSWORD"]) == ("grades", "grader", "s@cret")
    assert (database["HOST"], database["PORT"], database["CONN_MAX_AGE"]) == ("db.local", "5433", 600)


def test_a_sqlite_url_uses_wal_and_immediate_transactions():
    database = parse_database_url("sqlite:////tmp/grades.sqlite3", conn_max_age=0)

    assert database["NAME"] == "/tmp/grades.sqlite3"
    assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]
    assert database["OPTIONS"]["timeout"] > 0


def test_an_unsupported_database_url_is_refused_with_a_sentence():
    with pytest.raises(ImproperlyConfigured, match="scheme 'mysql' is not supported"):
        parse_database_url("mysql://localhost/x", conn_max_age=0)


def test_a_bad_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("Q_WORKERS", "many")

    with pytest.raises(ImproperlyConfigured, match="Q_WORKERS must be a whole number"):
        env_int("Q_WORKERS", 2)


def test_a_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="DEBUG must be a boolean"):
        env_bool("DEBUG")


def test_settings_refuse_to_load_without_a_secret_key_when_debug_is_off():
    loaded = settings_load(DEBUG="0")

    assert loaded.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in loaded.stderr


def test_settings_default_to_the_embedded_sqlite_database_in_debug(tmp_path):
    loaded = settings_load(DEBUG="1", VAR_DIR=str(tmp_path))

    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "django.db.backends.sqlite3"


def test_q_retry_not_above_q_timeout_is_refused():
    loaded = settings_load(DEBUG="1", Q_TIMEOUT="60", Q_RETRY="60")

    assert "Q_RETRY must be greater than Q_TIMEOUT" in loaded.stderr


def test_the_hostile_input_settings_have_their_defaults():
    assert settings_load_value("MAX_DOCUMENT_CHARS", DEBUG="1") == "500000"
    assert settings_load_value("AUTH_TOKEN_RATE", DEBUG="1") == "'10/min'"
    assert settings_load_value("AXES_ENABLED", DEBUG="1") == "True"
    assert settings_load_value("AXES_FAILURE_LIMIT", DEBUG="1", LOGIN_FAILURE_LIMIT="5") == "6"
    assert (
        settings_load_value("AXES_COOLOFF_TIME", DEBUG="1", LOGIN_COOLOFF="1h")
        == "datetime.timedelta(seconds=3600)"
    )


@pytest.mark.parametrize(
    ("raw", "rate"), [("10/min", "10/min"), (" 5 / h ", "5/h"), ("off", None), ("", None)]
)
def test_a_throttle_rate_is_read_or_switched_off(monkeypatch, raw, rate):
    monkeypatch.setenv("AUTH_TOKEN_RATE", raw)

    assert env_rate("AUTH_TOKEN_RATE", "10/min") == rate


@pytest.mark.parametrize("raw", ["10", "ten/min", "10/fortnight", "0/min"])
def test_a_bad_throttle_rate_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("AUTH_TOKEN_RATE", raw)

    with pytest.raises(ImproperlyConfigured, match="AUTH_TOKEN_RATE must be a rate such as 10/min"):
        env_rate("AUTH_TOKEN_RATE", "10/min")
