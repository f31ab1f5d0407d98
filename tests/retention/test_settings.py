import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "prod-like-key-7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e2b4d6f8a0c1e3",
    "ALLOWED_HOSTS": "shop.example.com",
}


def _python(*args: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    """Run this interpreter in a fresh process that reads its settings from ``env`` only:
    the test run's own DEBUG, SECRET_KEY and settings module are left out."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return _python("manage.py", *args, env=env, timeout=120)


def _settings(expression: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Print ``expression`` over the settings module ``s``: the settings alone, without
    setting up every app as ``manage.py`` would."""
    return _python(
        "-c", f"import retention.settings as s; print({expression})", env=env, timeout=60
    )


@pytest.mark.smoke
def test_deploy_check_is_clean_with_production_settings(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, "RETENTION_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.smoke
def test_it_refuses_to_start_without_secret_key_when_not_debugging(tmp_path):
    result = _manage("check", env={"DEBUG": "0", "RETENTION_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.smoke
def test_a_bad_boolean_names_the_variable(tmp_path):
    result = _manage("check", env={"DEBUG": "maybe", "RETENTION_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


@pytest.mark.smoke
def test_the_embedded_default_needs_no_server(tmp_path, monkeypatch):
    env = {"DEBUG": "1", "RETENTION_VAR_DIR": str(tmp_path)}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    result = _settings("s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL", env)
    assert result.returncode == 0, result.stderr
    assert "sqlite3 filesystem://" in result.stdout
    assert (tmp_path / "broker" / "out").is_dir()


def test_the_suite_runs_on_postgresql_and_redis():
    """make test runs the full suite on the real services; this guards against a silent
    fallback to SQLite or the filesystem broker."""
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def _setting(expression: str, env: dict[str, str], tmp_path) -> str:
    result = _settings(expression, {**PRODUCTION_ENV, "RETENTION_VAR_DIR": str(tmp_path), **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.smoke
def test_hsts_preload_and_subdomains_are_off_unless_the_environment_opts_in(tmp_path):
    expression = "s.SECURE_HSTS_PRELOAD, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_SECONDS"
    assert _setting(expression, {}, tmp_path) == "False False 31536000"
    opted_in = {"SECURE_HSTS_PRELOAD": "1", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1"}
    assert _setting(expression, opted_in, tmp_path) == "True True 31536000"


@pytest.mark.smoke
def test_the_forwarded_proto_header_is_trusted_only_behind_a_tls_proxy(tmp_path):
    assert _setting("s.SECURE_PROXY_SSL_HEADER", {}, tmp_path) == "None"
    behind = _setting("s.SECURE_PROXY_SSL_HEADER", {"BEHIND_TLS_PROXY": "1"}, tmp_path)
    assert behind == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.smoke
def test_the_deploy_check_stays_clean_behind_a_proxy_with_hsts_opted_in(tmp_path):
    env = {
        **PRODUCTION_ENV,
        "RETENTION_VAR_DIR": str(tmp_path),
        "BEHIND_TLS_PROXY": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.smoke
def test_the_cache_is_the_redis_broker_or_else_process_memory(tmp_path, monkeypatch):
    """The bot's rate limits hold across processes only if the cache is shared: Redis
    whenever the broker is Redis, unless CACHE_URL says otherwise."""
    monkeypatch.delenv("CACHE_URL", raising=False)
    show = (
        "s.CACHES['default']['BACKEND'].rsplit('.', 1)[1], s.CACHES['default'].get('LOCATION', '-')"
    )
    env = {"DEBUG": "1", "RETENTION_VAR_DIR": str(tmp_path)}
    cases = [
        (
            {"CELERY_BROKER_URL": "redis://cache-host:6379/3"},
            "RedisCache redis://cache-host:6379/3",
        ),
        ({"CELERY_BROKER_URL": "filesystem://"}, "LocMemCache -"),
        (
            {"CELERY_BROKER_URL": "filesystem://", "CACHE_URL": "redis://other:6379/1"},
            "RedisCache redis://other:6379/1",
        ),
    ]
    for given, expected in cases:
        result = _settings(show, {**env, **given})
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(expected)
    wrong = _settings("s.CACHES", {**env, "CACHE_URL": "memcached://x"})
    assert wrong.returncode != 0 and "CACHE_URL must be" in wrong.stderr
